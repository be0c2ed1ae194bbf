/**
 * Alerts for unusual activity (src/notify/activity.ts), run by the cron's notification scan: each
 * spike kind (failures, 429s, deletes, changes per hour against the account's 7-day hourly
 * baseline) alerts once per episode and not on a normal day; a location's webhooks going silent
 * while reconcile keeps finding changes alerts once per silence; held deletes alert once per hold.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { createRule } from "../../../src/http/notifications.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { spikeThreshold, type RateLimitedSource } from "../../../src/notify/activity.ts";
import { scanNotifications } from "../../../src/notify/scan.ts";
import { createAccount } from "../../../src/store/accounts.ts";
import { HOUR_MS, hourOf, setActivityCount, type ActivityMetric } from "../../../src/store/activity.ts";
import { listAlerts } from "../../../src/store/alerts.ts";
import { locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import { recordFailure } from "../../../src/store/failures.ts";
import { decideHeldDeletes, holdDelete, clearHeldDelete } from "../../../src/store/held-deletes.ts";
import { listDeliveries } from "../../../src/store/notifications.ts";
import { recordEvent } from "../../../src/store/sync-events.ts";
import { recordReceipt } from "../../../src/store/webhook-receipts.ts";
import { useNetwork } from "../helpers/network.ts";

const log = createLogger("error");
const config = () => loadConfig(env);
const SLACK = { kind: "slack" as const, url: "https://hooks.slack.com/services/T/B/activity" };
/** The scan's clock: half past an hour, so "this hour" has room before and after. */
const T0 = hourOf(1_800_000_000_000) + 30 * 60 * 1000;

/** The test env with NOTIFY_QUEUE swallowing what the scan enqueues (deliveries are read from D1). */
function quietEnv(): Env {
  const queue: Queue = {
    metrics: () => env.NOTIFY_QUEUE.metrics(),
    send: async () => ({ metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } }),
    sendBatch: (messages, options) => env.NOTIFY_QUEUE.sendBatch(messages, options),
  };
  return { ...env, NOTIFY_QUEUE: queue };
}

let seq = 0;
/** An account with one connected location and an `unusual_activity` and a `deletes_held` rule. */
async function setup(): Promise<{ accountId: string; locationId: string; activityRule: string; heldRule: string }> {
  const n = ++seq;
  const accountId = `act-${n}`;
  const locationId = `locAct${n}`;
  await createAccount(env.DB, { id: accountId, name: `Activity ${n}`, locations: [locationId] });
  const id = locationConnectionId(locationId);
  await saveConnectionTokens(env.DB, {
    id,
    kind: "location",
    locationId,
    companyId: null,
    tokenSource: "refresh",
    scopes: [],
    accessTokenEnc: "x",
    refreshTokenEnc: "y",
    keyId: "k",
    expiresAt: T0 + 86_400_000,
    tokenVersion: n,
    userId: null,
    appId: null,
  });
  const rule = async (trigger: "unusual_activity" | "deletes_held") =>
    (
      await createRule(env.DB, config(), {
        accountId,
        name: trigger,
        trigger,
        params: {},
        enabled: true,
        target: SLACK,
      })
    ).rule.id;
  return { accountId, locationId, activityRule: await rule("unusual_activity"), heldRule: await rule("deletes_held") };
}

/** A normal week: every hour of the 7 days before `T0`'s hour has a little of everything, with noise. */
async function normalWeek(accountId: string): Promise<void> {
  const current = hourOf(T0);
  const usual: Record<ActivityMetric, (i: number) => number> = {
    failures: (i) => i % 3,
    rate_limited: (i) => i % 4,
    deletes: (i) => i % 2,
    changes: (i) => 18 + (i % 7),
  };
  for (let i = 1; i <= 168; i++)
    for (const [metric, count] of Object.entries(usual) as Array<[ActivityMetric, (i: number) => number]>)
      if (count(i) > 0) await setActivityCount(env.DB, accountId, metric, current - i * HOUR_MS, count(i));
}

/** Records one hour's activity the way the Worker does: failures, delete and change events. */
async function activity(
  accountId: string,
  at: number,
  counts: { failures?: number; deletes?: number; changes?: number },
): Promise<void> {
  for (let i = 0; i < (counts.failures ?? 0); i++)
    await recordFailure(env.DB, {
      id: `f-${accountId}-${at}-${i}`,
      accountId,
      source: "permanent",
      message: {},
      reason: "boom",
      createdAt: at + i,
    });
  for (let i = 0; i < (counts.deletes ?? 0); i++)
    await recordEvent(env.DB, {
      accountId,
      at: at + i,
      kind: "delete",
      direction: "to_fourdegrees",
      fdId: `d${i}`,
      hlId: `o${i}`,
      outcome: "propagate",
      detail: { deleted: "highlevel" },
    });
  for (let i = 0; i < (counts.changes ?? 0); i++)
    await recordEvent(env.DB, {
      accountId,
      at: at + i,
      kind: "sync",
      direction: "to_highlevel",
      fdId: `d${i}`,
      hlId: null,
      outcome: "ok",
      detail: {},
    });
}

/** A 429 source answering `perHour` for the given hours, nothing else. */
const limited =
  (perHour: Record<number, number>): RateLimitedSource =>
  async () =>
    Object.entries(perHour).map(([hour, rateLimited]) => ({ hour: Number(hour), rateLimited }));

async function scan(now: number, rateLimited: RateLimitedSource = limited({})) {
  return scanNotifications(quietEnv(), config(), log, now, { rateLimited });
}

/** The notification deliveries of a rule, as (metric or kind, episode) pairs. */
async function fired(ruleId: string): Promise<string[]> {
  return (await listDeliveries(env.DB, { ruleId })).map((d) => d.changeKey).sort();
}

describe("unusual-activity alerts", () => {
  useNetwork({});

  it("the spike threshold is max(minimum, ⌈mean + 3σ⌉) of the baseline", () => {
    expect(spikeThreshold("changes", Array<number>(168).fill(0))).toBe(100);
    expect(spikeThreshold("changes", Array<number>(168).fill(200))).toBe(200);
    const noisy = Array.from({ length: 168 }, (_, i) => (i % 2 === 0 ? 190 : 210));
    expect(spikeThreshold("changes", noisy)).toBe(230);
    expect(spikeThreshold("failures", [])).toBe(5);
  });

  it("a normal day alerts nothing", async () => {
    const a = await setup();
    await normalWeek(a.accountId);
    const current = hourOf(T0);
    await activity(a.accountId, current, { failures: 2, deletes: 1, changes: 24 });
    await scan(T0, limited({ [current]: 3, [current - HOUR_MS]: 2 }));
    await scan(T0 + 20 * 60 * 1000, limited({ [current]: 3 }));
    expect(await fired(a.activityRule)).toEqual([]);
    expect(await listAlerts(env.DB, a.accountId, 0)).toEqual([]);
  });

  it("each spike kind (failures, 429s, deletes, changes) alerts once per episode: again in its second hour it does not, a new episode does", async () => {
    const a = await setup();
    await normalWeek(a.accountId);
    const h0 = hourOf(T0);
    const spike = { failures: 12, deletes: 25, changes: 160 };
    await activity(a.accountId, h0, spike);
    const keys = (episode: number) =>
      ["changes", "deletes", "failures", "rate_limited"].map((m) => `activity:${m}:-:${episode}`);

    await scan(T0, limited({ [h0]: 40 }));
    expect(await fired(a.activityRule)).toEqual(keys(h0));
    // The same hour again, and the spike going on into the next hour: the same episode.
    await scan(T0 + 10 * 60 * 1000, limited({ [h0]: 45 }));
    await activity(a.accountId, h0 + HOUR_MS, spike);
    await scan(T0 + HOUR_MS, limited({ [h0]: 45, [h0 + HOUR_MS]: 40 }));
    expect(await fired(a.activityRule)).toEqual(keys(h0));
    expect(await listAlerts(env.DB, a.accountId, 0)).toHaveLength(4);
    const [delivery] = await listDeliveries(env.DB, { ruleId: a.activityRule });
    expect(delivery?.event).toMatchObject({ kind: "unusual_activity", accountId: a.accountId });

    // A quiet hour ends the episode; the next spike is a new one and alerts again.
    await scan(T0 + 2 * HOUR_MS, limited({}));
    expect(await fired(a.activityRule)).toHaveLength(4);
    const h3 = h0 + 3 * HOUR_MS;
    await activity(a.accountId, h3, spike);
    await scan(T0 + 3 * HOUR_MS, limited({ [h3]: 40 }));
    expect(await fired(a.activityRule)).toEqual([...keys(h0), ...keys(h3)].sort());
  });

  it("a spike the baseline already knows is not unusual", async () => {
    const a = await setup();
    const current = hourOf(T0);
    // A busy account: 150–170 changes every hour of the week.
    for (let i = 1; i <= 168; i++)
      await setActivityCount(env.DB, a.accountId, "changes", current - i * HOUR_MS, 150 + (i % 21));
    await activity(a.accountId, current, { changes: 175 });
    await scan(T0);
    expect(await fired(a.activityRule)).toEqual([]);
  });

  it("webhook silence: no webhooks for two hours while reconcile finds changes alerts once, until webhooks come back", async () => {
    const a = await setup();
    const receipt = (at: number, id: string) =>
      recordReceipt(env.DB, {
        provider: "highlevel",
        webhookId: `${a.locationId}-${id}`,
        eventType: "OpportunityUpdate",
        scopeId: a.locationId,
        receivedAt: at,
      });
    const reconciled = (at: number, hlMarked: number) =>
      recordEvent(env.DB, {
        accountId: a.accountId,
        at,
        kind: "reconcile",
        direction: "none",
        fdId: null,
        hlId: null,
        outcome: "ok",
        detail: { scanned: 50, marked: hlMarked, hlLocation: a.locationId, hlMarked },
      });
    // Webhooks still arriving: reconcile's findings are not a silence.
    await receipt(T0 - 10 * 60 * 1000, "w1");
    await reconciled(T0 - 30 * 60 * 1000, 5);
    await scan(T0);
    expect(await fired(a.activityRule)).toEqual([]);

    // Three hours later: no webhook since, reconcile found 2 then 2 more changed opportunities.
    const t1 = T0 + 3 * HOUR_MS;
    await reconciled(t1 - 60 * 60 * 1000, 2);
    await scan(t1 - 50 * 60 * 1000);
    expect(await fired(a.activityRule), "2 findings are below the alert").toEqual([]);
    await reconciled(t1 - 5 * 60 * 1000, 2);
    await scan(t1);
    await scan(t1 + 5 * 60 * 1000);
    const episode = T0 - 10 * 60 * 1000;
    expect(await fired(a.activityRule)).toEqual([`activity:webhook_silence:${a.locationId}:${episode}`]);
    const [alert] = await listAlerts(env.DB, a.accountId, 0);
    expect(String(alert?.detail["summary"])).toContain("HighLevel is dropping webhooks");

    // Webhooks come back (no alert), then stop again: a new silence, a new alert.
    await receipt(t1 + 10 * 60 * 1000, "w2");
    await scan(t1 + 15 * 60 * 1000);
    expect(await fired(a.activityRule)).toHaveLength(1);
    const t2 = t1 + 10 * 60 * 1000 + 3 * HOUR_MS;
    await reconciled(t2 - 20 * 60 * 1000, 4);
    await scan(t2);
    expect(await fired(a.activityRule)).toEqual(
      [
        `activity:webhook_silence:${a.locationId}:${episode}`,
        `activity:webhook_silence:${a.locationId}:${t1 + 10 * 60 * 1000}`,
      ].sort(),
    );
  });

  it("deletes on hold alert once per hold; deciding them all ends it and a new hold alerts again", async () => {
    const a = await setup();
    const hold = (fd: string, at: number) =>
      holdDelete(
        env.DB,
        {
          accountId: a.accountId,
          fdDealId: fd,
          hlOpportunityId: `o-${fd}`,
          hlLocationId: a.locationId,
          goneSide: "highlevel",
        },
        at,
      );
    await hold("d1", T0 - 1000);
    await hold("d2", T0 - 500);
    await scan(T0);
    await scan(T0 + 60_000);
    expect(await fired(a.heldRule)).toEqual([`held:${T0 - 1000}`]);
    const [delivery] = await listDeliveries(env.DB, { ruleId: a.heldRule });
    expect(delivery?.event).toMatchObject({ kind: "deletes_held", count: 2, since: T0 - 1000 });
    expect(await fired(a.activityRule), "an unusual_activity rule is not told about holds").toEqual([]);

    for (const h of await decideHeldDeletes(env.DB, a.accountId, null, "discarded"))
      await clearHeldDelete(env.DB, a.accountId, h.fdDealId);
    await scan(T0 + 120_000);
    await hold("d3", T0 + 180_000);
    await scan(T0 + 240_000);
    expect(await fired(a.heldRule)).toEqual([`held:${T0 + 180_000}`, `held:${T0 - 1000}`].sort());
  });
});
