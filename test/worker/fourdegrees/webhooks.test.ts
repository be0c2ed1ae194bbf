/**
 * `POST /webhooks/4degrees` and the Standard Webhooks verifier: signed deliveries are accepted and
 * enqueued once; forged, stale, unsigned, duplicate, malformed and oversized ones are refused.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FourDegreesConnector } from "../../../src/fourdegrees/connector.ts";
import { FourDegreesClient, passThroughGate } from "../../../src/fourdegrees/client.ts";
import { createWebhookVerifier, signWebhook } from "../../../src/fourdegrees/webhook.ts";
import { createApp } from "../../../src/http/app.ts";
import { QueueMessageSchema } from "../../../src/sync/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import stageChanged from "../../fixtures/fourdegrees/deal-stage-changed.json";
import noteCreated from "../../fixtures/fourdegrees/note-created.json";

const SECRET = TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET;
const app = createApp();

/** The app with a recording (or failing) queue in place of SYNC_QUEUE. */
function withQueue(options: { fail?: boolean; db?: D1Database } = {}) {
  const sent: unknown[] = [];
  const queue = {
    async send(body: unknown) {
      if (options.fail) throw new Error("queue unavailable");
      sent.push(body);
    },
    async sendBatch() {
      throw new Error("not used");
    },
  };
  const testEnv = { ...env, SYNC_QUEUE: queue, ...(options.db ? { DB: options.db } : {}) };
  return { sent, call: (req: Request) => app.fetch(req, testEnv) };
}

let counter = 0;
async function signed(body: string, options: { id?: string; at?: number; secret?: string } = {}) {
  const id = options.id ?? `msg_${Date.now()}_${++counter}`;
  const headers = await signWebhook(options.secret ?? SECRET, id, options.at ?? Date.now() / 1000, body);
  return new Request("http://worker.test/webhooks/4degrees", { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

describe("POST /webhooks/4degrees", () => {
  it("happy: a signed delivery is enqueued once as fourdegrees.webhook", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const res = await call(await signed(body));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, duplicate: false });
    expect(sent).toHaveLength(1);
    const msg = QueueMessageSchema.parse(sent[0]);
    expect(msg).toMatchObject({ v: 1, kind: "fourdegrees.webhook", workspaceId: "ws_demo", type: "deal.stage_changed", body: stageChanged });
  });

  it("happy: the queued body parses into the engine's ChangeEvent (no 4Degrees names leak)", async () => {
    const connector = new FourDegreesConnector(new FourDegreesClient({ baseUrl: "http://unused.test", apiKey: "k", gate: passThroughGate }));
    const deal = connector.parseWebhook(stageChanged);
    expect(deal).toMatchObject({ id: "evt_01JDX4T5Q1", type: "deal.stage_changed", scopeId: "ws_demo", actor: { type: "user", id: "usr_alex" }, record: { kind: "deal", id: "deal_acme" }, changes: { stage: ["st_sourced", "st_diligence"] } });
    expect(deal.deal).toMatchObject({ version: "4", value: { amountMinor: 250_000_000, currency: "USD" }, stage: { id: "st_diligence" } });
    const note = connector.parseWebhook(noteCreated);
    expect(note).toMatchObject({ type: "note.created", actor: { type: "integration", id: "key_sync" }, record: { kind: "note", id: "note_1", dealId: "deal_acme" } });
    expect(() => connector.parseWebhook({ hello: "world" })).toThrow(/not a 4Degrees webhook event/);
  });

  it("happy: a signature list during rotation is accepted when any entry matches", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(noteCreated);
    const id = `rot_${Date.now()}`;
    const ts = Math.floor(Date.now() / 1000);
    const good = await signWebhook(SECRET, id, ts, body);
    const old = await signWebhook("whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LTEyMzQ=", id, ts, body);
    const headers = { ...good, "webhook-signature": `${old["webhook-signature"]} v1a,ignored ${good["webhook-signature"]}` };
    const res = await call(new Request("http://worker.test/webhooks/4degrees", { method: "POST", headers, body }));
    expect(res.status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("security: a redelivery of the same webhook-id is acknowledged but not enqueued again", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const id = `dup_${Date.now()}`;
    expect((await call(await signed(body, { id }))).status).toBe(200);
    const again = await call(await signed(body, { id }));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ ok: true, duplicate: true });
    expect(sent).toHaveLength(1);
  });

  it("security: a forged signature (wrong secret) is 401 and nothing is enqueued", async () => {
    const { sent, call } = withQueue();
    const res = await call(await signed(JSON.stringify(stageChanged), { secret: "whsec_Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0" }));
    expect(res.status).toBe(401);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("unauthorized");
    expect(sent).toHaveLength(0);
  });

  it("security: a body changed after signing is 401", async () => {
    const { sent, call } = withQueue();
    const req = await signed(JSON.stringify(stageChanged));
    const tampered = new Request(req.url, { method: "POST", headers: req.headers, body: JSON.stringify({ ...stageChanged, workspace_id: "ws_other" }) });
    expect((await call(tampered)).status).toBe(401);
    expect(sent).toHaveLength(0);
  });

  it("security: a stale timestamp (over 5 minutes) is 401, and so is one from the future", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    expect((await call(await signed(body, { at: Date.now() / 1000 - 301 }))).status).toBe(401);
    expect((await call(await signed(body, { at: Date.now() / 1000 + 301 }))).status).toBe(401);
    expect(sent).toHaveLength(0);
  });

  it("security: missing signature headers are 401", async () => {
    const { sent, call } = withQueue();
    const res = await call(new Request("http://worker.test/webhooks/4degrees", { method: "POST", body: JSON.stringify(stageChanged) }));
    expect(res.status).toBe(401);
    expect(sent).toHaveLength(0);
  });

  it("error: a signed body that is not a 4Degrees event is 400", async () => {
    const { sent, call } = withQueue();
    expect((await call(await signed("not json {"))).status).toBe(400);
    const res = await call(await signed(JSON.stringify({ id: "evt", type: "deal.exploded" })));
    expect(res.status).toBe(400);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("bad_request");
    expect(sent).toHaveLength(0);
  });

  it("error: a body over the limit is 413 before anything else", async () => {
    const { sent, call } = withQueue();
    const big = JSON.stringify({ ...stageChanged, pad: "x".repeat(100 * 1024) });
    const res = await call(await signed(big));
    expect(res.status).toBe(413);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("payload_too_large");
    expect(sent).toHaveLength(0);
  });

  it("error: a queue that cannot take the event answers 503 and forgets the receipt, so the retry is accepted", async () => {
    const body = JSON.stringify(stageChanged);
    const id = `q503_${Date.now()}`;
    const failing = withQueue({ fail: true });
    const res = await failing.call(await signed(body, { id }));
    expect(res.status).toBe(503);
    const working = withQueue();
    const retry = await working.call(await signed(body, { id }));
    expect(await retry.json()).toEqual({ ok: true, duplicate: false });
    expect(working.sent).toHaveLength(1);
  });

  it("error: D1 unavailable answers 503 (4Degrees retries)", async () => {
    const brokenDb = {
      prepare() {
        throw new Error("D1 is down");
      },
    };
    const { sent, call } = withQueue({ db: brokenDb as unknown as D1Database });
    const res = await call(await signed(JSON.stringify(stageChanged)));
    expect(res.status).toBe(503);
    expect(sent).toHaveLength(0);
  });
});

describe("Standard Webhooks verifier", () => {
  it("happy: accepts the exact bytes it was signed over, at the edge of the window", async () => {
    const now = 1_800_000_000_000;
    const verifier = createWebhookVerifier(SECRET, { now: () => now });
    const body = new TextEncoder().encode('{"a":1}');
    const headers = new Headers(await signWebhook(SECRET, "msg_1", now / 1000 - 300, body));
    await expect(verifier.verify(headers, body)).resolves.toBeUndefined();
  });

  it("security: rejects a non-numeric timestamp and a malformed signature list", async () => {
    const verifier = createWebhookVerifier(SECRET);
    const body = new TextEncoder().encode("{}");
    await expect(verifier.verify(new Headers({ "webhook-id": "a", "webhook-timestamp": "yesterday", "webhook-signature": "v1,AAAA" }), body)).rejects.toThrow(/unix seconds/);
    const ts = String(Math.floor(Date.now() / 1000));
    await expect(verifier.verify(new Headers({ "webhook-id": "a", "webhook-timestamp": ts, "webhook-signature": "v1,@@@ nonsense v2,AAAA" }), body)).rejects.toThrow(/no webhook-signature entry matches/);
  });
});
