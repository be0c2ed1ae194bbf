/**
 * The cron's notification scan (src/notify/scan.ts): a HighLevel connection needing reconnect and
 * a location's daily quota below a rule's threshold each notify exactly once per episode — once
 * per connection state change, once per HighLevel day and rule threshold — and only the accounts
 * that have such a rule and use that location.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { gateFor, HIGHLEVEL_LIMITS } from "../../../src/gate/client.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { createRule } from "../../../src/http/notifications.ts";
import { scanNotifications } from "../../../src/notify/scan.ts";
import { createAccount } from "../../../src/store/accounts.ts";
import { clearAppCondition, HIGHLEVEL_CLIENT_REJECTED, raiseAppCondition } from "../../../src/store/app-status.ts";
import { locationConnectionId, saveConnectionTokens, setConnectionStatus } from "../../../src/store/connections.ts";
import { listDeliveries } from "../../../src/store/notifications.ts";
import { useNetwork } from "../helpers/network.ts";

const log = createLogger("error");
const config = () => loadConfig(env);
const sent: unknown[] = [];

/** The test env with NOTIFY_QUEUE capturing what the scan enqueues (no delivery runs). */
function capturingEnv(): Env {
  const queue: Queue = {
    metrics: () => env.NOTIFY_QUEUE.metrics(),
    send: async (message) => {
      sent.push(message);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    sendBatch: (messages, options) => env.NOTIFY_QUEUE.sendBatch(messages, options),
  };
  return { ...env, NOTIFY_QUEUE: queue };
}

let tokenVersion = 0;
/** Stores (or reinstalls) a location's connection: active, with a newer token version. */
async function connect(locationId: string, now = Date.now()): Promise<void> {
  const id = locationConnectionId(locationId);
  await saveConnectionTokens(
    env.DB,
    {
      id,
      kind: "location",
      locationId,
      companyId: null,
      tokenSource: "refresh",
      scopes: [],
      accessTokenEnc: "x",
      refreshTokenEnc: "y",
      keyId: "k",
      expiresAt: now + 86_400_000,
      tokenVersion: ++tokenVersion,
      userId: null,
      appId: null,
    },
    now,
  );
}

const SLACK = { kind: "slack" as const, url: "https://hooks.slack.com/services/T/B/scan" };
async function reconnectRule(accountId: string) {
  return (
    await createRule(env.DB, config(), {
      accountId,
      name: "reconnect",
      trigger: "needs_reconnect",
      params: {},
      enabled: true,
      target: SLACK,
    })
  ).rule;
}
async function quotaRule(accountId: string, remaining: number) {
  return (
    await createRule(env.DB, config(), {
      accountId,
      name: `quota < ${remaining}`,
      trigger: "quota_low",
      params: { remaining },
      enabled: true,
      target: SLACK,
    })
  ).rule;
}

/** Makes `calls` permitted calls through a location's gate, the last answering `dailyRemaining`. */
async function spend(locationId: string, calls: number, dailyRemaining: number): Promise<void> {
  const gate = gateFor(env, "hl", locationId);
  for (let i = 0; i < calls; i++) {
    const permit = await gate.acquire({ lane: "live", limits: HIGHLEVEL_LIMITS });
    if (!permit.ok) throw new Error(`gate refused a permit: ${permit.reason}`);
    await gate.report(permit.permitId, {
      status: 200,
      headers:
        i === calls - 1
          ? { "x-ratelimit-daily-remaining": String(dailyRemaining), "x-ratelimit-limit-daily": "200000" }
          : {},
    });
  }
}

describe("cron notification scan", () => {
  useNetwork({});

  beforeAll(async () => {
    await createAccount(env.DB, { id: "scan-acc", name: "Scan Co", workspaceId: null, locations: ["locScanA"] });
    await createAccount(env.DB, { id: "scan-norule", name: "No rules", workspaceId: null, locations: ["locScanB"] });
    await connect("locScanA");
    await connect("locScanB");
  });

  it("happy: a connection entering needs_reconnect notifies once per episode; a reinstall and a new rejection notify again", async () => {
    const r = await reconnectRule("scan-acc");
    sent.length = 0;
    const fake = capturingEnv();

    expect((await scanNotifications(fake, config(), log)).reconnect.enqueued, "nothing to report while connected").toBe(
      0,
    );

    await setConnectionStatus(env.DB, locationConnectionId("locScanA"), "needs_reconnect", {
      lastError: "invalid_grant",
      now: 1_800_000_000_000,
    });
    await setConnectionStatus(env.DB, locationConnectionId("locScanB"), "needs_reconnect", {
      lastError: "invalid_grant",
      now: 1_800_000_000_000,
    });
    const first = await scanNotifications(fake, config(), log);
    expect(first.reconnect).toMatchObject({ matched: 1, enqueued: 1 });
    expect(sent).toEqual([
      { v: 1, kind: "notify.deliver", ruleId: r.id, changeKey: "reconnect:locScanA:1800000000000" },
    ]);
    const [delivery] = await listDeliveries(env.DB, { ruleId: r.id });
    expect(delivery?.event).toMatchObject({
      kind: "needs_reconnect",
      accountId: "scan-acc",
      locationId: "locScanA",
      reason: "invalid_grant",
    });

    // Later ticks of the same episode: claimed already.
    const again = await scanNotifications(fake, config(), log);
    expect(again.reconnect).toMatchObject({ enqueued: 0, duplicates: 1 });
    expect(sent).toHaveLength(1);

    // Reinstalled (active), then rejected again: a new episode.
    await connect("locScanA", 1_800_000_100_000);
    expect((await scanNotifications(fake, config(), log)).reconnect.matched).toBe(0);
    await setConnectionStatus(env.DB, locationConnectionId("locScanA"), "needs_reconnect", {
      lastError: "invalid_grant again",
      now: 1_800_000_200_000,
    });
    expect((await scanNotifications(fake, config(), log)).reconnect.enqueued).toBe(1);
    expect(sent.at(-1)).toMatchObject({ changeKey: "reconnect:locScanA:1800000200000" });
    expect(await listDeliveries(env.DB, { ruleId: r.id })).toHaveLength(2);

    await connect("locScanA");
    await connect("locScanB");
  });

  it("happy: quota below a rule's threshold fires once that day; a lower threshold fires when it is crossed too", async () => {
    const high = await quotaRule("scan-acc", 5000);
    const low = await quotaRule("scan-acc", 1000);
    sent.length = 0;
    const fake = capturingEnv();

    await spend("locScanA", 2, 150_000);
    expect((await scanNotifications(fake, config(), log)).quota.enqueued, "plenty left").toBe(0);

    await spend("locScanA", 1, 4200);
    const first = await scanNotifications(fake, config(), log);
    expect(first.quota).toMatchObject({ matched: 1, enqueued: 1 });
    const day = (await gateFor(env, "hl", "locScanA").usage()).daily.day;
    expect(sent).toEqual([{ v: 1, kind: "notify.deliver", ruleId: high.id, changeKey: `quota:locScanA:${day}` }]);
    expect((await listDeliveries(env.DB, { ruleId: high.id }))[0]?.event).toMatchObject({
      kind: "quota_low",
      remaining: 4200,
      limit: 200_000,
      day,
    });

    expect((await scanNotifications(fake, config(), log)).quota).toMatchObject({ enqueued: 0, duplicates: 1 });

    await spend("locScanA", 1, 900);
    const lower = await scanNotifications(fake, config(), log);
    expect(lower.quota).toMatchObject({ matched: 2, enqueued: 1, duplicates: 1 });
    expect(sent.at(-1)).toMatchObject({ ruleId: low.id });
    expect(sent).toHaveLength(2);
  });

  it("error: accounts without a matching rule, or whose location is not theirs, are never notified", async () => {
    sent.length = 0;
    await spend("locScanB", 1, 10);
    await setConnectionStatus(env.DB, locationConnectionId("locScanB"), "needs_reconnect", {
      lastError: "invalid_grant",
      now: 1_800_000_300_000,
    });
    const result = await scanNotifications(capturingEnv(), config(), log);
    expect(sent.filter((m) => JSON.stringify(m).includes("locScanB"))).toEqual([]);
    expect(result.errors).toBe(0);
    expect(await listDeliveries(env.DB, { accountId: "scan-norule" })).toEqual([]);
  });
  it("security: HighLevel refusing the client credentials notifies each sync-failure rule once per episode", async () => {
    const rule = (
      await createRule(env.DB, config(), {
        accountId: "scan-acc",
        name: "failures",
        trigger: "sync_failure",
        params: {},
        enabled: true,
        target: SLACK,
      })
    ).rule;
    sent.length = 0;
    const fake = capturingEnv();
    expect(
      (await scanNotifications(fake, config(), log)).clientRejected.matched,
      "nothing while the credentials work",
    ).toBe(0);
    await raiseAppCondition(
      env.DB,
      HIGHLEVEL_CLIENT_REJECTED,
      "HighLevel refused this app's client credentials",
      1_800_000_400_000,
    );
    expect((await scanNotifications(fake, config(), log)).clientRejected).toMatchObject({ matched: 1, enqueued: 1 });
    expect((await scanNotifications(fake, config(), log)).clientRejected).toMatchObject({ enqueued: 0, duplicates: 1 });
    expect(sent).toEqual([
      {
        v: 1,
        kind: "notify.deliver",
        ruleId: rule.id,
        changeKey: `failure:${HIGHLEVEL_CLIENT_REJECTED}:1800000400000`,
      },
    ]);
    expect((await listDeliveries(env.DB, { ruleId: rule.id }))[0]?.event).toMatchObject({
      kind: "sync_failure",
      accountId: "scan-acc",
      reason: "HighLevel refused this app's client credentials",
    });
    await clearAppCondition(env.DB, HIGHLEVEL_CLIENT_REJECTED);
    expect((await scanNotifications(fake, config(), log)).clientRejected.matched).toBe(0);
  });
});
