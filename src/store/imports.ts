/**
 * D1 bookkeeping of the 4Degrees CSV bridge: `fourdegrees_import_rows` (each imported row's key
 * and content hash, so a re-import enqueues nothing that did not change) and `fourdegrees_imports`
 * (one report per run).
 *
 * Why `json_each`: D1 binds at most 100 parameters per statement; passing a chunk's keys as one
 * JSON parameter lets one statement look up (or upsert) hundreds of rows, which keeps a
 * 50,000-row import to a few hundred D1 calls.
 */
import * as z from "zod";

/** Rows per D1 statement (keeps each JSON parameter well under D1's size limits). */
export const IMPORT_CHUNK = 500;

/** `importKey → contentHash` for the keys of `keys` this account imported before. */
export async function knownRowHashes(db: D1Database, accountId: string, keys: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < keys.length; i += IMPORT_CHUNK) {
    const chunk = keys.slice(i, i + IMPORT_CHUNK);
    const { results } = await db
      .prepare(
        "SELECT import_key, content_hash FROM fourdegrees_import_rows WHERE account_id = ? AND import_key IN (SELECT value FROM json_each(?))",
      )
      .bind(accountId, JSON.stringify(chunk))
      .all();
    for (const row of z.array(z.object({ import_key: z.string(), content_hash: z.string() })).parse(results))
      out.set(row.import_key, row.content_hash);
  }
  return out;
}

/** Records rows as enqueued (insert or move to the new hash). Call after the queue accepted them. */
export async function recordImportedRows(
  db: D1Database,
  accountId: string,
  importId: string,
  rows: Array<{ importKey: string; contentHash: string }>,
  now = Date.now(),
): Promise<void> {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < rows.length; i += IMPORT_CHUNK) {
    const chunk = rows.slice(i, i + IMPORT_CHUNK).map((r) => ({ k: r.importKey, h: r.contentHash }));
    statements.push(
      db
        .prepare(
          `INSERT INTO fourdegrees_import_rows (account_id, import_key, content_hash, last_import_id, first_seen_at, updated_at)
           SELECT ?1, json_extract(value, '$.k'), json_extract(value, '$.h'), ?2, ?3, ?3 FROM json_each(?4) WHERE true
           ON CONFLICT (account_id, import_key) DO UPDATE SET content_hash = excluded.content_hash, last_import_id = excluded.last_import_id, updated_at = excluded.updated_at`,
        )
        .bind(accountId, importId, now, JSON.stringify(chunk)),
    );
  }
  if (statements.length > 0) await db.batch(statements);
}

/**
 * Forgets a row's content hash (the row did not reach HighLevel), so importing the file again
 * queues it again. Only the hash the row's message carried is forgotten: a later import of a
 * changed row keeps its own.
 */
export async function forgetImportedRow(
  db: D1Database,
  row: { accountId: string; importKey: string; contentHash: string },
): Promise<void> {
  await db
    .prepare("DELETE FROM fourdegrees_import_rows WHERE account_id = ? AND import_key = ? AND content_hash = ?")
    .bind(row.accountId, row.importKey, row.contentHash)
    .run();
}

/** The report of one import run. */
export interface ImportReport {
  importId: string;
  accountId: string;
  filename: string | null;
  rows: number;
  created: number;
  updated: number;
  linked: number;
  unchanged: number;
  skipped: Array<{ line: number; reason: string }>;
  startedAt: number;
  finishedAt: number;
}

/** Most skipped rows kept in D1 per run (the HTTP answer carries them all). */
export const STORED_SKIPPED = 1_000;

/** Saves a run's report. */
export async function saveImportReport(db: D1Database, report: ImportReport): Promise<void> {
  await db
    .prepare(
      `INSERT INTO fourdegrees_imports (id, account_id, filename, rows_total, created, updated, linked, unchanged, skipped, skipped_json, started_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      report.importId,
      report.accountId,
      report.filename,
      report.rows,
      report.created,
      report.updated,
      report.linked,
      report.unchanged,
      report.skipped.length,
      JSON.stringify(report.skipped.slice(0, STORED_SKIPPED)),
      report.startedAt,
      report.finishedAt,
    )
    .run();
}

const ReportRow = z.object({
  id: z.string(),
  account_id: z.string(),
  filename: z.string().nullable(),
  rows_total: z.number(),
  created: z.number(),
  updated: z.number(),
  linked: z.number(),
  unchanged: z.number(),
  skipped: z.number(),
  skipped_json: z.string(),
  started_at: z.number(),
  finished_at: z.number(),
});

/** The latest runs of an account, newest first (skipped rows as stored, capped). */
export async function listImportReports(
  db: D1Database,
  accountId: string,
  limit = 20,
): Promise<Array<ImportReport & { skippedCount: number }>> {
  const { results } = await db
    .prepare("SELECT * FROM fourdegrees_imports WHERE account_id = ? ORDER BY started_at DESC LIMIT ?")
    .bind(accountId, limit)
    .all();
  return z
    .array(ReportRow)
    .parse(results)
    .map((r) => ({
      importId: r.id,
      accountId: r.account_id,
      filename: r.filename,
      rows: r.rows_total,
      created: r.created,
      updated: r.updated,
      linked: r.linked,
      unchanged: r.unchanged,
      skipped: z.array(z.object({ line: z.number(), reason: z.string() })).parse(JSON.parse(r.skipped_json)),
      skippedCount: r.skipped,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
    }));
}
