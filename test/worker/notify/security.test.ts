/**
 * Notifications at the trust boundary: a receiver cannot stall live sync, a target cannot point
 * the Worker at an internal address, and a webhook rule's signing secret is shown once from the
 * server, never carried in (or taken from) a URL.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../../src/index.ts";
import { loadConfig } from "../../../src/config.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { notifyChange } from "../../../src/notify/notify.ts";
import { createAccount, getAccount } from "../../../src/store/accounts.ts";
import { getDelivery } from "../../../src/store/notifications.ts";
import type { QueueMessage } from "../../../src/sync/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "application/json" };
const config = () => loadConfig(env);
const log = createLogger("error");

/** Calls to the silent receiver, and how to make it answer at last. */
const silent = { calls: 0, onCall: () => undefined as void, release: () => undefined as void };

useNetwork({
  // Never answers until the test releases it (a receiver that hangs).
  "silent.example": () => {
    silent.calls++;
    silent.onCall();
    return new Promise<Response>((resolve) => {
      silent.release = () => resolve(new Response(null, { status: 204 }));
    });
  },
});

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return exports.default.fetch(`http://worker.test/api${path}`, { method, headers: ADMIN, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

async function ensureAccount(id: string): Promise<void> {
  if (!(await getAccount(env.DB, id))) await createAccount(env.DB, { id, name: id, workspaceId: null, locations: [] });
}

/** A queue that only records what is sent to it. */
function capture(): { queue: Queue; sent: unknown[] } {
  const sent: unknown[] = [];
  const queue: Queue = {
    metrics: () => env.NOTIFY_QUEUE.metrics(),
    send: async (message) => {
      sent.push(message);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    sendBatch: async (messages) => {
      for (const m of messages) sent.push(m.body);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
  };
  return { queue, sent };
}

/** A batch whose acks and retries are written to `events` in the order they happen, each also told to `onEvent`. */
function batchOf(queue: string, bodies: Array<{ id: string; body: QueueMessage }>, events: string[], onEvent: (event: string) => void = () => undefined): MessageBatch<unknown> {
  const tell = (event: string) => {
    events.push(event);
    onEvent(event);
  };
  const messages = bodies.map(({ id, body }) => ({
    id,
    timestamp: new Date(),
    body,
    attempts: 1,
    ack: () => tell(`ack:${id}`),
    retry: () => tell(`retry:${id}`),
  }));
  return { queue, messages, ackAll: () => undefined, retryAll: () => undefined, metadata: {} } as unknown as MessageBatch<unknown>;
}

beforeAll(async () => {
  await ensureAccount("sec-ntf");
});

describe("notification delivery never stalls live sync", () => {
  it("security: a receiver that never answers does not delay a record job in the same live batch", async () => {
    const created = await api("POST", "/notifications", { accountId: "sec-ntf", name: "hangs", trigger: "sync_failure", target: { kind: "webhook", url: "https://silent.example/in" } });
    expect(created.status).toBe(201);
    const ruleId = (await created.json<{ rule: { id: string } }>()).rule.id;
    // Both queues captured: this test is about the consumer, the next one about the routing.
    const notify = capture();
    const testEnv: Env = { ...env, SYNC_QUEUE: notify.queue, NOTIFY_QUEUE: notify.queue };
    expect((await notifyChange(testEnv, config(), { kind: "sync_failure", accountId: "sec-ntf", failureId: "f-hang", reason: "x" }, log)).enqueued).toBe(1);
    const delivery = notify.sent[0] as QueueMessage;
    expect(delivery).toEqual({ v: 1, kind: "notify.deliver", ruleId, changeKey: "failure:f-hang" });

    // The delivery first in the batch (as it would be ahead of its batch's record jobs), then a
    // record job of the same account (clean, so it completes without a provider call).
    const events: string[] = [];
    const receiverCalled = new Promise<void>((resolve) => (silent.onCall = resolve));
    const record: QueueMessage = { v: 1, kind: "sync.record", accountId: "sec-ntf", side: "highlevel", record: "deal", recordId: "opp-sec", locationId: null, lane: "live", force: false };
    let onRecordAck = () => undefined as void;
    const recordAcked = new Promise<void>((resolve) => (onRecordAck = resolve));
    const batch = batchOf("sync-events", [{ id: "m-notify", body: delivery }, { id: "m-record", body: record }], events, (e) => e === "ack:m-record" && onRecordAck());
    const done = worker.queue(batch, testEnv);
    const first = await Promise.race([recordAcked.then(() => "record job done"), receiverCalled.then(() => "receiver called")]);
    silent.release();
    await done;
    expect(first).toBe("record job done");
    // The live batch never called the receiver: it handed the delivery to the notify queue.
    expect(silent.calls).toBe(0);
    expect(events.sort()).toEqual(["ack:m-notify", "ack:m-record"]);
    expect(notify.sent).toEqual([delivery, delivery]);

    // The notify queue's own consumer is where the receiver is called (and answers here).
    const notifyEvents: string[] = [];
    const answered = worker.queue(batchOf("sync-notify", [{ id: "n-1", body: delivery }], notifyEvents), testEnv);
    await receiverCalled;
    silent.release();
    await answered;
    expect(silent.calls).toBe(1);
    expect(notifyEvents).toEqual(["ack:n-1"]);
    expect(await getDelivery(env.DB, ruleId, "failure:f-hang")).toMatchObject({ state: "delivered", attempts: 1, lastStatus: 204 });
  });

  it("security: notifications are sent to their own queue, never to the live sync queue", async () => {
    await api("POST", "/notifications", { accountId: "sec-ntf", name: "own queue", trigger: "needs_reconnect", target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/own" } });
    const live = capture();
    const notify = capture();
    const testEnv: Env = { ...env, SYNC_QUEUE: live.queue, NOTIFY_QUEUE: notify.queue };
    await notifyChange(testEnv, config(), { kind: "needs_reconnect", accountId: "sec-ntf", locationId: "loc-own", since: 7, reason: null }, log);
    expect(live.sent).toEqual([]);
    expect(notify.sent).toHaveLength(1);
  });
});
