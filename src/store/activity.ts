/**
 * The unusual-activity alerts' data (src/notify/activity.ts): `activity_hourly` (migration 0118),
 * compact per-hour counters of an account's failures, HighLevel 429s, deletes and synced changes,
 * materialized from what is already recorded (sync_failures, sync_events, the gates' hourly usage)
 * so the 7-day baseline survives the shorter retention of its sources; and the webhook-silence
 * evidence (HighLevel webhook receipts, reconcile's findings).
 */
export const HOUR_MS = 60 * 60 * 1000;

/** What is counted per hour. */
export type ActivityMetric = "failures" | "rate_limited" | "deletes" | "changes";
export const ACTIVITY_METRICS: readonly ActivityMetric[] = ["failures", "rate_limited", "deletes", "changes"];

/** The start of the hour `at` falls in. */
export const hourOf = (at: number) => Math.floor(at / HOUR_MS) * HOUR_MS;

/** The metrics counted from recorded rows, and the rows they count. */
const SOURCES: ReadonlyArray<{ metric: ActivityMetric; table: string; column: string; where: string }> = [
  { metric: "failures", table: "sync_failures", column: "created_at", where: "1 = 1" },
  { metric: "deletes", table: "sync_events", column: "at", where: "kind = 'delete'" },
  { metric: "changes", table: "sync_events", column: "at", where: "kind = 'sync' AND outcome = 'ok'" },
];

/**
 * Recounts the recorded metrics of `[fromHour, toHour]` from their source rows (an hour's count
 * only grows while it is current; a recount overwrites it). Hours without rows stay absent (= 0).
 */
export async function refreshRecordedActivity(
  db: D1Database,
  accountId: string,
  fromHour: number,
  toHour: number,
): Promise<void> {
  await db.batch(
    SOURCES.map((s) =>
      db
        .prepare(
          `INSERT INTO activity_hourly (account_id, metric, hour, count)
           SELECT ?1, ?2, (${s.column} / ${HOUR_MS}) * ${HOUR_MS} AS h, COUNT(*) FROM ${s.table}
           WHERE account_id = ?1 AND ${s.column} >= ?3 AND ${s.column} < ?4 AND ${s.where} GROUP BY h
           ON CONFLICT (account_id, metric, hour) DO UPDATE SET count = excluded.count`,
        )
        .bind(accountId, s.metric, fromHour, toHour + HOUR_MS),
    ),
  );
}

/** Stores one hour's count of a metric read elsewhere (the gates' 429s per hour). */
export async function setActivityCount(
  db: D1Database,
  accountId: string,
  metric: ActivityMetric,
  hour: number,
  count: number,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO activity_hourly (account_id, metric, hour, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (account_id, metric, hour) DO UPDATE SET count = excluded.count`,
    )
    .bind(accountId, metric, hour, count)
    .run();
}

/** The newest hour an account has counters for (null: none yet). */
export async function latestActivityHour(db: D1Database, accountId: string): Promise<number | null> {
  const row = await db
    .prepare("SELECT MAX(hour) AS h FROM activity_hourly WHERE account_id = ?")
    .bind(accountId)
    .first<{ h: number | null }>();
  return row?.h ?? null;
}

/** One stored hour. */
export interface ActivityHour {
  hour: number;
  count: number;
  /** The start hour of the spike episode this hour belongs to; null when it was not spiking. */
  episode: number | null;
}

/** A metric's stored hours in `[fromHour, toHour]`, oldest first (absent hours are zero). */
export async function listActivity(
  db: D1Database,
  accountId: string,
  metric: ActivityMetric,
  fromHour: number,
  toHour: number,
): Promise<ActivityHour[]> {
  const { results } = await db
    .prepare(
      "SELECT hour, count, episode FROM activity_hourly WHERE account_id = ? AND metric = ? AND hour >= ? AND hour <= ? ORDER BY hour",
    )
    .bind(accountId, metric, fromHour, toHour)
    .all<{ hour: number; count: number; episode: number | null }>();
  return results.map((r) => ({ hour: r.hour, count: r.count, episode: r.episode }));
}

/** Marks an hour as part of the spike episode that began at `episode` (null: not spiking). */
export async function setActivityEpisode(
  db: D1Database,
  accountId: string,
  metric: ActivityMetric,
  hour: number,
  episode: number | null,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO activity_hourly (account_id, metric, hour, count, episode) VALUES (?, ?, ?, 0, ?)
       ON CONFLICT (account_id, metric, hour) DO UPDATE SET episode = excluded.episode`,
    )
    .bind(accountId, metric, hour, episode)
    .run();
}

/**
 * HighLevel webhook receipts of a location since `since`, and the newest one before `since` (within
 * `floor`). `+provider` keeps SQLite on `webhook_receipts_received` (the window's rows) instead of
 * the primary key's provider prefix (every HighLevel receipt kept).
 */
export async function locationReceipts(
  db: D1Database,
  locationId: string,
  since: number,
  floor: number,
): Promise<{ recent: number; lastBefore: number | null }> {
  const recent = await db
    .prepare(
      "SELECT COUNT(*) AS n FROM webhook_receipts WHERE received_at >= ? AND +provider = 'highlevel' AND scope_id = ?",
    )
    .bind(since, locationId)
    .first<{ n: number }>();
  if ((recent?.n ?? 0) > 0) return { recent: recent?.n ?? 0, lastBefore: null };
  const last = await db
    .prepare(
      "SELECT MAX(received_at) AS t FROM webhook_receipts WHERE received_at >= ? AND received_at < ? AND +provider = 'highlevel' AND scope_id = ?",
    )
    .bind(floor, since, locationId)
    .first<{ t: number | null }>();
  return { recent: 0, lastBefore: last?.t ?? null };
}

/** HighLevel records of a location reconcile found changed since `since` (its `reconcile` events). */
export async function reconcileFoundSince(
  db: D1Database,
  accountId: string,
  locationId: string,
  since: number,
): Promise<number> {
  const row = await db
    .prepare(
      `SELECT COALESCE(SUM(json_extract(detail_json, '$.hlMarked')), 0) AS n FROM sync_events
       WHERE account_id = ? AND at >= ? AND kind = 'reconcile' AND json_extract(detail_json, '$.hlLocation') = ?`,
    )
    .bind(accountId, since, locationId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}
