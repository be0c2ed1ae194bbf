/**
 * The HighLevel connector end to end against the real sandbox in-process: token refresh (forced
 * expiry under concurrency, a burned refresh token), the rate gate's shaping, and webhooks that the
 * sandbox itself signs and delivers to the Worker.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { loadConfig } from "../../../src/config.ts";
import { gateFor, HIGHLEVEL_LIMITS, timeScaledLimits, tokenGate } from "../../../src/gate/client.ts";
import { createHighLevelClient, HighLevelError } from "../../../src/highlevel/client.ts";
import { runHighLevelCron } from "../../../src/highlevel/cron.ts";
import { installFromGrant } from "../../../src/highlevel/install.ts";
import { TokenResponseSchema } from "../../../src/highlevel/schemas.ts";
import { createApp } from "../../../src/http/app.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { outcomeForError } from "../../../src/sync/jobs/deps.ts";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";
import { useNetwork } from "../helpers/network.ts";
import { ascending } from "../../support.ts";

const HOOK = "http://worker.test/webhooks/highlevel";
const log = createLogger("error", { test: "refresh-gate-webhooks-e2e" });
const config = loadConfig(env);

/** Messages the Worker sent to SYNC_QUEUE (each is also forwarded to the real queue). */
const enqueued: unknown[] = [];
/** While true, the queue refuses messages (as a queue outage would). */
let queueDown = false;
const recordingQueue: Queue = {
  metrics: () => env.SYNC_QUEUE.metrics(),
  async send(message, options) {
    if (queueDown) throw new Error("queue unavailable (test outage)");
    enqueued.push(message);
    return env.SYNC_QUEUE.send(message, options);
  },
  sendBatch: (messages, options) => env.SYNC_QUEUE.sendBatch(messages, options),
};
const workerEnv: Env = { ...env, SYNC_QUEUE: recordingQueue };
const app = createApp();

const sb = createSandbox({ webhookMode: "manual" });
const net = useNetwork({ "sandbox.test": (r) => sb.fetch(r), "worker.test": (r) => app.fetch(r, workerEnv) });

afterEach(() => {
  vi.useRealTimers();
  enqueued.length = 0;
  queueDown = false;
});

/** A new sub-account in the sandbox's demo agency (the control API has no "create location"). */
async function addLocation(): Promise<string> {
  const demo = await sb.highlevel.seedDemo();
  const id = `L${crypto.randomUUID().replace(/-/g, "").slice(0, 19)}`;
  sb.highlevel.store.locations.set(id, {
    id,
    companyId: demo.companyId,
    name: `Test ${id}`,
    address: "",
    timezone: "UTC",
    active: true,
  });
  return id;
}

/**
 * Connects `locationId` to the Worker as the OAuth callback would (sandbox approve + code exchange,
 * which the sandbox does not count as a token call); returns the token JSON the sandbox issued.
 */
async function connectToWorker(locationId: string) {
  const grant = TokenResponseSchema.parse(sb.highlevel.connect({ locationId }));
  await installFromGrant(env, config, grant, log);
  return grant;
}

describe("token refresh against the sandbox", () => {
  it("happy: a forced expiry refreshes exactly once under 50 concurrent calls, and all 50 succeed", async () => {
    const locationId = await addLocation();
    // Tokens issued now live 1 s; the sandbox clock then moves past that: the token is dead.
    sb.highlevel.setTokenLifetime(1);
    await connectToWorker(locationId);
    sb.highlevel.setTokenLifetime(86_399);
    sb.clock.advance(2_000);
    sb.highlevel.oauth.resetCounters();

    const hl = createHighLevelClient(env, config, locationId);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => hl.users.refresh()));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(net.count(/\/highlevel\/users\//)).toBe(50);
    expect(sb.highlevel.tokenCalls()).toMatchObject({ token: 1, refreshToken: 1, failed: 0 });
    const row = await getConnection(env.DB, locationConnectionId(locationId));
    expect(row).toMatchObject({ status: "active", tokenVersion: 2 });
  });

  it("happy: tokens the sandbox kills early (401) are refreshed once for 50 concurrent callers", async () => {
    const locationId = await addLocation();
    await connectToWorker(locationId);
    sb.highlevel.oauth.resetCounters();
    // HighLevel revokes before our recorded expiry: every call first meets a 401.
    expect(sb.highlevel.oauth.expireAccessTokens(locationId)).toBeGreaterThan(0);
    const hl = createHighLevelClient(env, config, locationId);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => hl.users.refresh()));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(sb.highlevel.tokenCalls()).toMatchObject({ refreshToken: 1, failed: 0 });
  });

  it("error: a refresh token spent by a second copy leads to needs_reconnect, and nothing loops", async () => {
    const locationId = await addLocation();
    const grant = await connectToWorker(locationId);
    sb.highlevel.oauth.resetCounters();
    // Another holder of the same refresh token (an old n8n flow, a copied .env) refreshes first.
    const stolen = await sb.fetch(
      new Request("http://sandbox.test/highlevel/oauth/token", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          client_id: config.HIGHLEVEL_CLIENT_ID,
          client_secret: config.HIGHLEVEL_CLIENT_SECRET,
          grant_type: "refresh_token",
          refresh_token: grant.refresh_token,
          user_type: "Location",
        }).toString(),
      }),
    );
    expect(stolen.status).toBe(200);
    sb.highlevel.oauth.expireAccessTokens(locationId);

    const hl = createHighLevelClient(env, config, locationId);
    const err = await hl.users.refresh().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    expect(err).toMatchObject({ category: "reconnect", retryable: false });
    // The queue consumer records it once and acks: a permanent failure, never a retry loop.
    expect(outcomeForError(err)).toMatchObject({ kind: "permanent", permanent: true });
    const row = await getConnection(env.DB, locationConnectionId(locationId));
    expect(row?.status).toBe("needs_reconnect");
    expect(row?.lastError).toMatch(/invalid grant/i);
    expect(await tokenGate(env, row?.id ?? "").tokenStatus(row?.id ?? "")).toMatchObject({ status: "needs_reconnect" });
    expect(sb.highlevel.tokenCalls()).toMatchObject({ refreshToken: 2, failed: 1 });

    // Paused: later calls fail fast without touching HighLevel, and the cron skips the connection.
    const apiCalls = net.count(/\/highlevel\/users/);
    for (let i = 0; i < 5; i++) await expect(hl.users.refresh()).rejects.toMatchObject({ category: "reconnect" });
    await runHighLevelCron(env, log, Date.now() + 2 * 86_400_000);
    expect(net.count(/\/highlevel\/users/)).toBe(apiCalls);
    expect(sb.highlevel.tokenCalls()).toMatchObject({ refreshToken: 2 });
  });
});

describe("rate gate against the sandbox", () => {
  // HighLevel's real limit is 100 per 10 s; both sides here run it 10× faster (100 per 1 s), same
  // proportions, so the test proves the shaping in a few seconds instead of 30.
  const limits = timeScaledLimits(HIGHLEVEL_LIMITS, 10);

  it("happy: 300 requests for one location complete with zero 429s from the sandbox", async () => {
    expect(limits.burst).toEqual({ max: 100, intervalMs: 1_000 });
    sb.highlevel.setRateLimit({ max: 100, intervalMs: 1_000, daily: 200_000 });
    const locationId = await addLocation();
    await connectToWorker(locationId);
    const hl = createHighLevelClient(env, config, locationId, { limits, maxWaitMs: 30_000 });
    const results = await Promise.allSettled(Array.from({ length: 300 }, () => hl.users.refresh()));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const answered = net.calls.filter((c) => c.url.includes(`/highlevel/users/?locationId=${locationId}`));
    expect(answered).toHaveLength(300);
    expect(answered.filter((c) => c.status === 429)).toEqual([]);
    const usage = await gateFor(env, "hl", locationId).usage();
    expect(usage.daily.used).toBe(300);
    expect(usage.rateLimited24h).toBe(0);
    expect(usage.hourly.reduce((n, h) => n + h.calls, 0)).toBe(300);
  });

  it("control: the same 300 requests without the gate meet the sandbox's 429s", async () => {
    sb.highlevel.setRateLimit({ max: 100, intervalMs: 1_000, daily: 200_000 });
    const locationId = await addLocation();
    const pit = sb.highlevel.createPit({ locationId });
    const statuses = await Promise.all(
      Array.from(
        { length: 300 },
        async () =>
          (
            await fetch(`http://sandbox.test/highlevel/users/?locationId=${locationId}`, {
              headers: { Authorization: `Bearer ${pit}`, Version: "2021-07-28" },
            })
          ).status,
      ),
    );
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(100);
  });
});

describe("webhooks emitted by the sandbox", () => {
  /** Connects the demo location, subscribes the Worker and clears earlier deliveries. */
  async function setup() {
    const demo = await sb.highlevel.seedDemo();
    await connectToWorker(demo.locationId);
    sb.highlevel.subscribe(HOOK);
    await sb.highlevel.flush();
    enqueued.length = 0;
    return demo;
  }

  /**
   * Moves an opportunity to a stage it is not in, through the sandbox control API (as a UI user
   * would); HighLevel then sends OpportunityUpdate + OpportunityStageUpdate. Returns the stage.
   */
  async function moveStage(opportunityId: string, stageIds: string[]): Promise<string> {
    const current = sb.highlevel.opportunity(opportunityId)?.["pipelineStageId"];
    const stageId = stageIds.find((s) => s !== current) ?? "";
    const res = await sb.fetch(
      new Request(`http://sandbox.test/_sandbox/highlevel/opportunities/${opportunityId}/stage`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pipelineStageId: stageId }),
      }),
    );
    expect(res.status).toBe(200);
    return stageId;
  }

  const messages = (): QueueMessage[] => enqueued.map((m) => QueueMessageSchema.parse(m));

  it("happy: a stage change lands on the queue as verified highlevel.webhook messages", async () => {
    const demo = await setup();
    const opportunityId = demo.opportunityIds[0] ?? "";
    const target = await moveStage(opportunityId, demo.stageIds);
    expect(await sb.highlevel.flush()).toBe(2);
    const delivered = sb.highlevel
      .deliveries()
      .filter((d) => d.subscriber === HOOK)
      .slice(-2);
    expect(delivered.map((d) => d.attempts.at(-1)?.status)).toEqual([200, 200]);
    const sent = messages();
    expect(sent.map((m) => m.kind === "highlevel.webhook" && m.type).sort(ascending)).toEqual([
      "OpportunityStageUpdate",
      "OpportunityUpdate",
    ]);
    for (const m of sent) {
      if (m.kind !== "highlevel.webhook") throw new Error(`unexpected ${m.kind}`);
      expect(m).toMatchObject({
        v: 1,
        locationId: demo.locationId,
        body: { id: opportunityId, pipelineStageId: target, locationId: demo.locationId },
      });
      expect(delivered.map((d) => d.payload["webhookId"])).toContain(m.webhookId);
    }
  });

  it("security: a duplicate delivery (sandbox fault) is answered 200 and enqueued again, and the consumer hands each event to its handler once", async () => {
    const demo = await setup();
    // Keep the messages off the real queue for this test: its consumer would claim the deliveries
    // first, and this test runs the consumer itself over exactly what the Worker enqueued.
    const send = vi.spyOn(recordingQueue, "send").mockImplementation(async (message) => {
      enqueued.push(message);
      return { metadata: { metrics: { backlogCount: enqueued.length, backlogBytes: 0 } } };
    });
    try {
      sb.highlevel.faults.configure({ webhookDuplicateRate: 1 });
      try {
        await moveStage(demo.opportunityIds[1] ?? "", demo.stageIds);
      } finally {
        sb.highlevel.faults.configure({ webhookDuplicateRate: 0 });
      }
      sb.clock.advance(10);
      expect(await sb.highlevel.flush()).toBe(4);
    } finally {
      send.mockRestore();
    }
    const copies = sb.highlevel.deliveries().filter((d) => d.subscriber === HOOK && d.duplicateOf);
    expect(copies).toHaveLength(2);
    expect(copies.map((d) => d.attempts.at(-1)?.status)).toEqual([200, 200]);
    // Every delivery, copy or not, is a queue message: two events, each carried twice.
    const ids = messages().map((m) => (m.kind === "highlevel.webhook" ? m.webhookId : ""));
    expect(ids).toHaveLength(4);
    const events = [...new Set(ids)];
    expect(events).toHaveLength(2);
    expect(events.every((id) => ids.filter((i) => i === id).length === 2)).toBe(true);
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(enqueued, handlers);
    expect([...reached].sort()).toEqual([...events].sort());
    expect(run.acked.sort()).toEqual([...run.ids].sort());
    expect(run.retried).toEqual([]);
  });

  it("security: forged deliveries (tampered body, foreign signature, none) are 401 and enqueue nothing", async () => {
    const demo = await setup();
    await moveStage(demo.opportunityIds[2] ?? "", demo.stageIds);
    // Take the sandbox's signed event off the wire instead of delivering it.
    sb.highlevel.unsubscribe(HOOK);
    const pending = sb.highlevel.deliveries().filter((d) => d.subscriber === HOOK && d.state === "pending");
    expect(pending.length).toBeGreaterThan(0);
    const original = pending[0]?.body ?? "";
    const headers = await sb.highlevel.signer.sign(original);
    const tampered = original.replace(/"monetaryValue":\d+/, '"monetaryValue":999999999');
    expect(tampered).not.toBe(original);
    const post = (body: string, h: Record<string, string>) =>
      fetch(HOOK, { method: "POST", headers: { "content-type": "application/json", ...h }, body });
    expect((await post(tampered, headers)).status).toBe(401);
    expect((await post(original, {})).status).toBe(401);
    const otherSignature = (await sb.highlevel.signer.sign(tampered))["x-ghl-signature"] ?? "";
    expect((await post(original, { "x-ghl-signature": otherSignature })).status).toBe(401);
    expect(enqueued).toEqual([]);
    // The untouched original still verifies (the rejections above were about the forgery).
    expect((await post(original, headers)).status).toBe(200);
    expect(messages()).toHaveLength(1);
  });

  it("security: a delivery that arrives more than 5 minutes after its event is rejected as stale", async () => {
    const demo = await setup();
    await moveStage(demo.opportunityIds[3] ?? "", demo.stageIds);
    // The events were stamped now; they reach the Worker 6 minutes later (Worker and sandbox time).
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 6 * 60_000);
    expect(await sb.highlevel.flush()).toBe(2);
    vi.useRealTimers();
    const delivered = sb.highlevel
      .deliveries()
      .filter((d) => d.subscriber === HOOK)
      .slice(-2);
    expect(delivered.map((d) => d.attempts.at(-1)?.status)).toEqual([401, 401]);
    expect(enqueued).toEqual([]);
  });

  it("happy: a delivery answered 429 (queue down) is accepted on HighLevel's retry 10 minutes later, past the freshness window", async () => {
    const demo = await setup();
    const target = await moveStage(demo.opportunityIds[4] ?? "", demo.stageIds);
    queueDown = true;
    expect(await sb.highlevel.flush()).toBe(2);
    const first = sb.highlevel
      .deliveries()
      .filter((d) => d.subscriber === HOOK)
      .slice(-2);
    expect(first.map((d) => [d.state, d.attempts.at(-1)?.status])).toEqual([
      ["retrying", 429],
      ["retrying", 429],
    ]);
    expect(enqueued).toEqual([]);

    // The queue is back; HighLevel retries ~10 minutes later with the same bodies (same timestamps).
    queueDown = false;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 10 * 60_000 + 30_000);
    expect(await sb.highlevel.flush()).toBe(2);
    vi.useRealTimers();
    const retried = sb.highlevel.deliveries().filter((d) => first.some((f) => f.id === d.id));
    expect(retried.map((d) => [d.state, d.attempts.map((a) => a.status)])).toEqual([
      ["delivered", [429, 200]],
      ["delivered", [429, 200]],
    ]);
    const sent = messages();
    expect(sent).toHaveLength(2);
    expect(sent.every((m) => m.kind === "highlevel.webhook" && m.body["pipelineStageId"] === target)).toBe(true);
  });
});
