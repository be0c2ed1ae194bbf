/**
 * A backfill message runs pages one after another until its budget (wall time or provider calls)
 * is spent, checkpointing each page, then hands over to exactly one continuation message; the
 * queue routing keeps backfill pages, import rows and low-lane record jobs off the live queue.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getBackfill } from "../../../src/store/backfill-runs.ts";
import {
  BACKFILL_MESSAGE_BUDGET_MS,
  BACKFILL_PAGE_SIZE,
  beginBackfill,
  runBackfillPage,
} from "../../../src/sync/jobs/backfill.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { isBulk, queueFor } from "../../../src/queue/queues.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { ACCOUNT, createWorld } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** A world with `deals` 4Degrees deals to backfill (their own webhooks unsubscribed) and the run's first message. */
async function setup(deals: number) {
  const w = await createWorld(routes);
  w.sb.highlevel.unsubscribe("http://worker.test/webhooks/highlevel");
  w.sb.fourdegrees.webhooks.subscribers.clear();
  for (let i = 0; i < deals; i++)
    w.sb.fourdegrees.createDealAsUser({
      name: `Budget ${String(i).padStart(3, "0")}`,
      pipeline_id: w.fdPipelineId,
      stage_id: w.fdStage("Sourced"),
      value: { amount_minor: (i + 1) * 100, currency: "USD" },
    });
  const run = await beginBackfill(env.DB, w.deps, ACCOUNT);
  const first = w.queue.shift();
  const msg = QueueMessageSchema.parse(first?.body);
  if (msg.kind !== "sync.backfill") throw new Error(`expected a backfill message, got ${msg.kind}`);
  expect(msg.runId).toBe(run.runId);
  return { w, msg };
}

describe("backfill message budget", () => {
  it(
    "happy: within its budget one message runs every page of the run, and enqueues nothing after the last",
    { timeout: 60_000 },
    async () => {
      const { w, msg } = await setup(BACKFILL_PAGE_SIZE * 2 + 10);
      const outcome = await runBackfillPage(msg, w.ctx, w.deps);
      expect(outcome).toEqual({ kind: "ack" });
      const run = await getBackfill(env.DB, ACCOUNT);
      expect(run?.state).toBe("done");
      // The demo HighLevel pipeline's own opportunities are walked too (phase 2); every deal was created there.
      expect(run?.created).toBeGreaterThanOrEqual(BACKFILL_PAGE_SIZE * 2 + 10);
      expect(w.queue.filter((q) => (q.body as { kind?: string }).kind === "sync.backfill")).toHaveLength(0);
    },
  );

  it(
    "hand-over: past its time budget a message stops after the page it is on, checkpointed, and enqueues exactly one continuation",
    { timeout: 60_000 },
    async () => {
      const { w, msg } = await setup(BACKFILL_PAGE_SIZE * 3);
      // A clock that moves one budget forward on every reading: the first page already spends it.
      let t = Date.now();
      const deps = { ...w.deps, now: () => (t += BACKFILL_MESSAGE_BUDGET_MS) };
      expect(await runBackfillPage(msg, w.ctx, deps)).toEqual({ kind: "ack" });
      const after1 = await getBackfill(env.DB, ACCOUNT);
      expect(after1?.state).toBe("running");
      expect(after1?.done).toBe(BACKFILL_PAGE_SIZE);
      const continuations = w.queue.filter((q) => (q.body as { kind?: string }).kind === "sync.backfill");
      expect(continuations).toHaveLength(1);
      expect(continuations[0]?.body).toEqual({ v: 1, kind: "sync.backfill", accountId: ACCOUNT, runId: msg.runId });
      // The continuation resumes from the checkpoint: the rest of the run completes, nothing twice.
      w.queue.length = 0;
      await w.drain();
      for (let guard = 0; guard < 20 && (await getBackfill(env.DB, ACCOUNT))?.state === "running"; guard++) {
        w.queue.push({ body: { v: 1, kind: "sync.backfill", accountId: ACCOUNT, runId: msg.runId }, attempts: 0 });
        await w.drain();
      }
      const end = await getBackfill(env.DB, ACCOUNT);
      expect(end?.state).toBe("done");
      const names = [...w.sb.highlevel.store.opportunities.values()]
        .map((o) => o.name)
        .filter((n) => n.startsWith("Budget "));
      expect(names).toHaveLength(BACKFILL_PAGE_SIZE * 3);
      expect(new Set(names).size).toBe(names.length);
    },
  );
});

describe("queue routing", () => {
  const record = (lane: "live" | "reconcile" | "backfill"): QueueMessage => ({
    v: 1,
    kind: "sync.record",
    accountId: "a",
    side: "highlevel",
    record: "deal",
    recordId: "r",
    locationId: null,
    lane,
    force: false,
  });
  it("bulk work goes to the bulk queue, live changes to the live queue", () => {
    expect(isBulk({ v: 1, kind: "sync.backfill", accountId: "a", runId: "r" })).toBe(true);
    expect(isBulk(record("backfill"))).toBe(true);
    expect(isBulk(record("reconcile"))).toBe(true);
    expect(isBulk(record("live"))).toBe(false);
    expect(
      isBulk({
        v: 1,
        kind: "highlevel.webhook",
        webhookId: "w",
        locationId: "l",
        type: "OpportunityUpdate",
        receivedAt: 1,
        body: {},
      }),
    ).toBe(false);
    expect(isBulk({ v: 1, kind: "notify.deliver", ruleId: "r", changeKey: "k" })).toBe(false);
    expect(queueFor(env, record("backfill"))).toBe(env.BULK_QUEUE);
    expect(queueFor(env, record("live"))).toBe(env.SYNC_QUEUE);
    expect(queueFor(env, { v: 1, kind: "notify.deliver", ruleId: "r", changeKey: "k" })).toBe(env.NOTIFY_QUEUE);
  });
});
