import { env } from "cloudflare:workers";
import { fourDegreesWebhooks as fourdegreesWebhooks } from "../../../src/fourdegrees/connector.ts";
import { describe, expect, it } from "vitest";
import { tokenGate } from "../../../src/gate/client.ts";
import { createApp } from "../../../src/http/app.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { ED25519_PRIVATE_PEM, RSA_PRIVATE_PEM } from "../../../sandbox/highlevel/keys.ts";
import { base64ToBytes, bytesToBase64 } from "../../../src/lib/crypto.ts";
import { createAccount } from "../../../src/store/accounts.ts";
import type { Handlers } from "../../../src/queue/consumer.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import type { JobDeps } from "../../../src/sync/jobs/deps.ts";
import type { QueueMessageInput } from "../../../src/queue/messages.ts";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";
import OpportunityCreate from "../../fixtures/highlevel/OpportunityCreate.json";
import OpportunityUpdate from "../../fixtures/highlevel/OpportunityUpdate.json";
import OpportunityDelete from "../../fixtures/highlevel/OpportunityDelete.json";
import OpportunityStatusUpdate from "../../fixtures/highlevel/OpportunityStatusUpdate.json";
import OpportunityStageUpdate from "../../fixtures/highlevel/OpportunityStageUpdate.json";
import OpportunityMonetaryValueUpdate from "../../fixtures/highlevel/OpportunityMonetaryValueUpdate.json";
import OpportunityAssignedToUpdate from "../../fixtures/highlevel/OpportunityAssignedToUpdate.json";
import NoteCreate from "../../fixtures/highlevel/NoteCreate.json";
import NoteUpdate from "../../fixtures/highlevel/NoteUpdate.json";
import NoteDelete from "../../fixtures/highlevel/NoteDelete.json";
import AppUninstall from "../../fixtures/highlevel/AppUninstall.json";
import { TEST_BINDINGS } from "../../bindings.ts";
import { companyConnectionId } from "../../../src/store/connections.ts";
import { wasDeferred } from "../../../src/store/webhook-receipts.ts";

const EXAMPLES = {
  OpportunityCreate,
  OpportunityUpdate,
  OpportunityDelete,
  OpportunityStatusUpdate,
  OpportunityStageUpdate,
  OpportunityMonetaryValueUpdate,
  OpportunityAssignedToUpdate,
  NoteCreate,
  NoteUpdate,
  NoteDelete,
};
const KNOWN_LOCATION = "ve9EPM428h8vShlRW1KT";

const der = (pem: string) => base64ToBytes(pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, ""));
const edKey = crypto.subtle.importKey("pkcs8", der(ED25519_PRIVATE_PEM), { name: "Ed25519" }, false, ["sign"]);
const rsaKey = crypto.subtle.importKey(
  "pkcs8",
  der(RSA_PRIVATE_PEM),
  { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  false,
  ["sign"],
);
/** A key nobody trusts, for forgeries. */
const rogueKey = crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]).then((pair) => {
  if (!("privateKey" in pair)) throw new Error("Ed25519 generateKey returned no key pair");
  return pair.privateKey;
});

async function sign(body: string, scheme: "ed25519" | "rsa" | "rogue" = "ed25519"): Promise<string> {
  const key = scheme === "ed25519" ? await edKey : scheme === "rsa" ? await rsaKey : await rogueKey;
  const algorithm = scheme === "rsa" ? { name: "RSASSA-PKCS1-v1_5" } : { name: "Ed25519" };
  return bytesToBase64(new Uint8Array(await crypto.subtle.sign(algorithm, key, new TextEncoder().encode(body))));
}

/**
 * An env whose queue records (or refuses) messages, serialising each as Queues does and refusing
 * one over its 128 KB limit; `vars` override settings; everything else is the real binding.
 */
function harness(opts: { queueFails?: boolean; dbFails?: boolean; vars?: Record<string, string> } = {}) {
  const sent: unknown[] = [];
  const queue = {
    async send(message: unknown) {
      if (opts.queueFails) throw new Error("queue unavailable");
      const size = new TextEncoder().encode(JSON.stringify(message)).length;
      if (size > 128_000) throw new Error(`Queue send failed: message length of ${size} bytes exceeds limit of 128000`);
      sent.push(message);
    },
    async sendBatch() {
      throw new Error("not used");
    },
    async metrics() {
      throw new Error("not used");
    },
  };
  const db = opts.dbFails
    ? ({
        prepare() {
          throw new Error("D1 unavailable");
        },
        batch() {
          throw new Error("D1 unavailable");
        },
      } as unknown as D1Database)
    : env.DB;
  const testEnv = { ...env, ...opts.vars, SYNC_QUEUE: queue, DB: db };
  const app = createApp();
  const post = async (body: string, headers: Record<string, string>) =>
    app.request(
      "http://worker.test/webhooks/highlevel",
      { method: "POST", body, headers: { "content-type": "application/json", ...headers } },
      testEnv,
    );
  return { sent, post, db };
}

/** The `webhookId` of a captured queue message. */
const webhookIdOf = (message: unknown): unknown => (message as { webhookId?: unknown }).webhookId;

/** What the ingress names a delivery without a `webhookId`: the SHA-256 of its raw body, computed here independently. */
async function sha256Id(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const fresh = (event: object) =>
  JSON.stringify({ ...event, timestamp: new Date().toISOString(), webhookId: crypto.randomUUID() });

async function connect(locationId: string) {
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

describe("POST /webhooks/highlevel", () => {
  it("happy: every official example, signed with Ed25519, is accepted and enqueued", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    for (const [type, example] of Object.entries(EXAMPLES)) {
      const body = fresh(example);
      const res = await h.post(body, { "x-ghl-signature": await sign(body) });
      expect(res.status, type).toBe(200);
      expect(await res.json()).toMatchObject({ status: "accepted" });
    }
    expect(h.sent).toHaveLength(Object.keys(EXAMPLES).length);
    expect(h.sent[0]).toMatchObject({
      v: 1,
      kind: "highlevel.webhook",
      locationId: KNOWN_LOCATION,
      type: "OpportunityCreate",
      body: { id: "wWhVuzqpRuOA1ZVWi4FC" },
    });
  });

  it("happy: an example without webhookId is enqueued each time it arrives, named by its body digest, and the consumer processes it once", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = JSON.stringify({ ...NoteCreate, timestamp: new Date().toISOString() });
    const first = await h.post(body, { "x-ghl-signature": await sign(body) });
    const again = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect([first.status, again.status]).toEqual([200, 200]);
    expect([await first.json(), await again.json()]).toEqual([
      { ok: true, status: "accepted" },
      { ok: true, status: "accepted" },
    ]);
    const digest = await sha256Id(body);
    expect(h.sent.map(webhookIdOf)).toEqual([digest, digest]);
    // The two deliveries are two queue messages carrying one delivery id: one reaches its handler.
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(h.sent, handlers);
    expect(reached).toEqual([digest]);
    expect(run.acked.sort()).toEqual([...run.ids].sort());
    expect(run.retried).toEqual([]);
  });

  it("happy: the legacy RSA x-wh-signature is accepted when HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE is true", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness({ vars: { HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE: "true" } });
    const body = fresh(OpportunityStageUpdate);
    const res = await h.post(body, { "x-wh-signature": await sign(body, "rsa") });
    expect(res.status).toBe(200);
    expect(h.sent).toHaveLength(1);
  });

  it("security: a delivery signed only with the legacy RSA x-wh-signature is 401 by default, saying legacy signatures are disabled", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = fresh(OpportunityStageUpdate);
    const res = await h.post(body, { "x-wh-signature": await sign(body, "rsa") });
    expect(res.status).toBe(401);
    expect(JSON.stringify(await res.json())).toMatch(
      /legacy x-wh-signature.*disabled.*HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE/i,
    );
    expect(h.sent).toHaveLength(0);
  });

  it("security: a validly signed delivery without a parseable timestamp is 401 (no freshness, no replay defence), the verbatim example included", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const bodies = [
      JSON.stringify(NoteCreate),
      JSON.stringify({ ...NoteCreate, timestamp: "yesterday", webhookId: crypto.randomUUID() }),
      JSON.stringify({ ...AppUninstall, appId: TEST_BINDINGS.HIGHLEVEL_APP_ID }),
    ];
    for (const body of bodies) {
      const res = await h.post(body, { "x-ghl-signature": await sign(body) });
      expect(res.status, body).toBe(401);
      expect(JSON.stringify(await res.json())).toMatch(/timestamp/);
    }
    expect(h.sent).toHaveLength(0);
  });

  it("security: a missing signature is 401 and nothing is enqueued", async () => {
    const h = harness();
    const res = await h.post(fresh(OpportunityCreate), {});
    expect(res.status).toBe(401);
    expect(h.sent).toHaveLength(0);
  });

  it("security: a forged signature (untrusted key) and a tampered body are 401", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = fresh(OpportunityCreate);
    expect((await h.post(body, { "x-ghl-signature": await sign(body, "rogue") })).status).toBe(401);
    const signature = await sign(body);
    expect(
      (await h.post(body.replace('"monetaryValue":40', '"monetaryValue":4000000'), { "x-ghl-signature": signature }))
        .status,
    ).toBe(401);
    // An Ed25519 signature presented as the RSA one does not pass either.
    expect((await h.post(body, { "x-wh-signature": signature })).status).toBe(401);
    expect((await h.post(body, { "x-ghl-signature": "not base64 !!" })).status).toBe(401);
    expect(h.sent).toHaveLength(0);
  });

  it("security: a stale timestamp (> 5 minutes) is rejected even with a valid signature", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = JSON.stringify({
      ...OpportunityCreate,
      timestamp: new Date(Date.now() - 6 * 60 * 1000).toISOString(),
      webhookId: crypto.randomUUID(),
    });
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(401);
    expect(h.sent).toHaveLength(0);
  });

  it("security: a repeated webhookId is answered 200 and enqueued again, and the consumer hands it to its handler once", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = fresh(OpportunityUpdate);
    const webhookId: unknown = JSON.parse(body).webhookId;
    const signature = await sign(body);
    const original = await h.post(body, { "x-ghl-signature": signature });
    const replay = await h.post(body, { "x-ghl-signature": signature });
    expect([original.status, replay.status]).toEqual([200, 200]);
    expect(await replay.json()).toEqual({ ok: true, status: "accepted" });
    expect(h.sent.map(webhookIdOf)).toEqual([webhookId, webhookId]);
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(h.sent, handlers);
    expect(reached).toEqual([webhookId]);
    // The replay is acked as a duplicate, not retried.
    expect(run.acked.sort()).toEqual([...run.ids].sort());
    expect(run.retried).toEqual([]);
  });

  it("security: a redelivery arriving in a later batch is dropped by the consumer, while a retry of the queue message that claimed it is processed again", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = fresh(OpportunityUpdate);
    const webhookId: unknown = JSON.parse(body).webhookId;
    const signature = await sign(body);
    expect((await h.post(body, { "x-ghl-signature": signature })).status).toBe(200);
    const firstBatch = recordingHandlers();
    const claimed = await runBatch(h.sent.slice(0, 1), firstBatch.handlers);
    expect(firstBatch.reached).toEqual([webhookId]);

    // HighLevel sends the same delivery again after the first batch ran: enqueued, then dropped.
    const replay = await h.post(body, { "x-ghl-signature": signature });
    expect(await replay.json()).toEqual({ ok: true, status: "accepted" });
    expect(h.sent).toHaveLength(2);
    const laterBatch = recordingHandlers();
    const dropped = await runBatch(h.sent.slice(1), laterBatch.handlers);
    expect(laterBatch.reached).toEqual([]);
    expect(dropped.acked).toEqual(dropped.ids);
    expect(dropped.retried).toEqual([]);

    // Queues redelivers the claiming message itself (same id, e.g. its handler failed): processed.
    const retryBatch = recordingHandlers();
    await runBatch(h.sent.slice(0, 1), retryBatch.handlers, { ids: claimed.ids });
    expect(retryBatch.reached).toEqual([webhookId]);
  });

  it("error: a signed body that is not JSON is 400", async () => {
    const h = harness();
    const body = "type=OpportunityCreate";
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(400);
  });

  it("error: a body over the limit is 413", async () => {
    const h = harness();
    const body = JSON.stringify({ type: "OpportunityCreate", pad: "x".repeat(300 * 1024) });
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(413);
  });

  it("error: an event for an unknown location is accepted and enqueued; the consumer acks it without marking the record or enqueuing a job", async () => {
    const h = harness();
    const unknownLocation = `unknown-${crypto.randomUUID()}`;
    const unknownOpportunity = `opp-unknown-${crypto.randomUUID()}`;
    const body = fresh({ ...OpportunityCreate, locationId: unknownLocation, id: unknownOpportunity });
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, status: "accepted" });
    expect(h.sent).toEqual([
      expect.objectContaining({
        kind: "highlevel.webhook",
        locationId: unknownLocation,
        webhookId: JSON.parse(body).webhookId,
      }),
    ]);

    // Control, in the same batch: the same event for a location an account uses gets its job.
    const knownLocation = `known-${crypto.randomUUID()}`;
    const knownOpportunity = `opp-known-${crypto.randomUUID()}`;
    await createAccount(env.DB, {
      id: `acct-${crypto.randomUUID()}`,
      name: "Webhook test",
      locations: [knownLocation],
    });
    const known = fresh({ ...OpportunityCreate, locationId: knownLocation, id: knownOpportunity });
    expect((await h.post(known, { "x-ghl-signature": await sign(known) })).status).toBe(200);
    expect(h.sent).toHaveLength(2);

    // The engine's real handler; its dependencies only record the jobs it enqueues.
    const jobs: QueueMessageInput[] = [];
    const deps: JobDeps = {
      connectors: async () => {
        throw new Error("no provider call is expected here");
      },
      fourdegreesWebhooks,
      enqueue: async (message) => void jobs.push(message),
      now: () => Date.now(),
      coalesceDelaySeconds: 0,
    };
    const engine = syncHandlers(() => deps)["highlevel.webhook"];
    if (!engine) throw new Error("the engine has no highlevel.webhook handler");
    const reached: unknown[] = [];
    const handlers: Handlers = {
      "highlevel.webhook": async (msg, ctx) => (reached.push(msg.locationId), engine(msg, ctx)),
    };
    const run = await runBatch(h.sent, handlers);
    expect(reached).toEqual([unknownLocation, knownLocation]);
    expect(run.acked).toEqual(run.ids);
    expect(run.retried).toEqual([]);
    expect(jobs).toEqual([
      expect.objectContaining({ kind: "sync.record", side: "highlevel", record: "deal", recordId: knownOpportunity }),
    ]);
    const marked = await env.DB.prepare(
      "SELECT record_id FROM pending_records WHERE side = 'highlevel' AND record_id IN (?, ?)",
    )
      .bind(unknownOpportunity, knownOpportunity)
      .all<{ record_id: string }>();
    expect(marked.results.map((r) => r.record_id)).toEqual([knownOpportunity]);
  });

  it("error: when the queue refuses, HighLevel gets 429 and its retry is accepted later", async () => {
    await connect(KNOWN_LOCATION);
    const body = fresh(OpportunityCreate);
    const signature = await sign(body);
    const down = await harness({ queueFails: true }).post(body, { "x-ghl-signature": signature });
    expect(down.status).toBe(429);
    expect(down.headers.get("retry-after")).toBeTruthy();
    const up = harness();
    const retry = await up.post(body, { "x-ghl-signature": signature });
    expect(retry.status).toBe(200);
    expect(up.sent).toHaveLength(1);
  });

  it("error: with D1 down the delivery is still answered 200 and enqueued; the consumer cannot claim it, so it is retried without reaching its handler, and processed once D1 is back", async () => {
    const h = harness({ dbFails: true });
    const body = fresh(OpportunityCreate);
    const webhookId: unknown = JSON.parse(body).webhookId;
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, status: "accepted" });
    expect(h.sent.map(webhookIdOf)).toEqual([webhookId]);

    const down = recordingHandlers();
    const failed = await runBatch(h.sent, down.handlers, { db: h.db });
    expect(down.reached).toEqual([]);
    expect(failed.retried).toEqual(failed.ids);
    expect(failed.acked).toEqual([]);

    // Queues retries the same message once D1 is back: nothing was claimed, so it is processed.
    const back = recordingHandlers();
    const retried = await runBatch(h.sent, back.handlers, { ids: failed.ids });
    expect(back.reached).toEqual([webhookId]);
    expect(retried.acked).toEqual(retried.ids);
  });

  it("happy: UNINSTALL (official example, with this app's id) retires the location's connection", async () => {
    const locationId = AppUninstall.locationId;
    await connect(locationId);
    const h = harness();
    const body = fresh({ ...AppUninstall, appId: TEST_BINDINGS.HIGHLEVEL_APP_ID });
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "applied" });
    const row = await getConnection(env.DB, locationConnectionId(locationId));
    expect(row?.status).toBe("uninstalled");
    expect(row?.accessTokenEnc).toBeNull();
    expect(
      await tokenGate(env, locationConnectionId(locationId)).accessToken(locationConnectionId(locationId)),
    ).toMatchObject({ ok: false, category: "reconnect" });
    expect(h.sent).toHaveLength(0);
  });

  it("security: a validly signed UNINSTALL of another app (or naming no app) leaves the location's and the agency's tokens intact", async () => {
    const locationId = `foreign-${crypto.randomUUID()}`;
    const companyId = `co-${crypto.randomUUID()}`;
    await connect(locationId);
    const agency = companyConnectionId(companyId);
    await tokenGate(env, agency).installTokens({
      connectionId: agency,
      kind: "company",
      locationId: null,
      companyId,
      tokenSource: "refresh",
      accessToken: "at-agency",
      refreshToken: "rt-agency",
      expiresInSeconds: 86399,
      scopes: [],
      userId: null,
      appId: null,
    });
    const h = harness();
    const foreign = [
      { type: "UNINSTALL", appId: "otherAppId0123456789", locationId },
      { type: "UNINSTALL", appId: "otherAppId0123456789", companyId },
      { type: "UNINSTALL", locationId },
      { type: "UNINSTALL", companyId },
    ];
    for (const event of foreign) {
      const body = fresh(event);
      const res = await h.post(body, { "x-ghl-signature": await sign(body) });
      expect(res.status, body).toBe(200);
      expect(await res.json()).toEqual({ ok: true, status: "ignored", reason: "foreign app" });
    }
    for (const id of [locationConnectionId(locationId), agency]) {
      const row = await getConnection(env.DB, id);
      expect(row?.status, id).toBe("active");
      expect(row?.accessTokenEnc, id).not.toBeNull();
      expect(await tokenGate(env, id).accessToken(id), id).toMatchObject({ ok: true });
    }
    // The same deliveries with this app's id do retire them: the refusal above was the app id's.
    for (const event of foreign.slice(0, 2)) {
      const body = fresh({ ...event, appId: TEST_BINDINGS.HIGHLEVEL_APP_ID });
      expect(await (await h.post(body, { "x-ghl-signature": await sign(body) })).json()).toMatchObject({
        status: "applied",
      });
    }
    expect((await getConnection(env.DB, agency))?.status).toBe("uninstalled");
    expect((await getConnection(env.DB, locationConnectionId(locationId)))?.status).toBe("uninstalled");
  });

  it("security: another app's INSTALL and location events are ignored, not applied or enqueued", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const install = fresh({
      type: "INSTALL",
      appId: "otherAppId0123456789",
      installType: "Location",
      locationId: `foreign-${crypto.randomUUID()}`,
      companyId: "co",
    });
    const update = fresh({ ...OpportunityUpdate, appId: "otherAppId0123456789" });
    for (const body of [install, update]) {
      const res = await h.post(body, { "x-ghl-signature": await sign(body) });
      expect(await res.json()).toEqual({ ok: true, status: "ignored", reason: "foreign app" });
    }
    expect(h.sent).toHaveLength(0);
    const receipts = await env.DB.prepare("SELECT COUNT(*) AS n FROM webhook_receipts WHERE webhook_id = ?")
      .bind(JSON.parse(install).webhookId)
      .first<{ n: number }>();
    expect(receipts?.n).toBe(0);
    // This app's id on a location event is accepted as usual.
    const ours = fresh({ ...OpportunityUpdate, appId: TEST_BINDINGS.HIGHLEVEL_APP_ID });
    expect(await (await h.post(ours, { "x-ghl-signature": await sign(ours) })).json()).toEqual({
      ok: true,
      status: "accepted",
    });
  });

  it("security: a signed event whose queue message cannot fit Queues' 128 KB is 413, not a 429 HighLevel would retry forever", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const body = fresh({ ...OpportunityUpdate, name: "x".repeat(130_000) });
    expect(body.length).toBeLessThan(256 * 1024);
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(413);
    expect(JSON.stringify(await res.json())).toMatch(/queue message/);
    expect(h.sent).toHaveLength(0);
    expect(await wasDeferred(env.DB, "highlevel", JSON.parse(body).webhookId, 0)).toBe(false);
  });

  it("security: a signed body nested deeper than the cap is 400 before it is parsed or enqueued", async () => {
    await connect(KNOWN_LOCATION);
    const h = harness();
    const depth = 100_000;
    const body = fresh({ ...OpportunityUpdate, extra: "DEEP" }).replace(
      '"DEEP"',
      "[".repeat(depth) + "]".repeat(depth),
    );
    expect(body.length).toBeLessThan(256 * 1024);
    const res = await h.post(body, { "x-ghl-signature": await sign(body) });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/deeper than 32/);
    expect(h.sent).toHaveLength(0);
  });
});
