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
import { BatchScope, consumeBatch } from "../../../src/queue/consumer.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import type { QueueMessage } from "../../../src/queue/messages.ts";
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
    await consumeBatch(
      batch,
      { ...env, DB: meterDatabase(env.DB) },
      loadConfig(env),
      syncHandlers(() => w.deps),
    );
    const queries = d1MeterTotals().queries - before.queries;
    const { explicitAcks: acked, retryMessages: retried } = await getQueueResult(batch, ctx);

    expect(acked).toHaveLength(20);
    expect(retried).toHaveLength(0);
    const jobs = w.queue
      .map((q) => q.body as { kind?: string; recordId?: string })
      .filter((m) => m.kind === "sync.record");
    expect(jobs.map((j) => j.recordId).sort(ascending)).toEqual([oppA, oppB].sort(ascending));
    // The batch's claim: one INSERT per delivery, all in one round trip (db.batch). Besides it, per
    // record: the echo check's reads and one mark; per location: one account lookup. Without the
    // scope each of the 20 deliveries paid the lookup (2 queries), its echo check and a mark.
    const claims = 20;
    expect(queries - claims).toBeLessThanOrEqual(20);

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
