/**
 * Team notifications: the rules API (happy / error / security), the matcher, "fires exactly once
 * per matching change", and delivery to Slack and to a signed generic webhook — directly through
 * the handler and end to end through the queue.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { createWebhookVerifier } from "../../../src/fourdegrees/webhook.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { deliverNotification } from "../../../src/notify/deliver.ts";
import type { NotifyEventInput } from "../../../src/notify/events.ts";
import { notifyChange } from "../../../src/notify/notify.ts";
import { ruleMatches } from "../../../src/notify/rules.ts";
import { createAccount, getAccount } from "../../../src/store/accounts.ts";
import { getDelivery, listDeliveries } from "../../../src/store/notifications.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "application/json" };
const config = () => loadConfig(env);
const log = createLogger("error");

type Received = { url: string; headers: Headers; body: string };
const received: Received[] = [];
let receiverStatus = 200;

const net = useNetwork({
  "hooks.slack.com": async (r) => {
    received.push({ url: r.url, headers: r.headers, body: await r.text() });
    return new Response("ok", { status: receiverStatus });
  },
  "receiver.example": async (r) => {
    received.push({ url: r.url, headers: r.headers, body: await r.text() });
    return new Response(null, { status: receiverStatus });
  },
});

async function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = ADMIN,
): Promise<Response> {
  return exports.default.fetch(`http://worker.test/api${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function ensureAccount(id: string): Promise<void> {
  if (!(await getAccount(env.DB, id))) await createAccount(env.DB, { id, name: id, workspaceId: null, locations: [] });
}

function dealEvent(
  accountId: string,
  changeId: string,
  before: Partial<{ status: "open" | "won" | "lost"; stageName: string; amount: number }> | null,
  after: Partial<{ status: "open" | "won" | "lost"; stageName: string; amount: number }>,
): NotifyEventInput {
  const state = (s: typeof after) => ({
    stageId: s.stageName ? `stg_${s.stageName.toLowerCase().replace(/\W+/g, "_")}` : null,
    stageName: s.stageName ?? null,
    status: s.status ?? "open",
    value: s.amount === undefined ? null : { amountMinor: s.amount * 100, currency: "USD" },
  });
  return {
    kind: "deal_changed",
    accountId,
    changeId,
    dealName: "Acme Series A",
    fourdegreesId: "deal_1",
    highlevelId: "opp_1",
    source: "fourdegrees",
    before: before === null ? null : state(before),
    after: state(after),
  };
}

/** The test env with NOTIFY_QUEUE replaced by `onSend` (to observe or break enqueueing). */
function withQueue(onSend: (message: unknown) => Promise<void> | void): Env {
  const queue: Queue = {
    metrics: () => env.NOTIFY_QUEUE.metrics(),
    send: async (message) => {
      await onSend(message);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    sendBatch: (messages, options) => env.NOTIFY_QUEUE.sendBatch(messages, options),
  };
  return { ...env, NOTIFY_QUEUE: queue };
}

beforeAll(async () => {
  await ensureAccount("ntf-acc");
  await ensureAccount("ntf-other");
});

describe("rules API", () => {
  it("happy: create (Slack), list, get, patch, delete — the URL itself is never answered", async () => {
    const created = await api("POST", "/notifications", {
      accountId: "ntf-acc",
      name: "Wins to #deals",
      trigger: "deal_won",
      target: { kind: "slack", url: "https://hooks.slack.com/services/T000/B000/secretpart" },
    });
    expect(created.status).toBe(201);
    const body = await created.json<{
      rule: { id: string; target: { kind: string; host: string } };
      signingSecret?: string;
    }>();
    expect(body.rule.target).toEqual({ kind: "slack", host: "hooks.slack.com", signed: false });
    expect(body.signingSecret).toBeUndefined();
    expect(JSON.stringify(body)).not.toContain("secretpart");
    const id = body.rule.id;

    const list = await (await api("GET", "/notifications?account=ntf-acc")).json<{ rules: Array<{ id: string }> }>();
    expect(list.rules.map((r) => r.id)).toContain(id);
    expect(JSON.stringify(list)).not.toContain("secretpart");

    const patched = await api("PATCH", `/notifications/${id}`, { enabled: false, name: "Wins (paused)" });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ rule: { enabled: false, name: "Wins (paused)" } });

    const one = await (
      await api("GET", `/notifications/${id}`)
    ).json<{ rule: { enabled: boolean }; deliveries: unknown[] }>();
    expect(one.rule.enabled).toBe(false);
    expect(one.deliveries).toEqual([]);

    expect((await api("DELETE", `/notifications/${id}`)).status).toBe(204);
    expect((await api("GET", `/notifications/${id}`)).status).toBe(404);
  });

  it("happy: a generic webhook rule answers its whsec_ signing secret once", async () => {
    const res = await api("POST", "/notifications", {
      accountId: "ntf-acc",
      name: "Big moves",
      trigger: "value_changed",
      params: { threshold: 1000 },
      target: { kind: "webhook", url: "https://receiver.example/hook" },
    });
    expect(res.status).toBe(201);
    const body = await res.json<{ signingSecret: string; rule: { id: string; target: { signed: boolean } } }>();
    expect(body.signingSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(body.rule.target.signed).toBe(true);
    const again = await (await api("GET", `/notifications/${body.rule.id}`)).text();
    expect(again).not.toContain(body.signingSecret);
    await api("DELETE", `/notifications/${body.rule.id}`);
  });

  it.each([
    [{ trigger: "deal_won", target: { kind: "slack", url: "http://hooks.slack.com/services/x" } }, "target.url"],
    [{ trigger: "deal_won", target: { kind: "slack", url: "https://example.com/services/x" } }, "target.url"],
    [
      { trigger: "stage_entered", params: {}, target: { kind: "webhook", url: "https://receiver.example/h" } },
      "params.stage",
    ],
    [
      {
        trigger: "value_changed",
        params: { threshold: "lots" },
        target: { kind: "webhook", url: "https://receiver.example/h" },
      },
      "params.threshold",
    ],
    [
      {
        trigger: "quota_low",
        params: { remaining: 500_000 },
        target: { kind: "webhook", url: "https://receiver.example/h" },
      },
      "params.remaining",
    ],
    [{ trigger: "deal_exploded", target: { kind: "webhook", url: "https://receiver.example/h" } }, "trigger"],
    [{ trigger: "deal_won", name: "", target: { kind: "webhook", url: "https://receiver.example/h" } }, "name"],
  ])("error: bad input → 400 naming the field (%#)", async (partial, field) => {
    const res = await api("POST", "/notifications", { accountId: "ntf-acc", name: "r", ...partial });
    expect(res.status).toBe(400);
    const body = await res.json<{ error: { code: string; details: Array<{ path: string }> } }>();
    expect(body.error.code).toBe("bad_request");
    expect(body.error.details.map((d) => d.path)).toContain(field);
  });

  it("error: an unknown account → 400 naming accountId; an unknown rule id → 404; bad PATCH params → 400", async () => {
    const res = await api("POST", "/notifications", {
      accountId: "no-such-account",
      name: "x",
      trigger: "deal_won",
      target: { kind: "webhook", url: "https://receiver.example/h" },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("accountId");
    expect((await api("GET", "/notifications/ntf_00000000000000000000")).status).toBe(404);
    expect((await api("DELETE", "/notifications/not-an-id")).status).toBe(404);
    const rule = await (
      await api("POST", "/notifications", {
        accountId: "ntf-acc",
        name: "q",
        trigger: "quota_low",
        params: { remaining: 1000 },
        target: { kind: "webhook", url: "https://receiver.example/h" },
      })
    ).json<{ rule: { id: string } }>();
    const bad = await api("PATCH", `/notifications/${rule.rule.id}`, { params: { remaining: -1 } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("params.remaining");
    await api("DELETE", `/notifications/${rule.rule.id}`);
  });

  it("security: the rules API refuses requests without the admin token", async () => {
    expect((await api("GET", "/notifications", undefined, {})).status).toBe(401);
    expect(
      (await api("POST", "/notifications", { accountId: "ntf-acc" }, { "content-type": "application/json" })).status,
    ).toBe(401);
  });
});

describe("matching", () => {
  const won = dealEvent(
    "a",
    "v2",
    { status: "open", stageName: "Diligence", amount: 100 },
    { status: "won", stageName: "Diligence", amount: 100 },
  );
  const moved = dealEvent(
    "a",
    "v3",
    { status: "open", stageName: "Sourcing", amount: 100 },
    { status: "open", stageName: "Diligence", amount: 2500 },
  );
  const parsedWon = { ...won, fourdegreesId: "deal_1", highlevelId: "opp_1" };

  it("happy: won/lost fire on the transition only", () => {
    if (parsedWon.kind !== "deal_changed") throw new Error("fixture");
    expect(ruleMatches("deal_won", {}, { ...parsedWon, before: parsedWon.before ?? null })).toBe(true);
    expect(ruleMatches("deal_lost", {}, { ...parsedWon, before: parsedWon.before ?? null })).toBe(false);
    const stillWon = { ...parsedWon, before: parsedWon.after };
    expect(ruleMatches("deal_won", {}, stillWon)).toBe(false);
  });

  it("happy: stage entered by name or id, not while staying there; value threshold is strict", () => {
    if (moved.kind !== "deal_changed") throw new Error("fixture");
    const e = { ...moved, before: moved.before ?? null, fourdegreesId: "d", highlevelId: "o" };
    expect(ruleMatches("stage_entered", { stage: "diligence" }, e)).toBe(true);
    expect(ruleMatches("stage_entered", { stage: "stg_diligence" }, e)).toBe(true);
    expect(ruleMatches("stage_entered", { stage: "Sourcing" }, e)).toBe(false);
    expect(ruleMatches("value_changed", { threshold: 2399.99 }, e)).toBe(true);
    expect(ruleMatches("value_changed", { threshold: 2400 }, e)).toBe(false);
  });

  it("happy: quota below threshold; failures and reconnects match their own trigger only", () => {
    const quota = {
      kind: "quota_low" as const,
      accountId: "a",
      locationId: "loc",
      day: "2026-11-29",
      remaining: 900,
      limit: 200_000,
    };
    expect(ruleMatches("quota_low", { remaining: 1000 }, quota)).toBe(true);
    expect(ruleMatches("quota_low", { remaining: 900 }, quota)).toBe(false);
    expect(ruleMatches("sync_failure", {}, quota)).toBe(false);
    expect(
      ruleMatches(
        "needs_reconnect",
        {},
        { kind: "needs_reconnect", accountId: "a", locationId: "loc", since: 1, reason: null },
      ),
    ).toBe(true);
  });
});

describe("notifyChange: exactly once per matching change", () => {
  it("happy: a matching change claims one delivery per rule; the same change again claims none; the next change claims again", async () => {
    await ensureAccount("ntf-once");
    const rule = await (
      await api("POST", "/notifications", {
        accountId: "ntf-once",
        name: "wins",
        trigger: "deal_won",
        target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/once" },
      })
    ).json<{ rule: { id: string } }>();
    const other = await (
      await api("POST", "/notifications", {
        accountId: "ntf-once",
        name: "losses",
        trigger: "deal_lost",
        target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/lost" },
      })
    ).json<{ rule: { id: string } }>();
    const sent: unknown[] = [];
    const fakeEnv = withQueue((m) => void sent.push(m));
    const e = dealEvent("ntf-once", "v7", { status: "open" }, { status: "won", amount: 5 });

    expect(await notifyChange(fakeEnv, config(), e, log)).toEqual({
      matched: 1,
      enqueued: 1,
      duplicates: 0,
      failed: 0,
    });
    expect(await notifyChange(fakeEnv, config(), e, log)).toEqual({
      matched: 1,
      enqueued: 0,
      duplicates: 1,
      failed: 0,
    });
    expect(sent).toEqual([{ v: 1, kind: "notify.deliver", ruleId: rule.rule.id, changeKey: "deal:deal_1:opp_1:v7" }]);
    expect(await listDeliveries(env.DB, { ruleId: other.rule.id })).toEqual([]);

    const next = dealEvent("ntf-once", "v9", { status: "lost" }, { status: "won", amount: 5 });
    expect((await notifyChange(fakeEnv, config(), next, log)).enqueued).toBe(1);
    expect(sent).toHaveLength(2);
  });

  it("error: a queue that cannot take the message releases the claim (a later report retries) and never throws", async () => {
    await ensureAccount("ntf-q");
    await api("POST", "/notifications", {
      accountId: "ntf-q",
      name: "fail",
      trigger: "sync_failure",
      target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/q" },
    });
    const broken = withQueue(() => Promise.reject(new Error("queue down")));
    const e: NotifyEventInput = { kind: "sync_failure", accountId: "ntf-q", failureId: "f1", reason: "boom" };
    expect(await notifyChange(broken, config(), e, log)).toMatchObject({ matched: 1, enqueued: 0, failed: 1 });
    const working = withQueue(() => undefined);
    expect(await notifyChange(working, config(), e, log)).toMatchObject({ enqueued: 1 });
  });

  it("error: an invalid event is logged and counted, not thrown", async () => {
    const bad: NotifyEventInput = JSON.parse(`{"kind": "deal_changed", "accountId": ""}`);
    expect((await notifyChange(env, config(), bad, log)).failed).toBe(1);
  });
});

describe("delivery", () => {
  const ctx = () => ({ env, config: config(), log, attempts: 1 });

  it("happy: Slack gets its JSON text; the delivery is marked delivered", async () => {
    await ensureAccount("ntf-slack");
    const rule = await (
      await api("POST", "/notifications", {
        accountId: "ntf-slack",
        name: "stage",
        trigger: "stage_entered",
        params: { stage: "Diligence" },
        target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/slack1" },
      })
    ).json<{ rule: { id: string } }>();
    const sent: string[] = [];
    const e = dealEvent(
      "ntf-slack",
      "v1",
      { stageName: "Sourcing", amount: 10 },
      { stageName: "Diligence", amount: 10 },
    );
    await notifyChange(
      withQueue((m) => void sent.push(JSON.stringify(m))),
      config(),
      e,
      log,
    );
    const changeKey = "deal:deal_1:opp_1:v1";
    expect(sent).toEqual([JSON.stringify({ v: 1, kind: "notify.deliver", ruleId: rule.rule.id, changeKey })]);
    received.length = 0;
    receiverStatus = 200;
    const outcome = await deliverNotification(
      { v: 1, kind: "notify.deliver", ruleId: rule.rule.id, changeKey: changeKey },
      ctx(),
    );
    expect(outcome).toEqual({ kind: "ack" });
    expect(received).toHaveLength(1);
    expect(received[0]!.url).toBe("https://hooks.slack.com/services/T/B/slack1");
    expect(JSON.parse(received[0]!.body)).toEqual({ text: "Acme Series A entered Diligence ($10.00) — _stage_" });
    expect(await getDelivery(env.DB, rule.rule.id, changeKey)).toMatchObject({
      state: "delivered",
      attempts: 1,
      lastStatus: 200,
    });
    // Delivered already: a redelivered message does not post twice.
    expect(
      await deliverNotification({ v: 1, kind: "notify.deliver", ruleId: rule.rule.id, changeKey: changeKey }, ctx()),
    ).toEqual({ kind: "ack" });
    expect(received).toHaveLength(1);
  });

  it("happy: a generic webhook gets Standard Webhooks headers that verify with the rule's secret; the id is stable across retries", async () => {
    await ensureAccount("ntf-hook");
    const created = await (
      await api("POST", "/notifications", {
        accountId: "ntf-hook",
        name: "fails",
        trigger: "sync_failure",
        target: { kind: "webhook", url: "https://receiver.example/in" },
      })
    ).json<{ rule: { id: string }; signingSecret: string }>();
    const e: NotifyEventInput = {
      kind: "sync_failure",
      accountId: "ntf-hook",
      failureId: "fail_42",
      reason: "HighLevel said 422",
    };
    await notifyChange(
      withQueue(() => undefined),
      config(),
      e,
      log,
    );
    const msg = {
      v: 1 as const,
      kind: "notify.deliver" as const,
      ruleId: created.rule.id,
      changeKey: "failure:fail_42",
    };

    received.length = 0;
    receiverStatus = 503;
    expect(await deliverNotification(msg, ctx())).toMatchObject({ kind: "retry" });
    expect(await getDelivery(env.DB, created.rule.id, msg.changeKey)).toMatchObject({
      state: "queued",
      attempts: 1,
      lastStatus: 503,
    });
    receiverStatus = 204;
    expect(await deliverNotification(msg, ctx())).toEqual({ kind: "ack" });
    expect(received).toHaveLength(2);
    expect(received[0]!.headers.get("webhook-id")).toBe(received[1]!.headers.get("webhook-id"));
    const last = received[1]!;
    await createWebhookVerifier(created.signingSecret).verify(last.headers, new TextEncoder().encode(last.body));
    await expect(
      createWebhookVerifier("whsec_" + btoa("another secret of enough length")).verify(
        last.headers,
        new TextEncoder().encode(last.body),
      ),
    ).rejects.toThrow();
    expect(JSON.parse(last.body)).toMatchObject({
      type: "sync.failure",
      data: { summary: "Sync failure on account ntf-hook: HighLevel said 422", event: { failureId: "fail_42" } },
    });
  });

  it("error: a receiver's 4xx is final: marked failed, acked (never blocks or retries sync)", async () => {
    await ensureAccount("ntf-4xx");
    const created = await (
      await api("POST", "/notifications", {
        accountId: "ntf-4xx",
        name: "r",
        trigger: "needs_reconnect",
        target: { kind: "webhook", url: "https://receiver.example/gone" },
      })
    ).json<{ rule: { id: string } }>();
    await notifyChange(
      withQueue(() => undefined),
      config(),
      { kind: "needs_reconnect", accountId: "ntf-4xx", locationId: "loc1", since: 1000, reason: "invalid_grant" },
      log,
    );
    receiverStatus = 410;
    expect(
      await deliverNotification(
        { v: 1, kind: "notify.deliver", ruleId: created.rule.id, changeKey: "reconnect:loc1:1000" },
        ctx(),
      ),
    ).toEqual({ kind: "ack" });
    expect(await getDelivery(env.DB, created.rule.id, "reconnect:loc1:1000")).toMatchObject({
      state: "failed",
      lastStatus: 410,
    });
  });

  it("happy: end to end through the queue — notifyChange → NOTIFY_QUEUE → its consumer → Slack, once", async () => {
    await ensureAccount("ntf-e2e");
    await api("POST", "/notifications", {
      accountId: "ntf-e2e",
      name: "e2e",
      trigger: "deal_lost",
      target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/e2e" },
    });
    received.length = 0;
    receiverStatus = 200;
    const e = dealEvent("ntf-e2e", "v5", { status: "open" }, { status: "lost", amount: 1 });
    await notifyChange(env, config(), e, log);
    await notifyChange(env, config(), e, log);
    await vi.waitUntil(() => received.some((r) => r.url.endsWith("/e2e")), { timeout: 10_000, interval: 50 });
    // Give a (wrong) second delivery the chance to arrive before asserting there is none.
    await new Promise((r) => setTimeout(r, 300));
    expect(received.filter((r) => r.url.endsWith("/e2e"))).toHaveLength(1);
    expect(net.unexpected).toEqual([]);
  });
});
