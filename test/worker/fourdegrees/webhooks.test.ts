/**
 * `POST /webhooks/4degrees` and the Standard Webhooks verifier: signed deliveries are accepted and
 * enqueued without writing to D1 (redeliveries of a `webhook-id` included; the ingress only reads a
 * workspace's own secret, cached); forged, stale, unsigned, malformed, oversized and too-deep ones
 * are refused, and a workspace with its own secret accepts only that one. Deduplication lives in the queue consumer: the captured
 * messages go through the real `consumeBatch` (`runBatch`), which processes each delivery once.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { forgetWorkspaceSecret } from "../../../src/http/webhooks-fourdegrees.ts";
import { saveFourDegreesKey, setFourDegreesWebhookSecret } from "../../../src/store/fourdegrees-accounts.ts";
import { FourDegreesConnector } from "../../../src/fourdegrees/connector.ts";
import { FourDegreesClient, passThroughGate } from "../../../src/fourdegrees/client.ts";
import { createWebhookVerifier, signWebhook } from "../../../src/fourdegrees/webhook.ts";
import { createApp } from "../../../src/http/app.ts";
import type { Handlers } from "../../../src/queue/consumer.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import stageChanged from "../../fixtures/fourdegrees/deal-stage-changed.json";
import noteCreated from "../../fixtures/fourdegrees/note-created.json";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";

const SECRET = TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET;
const app = createApp();

/**
 * The app with a recording (or failing) queue in place of SYNC_QUEUE; like Queues, the queue
 * serialises each message and refuses one over 128 KB.
 */
function withQueue(options: { fail?: boolean; db?: D1Database } = {}) {
  const sent: unknown[] = [];
  const queue = {
    async send(body: unknown) {
      if (options.fail) throw new Error("queue unavailable");
      const size = new TextEncoder().encode(JSON.stringify(body)).length;
      if (size > 128_000) throw new Error(`Queue send failed: message length of ${size} bytes exceeds limit of 128000`);
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
  return new Request("http://worker.test/webhooks/4degrees", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

const ACCEPTED = { ok: true, status: "accepted" };

/** The 4Degrees receipts D1 holds for `webhookId` (written by the consumer's claim, never by the ingress). */
async function receipts(webhookId: string) {
  const { results } = await env.DB.prepare(
    "SELECT event_type, scope_id, message_id FROM webhook_receipts WHERE provider = 'fourdegrees' AND webhook_id = ?",
  )
    .bind(webhookId)
    .all();
  return results;
}

/** Message ids in a stable order (the consumer acks duplicates before it runs the handlers). */
const sorted = (ids: readonly string[]) => [...ids].sort();

/** A D1 that fails every call, the way an unavailable database does. */
function downDb(): D1Database {
  const down = () => {
    throw new Error("D1 is down");
  };
  return { prepare: down, batch: down, exec: down, dump: down, withSession: down } as unknown as D1Database;
}

describe("POST /webhooks/4degrees", () => {
  it("happy: a signed delivery is accepted and enqueued once as fourdegrees.webhook, and the ingress records nothing in D1", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const id = `happy_${Date.now()}`;
    const before = Date.now();
    const res = await call(await signed(body, { id }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(ACCEPTED);
    expect(sent).toHaveLength(1);
    const msg = QueueMessageSchema.parse(sent[0]);
    expect(msg).toMatchObject({
      v: 1,
      kind: "fourdegrees.webhook",
      webhookId: id,
      workspaceId: "ws_demo",
      type: "deal.stage_changed",
      body: stageChanged,
    });
    expect(msg.kind === "fourdegrees.webhook" ? msg.receivedAt : 0).toBeGreaterThanOrEqual(before);
    // The receipt is the consumer's to write: none exists until the message is consumed.
    expect(await receipts(id)).toEqual([]);
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(sent, handlers);
    expect(reached).toEqual([id]);
    expect(await receipts(id)).toEqual([
      { event_type: "deal.stage_changed", scope_id: "ws_demo", message_id: run.ids[0] },
    ]);
  });

  it("happy: the queued body parses into the engine's ChangeEvent (no 4Degrees names leak)", async () => {
    const connector = new FourDegreesConnector(
      new FourDegreesClient({ baseUrl: "http://unused.test", apiKey: "k", gate: passThroughGate }),
    );
    const deal = connector.parseWebhook(stageChanged);
    expect(deal).toMatchObject({
      id: "evt_01JDX4T5Q1",
      type: "deal.stage_changed",
      scopeId: "ws_demo",
      actor: { type: "user", id: "usr_alex" },
      record: { kind: "deal", id: "deal_acme" },
      changes: { stage: ["st_sourced", "st_diligence"] },
    });
    expect(deal.deal).toMatchObject({
      version: "4",
      value: { amountMinor: 250_000_000, currency: "USD" },
      stage: { id: "st_diligence" },
    });
    const note = connector.parseWebhook(noteCreated);
    expect(note).toMatchObject({
      type: "note.created",
      actor: { type: "integration", id: "key_sync" },
      record: { kind: "note", id: "note_1", dealId: "deal_acme" },
    });
    expect(() => connector.parseWebhook({ hello: "world" })).toThrow(/not a 4Degrees webhook event/);
  });

  it("happy: a signature list during rotation is accepted when any entry matches", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(noteCreated);
    const id = `rot_${Date.now()}`;
    const ts = Math.floor(Date.now() / 1000);
    const good = await signWebhook(SECRET, id, ts, body);
    const old = await signWebhook("whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LTEyMzQ=", id, ts, body);
    const headers = {
      ...good,
      "webhook-signature": `${old["webhook-signature"]} v1a,ignored ${good["webhook-signature"]}`,
    };
    const res = await call(new Request("http://worker.test/webhooks/4degrees", { method: "POST", headers, body }));
    expect(res.status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("security: a redelivery of the same webhook-id is acknowledged and enqueued again, and the consumer processes it once", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const id = `dup_${Date.now()}`;
    const first = await call(await signed(body, { id }));
    const again = await call(await signed(body, { id }));
    expect([first.status, again.status]).toEqual([200, 200]);
    expect([await first.json(), await again.json()]).toEqual([ACCEPTED, ACCEPTED]);
    expect(
      sent.map((m) => QueueMessageSchema.parse(m)).map((m) => m.kind === "fourdegrees.webhook" && m.webhookId),
    ).toEqual([id, id]);

    // Both arrive in one batch: the first message claims the delivery, the copy is acked unhandled.
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(sent, handlers);
    expect(reached).toEqual([id]);
    expect(sorted(run.acked)).toEqual(sorted(run.ids));
    expect(run.retried).toEqual([]);
    expect(await receipts(id)).toEqual([
      { event_type: "deal.stage_changed", scope_id: "ws_demo", message_id: run.ids[0] },
    ]);
  });

  it("security: a redelivery consumed in a later batch than the original is acked as a duplicate without reaching its handler", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const id = `later_${Date.now()}`;
    expect((await call(await signed(body, { id }))).status).toBe(200);
    const first = recordingHandlers();
    const original = await runBatch(sent.slice(0, 1), first.handlers);
    expect(first.reached).toEqual([id]);

    // 4Degrees redelivers after the original was consumed: accepted at the door, dropped by the consumer.
    const again = await call(await signed(body, { id }));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(ACCEPTED);
    expect(sent).toHaveLength(2);
    const second = recordingHandlers();
    const redelivery = await runBatch(sent.slice(1), second.handlers);
    expect(second.reached).toEqual([]);
    expect(sorted(redelivery.acked)).toEqual(sorted(redelivery.ids));
    expect(redelivery.retried).toEqual([]);
    // The claim still names the original's message.
    expect(await receipts(id)).toEqual([
      { event_type: "deal.stage_changed", scope_id: "ws_demo", message_id: original.ids[0] },
    ]);
  });

  it("happy: a retry of the queue message that claimed a delivery is processed again, while a redelivery beside it is dropped", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const id = `retry_${Date.now()}`;
    expect((await call(await signed(body, { id }))).status).toBe(200);
    expect((await call(await signed(body, { id }))).status).toBe(200);
    const [message, redelivered] = sent;

    // The handler fails transiently: the claiming message is retried, not acked.
    const attempts: string[] = [];
    const failing: Handlers = {
      "fourdegrees.webhook": async (msg) => {
        attempts.push(msg.webhookId);
        return { kind: "retry", reason: "4Degrees API unavailable" };
      },
    };
    const first = await runBatch([message], failing);
    expect(attempts).toEqual([id]);
    expect(first.retried).toEqual(first.ids);
    expect(first.acked).toEqual([]);

    // Queues redelivers that same message (same id) together with 4Degrees' redelivery (a new message).
    const { handlers, reached } = recordingHandlers();
    const next = await runBatch([message, redelivered], handlers, { ids: [first.ids[0] ?? "", crypto.randomUUID()] });
    expect(reached).toEqual([id]);
    expect(sorted(next.acked)).toEqual(sorted(next.ids));
    expect(next.retried).toEqual([]);
    expect(await receipts(id)).toEqual([
      { event_type: "deal.stage_changed", scope_id: "ws_demo", message_id: first.ids[0] },
    ]);
  });

  it("security: a forged signature (wrong secret) is 401 and nothing is enqueued", async () => {
    const { sent, call } = withQueue();
    const res = await call(
      await signed(JSON.stringify(stageChanged), { secret: "whsec_Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0" }),
    );
    expect(res.status).toBe(401);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("unauthorized");
    expect(sent).toHaveLength(0);
  });

  it("security: a body changed after signing is 401", async () => {
    const { sent, call } = withQueue();
    const req = await signed(JSON.stringify(stageChanged));
    const tampered = new Request(req.url, {
      method: "POST",
      headers: req.headers,
      body: JSON.stringify({ ...stageChanged, workspace_id: "ws_other" }),
    });
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
    const res = await call(
      new Request("http://worker.test/webhooks/4degrees", { method: "POST", body: JSON.stringify(stageChanged) }),
    );
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

  it("error: a queue that cannot take the event answers 503 and records nothing in D1, so 4Degrees' retry is accepted and processed", async () => {
    const body = JSON.stringify(stageChanged);
    const id = `q503_${Date.now()}`;
    const failing = withQueue({ fail: true });
    const res = await failing.call(await signed(body, { id }));
    expect(res.status).toBe(503);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("upstream_unavailable");
    expect(failing.sent).toEqual([]);
    expect(await receipts(id)).toEqual([]);

    const working = withQueue();
    const retry = await working.call(await signed(body, { id }));
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual(ACCEPTED);
    expect(working.sent).toHaveLength(1);
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(working.sent, handlers);
    expect(reached).toEqual([id]);
    expect(sorted(run.acked)).toEqual(sorted(run.ids));
  });

  it("error: with D1 down the ingress still answers 200 and enqueues for a workspace it has seen; the consumer's claim fails, so the deliveries are retried and none reaches a handler", async () => {
    const body = JSON.stringify(stageChanged);
    const id = `d1down_${Date.now()}`;
    // The workspace's secret lookup is cached (and kept through an outage) once seen.
    forgetWorkspaceSecret("ws_demo");
    expect((await withQueue().call(await signed(body))).status).toBe(200);
    const { sent, call } = withQueue({ db: downDb() });
    const res = await call(await signed(body, { id }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(ACCEPTED);
    const otherId = `d1down_note_${Date.now()}`;
    const other = await call(await signed(JSON.stringify(noteCreated), { id: otherId }));
    expect(other.status).toBe(200);
    expect(sent).toHaveLength(2);

    const down = recordingHandlers();
    const run = await runBatch(sent, down.handlers, { db: downDb() });
    expect(down.reached).toEqual([]);
    expect(sorted(run.retried)).toEqual(sorted(run.ids));
    expect(run.acked).toEqual([]);
    expect(await receipts(id)).toEqual([]);

    // D1 is back: Queues retries the same messages (same ids), and each is processed once.
    const back = recordingHandlers();
    const retry = await runBatch(sent, back.handlers, { ids: run.ids });
    expect(back.reached).toEqual([id, otherId]);
    expect(sorted(retry.acked)).toEqual(sorted(retry.ids));
    expect(await receipts(id)).toEqual([
      { event_type: "deal.stage_changed", scope_id: "ws_demo", message_id: run.ids[0] },
    ]);
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
    await expect(
      verifier.verify(
        new Headers({ "webhook-id": "a", "webhook-timestamp": "yesterday", "webhook-signature": "v1,AAAA" }),
        body,
      ),
    ).rejects.toThrow(/unix seconds/);
    const ts = String(Math.floor(Date.now() / 1000));
    await expect(
      verifier.verify(
        new Headers({ "webhook-id": "a", "webhook-timestamp": ts, "webhook-signature": "v1,@@@ nonsense v2,AAAA" }),
        body,
      ),
    ).rejects.toThrow(/no webhook-signature entry matches/);
  });
});

describe("POST /webhooks/4degrees: limits", () => {
  it("security: more than 5 signature entries, or a header over 1,024 characters, is 401 even when one entry is valid", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify(stageChanged);
    const id = `many_${Date.now()}`;
    const good = await signWebhook(SECRET, id, Date.now() / 1000, body);
    const filler = (n: number) =>
      Array.from({ length: n }, () => "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").join(" ");
    const six = await call(
      new Request("http://worker.test/webhooks/4degrees", {
        method: "POST",
        headers: { ...good, "webhook-signature": `${filler(5)} ${good["webhook-signature"]}` },
        body,
      }),
    );
    expect(six.status).toBe(401);
    expect(JSON.stringify(await six.json())).toMatch(/6 entries; at most 5/);
    const huge = await call(
      new Request("http://worker.test/webhooks/4degrees", {
        method: "POST",
        headers: { ...good, "webhook-signature": `${filler(1_500)} ${good["webhook-signature"]}` },
        body,
      }),
    );
    expect(huge.status).toBe(401);
    expect(JSON.stringify(await huge.json())).toMatch(/longer than 1024/);
    // Five entries (a rotation) with the valid one last still pass.
    const five = await call(
      new Request("http://worker.test/webhooks/4degrees", {
        method: "POST",
        headers: { ...good, "webhook-signature": `${filler(4)} ${good["webhook-signature"]}` },
        body,
      }),
    );
    expect(five.status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("security: the HMAC is computed once per delivery, however many entries the header lists", async () => {
    const verifier = createWebhookVerifier(SECRET);
    const body = new TextEncoder().encode(JSON.stringify(noteCreated));
    const good = await signWebhook(SECRET, "msg_once", Date.now() / 1000, body);
    const wrong = Array.from({ length: 4 }, (_, i) => `v1,${btoa(String(i).repeat(32))}`).join(" ");
    const sign = vi.spyOn(crypto.subtle, "sign");
    const verify = vi.spyOn(crypto.subtle, "verify");
    try {
      await verifier.verify(
        new Headers({ ...good, "webhook-signature": `${wrong} ${good["webhook-signature"]}` }),
        body,
      );
      await expect(verifier.verify(new Headers({ ...good, "webhook-signature": wrong }), body)).rejects.toThrow(
        /no webhook-signature entry matches/,
      );
      expect(sign.mock.calls.length + verify.mock.calls.length).toBe(2);
    } finally {
      sign.mockRestore();
      verify.mockRestore();
    }
  });

  it("security: a signed event whose queue message cannot fit Queues' 128 KB is 413, not a 503 4Degrees would retry", async () => {
    const { sent, call } = withQueue();
    // 1e20 is 4 bytes in the body and 21 in the re-serialised message: the raw size says nothing.
    const numbers = Array.from({ length: 18_000 }, () => "1e20").join(",");
    const body = JSON.stringify({
      ...stageChanged,
      data: { object: { ...stageChanged.data.object, big: "NUMS" } },
    }).replace('"NUMS"', `[${numbers}]`);
    expect(body.length).toBeLessThan(96 * 1024);
    const res = await call(await signed(body));
    expect(res.status).toBe(413);
    expect(JSON.stringify(await res.json())).toMatch(/queue message/);
    expect(sent).toEqual([]);
  });

  it("security: a signed body nested deeper than 32 levels is 400 and not enqueued", async () => {
    const { sent, call } = withQueue();
    const body = JSON.stringify({
      ...stageChanged,
      data: { object: { ...stageChanged.data.object, deep: "DEEP" } },
    }).replace('"DEEP"', "[".repeat(40_000) + "]".repeat(40_000));
    const res = await call(await signed(body));
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/deeper than 32/);
    expect(sent).toEqual([]);
  });
});

describe("POST /webhooks/4degrees: a secret per workspace", () => {
  const OWN = "whsec_d29ya3NwYWNlLW93bi1zZWNyZXQtMDEyMzQ1Njc4OQ==";
  const keys = () => loadConfig(env).TOKEN_ENCRYPTION_KEY;
  /** An account paired with a fresh workspace, with (or without) its own webhook secret. */
  async function workspace(own: string | null): Promise<string> {
    const workspaceId = `ws_${crypto.randomUUID().slice(0, 8)}`;
    const accountId = `acc-${workspaceId}`;
    await saveFourDegreesKey(env.DB, keys(), {
      accountId,
      accountName: accountId,
      apiKey: `4d_key_${workspaceId}`,
      workspaceId,
      actor: null,
    });
    if (own) await setFourDegreesWebhookSecret(env.DB, keys(), accountId, own);
    forgetWorkspaceSecret(workspaceId);
    return workspaceId;
  }
  const eventFor = (workspaceId: string) => JSON.stringify({ ...stageChanged, workspace_id: workspaceId });

  it("security: a workspace with its own secret accepts only it; the global secret no longer signs for it", async () => {
    const { sent, call } = withQueue();
    const ws = await workspace(OWN);
    const global = await call(await signed(eventFor(ws)));
    expect(global.status).toBe(401);
    const own = await call(await signed(eventFor(ws), { secret: OWN }));
    expect(own.status).toBe(200);
    expect(
      sent.map((m) => QueueMessageSchema.parse(m)).map((m) => m.kind === "fourdegrees.webhook" && m.workspaceId),
    ).toEqual([ws]);
    const row = await env.DB.prepare("SELECT webhook_secret_enc FROM fourdegrees_accounts WHERE workspace_id = ?")
      .bind(ws)
      .first<{ webhook_secret_enc: string }>();
    expect(row?.webhook_secret_enc).toMatch(/^v1\.k1\./);
    expect(row?.webhook_secret_enc).not.toContain(OWN.slice(6));
  });

  it("security: one workspace's secret cannot sign an event naming another workspace", async () => {
    const { sent, call } = withQueue();
    const attacker = await workspace(OWN);
    void attacker;
    const victimOwn = await workspace("whsec_dmljdGltLXdvcmtzcGFjZS1zZWNyZXQtOTg3NjU0");
    const victimGlobal = await workspace(null);
    for (const victim of [victimOwn, victimGlobal])
      expect((await call(await signed(eventFor(victim), { secret: OWN }))).status, victim).toBe(401);
    // A workspace without its own secret (and one we do not know) still verifies with the global one.
    expect((await call(await signed(eventFor(victimGlobal)))).status).toBe(200);
    expect((await call(await signed(eventFor("ws_unknown_to_us")))).status).toBe(200);
    expect(sent).toHaveLength(2);
  });

  it("error: D1 unavailable while looking up the workspace's secret is a 503 (4Degrees retries), not a 401", async () => {
    const { sent, call } = withQueue({ db: downDb() });
    const res = await call(await signed(eventFor(`ws_uncached_${Date.now()}`)));
    expect(res.status).toBe(503);
    expect(sent).toEqual([]);
  });
});

describe("Standard Webhooks verifier: the spec's test vector", () => {
  it("happy: signs and verifies the Standard Webhooks reference example byte for byte", async () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const body = '{"test": 2432232314}';
    const headers = await signWebhook(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
    expect(headers["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    const verifier = createWebhookVerifier(secret, { now: () => 1614265330_000 });
    await expect(verifier.verify(new Headers(headers), new TextEncoder().encode(body))).resolves.toBeUndefined();
  });
});
