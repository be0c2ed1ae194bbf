/**
 * Read-mostly queries the operator console needs beyond the engine's stores: the activity trail
 * filtered by record, direction and outcome; one record's whole history; the distinct values the
 * filters offer; and the report's per-stage win probabilities (migration 0005).
 */
import { z } from "zod";
import { toEvent, type SyncEvent } from "./sync-events.ts";

/** Filters of the activity page (all optional). */
export interface ActivityFilter {
  /** A 4Degrees or HighLevel record id. */
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
         AND (?2 IS NULL OR fd_id = ?2 OR hl_id = ?2)
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
