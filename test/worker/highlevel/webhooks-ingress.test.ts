/**
 * The cost side of `POST /webhooks/highlevel` (issue 7's ingress figure) without giving up a
 * guarantee of issue 3: one D1 round trip per delivery on the common path, and the outage paths
 * that round trip introduced.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tokenGate } from "../../../src/gate/client.ts";
import { createApp } from "../../../src/http/app.ts";
import { locationConnectionId } from "../../../src/store/connections.ts";
import { wasDeferred } from "../../../src/store/webhook-receipts.ts";
import { ED25519_PRIVATE_PEM } from "../../../sandbox/highlevel/keys.ts";
import { base64ToBytes, bytesToBase64 } from "../../../src/lib/crypto.ts";
import OpportunityUpdate from "../../fixtures/highlevel/OpportunityUpdate.json";

const der = (pem: string) => base64ToBytes(pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, ""));
const edKey = crypto.subtle.importKey("pkcs8", der(ED25519_PRIVATE_PEM), { name: "Ed25519" }, false, ["sign"]);

async function signed(event: object): Promise<{ body: string; headers: Record<string, string>; webhookId: string }> {
  const webhookId = crypto.randomUUID();
  const body = JSON.stringify({ ...event, timestamp: new Date().toISOString(), webhookId });
  const signature = bytesToBase64(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, await edKey, new TextEncoder().encode(body))));
  return { body, headers: { "content-type": "application/json", "x-ghl-signature": signature }, webhookId };
}

async function connect(locationId: string): Promise<void> {
  const id = locationConnectionId(locationId);
  await tokenGate(env, id).installTokens({ connectionId: id, kind: "location", locationId, companyId: "co", tokenSource: "refresh", accessToken: "at-test", refreshToken: "rt-test", expiresInSeconds: 86399, scopes: [], userId: null, appId: null });
}

/**
 * The real D1 behind a counter of round trips (each statement run, each batch); `batchFails`
 * makes batches throw while single statements still work (a partial outage).
 */
function countingDb(options: { batchFails?: boolean } = {}) {
  let roundTrips = 0;
  const real = env.DB;
  /** The real statement behind each counting one (`batch()` needs the real ones). */
  const unwrapped = new WeakMap<D1PreparedStatement, D1PreparedStatement>();
  const wrapStatement = (statement: D1PreparedStatement): D1PreparedStatement => {
    const wrapped = new Proxy(statement, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrapStatement(target.bind(...values));
        if (prop === "run" || prop === "all" || prop === "first" || prop === "raw") roundTrips++;
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
          if (options.batchFails) throw new Error("D1 batch unavailable");
          return target.batch(statements.map((s) => unwrapped.get(s) ?? s));
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, roundTrips: () => roundTrips };
}

async function post(db: D1Database, sent: unknown[], delivery: { body: string; headers: Record<string, string> }): Promise<Response> {
  const queue = {
    async send(message: unknown) {
      sent.push(message);
    },
  };
  return await createApp().request("http://worker.test/webhooks/highlevel", { method: "POST", body: delivery.body, headers: delivery.headers }, { ...env, DB: db, SYNC_QUEUE: queue });
}

describe("POST /webhooks/highlevel: cost per delivery", () => {
  it("happy: an accepted delivery costs one D1 round trip (receipt and connection read batched) and one message", async () => {
    const locationId = `ingress-${crypto.randomUUID()}`;
    await connect(locationId);
    const { db, roundTrips } = countingDb();
    const sent: unknown[] = [];
    const res = await post(db, sent, await signed({ ...OpportunityUpdate, locationId }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "accepted" });
    expect(sent).toHaveLength(1);
    expect(roundTrips()).toBe(1);
  });

  it("happy: an unknown location and a duplicate each cost one D1 round trip and enqueue nothing", async () => {
    const { db, roundTrips } = countingDb();
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId: `unknown-${crypto.randomUUID()}` });
    expect(await (await post(db, sent, delivery)).json()).toMatchObject({ status: "ignored" });
    expect(roundTrips()).toBe(1);
    expect(await (await post(db, sent, delivery)).json()).toMatchObject({ status: "duplicate" });
    expect(roundTrips()).toBe(2);
    expect(sent).toHaveLength(0);
  });

  it("error: when D1 refuses the receipt batch, HighLevel gets 429, nothing is recorded, and the 429 is remembered for the late retry", async () => {
    const locationId = `ingress-${crypto.randomUUID()}`;
    await connect(locationId);
    const { db } = countingDb({ batchFails: true });
    const sent: unknown[] = [];
    const delivery = await signed({ ...OpportunityUpdate, locationId });
    const res = await post(db, sent, delivery);
    expect(res.status).toBe(429);
    expect(sent).toHaveLength(0);
    const receipt = await env.DB.prepare("SELECT 1 AS hit FROM webhook_receipts WHERE provider = 'highlevel' AND webhook_id = ?").bind(delivery.webhookId).first();
    expect(receipt, "a refused delivery left its receipt").toBeNull();
    expect(await wasDeferred(env.DB, "highlevel", delivery.webhookId, 0)).toBe(true);
    // D1 back: HighLevel's retry is accepted and enqueued once.
    const retry = await post(env.DB, sent, delivery);
    expect(await retry.json()).toMatchObject({ status: "accepted" });
    expect(sent).toHaveLength(1);
  });
});
