/**
 * HighLevel housekeeping run by the cron (`scheduled` in src/index.ts, every 5 minutes):
 * proactive token refresh before expiry (through each connection's gate, so it never races a
 * refresh on use) and pruning of old webhook receipts.
 */
import type { Logger } from "../lib/log.ts";
import { tokenGate } from "../gate/client.ts";
import { listConnectionsExpiringBefore } from "../store/connections.ts";
import { pruneReceipts } from "../store/webhook-receipts.ts";

/** Refresh tokens that expire within this window (cron period 5 min, so several chances). */
export const CRON_REFRESH_WINDOW_MS = 30 * 60 * 1000;
/** Receipts older than this are dropped: HighLevel's retries span about an hour (6 × ~10 min). */
export const RECEIPT_RETENTION_MS = 3 * 24 * 60 * 60 * 1000;

/** Refreshes due tokens and prunes receipts; returns counts for the log line. */
export async function runHighLevelCron(env: Env, log: Logger, now: number = Date.now()): Promise<{ refreshed: number; failed: number; pruned: number }> {
  const due = await listConnectionsExpiringBefore(env.DB, now + CRON_REFRESH_WINDOW_MS);
  let refreshed = 0;
  let failed = 0;
  for (const c of due) {
    try {
      const outcome = await tokenGate(env, c.id).refreshIfDue(c.id, CRON_REFRESH_WINDOW_MS);
      if (outcome === "refreshed") refreshed++;
      if (outcome === "failed") failed++;
    } catch (err) {
      failed++;
      log.error({ event: "highlevel.cron.refresh_error", record: c.id, error: err, outcome: "failed" });
    }
  }
  const pruned = await pruneReceipts(env.DB, now - RECEIPT_RETENTION_MS);
  log.info({ event: "highlevel.cron", outcome: failed ? "failed" : "ok", due: due.length, refreshed, failed, pruned });
  return { refreshed, failed, pruned };
}
