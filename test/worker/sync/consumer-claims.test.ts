/**
 * The queue consumer deduplicates webhook deliveries (the ingress no longer touches D1): each
 * batch's deliveries are claimed in one D1 round trip; a delivery id claimed by another message is
 * acked without reaching its handler, a retry of the claiming message itself is processed again,
 * and a failed claim retries the batch's deliveries without touching the other messages. A handler
 * marked `claimingItsDelivery` claims its delivery itself, only when it has work for it.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { claimingItsDelivery, type Handlers } from "../../../src/queue/consumer.ts";
import type { QueueMessage } from "../../../src/queue/messages.ts";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";

const hl = (webhookId: string): QueueMessage => ({
  v: 1,
  kind: "highlevel.webhook",
  webhookId,
  locationId: "loc-claims",
  type: "OpportunityUpdate",
  receivedAt: Date.now(),
  body: { type: "OpportunityUpdate", id: "opp-1", locationId: "loc-claims" },
});
const fd = (webhookId: string): QueueMessage => ({
  v: 1,
  kind: "fourdegrees.webhook",
  webhookId,
  workspaceId: "ws-claims",
  type: "deal.updated",
  receivedAt: Date.now(),
  body: {},
});
const uid = (p: string) => `${p}-${crypto.randomUUID()}`;

describe("consumer: webhook claims", () => {
  it("happy: a delivery and its duplicate in one batch — one reaches the handler, both are acked", async () => {
    const id = uid("dup");
    const { handlers, reached } = recordingHandlers();
    const run = await runBatch([hl(id), hl(id), hl(uid("other"))], handlers);
    expect(reached.filter((r) => r === id)).toHaveLength(1);
    expect(reached).toHaveLength(2);
    expect(run.acked).toHaveLength(3);
    expect(run.retried).toHaveLength(0);
  });

  it("happy: a redelivery in a later batch is dropped; a retry of the claiming message is processed again", async () => {
    const id = uid("later");
    const first = recordingHandlers();
    const a = await runBatch([hl(id)], first.handlers);
    expect(first.reached).toEqual([id]);
    // Another message with the same delivery id (HighLevel sent it twice): dropped.
    const second = recordingHandlers();
    await runBatch([hl(id)], second.handlers);
    expect(second.reached).toEqual([]);
    // The same queue message again (its handler failed and Queues retried it): processed.
    const retry = recordingHandlers();
    await runBatch([hl(id)], retry.handlers, { ids: a.ids });
    expect(retry.reached).toEqual([id]);
  });

  it("happy: the two providers' ids never collide", async () => {
    const id = uid("both");
    const { handlers, reached } = recordingHandlers();
    await runBatch([hl(id), fd(id)], handlers);
    expect(reached).toEqual([id, id]);
  });

  it("happy: a batch's claims cost one D1 round trip", async () => {
    let batches = 0;
    let statements = 0;
    const db = new Proxy(env.DB, {
      get(target, prop, receiver) {
        if (prop === "batch")
          return (s: D1PreparedStatement[]) => (batches++, (statements += s.length), target.batch(s));
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { handlers, reached } = recordingHandlers();
    await runBatch(
      Array.from({ length: 25 }, (_, i) => hl(uid(`rt${i}`))),
      handlers,
      { db },
    );
    expect(reached).toHaveLength(25);
    expect(batches).toBe(1);
    expect(statements).toBe(25);
  });

  it("error: D1 down during the claim — the deliveries are retried, none reaches its handler; other messages are still handled", async () => {
    const broken = new Proxy(env.DB, {
      get(target, prop, receiver) {
        if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: database unavailable"));
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { handlers: base, reached } = recordingHandlers();
    const notified: string[] = [];
    const handlers: Handlers = {
      ...base,
      "notify.deliver": async (msg) => (notified.push(msg.changeKey), { kind: "ack" }),
    };
    const a = uid("down-a");
    const run = await runBatch(
      [hl(a), fd(uid("down-b")), { v: 1, kind: "notify.deliver", ruleId: "r1", changeKey: "k1" }],
      handlers,
      { db: broken },
    );
    expect(reached).toEqual([]);
    expect(run.retried).toHaveLength(2);
    expect(notified).toEqual(["k1"]);
    expect(run.acked).toHaveLength(1);
    // Nothing was claimed: once D1 is back, the retried message is processed.
    const again = recordingHandlers();
    await runBatch([hl(a)], again.handlers, { ids: [run.ids[0] ?? ""] });
    expect(again.reached).toEqual([a]);
  });
});

describe("consumer: webhooks whose handler claims its own delivery", () => {
  /** A self-claiming handler: claims only deliveries whose body says `work`, records what it processed. */
  function selfClaiming(): { handlers: Handlers; processed: string[]; duplicates: string[] } {
    const processed: string[] = [];
    const duplicates: string[] = [];
    return {
      processed,
      duplicates,
      handlers: {
        "highlevel.webhook": claimingItsDelivery(async (msg, ctx) => {
          if (msg.body["work"] !== true) return { kind: "ack" }; // e.g. an echo: no claim
          if (!ctx.claim) throw new Error("a self-claiming handler gets ctx.claim");
          // Asked twice (attachments, then the mark): one claim.
          const [a, b] = [await ctx.claim(), await ctx.claim()];
          expect(a).toBe(b);
          (a ? processed : duplicates).push(msg.webhookId);
          return { kind: "ack" };
        }),
      },
    };
  }
  const work = (webhookId: string, yes: boolean): QueueMessage => ({
    v: 1,
    kind: "highlevel.webhook",
    webhookId,
    locationId: "loc-claims",
    type: "OpportunityUpdate",
    receivedAt: Date.now(),
    body: { type: "OpportunityUpdate", id: "opp-1", locationId: "loc-claims", work: yes },
  });
  const receipt = (id: string) =>
    env.DB.prepare("SELECT message_id FROM webhook_receipts WHERE provider = 'highlevel' AND webhook_id = ?")
      .bind(id)
      .first<{ message_id: string }>();

  it("happy: a delivery acked without work writes no receipt; one with work is claimed once", async () => {
    const idle = uid("idle");
    const busy = uid("busy");
    const h = selfClaiming();
    const run = await runBatch([work(idle, false), work(busy, true)], h.handlers);
    expect(run.acked).toHaveLength(2);
    expect(await receipt(idle)).toBeNull();
    expect((await receipt(busy))?.message_id).toBe(run.ids[1]);
    expect(h.processed).toEqual([busy]);
  });

  it("happy: a redelivery by another message is a duplicate; a retry of the claiming message is processed", async () => {
    const id = uid("again");
    const first = selfClaiming();
    const a = await runBatch([work(id, true)], first.handlers);
    const second = selfClaiming();
    await runBatch([work(id, true)], second.handlers);
    expect(second.processed).toEqual([]);
    expect(second.duplicates).toEqual([id]);
    const retry = selfClaiming();
    await runBatch([work(id, true)], retry.handlers, { ids: a.ids });
    expect(retry.processed).toEqual([id]);
  });

  it("error: D1 down during the handler's claim — the message is retried, nothing processed", async () => {
    const id = uid("down");
    const h = selfClaiming();
    const down = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return () => Promise.reject(new Error("D1_ERROR: database unavailable"));
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const run = await runBatch([work(id, true)], h.handlers, { db: down });
    expect(run.retried).toEqual(run.ids);
    expect(h.processed).toEqual([]);
    expect(await receipt(id)).toBeNull();
  });
});
