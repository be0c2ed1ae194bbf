/**
 * Read-mostly queries the operator console needs beyond the engine's stores: the activity trail
 * filtered by record, direction and outcome; one record's whole history; the distinct values the
 * filters offer; and the report's per-stage win probabilities (migration 0005).
 */
import * as z from "zod";
import { toEvent, type SyncEvent } from "./sync-events.ts";

/** Filters of the activity page (all optional). */
export interface ActivityFilter {
  /** A 4Degrees or HighLevel record id, or part of a linked record's name (case-insensitive). */
  record?: string;
  direction?: string;
  outcome?: string;
  beforeId?: number;
  limit?: number;
}

/** The activity trail of an account, newest first, filtered. */
export async function listActivity(db: D1Database, accountId: string, f: ActivityFilter = {}): Promise<SyncEvent[]> {
  const { results } = await db
    .prepare(
      `SELECT * FROM sync_events WHERE account_id = ?1
         AND (?2 IS NULL OR fd_id = ?2 OR hl_id = ?2
              OR fd_id IN (SELECT fd_deal_id FROM links WHERE account_id = ?1
                             AND instr(lower(json_extract(base_json, '$.name')), lower(?2)) > 0)
              OR fd_id IN (SELECT record_id FROM review_items WHERE account_id = ?1 AND side = 'fourdegrees'
                             AND instr(lower(json_extract(detail_json, '$.name')), lower(?2)) > 0)
              OR hl_id IN (SELECT record_id FROM review_items WHERE account_id = ?1 AND side = 'highlevel'
                             AND instr(lower(json_extract(detail_json, '$.name')), lower(?2)) > 0))
         AND (?3 IS NULL OR direction = ?3)
         AND (?4 IS NULL OR outcome = ?4)
         AND id < ?5
       ORDER BY id DESC LIMIT ?6`,
    )
    .bind(
      accountId,
      f.record ?? null,
      f.direction ?? null,
      f.outcome ?? null,
      f.beforeId ?? Number.MAX_SAFE_INTEGER,
      Math.min(f.limit ?? 100, 500),
    )
    .all();
  return results.map(toEvent);
}

/** Record names by side and id, for the console's labels. */
export interface RecordNames {
  fourdegrees: Map<string, string>;
  highlevel: Map<string, string>;
}

/**
 * The names of these records: a linked pair's last synced name (both ids), else the name a
 * review item recorded. Ids without a known name are absent.
 */
export async function recordNames(
  db: D1Database,
  accountId: string,
  ids: { fourdegrees: string[]; highlevel: string[] },
): Promise<RecordNames> {
  const out: RecordNames = { fourdegrees: new Map(), highlevel: new Map() };
  const fd = [...new Set(ids.fourdegrees.filter(Boolean))].slice(0, 200);
  const hl = [...new Set(ids.highlevel.filter(Boolean))].slice(0, 200);
  if (fd.length + hl.length === 0) return out;
  const all = JSON.stringify({ fd, hl });
  const [links, reviews] = await db.batch<Record<string, unknown>>([
    db
      .prepare(
        `SELECT fd_deal_id AS fd, hl_opportunity_id AS hl, json_extract(base_json, '$.name') AS name FROM links
         WHERE account_id = ?1 AND (fd_deal_id IN (SELECT value FROM json_each(?2, '$.fd'))
                                 OR hl_opportunity_id IN (SELECT value FROM json_each(?2, '$.hl')))`,
      )
      .bind(accountId, all),
    db
      .prepare(
        `SELECT side, record_id AS id, json_extract(detail_json, '$.name') AS name FROM review_items
         WHERE account_id = ?1 AND ((side = 'fourdegrees' AND record_id IN (SELECT value FROM json_each(?2, '$.fd')))
                                 OR (side = 'highlevel' AND record_id IN (SELECT value FROM json_each(?2, '$.hl'))))`,
      )
      .bind(accountId, all),
  ]);
  const text = (v: unknown) => (typeof v === "string" && v.trim() ? v : null);
  for (const r of reviews?.results ?? []) {
    const name = text(r["name"]);
    if (name) (r["side"] === "fourdegrees" ? out.fourdegrees : out.highlevel).set(String(r["id"]), name);
  }
  for (const r of links?.results ?? []) {
    const name = text(r["name"]);
    if (!name) continue;
    out.fourdegrees.set(String(r["fd"]), name);
    out.highlevel.set(String(r["hl"]), name);
  }
  return out;
}

/** Every event of one record (by either side's id, and its linked partner's), oldest first. */
export async function recordHistory(
  db: D1Database,
  accountId: string,
  ids: string[],
  limit = 500,
): Promise<SyncEvent[]> {
  const list = [...new Set(ids.filter(Boolean))];
  if (list.length === 0) return [];
  const marks = list.map(() => "?").join(", ");
  const { results } = await db
    .prepare(
      `SELECT * FROM sync_events WHERE account_id = ? AND (fd_id IN (${marks}) OR hl_id IN (${marks})) ORDER BY id ASC LIMIT ?`,
    )
    .bind(accountId, ...list, ...list, limit)
    .all();
  return results.map(toEvent);
}

/** The directions and outcomes that occur in an account's trail (for the filter menus). */
export async function activityFacets(
  db: D1Database,
  accountId: string,
): Promise<{ directions: string[]; outcomes: string[] }> {
  const [d, o] = await db.batch([
    db
      .prepare(
        "SELECT DISTINCT direction AS v FROM sync_events WHERE account_id = ? AND direction IS NOT NULL ORDER BY v",
      )
      .bind(accountId),
    db.prepare("SELECT DISTINCT outcome AS v FROM sync_events WHERE account_id = ? ORDER BY v").bind(accountId),
  ]);
  const values = (rows: unknown[] | undefined) => (rows ?? []).map((r) => z.object({ v: z.string() }).parse(r).v);
  return { directions: values(d?.results), outcomes: values(o?.results) };
}

/** Sync events per hour of an account over the last `hours` (for the activity chart). */
export async function eventsPerHour(
  db: D1Database,
  accountId: string,
  since: number,
): Promise<Array<{ hour: number; total: number; failed: number }>> {
  const { results } = await db
    .prepare(
      `SELECT (at / 3600000) * 3600000 AS hour, COUNT(*) AS total, SUM(CASE WHEN outcome IN ('failed', 'error') THEN 1 ELSE 0 END) AS failed
       FROM sync_events WHERE account_id = ? AND at >= ? GROUP BY hour ORDER BY hour`,
    )
    .bind(accountId, since)
    .all();
  return results.map((r) => {
    const row = z.object({ hour: z.number(), total: z.number(), failed: z.number().nullable() }).parse(r);
    return { hour: row.hour, total: row.total, failed: row.failed ?? 0 };
  });
}

/** The report's win probability (0–100) per HighLevel stage id of an account. */
export async function stageProbabilities(db: D1Database, accountId: string): Promise<Map<string, number>> {
  const { results } = await db
    .prepare("SELECT stage_id, probability FROM report_stage_probabilities WHERE account_id = ?")
    .bind(accountId)
    .all();
  return new Map(
    results.map((r) => {
      const row = z.object({ stage_id: z.string(), probability: z.number() }).parse(r);
      return [row.stage_id, row.probability] as const;
    }),
  );
}

/** Saves win probabilities (0–100) per stage id, replacing the given stages' values. */
export async function saveStageProbabilities(
  db: D1Database,
  accountId: string,
  values: Map<string, number>,
  now: number = Date.now(),
): Promise<void> {
  if (values.size === 0) return;
  await db.batch(
    [...values].map(([stageId, p]) =>
      db
        .prepare(
          "INSERT INTO report_stage_probabilities (account_id, stage_id, probability, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (account_id, stage_id) DO UPDATE SET probability = excluded.probability, updated_at = excluded.updated_at",
        )
        .bind(accountId, stageId, p, now),
    ),
  );
}
