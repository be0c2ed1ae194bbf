/**
 * The cron's notification scan: the two notification sources that are states rather than sync
 * changes — a HighLevel connection needing a reconnect, and a location's daily quota running low.
 * Called from `scheduled` (src/index.ts) after the token refresh, so a refresh that just failed is
 * reported on the same tick.
 *
 * Exactly once per episode, through `notifyChange`'s per-rule claim on the event's change key:
 * - `needs_reconnect`: `since` is the connection's `updated_at`, written when the status became
 *   `needs_reconnect` (src/store/connections.ts `setConnectionStatus`) and not rewritten until a
 *   reinstall makes it active again — so every tick of one episode reports the same key, and the
 *   next episode (reinstalled, then rejected again) a new one.
 * - `quota_low`: keyed by location and HighLevel day; each rule claims it once, when the day's
 *   remaining calls first fall below that rule's threshold (a lower threshold fires later that day).
 * - HighLevel refusing the app's client credentials (the `highlevel_client_rejected` condition,
 *   src/store/app-status.ts): a `sync_failure` for every account with HighLevel locations and a
 *   sync-failure rule, keyed by the condition's `since` — once per episode, whatever the ticks.
 *
 * - Unusual activity and deletes on hold (src/notify/activity.ts): every active account with a
 *   HighLevel location is scanned, rule or not, so the console shows its alerts; rules only decide
 *   who is notified.
 *
 * For the other triggers only accounts with an enabled rule are looked at (no gate call otherwise). It
 * never throws: one location's problem is logged and the others are still scanned.
 */
import type { Config } from "../config.ts";
import { gateFor, HIGHLEVEL_LIMITS } from "../gate/client.ts";
import type { Logger } from "../lib/log.ts";
import { listAccounts } from "../store/accounts.ts";
import { getAppCondition, HIGHLEVEL_CLIENT_REJECTED } from "../store/app-status.ts";
import { listConnections, locationConnectionId } from "../store/connections.ts";
import { listRules } from "../store/notifications.ts";
import { gateRateLimited, scanAccountActivity, type RateLimitedSource } from "./activity.ts";
import { notifyChange, type NotifyResult } from "./notify.ts";

/** What one scan reported (for the cron's log line and tests). */
export interface ScanResult {
  reconnect: NotifyResult;
  quota: NotifyResult;
  clientRejected: NotifyResult;
  /** Unusual activity and deletes on hold: notifications, and the alert keys newly recorded. */
  activity: NotifyResult;
  alerts: string[];
  errors: number;
}

const none = (): NotifyResult => ({ matched: 0, enqueued: 0, duplicates: 0, failed: 0 });
function add(into: NotifyResult, r: NotifyResult): void {
  into.matched += r.matched;
  into.enqueued += r.enqueued;
  into.duplicates += r.duplicates;
  into.failed += r.failed;
}

/** The UTC date of `now` (the gate's day before it has counted a call). */
const utcDay = (now: number) => new Date(now).toISOString().slice(0, 10);

/** Scans connections and quotas once and reports what crossed into a notifiable state. */
export async function scanNotifications(
  env: Env,
  config: Config,
  log: Logger,
  now: number = Date.now(),
  options: { rateLimited?: RateLimitedSource } = {},
): Promise<ScanResult> {
  const result: ScanResult = {
    reconnect: none(),
    quota: none(),
    clientRejected: none(),
    activity: none(),
    alerts: [],
    errors: 0,
  };
  await scanActivity(env, config, log, now, options.rateLimited ?? gateRateLimited(env), result);
  try {
    const rules = await listRules(env.DB, { enabledOnly: true });
    const wants = (trigger: "needs_reconnect" | "quota_low" | "sync_failure") =>
      new Set(rules.filter((r) => r.trigger === trigger).map((r) => r.accountId));
    const reconnectAccounts = wants("needs_reconnect");
    // Per account, the highest quota threshold: below it at least one rule may fire.
    const quotaAccounts = new Map<string, number>();
    for (const r of rules)
      if (r.trigger === "quota_low" && r.params.remaining !== undefined)
        quotaAccounts.set(r.accountId, Math.max(quotaAccounts.get(r.accountId) ?? 0, r.params.remaining));
    const failureAccounts = wants("sync_failure");
    if (reconnectAccounts.size === 0 && quotaAccounts.size === 0 && failureAccounts.size === 0) return result;
    const accounts = await listAccounts(env.DB);

    const rejected = failureAccounts.size > 0 ? await getAppCondition(env.DB, HIGHLEVEL_CLIENT_REJECTED) : null;
    if (rejected) {
      for (const account of accounts.filter((a) => failureAccounts.has(a.id) && a.locations.length > 0)) {
        const failureId = `${HIGHLEVEL_CLIENT_REJECTED}:${rejected.since}`;
        const event = { kind: "sync_failure" as const, accountId: account.id, failureId, reason: rejected.reason };
        add(result.clientRejected, await notifyChange(env, config, event, log));
      }
    }

    if (reconnectAccounts.size > 0) {
      for (const conn of await listConnections(env.DB, { status: "needs_reconnect" })) {
        if (conn.kind !== "location" || !conn.locationId) continue;
        const locationId = conn.locationId;
        const owners = accounts.filter(
          (a) => reconnectAccounts.has(a.id) && (a.locations.includes(locationId) || a.id === conn.accountId),
        );
        for (const account of owners) {
          add(
            result.reconnect,
            await notifyChange(
              env,
              config,
              {
                kind: "needs_reconnect",
                accountId: account.id,
                locationId,
                since: conn.updatedAt,
                reason: conn.lastError,
              },
              log,
            ),
          );
        }
      }
    }

    if (quotaAccounts.size > 0) {
      const connected = new Set((await listConnections(env.DB, { status: "active" })).map((c) => c.id));
      for (const account of accounts.filter((a) => quotaAccounts.has(a.id))) {
        for (const locationId of account.locations) {
          // Only connected locations: asking an unknown location's gate would create its Durable Object.
          if (!connected.has(locationConnectionId(locationId))) continue;
          try {
            const usage = await gateFor(env, "hl", locationId).usage();
            const limit = usage.daily.limit ?? HIGHLEVEL_LIMITS.daily ?? null;
            if (limit === null) continue;
            const remaining = usage.daily.remaining ?? Math.max(0, limit - usage.daily.used);
            if (remaining >= (quotaAccounts.get(account.id) ?? 0)) continue;
            add(
              result.quota,
              await notifyChange(
                env,
                config,
                {
                  kind: "quota_low",
                  accountId: account.id,
                  locationId,
                  day: usage.daily.day || utcDay(now),
                  remaining,
                  limit,
                },
                log,
              ),
            );
          } catch (err) {
            result.errors++;
            log.error({
              event: "notify.scan_failed",
              account: account.id,
              location: locationId,
              outcome: "failed",
              error: err,
            });
          }
        }
      }
    }
  } catch (err) {
    result.errors++;
    log.error({ event: "notify.scan_failed", outcome: "failed", error: err });
  }
  log.info({
    event: "notify.scan",
    outcome: result.errors ? "failed" : "ok",
    reconnect_enqueued: result.reconnect.enqueued,
    quota_enqueued: result.quota.enqueued,
    activity_enqueued: result.activity.enqueued,
    alerts: result.alerts.length,
    client_rejected_enqueued: result.clientRejected.enqueued,
    errors: result.errors,
  });
  return result;
}

/** The unusual-activity part of the scan: one account at a time, a failing account logged and skipped. */
async function scanActivity(
  env: Env,
  config: Config,
  log: Logger,
  now: number,
  rateLimited: RateLimitedSource,
  result: ScanResult,
): Promise<void> {
  try {
    const accounts = (await listAccounts(env.DB)).filter((a) => a.status === "active" && a.locations.length > 0);
    if (accounts.length === 0) return;
    const connected = new Set(
      (await listConnections(env.DB, { status: "active" })).flatMap((c) => (c.locationId ? [c.locationId] : [])),
    );
    for (const account of accounts) {
      try {
        const r = await scanAccountActivity(env, config, log, account, connected, rateLimited, now);
        add(result.activity, r.notified);
        result.alerts.push(...r.alerts);
      } catch (err) {
        result.errors++;
        log.error({ event: "notify.activity_scan_failed", account: account.id, outcome: "failed", error: err });
      }
    }
  } catch (err) {
    result.errors++;
    log.error({ event: "notify.activity_scan_failed", outcome: "failed", error: err });
  }
}
