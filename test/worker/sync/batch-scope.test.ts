/**
 * The messages of one queue batch share a scope (src/queue/consumer.ts `BatchScope`): a burst of
 * deliveries for a few records costs one dirty mark and one job per record and one account
 * lookup per location, not one of each per delivery — and the job still applies the newest change.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { d1MeterTotals, meterDatabase } from "../../../src/store/d1-meter.ts";
import { BatchScope, consumeBatch, type Handlers } from "../../../src/queue/consumer.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { getPending } from "../../../src/store/pending.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { createWorld } from "./world.ts";
import { ascending } from "../../support.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** A MessageBatch of `bodies` (ids `m0`, `m1`, …), built by the plugin so `getQueueResult` reads its fate. */
function batchOf(bodies: QueueMessage[]): MessageBatch<unknown> {
  const messages = bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body }));
  return createMessageBatch<unknown>("sync-events", messages);
}

/** The record jobs among queued messages (what would still run after the batch). */
function recordJobsIn(queue: ReadonlyArray<{ body: unknown }>): unknown[] {
  return queue.filter((q) => (q.body as { kind?: string }).kind === "sync.record").map((q) => q.body);
}

/**
 * `handlers` with every `sync.record` job recorded (`jobs`), and the D1 meter's query total when
 * the first job started (what the batch's triage cost, the jobs excluded).
 */
function countingJobs(handlers: Handlers): {
  handlers: Handlers;
  jobs: Array<Extract<QueueMessage, { kind: "sync.record" }>>;
  queriesBeforeJobs: () => number | null;
} {
  const jobs: Array<Extract<QueueMessage, { kind: "sync.record" }>> = [];
  let before: number | null = null;
  const inner = handlers["sync.record"] ?? expect.fail("no sync.record handler");
  return {
    jobs,
    queriesBeforeJobs: () => before,
    handlers: {
      ...handlers,
      "sync.record": async (msg, ctx) => {
        before ??= d1MeterTotals().queries;
        jobs.push(msg);
        return inner(msg, ctx);
      },
    },
  };
}

describe("batch scope", () => {
  it("happy: 20 HighLevel deliveries for 2 linked opportunities → 2 marks, 2 jobs, few D1 queries; the jobs apply the newest names", async () => {
    const w = await createWorld(routes);
    const a = newDeal(w, { name: "Batch A", stage: "Sourced", amountMinor: 10_000_00 }).id;
    const b = newDeal(w, { name: "Batch B", stage: "Sourced", amountMinor: 20_000_00 }).id;
    await w.settle();
    const oppA = (await w.linkOf("fourdegrees", a))?.hlOpportunityId ?? expect.fail("A not linked");
    const oppB = (await w.linkOf("fourdegrees", b))?.hlOpportunityId ?? expect.fail("B not linked");

    // Ten renames of each in HighLevel; their deliveries arrive as one batch.
    const bodies: QueueMessage[] = [];
    for (let i = 1; i <= 10; i++) {
      for (const [id, label] of [
        [oppA, "A"],
        [oppB, "B"],
      ] as const) {
        const opp = w.sb.highlevel.service.updateOpportunity(id, { name: `Batch ${label} v${i}` });
        bodies.push({
          v: 1,
          kind: "highlevel.webhook",
          webhookId: `bs-${label}-${i}`,
          locationId: w.locationId,
          type: "OpportunityUpdate",
          receivedAt: Date.now(),
          body: {
            type: "OpportunityUpdate",
            locationId: w.locationId,
            id,
            name: opp.name,
            pipelineId: opp.pipelineId,
            pipelineStageId: opp.pipelineStageId,
            status: opp.status,
            monetaryValue: opp.monetaryValue,
            contactId: opp.contactId,
          },
        });
      }
    }
    w.queue.length = 0;
    const batch = batchOf(bodies);
    const ctx = createExecutionContext();
    const before = d1MeterTotals();
    const { handlers, jobs, queriesBeforeJobs } = countingJobs(syncHandlers(() => w.deps));
    await consumeBatch(batch, { ...env, DB: meterDatabase(env.DB) }, loadConfig(env), handlers);
    const triageQueries = (queriesBeforeJobs() ?? expect.fail("no job ran")) - before.queries;
    const { explicitAcks: acked, retryMessages: retried } = await getQueueResult(batch, ctx);

    expect(acked).toHaveLength(20);
    expect(retried).toHaveLength(0);
    // One job per record, run by the batch itself: nothing was left in the queue for them.
    expect(jobs.map((j) => j.recordId).sort(ascending)).toEqual([oppA, oppB].sort(ascending));
    expect(recordJobsIn(w.queue)).toEqual([]);
    // The batch's claim: one INSERT per delivery, all in one round trip (db.batch). Besides it, per
    // record: the echo check's reads and one mark; per location: one account lookup. Without the
    // scope each of the 20 deliveries paid the lookup (2 queries), its echo check and a mark.
    const claims = 20;
    expect(triageQueries - claims).toBeLessThanOrEqual(20);

    // The jobs of the batch applied the newest names before the batch returned.
    expect(w.sb.fourdegrees.deal(a).name).toBe("Batch A v10");
    expect(w.sb.fourdegrees.deal(b).name).toBe("Batch B v10");
    await w.settle();
    expect(w.sb.fourdegrees.deal(a).name).toBe("Batch A v10");
    expect(w.sb.fourdegrees.deal(b).name).toBe("Batch B v10");
  });

  it("a failed mark is not remembered: the next message of the batch marks the record itself", async () => {
    const scope = new BatchScope();
    let loads = 0;
    await expect(
      scope.once("k", async () => {
        loads++;
        throw new Error("D1 unavailable");
      }),
    ).rejects.toThrow("D1 unavailable");
    expect(await scope.once("k", async () => ++loads)).toBe(2);
    expect(await scope.once("k", async () => ++loads)).toBe(2);
    expect(scope.isDone("dirty:x")).toBe(false);
    scope.markDone("dirty:x");
    expect(scope.isDone("dirty:x")).toBe(true);
    // One warning per batch: only the first ask of a key is true.
    expect(scope.first("unknown-location:l1")).toBe(true);
    expect(scope.first("unknown-location:l1")).toBe(false);
    expect(scope.first("unknown-location:l2")).toBe(true);
  });
});

describe("fan-out: one HighLevel change, its deliveries, one record job", () => {
  /** A linked pair, then one HighLevel edit (stage + value) and its deliveries, taken out of the queue. */
  async function fanOut(): Promise<{
    w: Awaited<ReturnType<typeof createWorld>>;
    dealId: string;
    deliveries: QueueMessage[];
  }> {
    const w = await createWorld(routes);
    const dealId = newDeal(w, { name: "Fan Out", stage: "Sourced", amountMinor: 10_000_00 }).id;
    await w.settle();
    const opp = (await w.linkOf("fourdegrees", dealId))?.hlOpportunityId ?? expect.fail("not linked");
    w.queue.length = 0;
    w.sb.highlevel.service.updateOpportunity(opp, { pipelineStageId: w.hlStage("Term Sheet"), monetaryValue: 75_000 });
    await w.sb.highlevel.flush();
    const deliveries = w.queue.splice(0).map((q) => QueueMessageSchema.parse(q.body));
    expect(deliveries.map((d) => (d.kind === "highlevel.webhook" ? d.type : d.kind))).toEqual([
      "OpportunityUpdate",
      "OpportunityStageUpdate",
      "OpportunityMonetaryValueUpdate",
    ]);
    w.resetCounts();
    return { w, dealId, deliveries };
  }

  it("happy: the 3 webhooks in one batch → one record job, run by that batch, one 4Degrees write; the echoes cost no job", async () => {
    const { w, dealId, deliveries } = await fanOut();
    const { handlers, jobs } = countingJobs(syncHandlers(() => w.deps));
    const batch = batchOf(deliveries);
    await consumeBatch(batch, env, loadConfig(env), handlers);
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(3);
    const handledBefore = w.handled.length;

    expect(jobs).toHaveLength(1);
    expect(recordJobsIn(w.queue)).toEqual([]);
    const deal = w.sb.fourdegrees.deal(dealId);
    expect(deal.stage_id).toBe(w.fdStage("Term Sheet"));
    expect(deal.value?.amount_minor).toBe(75_000_00);
    expect(w.writes().fourdegrees).toBe(1);
    // The 4Degrees delivery of that write is recognised as our echo: no job, no write.
    await w.settle();
    expect(w.handled.slice(handledBefore).filter((h) => h.kind === "sync.record")).toEqual([]);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 1 });
  });

  it("edge: the change's last 2 webhooks arrive in a later batch, after its job synced the change → that job only re-reads: no write", async () => {
    const { w, dealId, deliveries } = await fanOut();
    const { handlers, jobs } = countingJobs(syncHandlers(() => w.deps));
    await consumeBatch(batchOf(deliveries.slice(0, 1)), env, loadConfig(env), handlers);
    expect(jobs).toHaveLength(1);
    expect(w.sb.fourdegrees.deal(dealId).stage_id).toBe(w.fdStage("Term Sheet"));
    // Outside the batch and its settle window the deliveries cannot be proven part of the synced
    // change (the mapping syncs a close date their payloads do not carry): one more job, which
    // finds HighLevel as last synced and writes nothing.
    await consumeBatch(batchOf(deliveries.slice(1)), env, loadConfig(env), handlers);
    expect(jobs).toHaveLength(2);
    expect(recordJobsIn(w.queue)).toEqual([]);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 1 });
  });

  it("error: a job run by the batch that must retry is sent to the queue with its delay; the record stays dirty", async () => {
    const { w, deliveries } = await fanOut();
    const sent: Array<{ body: unknown; delaySeconds: number | undefined }> = [];
    const queue = {
      send: async (body: unknown, options?: QueueSendOptions) => {
        sent.push({ body, delaySeconds: options?.delaySeconds });
      },
    } as unknown as Queue;
    const handlers: Handlers = {
      ...syncHandlers(() => w.deps),
      "sync.record": async () => ({ kind: "retry", delaySeconds: 7, reason: "HighLevel busy" }),
    };
    const batch = batchOf(deliveries);
    await consumeBatch(batch, { ...env, SYNC_QUEUE: queue }, loadConfig(env), handlers);
    // Every delivery is acked: the job behind them now lives in its own message.
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(3);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.delaySeconds).toBe(7);
    const job = QueueMessageSchema.parse(sent[0]?.body);
    expect(job.kind === "sync.record" ? [job.side, job.record, job.lane] : job.kind).toEqual([
      "highlevel",
      "deal",
      "live",
    ]);
    if (job.kind !== "sync.record") return;
    expect(await getPending(env.DB, job.accountId, "highlevel", "deal", job.recordId)).not.toBeNull();
  });
});
