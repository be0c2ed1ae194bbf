/**
 * The 4Degrees webhook ingress end to end, against the 4Degrees sandbox in-process: the
 * sandbox signs and delivers real deliveries (manual mode, `flush()`), the Worker's own `fetch`
 * answers them, the messages it sends on its `SYNC_QUEUE` binding are captured, and the captured
 * messages go through the real consumer (`runBatch`: the batch's webhook claim, then recording
 * handlers). Captured, not forwarded: the queue's background consumer would otherwise claim the
 * same deliveries under other message ids, racing the test's batches.
 *
 * - changes made "as a user" through the control API arrive signed, are answered 200 and are on
 *   the queue once, as `fourdegrees.webhook` messages carrying the exact event; the consumer
 *   processes each once and records its receipt;
 * - duplicated deliveries (the sandbox's seeded fault) are each accepted and enqueued; the
 *   consumer processes each event once, and so does it for a delivery replayed by hand later;
 * - a delivery tampered in transit, one signed with a secret the Worker does not hold, and one
 *   whose timestamp is more than 5 minutes off the Worker's clock (sandbox clock advanced) are
 *   answered 401, nothing is queued, and the sandbox keeps retrying them;
 * - during a secret rotation (the sandbox signs with both secrets) deliveries are accepted.
 */
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";
import { useNetwork } from "../helpers/network.ts";

const WEBHOOK_URL = "http://worker.test/webhooks/4degrees";
const CONTROL = "http://sandbox.test/_sandbox/4degrees";
/** A well-formed signing secret the Worker does not hold. */
const OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LW5vdC10aGUtd29ya2Vycy0xMjM0";

let sb: Sandbox;
let seed = 4_100;
/** Messages the Worker sent on its real queue binding during the current test. */
let queued: QueueMessage[];

const net = useNetwork(() => ({
  "sandbox.test": (r) => sb.fetch(r),
  "worker.test": (r) => exports.default.fetch(r),
}));

beforeEach(async () => {
  // A new seed per test: event ids come from the seed, and D1 receipts outlive a test.
  sb = createSandbox({ webhookMode: "manual", seed: ++seed });
  await control("POST", "/seed");
  await control("POST", "/webhooks/subscribers", { url: WEBHOOK_URL });
  queued = [];
  // Capture every send of the Worker's queue binding (see the file comment for why it goes no further).
  vi.spyOn(env.SYNC_QUEUE, "send").mockImplementation(async (body) => {
    queued.push(QueueMessageSchema.parse(body));
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** One control-API call; fails the test on a non-2xx answer. */
async function control(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${CONTROL}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const json: unknown = await res.json();
  expect(res.ok, `${method} ${path} → ${res.status} ${JSON.stringify(json)}`).toBe(true);
  return json;
}

/** Delivers every due delivery (sandbox time) and answers how many were attempted. */
async function flush(): Promise<number> {
  const res = await fetch(`${CONTROL}/webhooks/flush`, { method: "POST" });
  const { attempted } = await res.json<{ attempted: number }>();
  return attempted;
}

function demo() {
  const summary = sb.fourdegrees.demo;
  if (!summary) throw new Error("the 4Degrees demo is not seeded");
  return summary;
}

/** Moves the first demo deal to another stage as the second demo user (one deal.stage_changed event). */
async function moveStageAsUser(): Promise<{ dealId: string; stageId: string; userId: string }> {
  const { dealIds, stageIds, userIds } = demo();
  const dealId = dealIds[0]!;
  const current = sb.fourdegrees.deal(dealId).stage_id;
  const stageId = stageIds.find((s) => s !== current && s !== stageIds.at(-1) && s !== stageIds.at(-2))!;
  const userId = userIds[1]!;
  await control("PATCH", `/deals/${dealId}?as=${userId}`, { stage_id: stageId });
  return { dealId, stageId, userId };
}

const webhookIdOf = (m: QueueMessage | undefined) => (m?.kind === "fourdegrees.webhook" ? m.webhookId : null);
const sorted = (ids: readonly string[]) => [...ids].sort();

const statuses = (type?: string) => sb.fourdegrees.deliveries(type).map((d) => d.attempts.map((a) => a.status));

describe("4Degrees sandbox → POST /webhooks/4degrees", () => {
  it("happy: a user's stage change and note arrive signed, are answered 200, queued once with the exact event, and processed once by the consumer, which records their receipts", async () => {
    const { dealId, stageId, userId } = await moveStageAsUser();
    await control("POST", `/deals/${dealId}/notes?as=${userId}`, { body: "Partner call booked for Thursday." });
    expect(await flush()).toBe(2);

    const deliveries = sb.fourdegrees.deliveries();
    expect(deliveries.map((d) => [d.eventType, d.state, d.attempts.map((a) => a.status)])).toEqual([
      ["deal.stage_changed", "delivered", [200]],
      ["note.created", "delivered", [200]],
    ]);
    expect(queued).toHaveLength(2);
    for (const [i, d] of deliveries.entries()) {
      const msg = queued[i];
      expect(msg).toMatchObject({
        v: 1,
        kind: "fourdegrees.webhook",
        webhookId: d.payload.id,
        workspaceId: demo().workspaceId,
        type: d.eventType,
      });
      // The message carries the verified event exactly as 4Degrees sent it.
      expect(msg?.kind === "fourdegrees.webhook" ? msg.body : null).toEqual(JSON.parse(d.body));
    }
    const stageEvent = queued[0];
    expect(stageEvent?.kind === "fourdegrees.webhook" ? stageEvent.body : null).toMatchObject({
      actor: { type: "user", id: userId },
      data: { object: { id: dealId, stage_id: stageId } },
      changes: { stage_id: [expect.any(String), stageId] },
    });
    const ids = deliveries.map((d) => d.payload.id);
    const receiptsQuery = env.DB.prepare(
      "SELECT webhook_id, event_type, scope_id, message_id FROM webhook_receipts WHERE provider = 'fourdegrees' AND webhook_id IN (?, ?) ORDER BY event_type",
    ).bind(ids[0], ids[1]);
    // The ingress writes nothing: the receipts are the consumer's claim.
    expect((await receiptsQuery.all()).results).toEqual([]);

    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(queued, handlers);
    expect(reached).toEqual(ids);
    expect(sorted(run.acked)).toEqual(sorted(run.ids));
    expect((await receiptsQuery.all()).results).toEqual([
      { webhook_id: ids[0], event_type: "deal.stage_changed", scope_id: demo().workspaceId, message_id: run.ids[0] },
      { webhook_id: ids[1], event_type: "note.created", scope_id: demo().workspaceId, message_id: run.ids[1] },
    ]);
  });

  it("security: duplicated deliveries (sandbox fault) are each acknowledged and enqueued, and the consumer processes each event once", async () => {
    await control("PUT", "/faults", { webhookDuplicateRate: 1 });
    await moveStageAsUser();
    const { dealIds, userIds } = demo();
    await control("PATCH", `/deals/${dealIds[1]}?as=${userIds[0]}`, { owner_id: userIds[2] });
    // A copy is due 1 ms after its original; move sandbox time so every delivery is due.
    await control("POST", "/time/advance", { ms: 1_000 });
    expect(await flush()).toBe(4);

    const deliveries = sb.fourdegrees.deliveries();
    const copies = deliveries.filter((d) => d.duplicateOf !== undefined);
    expect(copies).toHaveLength(2);
    // Every copy carries the same event (same webhook-id) as its original, and all were answered 2xx.
    for (const copy of copies)
      expect(copy.payload.id).toBe(deliveries.find((d) => d.id === copy.duplicateOf)?.payload.id);
    expect(deliveries.every((d) => d.state === "delivered" && d.attempts.length === 1)).toBe(true);
    // The ingress has no memory of deliveries: every copy is on the queue, with its original's webhook-id.
    expect(queued.map(webhookIdOf)).toEqual(deliveries.map((d) => d.payload.id));

    const { handlers, reached } = recordingHandlers();
    const run = await runBatch(queued, handlers);
    const originals = deliveries.filter((d) => d.duplicateOf === undefined);
    expect(originals.map((d) => d.eventType)).toEqual(["deal.stage_changed", "deal.owner_changed"]);
    expect(reached).toEqual(originals.map((d) => d.payload.id));
    // The copies are acked as duplicates (not retried, so Queues does not bring them back).
    expect(sorted(run.acked)).toEqual(sorted(run.ids));
    expect(run.retried).toEqual([]);
  });

  it("security: a delivery tampered with in transit is 401 and not queued; the sandbox's untampered retry is accepted", async () => {
    const original = (request: Request) => fetch(request);
    sb.fourdegrees.webhooks.setFetch(async (request) => {
      // Same signed headers, a body changed after signing: the deal's value is inflated.
      const event: unknown = await request.json();
      const tampered = JSON.stringify(event).replace(
        /"amount_minor":(\d+)/,
        (_m, n: string) => `"amount_minor":${Number(n) * 10}`,
      );
      expect(tampered).not.toBe(JSON.stringify(event));
      return fetch(new Request(request.url, { method: "POST", headers: request.headers, body: tampered }));
    });
    await moveStageAsUser();
    await flush();
    expect(statuses()).toEqual([[401]]);
    expect(sb.fourdegrees.deliveries()[0]?.state).toBe("retrying");
    expect(queued).toEqual([]);

    // 4Degrees retries any non-2xx with backoff (first retry after 5 s of sandbox time).
    sb.fourdegrees.webhooks.setFetch(original);
    await control("POST", "/time/advance", { ms: 5_000 });
    expect(await flush()).toBe(1);
    expect(statuses()).toEqual([[401, 200]]);
    expect(queued).toHaveLength(1);
  });

  it("security: a delivery signed with a secret the Worker does not hold is 401; during a rotation that also signs with the Worker's secret it is accepted", async () => {
    await control("PUT", "/webhooks", { secrets: [OTHER_SECRET] });
    await moveStageAsUser();
    await flush();
    expect(statuses()).toEqual([[401]]);
    expect(queued).toEqual([]);

    // Rotation: the new secret first, the Worker's (old) one still signing — several signatures, one matches.
    await control("PUT", "/webhooks", { secrets: [OTHER_SECRET, TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET] });
    await control("POST", "/time/advance", { ms: 5_000 });
    await flush();
    expect(statuses()).toEqual([[401, 200]]);
    expect(queued).toHaveLength(1);
    expect(net.count(/worker\.test\/webhooks\/4degrees$/, "POST")).toBe(2);
  });

  it("security: a delivery whose timestamp is more than 5 minutes off the Worker's clock is 401 and never queued", async () => {
    // Sandbox time runs 6 minutes apart from the Worker's: every signature it makes is out of the window.
    await control("POST", "/time/advance", { ms: 6 * 60_000 });
    await moveStageAsUser();
    await flush();
    expect(statuses()).toEqual([[401]]);
    const delivery = sb.fourdegrees.deliveries()[0];
    expect(Number(delivery?.attempts[0]?.at) / 1000 - Date.now() / 1000).toBeGreaterThan(300);
    // Its retries are signed in the same skewed time, so they are refused too.
    await control("POST", "/time/advance", { ms: 5_000 });
    await flush();
    expect(statuses()).toEqual([[401, 401]]);
    expect(queued).toEqual([]);
  });

  it("security: replaying a captured, correctly signed delivery by hand is accepted and enqueued, and the consumer drops it without reaching a handler", async () => {
    const captured: Array<{ headers: Headers; body: string }> = [];
    sb.fourdegrees.webhooks.setFetch(async (request) => {
      const body = await request.clone().text();
      captured.push({ headers: new Headers(request.headers), body });
      return fetch(request);
    });
    await moveStageAsUser();
    await flush();
    expect(queued).toHaveLength(1);
    const eventId = sb.fourdegrees.deliveries()[0]!.payload.id;
    const original = recordingHandlers();
    await runBatch(queued, original.handlers);
    expect(original.reached).toEqual([eventId]);

    // Replayed within the signature's 5-minute window: the ingress cannot tell it from 4Degrees' own
    // redelivery, so it accepts it; the consumer sees the claimed webhook-id and acks it unhandled.
    const first = captured[0]!;
    const replay = await fetch(WEBHOOK_URL, { method: "POST", headers: first.headers, body: first.body });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ ok: true, status: "accepted" });
    expect(queued.map(webhookIdOf)).toEqual([eventId, eventId]);
    const later = recordingHandlers();
    const run = await runBatch(queued.slice(1), later.handlers);
    expect(later.reached).toEqual([]);
    expect(run.acked).toEqual(run.ids);
    expect(run.retried).toEqual([]);
  });
});
