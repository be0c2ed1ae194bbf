/**
 * Alerts the cron raised for an account (src/notify/activity.ts), kept in the activity trail as
 * `sync_events` of kind `alert` with the episode's key in `detail.key`: recorded once per episode
 * (one atomic INSERT … WHERE NOT EXISTS), listed on the console's Problems page.
 */
import { toEvent, type SyncEvent } from "./sync-events.ts";

/** How far back an episode's key is looked for (longer than any episode's key is reused). */
const DEDUPE_WINDOW_MS = 8 * 24 * 60 * 60 * 1000;

/** Records an alert unless its episode `key` was recorded already; true when this call recorded it. */
export async function recordAlertOnce(
  db: D1Database,
  accountId: string,
  key: string,
  detail: { summary: string; event: unknown },
  now = Date.now(),
): Promise<boolean> {
  const res = await db
    .prepare(
      `INSERT INTO sync_events (account_id, at, kind, direction, fd_id, hl_id, outcome, detail_json)
       SELECT ?1, ?2, 'alert', 'none', NULL, NULL, 'raised', ?3
       WHERE NOT EXISTS (SELECT 1 FROM sync_events WHERE account_id = ?1 AND at >= ?4 AND kind = 'alert'
         AND json_extract(detail_json, '$.key') = ?5)`,
    )
    .bind(accountId, now, JSON.stringify({ key, ...detail }), now - DEDUPE_WINDOW_MS, key)
    .run();
  return res.meta.changes > 0;
}

/** The account's alerts since `since`, newest first. */
export async function listAlerts(db: D1Database, accountId: string, since: number, limit = 50): Promise<SyncEvent[]> {
  const { results } = await db
    .prepare("SELECT * FROM sync_events WHERE account_id = ? AND at >= ? AND kind = 'alert' ORDER BY id DESC LIMIT ?")
    .bind(accountId, since, Math.min(limit, 200))
    .all();
  return results.map(toEvent);
}
