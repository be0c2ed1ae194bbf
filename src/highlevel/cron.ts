/**
 * HighLevel housekeeping run by the cron (`scheduled` in src/index.ts, every 5 minutes):
 * proactive token refresh before expiry (through each connection's gate, so it never races a
 * refresh on use), minting the location tokens of agency-approved locations still pending, and
 * pruning of old webhook receipts.
 */
import { loadConfig, type Config } from "../config.ts";
import type { Logger } from "../lib/log.ts";
import { gateFor, HIGHLEVEL_LIMITS, tokenGate } from "../gate/client.ts";
import {
  companyConnectionId,
  deferPendingLocation,
  listConnectionsExpiringBefore,
  listDuePendingLocations,
} from "../store/connections.ts";
import { pruneDeferrals, pruneReceipts } from "../store/webhook-receipts.ts";
import { HighLevelError } from "./errors.ts";
import { installLocationFromAgency } from "./install.ts";

/** Refresh tokens that expire within this window (cron period 5 min, so several chances). */
export const CRON_REFRESH_WINDOW_MS = 30 * 60 * 1000;
/** Receipts older than this are dropped: HighLevel's retries span about an hour (6 × ~10 min). */
export const RECEIPT_RETENTION_MS = 3 * 24 * 60 * 60 * 1000;
/** Pending locations minted per cron run (each is a few subrequests; the rest wait 5 minutes). */
export const PENDING_PER_RUN = 40;
/** First retry delay of a failed mint; doubles per attempt up to `PENDING_MAX_BACKOFF_MS`. */
export const PENDING_BACKOFF_MS = 5 * 60 * 1000;
export const PENDING_MAX_BACKOFF_MS = 6 * 60 * 60 * 1000;

/** What one cron run did, for its log line. */
export interface HighLevelCronResult {
  refreshed: number;
  failed: number;
  minted: number;
  mintFailed: number;
  pruned: number;
}

/** Refreshes due tokens, mints pending locations and prunes receipts; returns counts for the log line. */
export async function runHighLevelCron(env: Env, log: Logger, now: number = Date.now()): Promise<HighLevelCronResult> {
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
  const { minted, failed: mintFailed } = await mintPendingLocations(env, loadConfig(env), log, now);
  const pruned =
    (await pruneReceipts(env.DB, now - RECEIPT_RETENTION_MS)) +
    (await pruneDeferrals(env.DB, now - RECEIPT_RETENTION_MS));
  log.info({
    event: "highlevel.cron",
    outcome: failed || mintFailed ? "failed" : "ok",
    due: due.length,
    refreshed,
    failed,
    minted,
    mint_failed: mintFailed,
    pruned,
  });
  return { refreshed, failed, minted, mintFailed, pruned };
}

/**
 * Mints the location tokens of agency-approved locations that the OAuth callback left pending
 * (over `MAX_LOCATIONS_PER_INSTALL`, or a failed mint). Each mint goes through the agency's gate:
 * its token from the agency's Durable Object (single-flight refresh) and a `backfill`-lane rate
 * permit from the agency's budget, so a 300-location agency never bursts past HighLevel's limit.
 * A spent budget ends the run (the next one continues); a failed mint backs off per location.
 */
export async function mintPendingLocations(
  env: Env,
  config: Config,
  log: Logger,
  now: number = Date.now(),
): Promise<{ minted: number; failed: number }> {
  const rows = await listDuePendingLocations(env.DB, now, PENDING_PER_RUN);
  let minted = 0;
  let failed = 0;
  /** Agencies whose token is unusable this run (needs a reinstall, or inactive): skip their rows. */
  const blocked = new Set<string>();
  for (const row of rows) {
    if (blocked.has(row.companyId)) continue;
    const gate = gateFor(env, "hl", companyConnectionId(row.companyId));
    const permit = await gate.acquire({ lane: "backfill", limits: HIGHLEVEL_LIMITS });
    if (!permit.ok) {
      log.info({
        event: "highlevel.pending.deferred",
        account: row.companyId,
        outcome: "retry",
        reason: permit.reason,
        delay_ms: permit.retryAfterMs,
      });
      blocked.add(row.companyId);
      continue;
    }
    let status = 200;
    try {
      await installLocationFromAgency(env, config, row.companyId, row.locationId);
      minted++;
      log.info({
        event: "highlevel.pending.minted",
        location: row.locationId,
        account: row.companyId,
        outcome: "ok",
        attempts: row.attempts,
      });
    } catch (err) {
      // Any failure (HighLevel, D1, the gate) backs this location off; the others still get their turn.
      const hl = err instanceof HighLevelError ? err : null;
      status = hl?.upstreamStatus ?? 0;
      failed++;
      const delay = Math.min(PENDING_MAX_BACKOFF_MS, PENDING_BACKOFF_MS * 2 ** row.attempts);
      await deferPendingLocation(
        env.DB,
        row.locationId,
        now + delay,
        err instanceof Error ? err.message : String(err),
        now,
      );
      // No usable agency token (reinstall needed, backing off) or HighLevel said 429: the agency's other rows would fail alike.
      if (hl && (hl.upstreamStatus === 0 || hl.category === "reconnect" || hl.category === "rate_limited"))
        blocked.add(row.companyId);
      log.warn({
        event: "highlevel.pending.mint_failed",
        location: row.locationId,
        account: row.companyId,
        outcome: "retry",
        category: hl?.category ?? "internal",
        reason: hl?.upstreamMessage || (err instanceof Error ? err.message : String(err)),
        trace_id: hl?.traceId ?? null,
        delay_ms: delay,
      });
    } finally {
      await gate.report(permit.permitId, { status, headers: {} });
    }
  }
  return { minted, failed };
}
