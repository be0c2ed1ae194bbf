/**
 * Alerts for unusual activity, run by the cron's notification scan (src/notify/scan.ts). Rules and
 * their reasons: docs/sync.md "Alerts for unusual activity".
 *
 * - Spikes against the account's own baseline: per hour, its sync failures, HighLevel 429 answers,
 *   deletes and synced changes (`activity_hourly`, src/store/activity.ts). The current hour spikes
 *   when its count exceeds `max(minimum, ⌈mean + 3σ⌉)` of the 168 hours before it (hours of an
 *   earlier spike left out, so a spike does not become its own baseline). Consecutive spiking hours
 *   are one episode, keyed by its first hour: one alert per episode.
 * - Webhook silence ("HighLevel is dropping webhooks"): a connected location whose webhooks stopped
 *   for the last two hours while reconcile found at least three of its records changed in that time.
 *   Keyed by the location's last webhook before the silence: one alert until webhooks come back.
 * - Deletes on hold (the mass-delete guard, src/sync/engine/delete-guard.ts): keyed by when the hold
 *   began; approving or discarding every held delete ends the episode.
 *
 * Each alert is recorded once in the activity trail (`kind = 'alert'`, shown on the Problems page)
 * and handed to `notifyChange`, whose per-rule claim makes the notification exactly-once too.
 */
import type { Config } from "../config.ts";
import { gateFor } from "../gate/client.ts";
import type { Logger } from "../lib/log.ts";
import type { Account } from "../store/accounts.ts";
import {
  ACTIVITY_METRICS,
  HOUR_MS,
  hourOf,
  latestActivityHour,
  listActivity,
  locationReceipts,
  reconcileFoundSince,
  refreshRecordedActivity,
  setActivityCount,
  setActivityEpisode,
  type ActivityMetric,
} from "../store/activity.ts";
import { recordAlertOnce } from "../store/alerts.ts";
import { heldSummary } from "../store/held-deletes.ts";
import type { NotifyEventInput } from "./events.ts";
import { notifyChange, type NotifyResult } from "./notify.ts";

/** The baseline: the 7 days (168 hours) before the current hour. */
export const BASELINE_HOURS = 7 * 24;
/** Below these counts an hour is never a spike, whatever the baseline (a quiet account's first busy hour). */
export const SPIKE_MINIMUM: Record<ActivityMetric, number> = {
  failures: 5,
  rate_limited: 10,
  deletes: 10,
  changes: 100,
};
/** Standard deviations above the mean an hour must reach. */
export const SPIKE_SIGMAS = 3;
/** The webhook-silence window and how many reconcile findings in it make an alert. */
export const SILENCE_WINDOW_MS = 2 * HOUR_MS;
export const SILENCE_MIN_FOUND = 3;
/** How far back the silence alert looks for a location's last webhook (the receipts' retention). */
const RECEIPT_LOOKBACK_MS = 3 * 24 * HOUR_MS;

/** The count the current hour must exceed: `max(minimum, ⌈mean + 3σ⌉)` of the baseline hours. */
export function spikeThreshold(metric: ActivityMetric, baseline: readonly number[]): number {
  const n = baseline.length;
  if (n === 0) return SPIKE_MINIMUM[metric];
  const mean = baseline.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(baseline.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return Math.max(SPIKE_MINIMUM[metric], Math.ceil(mean + SPIKE_SIGMAS * sd));
}

/** Per location: 429 answers per hour (the gate's last 48 hours). Injectable for tests. */
export type RateLimitedSource = (locationId: string) => Promise<Array<{ hour: number; rateLimited: number }>>;

/** The live source: the location's rate gate. */
export function gateRateLimited(env: Env): RateLimitedSource {
  return async (locationId) =>
    (await gateFor(env, "hl", locationId).usage()).hourly.map((h) => ({ hour: h.hour, rateLimited: h.rateLimited }));
}

/** What one account's activity scan alerted. */
export interface ActivityResult {
  alerts: string[];
  notified: NotifyResult;
}

function add(into: NotifyResult, r: NotifyResult): void {
  into.matched += r.matched;
  into.enqueued += r.enqueued;
  into.duplicates += r.duplicates;
  into.failed += r.failed;
}

/**
 * Scans one account: refreshes its hourly counters, then checks each spike, the webhook silence of
 * its `connected` locations and its held deletes. Alerts are recorded and notified once per episode.
 */
export async function scanAccountActivity(
  env: Env,
  config: Config,
  log: Logger,
  account: Account,
  connected: ReadonlySet<string>,
  rateLimited: RateLimitedSource,
  now: number,
): Promise<ActivityResult> {
  const result: ActivityResult = { alerts: [], notified: { matched: 0, enqueued: 0, duplicates: 0, failed: 0 } };
  const db = env.DB;
  const current = hourOf(now);
  const first = current - BASELINE_HOURS * HOUR_MS;
  const alert = async (key: string, event: NotifyEventInput, summary: string) => {
    if (await recordAlertOnce(db, account.id, key, { summary, event }, now)) result.alerts.push(key);
    add(result.notified, await notifyChange(env, config, event, log));
  };

  // Counters: recount from the newest stored hour (so a partial hour is completed), at most 7 days back.
  const latest = await latestActivityHour(db, account.id);
  await refreshRecordedActivity(db, account.id, Math.max(first, (latest ?? first) - HOUR_MS), current);
  const locations = account.locations.filter((l) => connected.has(l));
  const limited = new Map<number, number>();
  for (const loc of locations) {
    try {
      for (const h of await rateLimited(loc))
        if (h.hour >= first) limited.set(h.hour, (limited.get(h.hour) ?? 0) + h.rateLimited);
    } catch (err) {
      log.warn({ event: "notify.activity_usage_failed", account: account.id, location: loc, error: err });
    }
  }
  for (const [hour, count] of limited)
    if (count > 0) await setActivityCount(db, account.id, "rate_limited", hour, count);

  for (const metric of ACTIVITY_METRICS) {
    const rows = await listActivity(db, account.id, metric, first, current);
    const byHour = new Map(rows.map((r) => [r.hour, r]));
    const baseline: number[] = [];
    for (let h = first; h < current; h += HOUR_MS) {
      const row = byHour.get(h);
      if (row?.episode == null) baseline.push(row?.count ?? 0);
    }
    const threshold = spikeThreshold(metric, baseline);
    const count = byHour.get(current)?.count ?? 0;
    if (count <= threshold) continue;
    const episode = byHour.get(current)?.episode ?? byHour.get(current - HOUR_MS)?.episode ?? current;
    if (byHour.get(current)?.episode == null) await setActivityEpisode(db, account.id, metric, current, episode);
    const event = {
      kind: "unusual_activity" as const,
      accountId: account.id,
      metric,
      episode: String(episode),
      count,
      threshold,
    };
    await alert(`activity:${metric}:${episode}`, event, `${count} ${metric} this hour (baseline allows ${threshold})`);
  }

  for (const loc of locations) {
    const since = now - SILENCE_WINDOW_MS;
    const receipts = await locationReceipts(db, loc, since, now - RECEIPT_LOOKBACK_MS);
    if (receipts.recent > 0) continue;
    const found = await reconcileFoundSince(db, account.id, loc, since);
    if (found < SILENCE_MIN_FOUND) continue;
    const episode = String(receipts.lastBefore ?? 0);
    const event = {
      kind: "unusual_activity" as const,
      accountId: account.id,
      metric: "webhook_silence" as const,
      episode,
      count: found,
      threshold: SILENCE_MIN_FOUND,
      locationId: loc,
    };
    const summary = `HighLevel is dropping webhooks: location ${loc} sent none for 2 hours while reconcile found ${found} changed records`;
    await alert(`silence:${loc}:${episode}`, event, summary);
  }

  const held = await heldSummary(db, account.id);
  if (held) {
    const event = { kind: "deletes_held" as const, accountId: account.id, since: held.since, count: held.count };
    await alert(`held:${held.since}`, event, `${held.count} delete(s) on hold for approval (mass-delete guard)`);
  }
  return result;
}
