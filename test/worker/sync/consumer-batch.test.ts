/**
 * A batch's record jobs run a few at a time (BATCH_JOB_CONCURRENCY), never two for one record,
 * after the batch's light messages (webhooks mark records dirty first); every message is acked or
 * retried exactly once.
 */
import { describe, expect, it } from "vitest";
import { BATCH_JOB_CONCURRENCY, type Handlers } from "../../../src/queue/consumer.ts";
import type { QueueMessage } from "../../../src/queue/messages.ts";
import { runBatch } from "../helpers/consume.ts";

const job = (recordId: string): QueueMessage => ({
  v: 1,
  kind: "sync.record",
  accountId: "acct",
  side: "highlevel",
  record: "deal",
  recordId,
  locationId: null,
  lane: "live",
  force: false,
});
const hook = (webhookId: string): QueueMessage => ({
  v: 1,
  kind: "highlevel.webhook",
  webhookId: `${webhookId}-${crypto.randomUUID()}`,
  locationId: "loc",
  type: "OpportunityUpdate",
  receivedAt: Date.now(),
  body: {},
});
const tick = () => new Promise((r) => setTimeout(r, 5));

describe("consumer: record jobs of a batch", () => {
  it("happy: distinct records run in parallel up to the limit, one record's jobs one after another, webhooks first", async () => {
    const order: string[] = [];
    let inFlight = 0;
    let most = 0;
    const busy = new Set<string>();
    let overlapped = false;
    const handlers: Handlers = {
      "highlevel.webhook": async () => (order.push("webhook"), { kind: "ack" }),
      "sync.record": async (msg) => {
        order.push(`job:${msg.recordId}`);
        if (busy.has(msg.recordId)) overlapped = true;
        busy.add(msg.recordId);
        most = Math.max(most, ++inFlight);
        await tick();
        await tick();
        inFlight--;
        busy.delete(msg.recordId);
        return msg.recordId === "r3" ? { kind: "retry", reason: "test", delaySeconds: 1 } : { kind: "ack" };
      },
    };
    const bodies = [
      job("r1"),
      hook("w1"),
      job("r2"),
      job("r1"),
      job("r3"),
      ...Array.from({ length: 8 }, (_, i) => job(`x${i}`)),
      hook("w2"),
    ];
    const run = await runBatch(bodies, handlers);
    expect(most).toBe(BATCH_JOB_CONCURRENCY);
    expect(overlapped, "two jobs of one record ran at once").toBe(false);
    expect(order.slice(0, 2)).toEqual(["webhook", "webhook"]);
    expect(order.filter((o) => o === "job:r1")).toHaveLength(2);
    expect(run.retried).toEqual([run.ids[4]]);
    expect(run.acked.length + run.retried.length).toBe(bodies.length);
    expect(new Set(run.acked).size).toBe(run.acked.length);
  });
});
