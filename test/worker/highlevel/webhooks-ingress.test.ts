/**
 * The cost side of `POST /webhooks/highlevel` (issue 7's ingress figure) without giving up a
 * guarantee of issue 3: a location event costs the ingress no D1 round trip at all (verify,
 * enqueue, answer); the dedupe it used to pay for per delivery is the queue consumer's, one D1
 * round trip per batch. And the outage paths: D1 down no longer refuses a delivery (the consumer
 * retries it), the queue down still answers 429 and remembers it for HighLevel's late retry.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { tokenGate } from "../../../src/gate/client.ts";
import { createApp } from "../../../src/http/app.ts";
import { locationConnectionId } from "../../../src/store/connections.ts";
import { wasDeferred } from "../../../src/store/webhook-receipts.ts";
import { ED25519_PRIVATE_PEM } from "../../../sandbox/highlevel/keys.ts";
import { base64ToBytes, bytesToBase64 } from "../../../src/lib/crypto.ts";
import OpportunityUpdate from "../../fixtures/highlevel/OpportunityUpdate.json";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";

const der = (pem: string) => base64ToBytes(pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, ""));
const edKey = crypto.subtle.importKey("pkcs8", der(ED25519_PRIVATE_PEM), { name: "Ed25519" }, false, ["sign"]);

async function signed(event: object): Promise<{ body: string; headers: Record<string, string>; webhookId: string }> {
  const webhookId = crypto.randomUUID();
  const body = JSON.stringify({ ...event, timestamp: new Date().toISOString(), webhookId });
  const signature = bytesToBase64(
    new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, await edKey, new TextEncoder().encode(body))),
  );
  return { body, headers: { "content-type": "application/json", "x-ghl-signature": signature }, webhookId };
}

async function connect(locationId: string): Promise<void> {
  const id = locationConnectionId(locationId);
  await tokenGate(env, id).installTokens({
    connectionId: id,
    kind: "location",
    locationId,
    companyId: "co",
    tokenSource: "refresh",
    accessToken: "at-test",
    refreshToken: "rt-test",
    expiresInSeconds: 86399,
    scopes: [],
    userId: null,
    appId: null,
  });
}

/**
 * The real D1 behind a counter of round trips (each statement run, each batch); `batchFails`
 * makes batches throw while single statements still work (a partial outage), `down` makes every
 * round trip throw (still counted).
 */
function countingDb(options: { batchFails?: boolean; down?: boolean } = {}) {
  let roundTrips = 0;
  const real = env.DB;
  /** The real statement behind each counting one (`batch()` needs the real ones). */
  const unwrapped = new WeakMap<D1PreparedStatement, D1PreparedStatement>();
  const wrapStatement = (statement: D1PreparedStatement): D1PreparedStatement => {
    const wrapped = new Proxy(statement, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrapStatement(target.bind(...values));
        if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") {
          roundTrips++;
          if (options.down) return async () => Promise.reject(new Error("D1 unavailable"));
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    unwrapped.set(wrapped, statement);
    return wrapped;
  };
  const db = new Proxy(real, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrapStatement(target.prepare(query));
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          roundTrips++;
          if (options.batchFails || options.down) throw new Error("D1 batch unavailable");
          return target.batch(statements.map((s) => unwrapped.get(s) ?? s));
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, roundTrips: () => roundTrips };
}

async function post(
  db: D1Database,
  sent: unknown[],
  delivery: { body: string; headers: Record<string, string> },
  options: { queueFails?: boolean } = {},
): Promise<Response> {
  const queue = {
    async send(message: unknown) {
      if (options.queueFails) throw new Error("queue unavailable");
      sent.push(message);
    },
  };
  return await createApp().request(
    "http://worker.test/webhooks/highlevel",
    { method: "POST", body: delivery.body, headers: delivery.headers },
    { ...env, DB: db, SYNC_QUEUE: queue },
  );
}

/** The `webhookId` of a captured queue message. */
const webhookIdOf = (message: unknown): unknown => (message as { webhookId?: unknown }).webhookId;

const receiptOf = (webhookId: string) =>
  env.DB.prepare("SELECT message_id FROM webhook_receipts WHERE provider = 'highlevel' AND webhook_id = ?")
    .bind(webhookId)
    .first();

afterEach(() => {
  vi.useRealTimers();
});

describe("POST /webhooks/highlevel: cost per delivery", () => {
  it("happy: an accepted delivery costs the ingress no D1 round trip and one message", async () => {
    const locationId = `ingress-${crypto.randomUUID()}`;
    await connect(locationId);
    const { db, roundTrips } = countingDb();
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId });
    const res = await post(db, sent, delivery);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, status: "accepted" });
    expect(sent).toEqual([
      expect.objectContaining({ kind: "highlevel.webhook", locationId, webhookId: delivery.webhookId }),
    ]);
    expect(roundTrips()).toBe(0);
  });

  it("happy: a burst of deliveries costs the ingress nothing in D1, and the consumer claims the whole batch in one round trip", async () => {
    const locationId = `ingress-${crypto.randomUUID()}`;
    const ingress = countingDb();
    const sent: unknown[] = [];
    const deliveries = await Promise.all(
      Array.from({ length: 10 }, () => signed({ ...OpportunityUpdate, locationId })),
    );
    for (const delivery of deliveries) expect((await post(ingress.db, sent, delivery)).status).toBe(200);
    expect(ingress.roundTrips()).toBe(0);
    expect(sent).toHaveLength(10);
    const consumer = countingDb();
    const { handlers, reached } = recordingHandlers();
    await runBatch(sent, handlers, { db: consumer.db });
    expect(reached).toEqual(deliveries.map((d) => d.webhookId));
    expect(consumer.roundTrips()).toBe(1);
  });

  it("happy: a duplicate and an unknown location cost the ingress no D1 round trip either: both copies are enqueued, and the consumer processes the delivery once", async () => {
    const { db, roundTrips } = countingDb();
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId: `unknown-${crypto.randomUUID()}` });
    expect(await (await post(db, sent, delivery)).json()).toEqual({ ok: true, status: "accepted" });
    expect(await (await post(db, sent, delivery)).json()).toEqual({ ok: true, status: "accepted" });
    expect(roundTrips()).toBe(0);
    expect(sent.map(webhookIdOf)).toEqual([delivery.webhookId, delivery.webhookId]);
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(sent, handlers);
    expect(reached).toEqual([delivery.webhookId]);
    expect(run.acked.sort()).toEqual([...run.ids].sort());
    expect(run.retried).toEqual([]);
  });

  it("error: with D1 refusing batches, the ingress still answers 200 and enqueues, recording nothing; the consumer's claim fails and retries the delivery, which reaches its handler once D1 is back", async () => {
    const locationId = `ingress-${crypto.randomUUID()}`;
    await connect(locationId);
    const { db } = countingDb({ batchFails: true });
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId });
    const res = await post(db, sent, delivery);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, status: "accepted" });
    expect(sent.map(webhookIdOf)).toEqual([delivery.webhookId]);
    // Answered 200, so there is nothing for HighLevel to retry and no deferral to remember.
    expect(await wasDeferred(env.DB, "highlevel", delivery.webhookId, 0)).toBe(false);

    const down = recordingHandlers();
    const failed = await runBatch(sent, down.handlers, { db });
    expect(down.reached).toEqual([]);
    expect(failed.retried).toEqual(failed.ids);
    expect(failed.acked).toEqual([]);
    expect(await receiptOf(delivery.webhookId), "a failed claim left a receipt").toBeNull();

    // D1 back: Queues' retry of the same message is claimed and processed, once.
    const back = recordingHandlers();
    const retried = await runBatch(sent, back.handlers, { ids: failed.ids });
    expect(back.reached).toEqual([delivery.webhookId]);
    expect(retried.acked).toEqual(retried.ids);
    expect(await receiptOf(delivery.webhookId)).toEqual({ message_id: failed.ids[0] });
  });

  it("error: when the queue refuses, HighLevel gets 429, nothing is recorded but the 429, and HighLevel's retry 10 minutes later is accepted past the freshness window", async () => {
    const locationId = `ingress-${crypto.randomUUID()}`;
    await connect(locationId);
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId });
    const res = await post(env.DB, sent, delivery, { queueFails: true });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBeTruthy();
    expect(sent).toEqual([]);
    expect(await receiptOf(delivery.webhookId), "a refused delivery left a receipt").toBeNull();
    expect(await wasDeferred(env.DB, "highlevel", delivery.webhookId, 0)).toBe(true);

    // The same body (same timestamp) 10 minutes later: stale, but the retry of a 429 is welcome.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 10 * 60_000);
    const retry = await post(env.DB, sent, delivery);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ ok: true, status: "accepted" });
    expect(sent.map(webhookIdOf)).toEqual([delivery.webhookId]);
  });

  it("error: when the queue and D1 are both down, HighLevel still gets 429 (remembering the deferral is best effort)", async () => {
    const { db } = countingDb({ down: true });
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId: `ingress-${crypto.randomUUID()}` });
    const res = await post(db, sent, delivery, { queueFails: true });
    expect(res.status).toBe(429);
    expect(sent).toEqual([]);
  });
});
