/**
 * The CSV bridge, inbound: a 4Degrees deal-list export → validated rows → one
 * `fourdegrees.import_row` queue message per new or changed row, into the normal sync path toward
 * HighLevel. The HighLevel writes themselves happen in the sync engine (the queue consumer).
 *
 * Idempotent: each row has a stable key (4Degrees id, else HighLevel id, else list + deal name)
 * and a content hash; rows whose key and hash were already enqueued are reported `unchanged` and
 * not sent again, so importing the same file twice enqueues nothing the second time.
 * Rows go to the queue before their hashes are recorded, so a failure in between re-sends (the
 * engine is idempotent per key + hash) instead of losing rows.
 */
import type { QueueMessage } from "../../queue/messages.ts";
import {
  IMPORT_CHUNK,
  knownRowHashes,
  recordImportedRows,
  saveImportReport,
  type ImportReport,
} from "../../store/imports.ts";
import { parseCsv } from "./parse.ts";
import {
  contentHash,
  resolveColumns,
  validateRow,
  type CsvField,
  type HeaderMap,
  type RowOptions,
  type ValidRow,
} from "./rows.ts";

/** Where rows are sent (the `BULK_QUEUE` binding: rows are bulk work, src/queue/queues.ts). */
export type RowSink = Pick<Queue<QueueMessage>, "sendBatch">;

export interface ImportInput {
  accountId: string;
  filename: string | null;
  /** The file's text (src/fourdegrees/csv/parse.ts `readCsvText` reads it from the upload). */
  text: string;
  map: HeaderMap;
  options: RowOptions;
  /** Force a delimiter instead of detecting it. */
  delimiter?: string;
}

/**
 * The answer to an import: the stored report's counts (rows queued per action — `created`, `updated`,
 * `linked` — rows identical to their last import as `unchanged`, every skipped row with its line and
 * reason) plus how the file was read.
 */
export interface ImportResult extends Omit<ImportReport, "startedAt" | "finishedAt"> {
  delimiter: string;
  /** field → the header it was read from. */
  columns: Partial<Record<CsvField, string>>;
  queued: number;
}

/** Queues accept at most 100 messages and 256 KB per `sendBatch`, and 128 KB per message. */
const BATCH_MESSAGES = 100;
const BATCH_BYTES = 240 * 1024;
const MESSAGE_BYTES = 120 * 1024;

/** Runs one import. Throws `AppError` 400/413 for a file that cannot be read at all. */
export async function importDealCsv(
  db: D1Database,
  sink: RowSink,
  input: ImportInput,
  now: () => number = Date.now,
): Promise<ImportResult> {
  const startedAt = now();
  const parsed = parseCsv(input.text, input.delimiter === undefined ? {} : { delimiter: input.delimiter });
  const columns = resolveColumns(parsed.headers, input.map);
  const importId = crypto.randomUUID();
  const result: ImportResult = {
    importId,
    accountId: input.accountId,
    filename: input.filename,
    delimiter: parsed.delimiter,
    columns: columns.used,
    rows: parsed.records.length,
    created: 0,
    updated: 0,
    linked: 0,
    unchanged: 0,
    skipped: [],
    queued: 0,
  };
  const firstLineOfKey = new Map<string, number>();

  for (let start = 0; start < parsed.records.length; start += IMPORT_CHUNK) {
    const valid: Array<ValidRow & { hash: string }> = [];
    for (const record of parsed.records.slice(start, start + IMPORT_CHUNK)) {
      const checked = validateRow(record, columns, input.options, importId);
      if (!checked.ok) {
        result.skipped.push({ line: checked.line, reason: checked.reason });
        continue;
      }
      const earlier = firstLineOfKey.get(checked.row.importKey);
      if (earlier !== undefined) {
        result.skipped.push({
          line: record.line,
          reason: `the same deal as line ${earlier} (${describeKey(checked.row.importKey)})`,
        });
        continue;
      }
      firstLineOfKey.set(checked.row.importKey, record.line);
      valid.push({ ...checked.row, hash: await contentHash(checked.row) });
    }

    const known = await knownRowHashes(
      db,
      input.accountId,
      valid.map((r) => r.importKey),
    );
    const messages: Array<{ body: QueueMessage; bytes: number; row: ValidRow & { hash: string } }> = [];
    for (const row of valid) {
      const before = known.get(row.importKey);
      if (before === row.hash) {
        result.unchanged++;
        continue;
      }
      const action = before !== undefined ? "update" : row.highlevelOpportunityId ? "link" : "create";
      const body: QueueMessage = {
        v: 1,
        kind: "fourdegrees.import_row",
        accountId: input.accountId,
        importId,
        importKey: row.importKey,
        contentHash: row.hash,
        line: row.line,
        action,
        deal: row.deal,
        highlevelOpportunityId: row.highlevelOpportunityId,
        note: row.note,
      };
      const bytes = new TextEncoder().encode(JSON.stringify(body)).length;
      if (bytes > MESSAGE_BYTES) {
        result.skipped.push({
          line: row.line,
          reason: `the row is too large to sync (${Math.round(bytes / 1024)} KiB; the limit is ${MESSAGE_BYTES / 1024} KiB)`,
        });
        continue;
      }
      messages.push({ body, bytes, row });
    }

    for (let i = 0; i < messages.length;) {
      const batch: typeof messages = [];
      let size = 0;
      while (i < messages.length && batch.length < BATCH_MESSAGES && size + messages[i]!.bytes <= BATCH_BYTES) {
        size += messages[i]!.bytes;
        batch.push(messages[i]!);
        i++;
      }
      await sink.sendBatch(batch.map((m) => ({ body: m.body, contentType: "json" as const })));
      await recordImportedRows(
        db,
        input.accountId,
        importId,
        batch.map((m) => ({ importKey: m.row.importKey, contentHash: m.row.hash })),
      );
      for (const m of batch) {
        if (m.body.kind !== "fourdegrees.import_row") continue;
        result[m.body.action === "create" ? "created" : m.body.action === "update" ? "updated" : "linked"]++;
        result.queued++;
      }
    }
  }

  result.skipped.sort((a, b) => a.line - b.line);
  await saveImportReport(db, {
    importId,
    accountId: input.accountId,
    filename: input.filename,
    rows: result.rows,
    created: result.created,
    updated: result.updated,
    linked: result.linked,
    unchanged: result.unchanged,
    skipped: result.skipped,
    startedAt,
    finishedAt: now(),
  });
  return result;
}

function describeKey(key: string): string {
  if (key.startsWith("4d:")) return `4Degrees ID ${key.slice(3)}`;
  if (key.startsWith("hl:")) return `HighLevel ID ${key.slice(3)}`;
  return "same deal name in the same list";
}
