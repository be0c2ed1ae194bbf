/**
 * Expected echoes (src/sync/engine/echo.ts, "Expected echoes"): when the engine's HighLevel
 * update is answered with exactly what it read plus what it wrote, the link records the deliveries
 * HighLevel will send for that write (one `OpportunityUpdate` + one specific event per changed
 * kind) with the answer's carried fields; each delivery of the write takes one slot and is acked
 * without a read — even with the demo mapping, which syncs the close date from a HighLevel custom
 * field no payload carries. A user's edit after our write sends its own deliveries, and whichever
 * deliveries come last find no slot and take the read; when one of ours is lost, reconcile
 * (`hl_updated_at` = our answer's) finds the edit.
 *
 * End to end against both sandboxes, structure lookups from the KV caches as in production
 * (calls-per-change.test.ts runs the production connectors); every request the Worker makes to
 * either sandbox is counted per side (reads: GET and search).
 * HighLevel's deliveries are taken out of the queue and handed in in the order each test needs.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { consumeBatch, type Handlers } from "../../../src/queue/consumer.ts";
import { d1MeterStatements, meterDatabase } from "../../../src/store/d1-meter.ts";
import { CachedStructureCrm } from "../../../src/fourdegrees/cached-crm.ts";
import { findExpectedEcho, findLink } from "../../../src/store/links.ts";
import { getPending, listPending } from "../../../src/store/pending.ts";
import { addReview } from "../../../src/store/sync-events.ts";
import { consumeExpectedEcho, EXPECTED_ECHO_TTL_MS } from "../../../src/sync/engine/echo.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import { runReconcile } from "../../../src/sync/jobs/reconcile.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { countProviderCall, expectConverged, newDeal, noProviderCalls, type ProviderCalls } from "./checks.ts";
import { ACCOUNT, createWorld, type Queued, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

interface EchoWorld {
  w: World;
  dealId: string;
  oppId: string;
  closeDateFieldId: string;
  counts: ProviderCalls;
  reset(): void;
  /** Runs once around our next HighLevel update of the opportunity: `before` the PUT reaches HighLevel, `after` its answer (the job then goes on). */
  aroundPut: { before?: () => void; after?: () => Promise<void> } | null;
}

/** The demo mapping (close date from a HighLevel custom field), production connectors, one deal with an owner synced and settled. */
async function echoWorld(): Promise<EchoWorld> {
  const w = await createWorld(routes);
  // 4Degrees structure (pipelines, users) from KV as in production, so the counts are the records'
  // (HighLevel's comes from KV already); the world's gate has room for a whole file of tests.
  const connectors = w.deps.connectors;
  const structureKey = `expected-echo-test:${crypto.randomUUID()}`;
  w.deps.connectors = async (account, lane) => {
    const c = await connectors(account, lane);
    return { ...c, fourdegrees: new CachedStructureCrm(c.fourdegrees, env.CACHE, structureKey) };
  };
  const closeDateFieldId = w.mapping.closeDateFieldId ?? "";
  expect(closeDateFieldId, "the demo mapping syncs the close date through a HighLevel custom field").not.toBe("");
  const sandbox = routes["sandbox.test"] ?? expect.fail("the world routes sandbox.test");
  const e: EchoWorld = {
    w,
    dealId: "",
    oppId: "",
    closeDateFieldId,
    counts: noProviderCalls(),
    reset() {
      e.counts = noProviderCalls();
      w.handled.length = 0;
    },
    aroundPut: null,
  };
  routes["sandbox.test"] = async (r) => {
    const u = new URL(r.url);
    if (u.pathname.startsWith("/_sandbox")) return sandbox(r);
    countProviderCall(e.counts, r);
    const around =
      e.oppId && r.method === "PUT" && u.pathname.endsWith(`/opportunities/${e.oppId}`) ? e.aroundPut : null;
    if (around) e.aroundPut = null;
    around?.before?.();
    const res = await sandbox(r);
    await around?.after?.();
    return res;
  };
  const owner = [...w.sb.fourdegrees.store.users.values()][1] ?? expect.fail("a 4Degrees demo user");
  e.dealId = newDeal(w, {
    name: "Expected Echo Co",
    stage: "Sourced",
    amountMinor: 100_000_00,
    ownerId: owner.id,
    closeDate: "2030-01-15",
  }).id;
  await w.settle();
  e.oppId = (await w.linkOf("fourdegrees", e.dealId))?.hlOpportunityId ?? expect.fail("not linked");
  expect(w.sb.highlevel.store.opportunities.get(e.oppId)?.assignedTo, "the opportunity has an assignee").toBeTruthy();
  e.reset();
  return e;
}

/** Delivers the sandbox's pending HighLevel webhooks and takes their queue messages out of the queue (to hand in later). */
async function takeHighLevelDeliveries(w: World): Promise<Queued[]> {
  await w.sb.highlevel.flush();
  const taken = w.queue.filter((q) => q.body.kind === "highlevel.webhook");
  w.queue.splice(0, w.queue.length, ...w.queue.filter((q) => q.body.kind !== "highlevel.webhook"));
  return taken;
}

const typeOf = (q: Queued): string => (q.body.kind === "highlevel.webhook" ? q.body.type : q.body.kind);
const bodyOf = (q: Queued): Record<string, unknown> => (q.body.kind === "highlevel.webhook" ? q.body.body : {});
const recordJobs = (w: World) => w.handled.filter((h) => h.kind === "sync.record").length;
const expectation = (e: EchoWorld) => findExpectedEcho(env.DB, ACCOUNT, e.oppId);

/** A 4Degrees value edit, synced to HighLevel by its job; returns the deliveries of that write, not handed in. */
async function syncFourDegreesValue(e: EchoWorld, amountMinor: number): Promise<Queued[]> {
  e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { value: { amount_minor: amountMinor, currency: "USD" } });
  await e.w.sb.fourdegrees.flush();
  await e.w.drain();
  expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.monetaryValue).toBe(amountMinor / 100);
  const ours = await takeHighLevelDeliveries(e.w);
  expect(ours.map(typeOf).sort()).toEqual(["OpportunityMonetaryValueUpdate", "OpportunityUpdate"]);
  return ours;
}

/** A user's close-date edit in HighLevel (a custom field: its only delivery is an `OpportunityUpdate` that carries nothing new); returns that delivery, not handed in. */
async function userEditsCloseDate(e: EchoWorld, date: string): Promise<Queued[]> {
  // A later moment than our write, so the opportunity's updatedAt moves as it would.
  e.w.sb.clock.advance(1_000);
  e.w.sb.highlevel.service.updateOpportunity(e.oppId, {
    customFields: [{ id: e.closeDateFieldId, field_value: date }],
  });
  const theirs = await takeHighLevelDeliveries(e.w);
  expect(theirs.map(typeOf)).toEqual(["OpportunityUpdate"]);
  return theirs;
}

/** Hands deliveries in, in this order, and runs everything they cause. */
async function handIn(e: EchoWorld, deliveries: Queued[]): Promise<void> {
  e.w.queue.push(...deliveries);
  await e.w.drain();
}

describe("the echo of our own HighLevel write, with the close date synced from a HighLevel custom field", () => {
  it("a 4Degrees deal created in HighLevel: the create's OpportunityCreate and OpportunityUpdate cost no read, no job", async () => {
    const e = await echoWorld();
    const deal = newDeal(e.w, { name: "Fresh Create Co", stage: "Sourced", amountMinor: 50_000_00 });
    await e.w.sb.fourdegrees.flush();
    await e.w.drain();
    const oppId = (await e.w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? expect.fail("not created");
    const ours = await takeHighLevelDeliveries(e.w);
    expect(ours.map(typeOf).sort()).toEqual(["OpportunityCreate", "OpportunityUpdate"]);
    const recorded = (await findExpectedEcho(env.DB, ACCOUNT, oppId))?.echo ?? expect.fail("no expected echo recorded");
    expect(recorded.types).toEqual({ OpportunityCreate: 1, OpportunityUpdate: 1 });

    e.reset();
    await handIn(e, ours);
    expect(e.counts.requests, "requests made for the echoes").toEqual([]);
    expect(recordJobs(e.w)).toBe(0);
    expect(await findExpectedEcho(env.DB, ACCOUNT, oppId), "both slots taken").toBeNull();
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("a 4Degrees value edit synced to HighLevel: its echoes cost no HighLevel read, no write, no job", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 300_000_00);
    expect({ highlevel: e.counts.highlevel, fourdegrees: e.counts.fourdegrees }, e.counts.requests.join("\n")).toEqual({
      highlevel: { reads: 1, writes: 1 },
      fourdegrees: { reads: 1, writes: 0 },
    });
    // The write recorded what HighLevel sends for it: one Update and one MonetaryValueUpdate, carrying the answer.
    const opp = e.w.sb.highlevel.store.opportunities.get(e.oppId) ?? expect.fail("opportunity");
    const recorded = (await expectation(e))?.echo ?? expect.fail("no expected echo recorded");
    expect(recorded.types).toEqual({ OpportunityUpdate: 1, OpportunityMonetaryValueUpdate: 1 });
    expect(recorded.fields).toEqual({
      name: opp.name,
      monetaryValue: 300_000,
      status: "open",
      pipelineId: opp.pipelineId,
      pipelineStageId: opp.pipelineStageId,
      assignedTo: opp.assignedTo,
      contactId: opp.contactId,
    });
    expect(recorded.expiresAt).toBeGreaterThan(Date.now());
    expect((await e.w.linkOf("fourdegrees", e.dealId))?.hlUpdatedAt, "the link records our answer's updatedAt").toBe(
      opp.updatedAt,
    );

    e.reset();
    await handIn(e, ours);
    expect(e.counts.requests, "requests made for the echoes").toEqual([]);
    expect(recordJobs(e.w)).toBe(0);
    expect(await listPending(env.DB, ACCOUNT)).toEqual([]);
    expect(await expectation(e), "every slot taken: nothing left to expect").toBeNull();

    await e.w.settle();
    expect(e.counts.requests).toEqual([]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(300_000_00);
    await expectConverged(e.w);
  });

  it("a 4Degrees stage move: the Update and StageUpdate of our write are free too", async () => {
    const e = await echoWorld();
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { stage_id: e.w.fdStage("Term Sheet") });
    await e.w.sb.fourdegrees.flush();
    await e.w.drain();
    expect((await expectation(e))?.echo?.types).toEqual({ OpportunityUpdate: 1, OpportunityStageUpdate: 1 });
    const ours = await takeHighLevelDeliveries(e.w);
    expect(ours.map(typeOf).sort()).toEqual(["OpportunityStageUpdate", "OpportunityUpdate"]);
    e.reset();
    await handIn(e, ours);
    expect(e.counts.requests).toEqual([]);
    expect(recordJobs(e.w)).toBe(0);
    await expectConverged(e.w);
  });
});

describe("a user's edit after our write is never taken for our echo", () => {
  it("a close-date edit made right after our write, delivered after our echoes: no slot is left for it, it is read and synced to 4Degrees", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 310_000_00);
    const theirs = await userEditsCloseDate(e, "2031-03-03");
    e.reset();
    await handIn(e, [...ours, ...theirs]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-03-03");
    // Our two echoes free; the user's Update: one job, one read of each side, one 4Degrees write.
    expect({ highlevel: e.counts.highlevel, fourdegrees: e.counts.fourdegrees }, e.counts.requests.join("\n")).toEqual({
      highlevel: { reads: 1, writes: 0 },
      fourdegrees: { reads: 1, writes: 1 },
    });
    expect(recordJobs(e.w)).toBe(1);
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("the same edit delivered BEFORE our echoes: it takes our Update's slot, so our own Update finds none and its read syncs the edit", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 320_000_00);
    const theirs = await userEditsCloseDate(e, "2031-04-04");
    // The user's delivery overtakes ours (HighLevel sends in no guaranteed order).
    e.reset();
    await handIn(e, [...theirs, ...ours]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-04-04");
    expect({ highlevel: e.counts.highlevel, fourdegrees: e.counts.fourdegrees }, e.counts.requests.join("\n")).toEqual({
      highlevel: { reads: 1, writes: 0 },
      fourdegrees: { reads: 1, writes: 1 },
    });
    expect(await expectation(e), "an Update that found no slot voided what was left").toBeNull();
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("one of our deliveries lost and a user's close-date edit taking its slot: the webhook does not sync it, the next reconcile does", async () => {
    const e = await echoWorld();
    // Only our pair exists (the world's unlinked demo records would be reconcile's finds too).
    for (const id of e.w.sb.highlevel.store.opportunities.keys())
      if (id !== e.oppId) e.w.sb.highlevel.store.opportunities.delete(id);
    for (const id of e.w.sb.fourdegrees.store.deals.keys())
      if (id !== e.dealId) e.w.sb.fourdegrees.store.deals.delete(id);
    const ours = await syncFourDegreesValue(e, 330_000_00);
    const answeredAt = e.w.sb.highlevel.store.opportunities.get(e.oppId)?.updatedAt ?? expect.fail("opportunity");
    // HighLevel drops our Update (it drops any delivery it did not get a 429 for).
    await handIn(
      e,
      ours.filter((q) => typeOf(q) !== "OpportunityUpdate"),
    );
    const theirs = await userEditsCloseDate(e, "2031-05-05");
    e.reset();
    await handIn(e, theirs);
    // Taken for the lost Update: no read, nothing synced yet.
    expect(e.counts.requests).toEqual([]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2030-01-15");
    // What reconcile compares: the link holds our answer's updatedAt, the opportunity a newer one.
    const link = await e.w.linkOf("highlevel", e.oppId);
    expect(link?.hlUpdatedAt).toBe(answeredAt);
    expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.updatedAt).not.toBe(answeredAt);

    // Reconcile's HighLevel scan compares each opportunity's updatedAt with its link's.
    const marks: number[] = [];
    for (let tick = 0; tick < 6 && !(await getPending(env.DB, ACCOUNT, "highlevel", "deal", e.oppId)); tick++)
      marks.push(...(await runReconcile(env, e.w.deps, e.w.ctx.log, { pageSize: 100 })).map((r) => r.marked));
    expect(
      marks.reduce((a, b) => a + b, 0),
      "our pair, nothing else",
    ).toBe(1);
    expect(await getPending(env.DB, ACCOUNT, "highlevel", "deal", e.oppId), "reconcile marked the pair").not.toBeNull();
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-05-05");
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(330_000_00);
    await expectConverged(e.w);
  });

  it("one of our deliveries that does not match the answer (a field left out) voids the expectation: a later user's edit is read and synced", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 340_000_00);
    // HighLevel's documented fields are sometimes missing: our Update arrives without its name.
    const damaged = ours.map((q) => {
      if (q.body.kind !== "highlevel.webhook" || q.body.type !== "OpportunityUpdate") return q;
      const { name: _name, ...rest } = q.body.body;
      return { ...q, body: { ...q.body, body: rest } };
    });
    await handIn(e, damaged);
    expect(await expectation(e), "our Update could not take its slot: nothing is left for another event").toBeNull();
    const theirs = await userEditsCloseDate(e, "2031-06-06");
    await handIn(e, theirs);
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-06-06");
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("our deliveries handled while the writing job is still between its HighLevel write and its link save: nothing is recorded (their slots would be left for the user's next edit)", async () => {
    const e = await echoWorld();
    const handlers = syncHandlers(() => e.w.deps);
    let early = 0;
    e.aroundPut = {
      after: async () => {
        for (const q of await takeHighLevelDeliveries(e.w)) {
          const msg = QueueMessageSchema.parse(q.body);
          if (msg.kind === "highlevel.webhook")
            expect((await handlers["highlevel.webhook"]?.(msg, e.w.ctx))?.kind).toBe("ack");
          early++;
        }
        expect(
          await getPending(env.DB, ACCOUNT, "highlevel", "deal", e.oppId),
          "the early deliveries marked the opportunity",
        ).not.toBeNull();
      },
    };
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { value: { amount_minor: 350_000_00, currency: "USD" } });
    await e.w.sb.fourdegrees.flush();
    await e.w.drain();
    expect(early).toBe(2);
    expect(await expectation(e), "the save saw the mark they left: no expectation").toBeNull();
    // Their job read the opportunity as synced; the user's close-date edit afterwards is read and synced.
    await handIn(e, await userEditsCloseDate(e, "2031-07-07"));
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-07-07");
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("our deliveries handled, and their job run to the end, while the writing job is between its write and its link save: nothing is recorded (another save came in between)", async () => {
    const e = await echoWorld();
    const handlers = syncHandlers(() => e.w.deps);
    let jobs = 0;
    e.aroundPut = {
      after: async () => {
        for (const q of await takeHighLevelDeliveries(e.w)) {
          const msg = QueueMessageSchema.parse(q.body);
          if (msg.kind === "highlevel.webhook") await handlers["highlevel.webhook"]?.(msg, e.w.ctx);
        }
        // Their job runs now, saves the pair and clears its mark: no mark is left for the writer's save to see.
        for (const q of e.w.queue.splice(0)) {
          const msg = QueueMessageSchema.parse(q.body);
          if (msg.kind === "sync.record") expect((await handlers["sync.record"]?.(msg, e.w.ctx))?.kind).toBe("ack");
          jobs++;
        }
        expect(await getPending(env.DB, ACCOUNT, "highlevel", "deal", e.oppId)).toBeNull();
      },
    };
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { value: { amount_minor: 355_000_00, currency: "USD" } });
    await e.w.sb.fourdegrees.flush();
    await e.w.drain();
    expect(jobs).toBe(1);
    expect(
      await expectation(e),
      "the link was saved by another job since the writer read it: no expectation",
    ).toBeNull();
    await handIn(e, await userEditsCloseDate(e, "2031-07-17"));
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-07-17");
    await e.w.settle();
    await expectConverged(e.w);
  });
});

describe("what an expectation needs", () => {
  it("an expired expectation is ignored: the echo is read as before, and nothing is taken from it", async () => {
    const e = await echoWorld();
    // The job runs "earlier": its expectation expired before the deliveries are handled.
    const now = e.w.deps.now;
    e.w.deps.now = () => Date.now() - EXPECTED_ECHO_TTL_MS - 1_000;
    const ours = await syncFourDegreesValue(e, 360_000_00);
    e.w.deps.now = now;
    const stored = (await expectation(e)) ?? expect.fail("no expected echo recorded");
    expect(stored.echo?.expiresAt).toBeLessThan(Date.now());
    e.reset();
    await handIn(e, ours);
    expect(e.counts.requests, "the job's re-read of the opportunity").toEqual([
      `GET /highlevel/opportunities/${e.oppId}`,
    ]);
    expect(recordJobs(e.w)).toBe(1);
    expect((await expectation(e))?.raw, "an expired expectation is left as it was").toBe(stored.raw);
    expect(e.counts.highlevel.writes + e.counts.fourdegrees.writes).toBe(0);
  });

  it("two deliveries racing for the same slot: only one takes it", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 370_000_00);
    const update = ours.find((q) => typeOf(q) === "OpportunityUpdate") ?? expect.fail("our Update");
    const event = {
      type: "OpportunityUpdate",
      body: bodyOf(update),
      opportunityId: e.oppId,
      locationId: e.w.locationId,
    };
    const results = await Promise.all([
      consumeExpectedEcho(env.DB, ACCOUNT, event),
      consumeExpectedEcho(env.DB, ACCOUNT, event),
      consumeExpectedEcho(env.DB, ACCOUNT, event),
    ]);
    expect(results.filter((r) => r.consumed)).toHaveLength(1);
    // The losers found no Update left: something else is going on, so nothing is left for anyone.
    expect(await expectation(e)).toBeNull();
  });

  it("deliveries of different types racing: each takes its own slot, none is lost to the other's write", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 380_000_00);
    const events = ours.map((q) => ({
      type: typeOf(q),
      body: bodyOf(q),
      opportunityId: e.oppId,
      locationId: e.w.locationId,
    }));
    const results = await Promise.all(events.map((ev) => consumeExpectedEcho(env.DB, ACCOUNT, ev)));
    expect(results.map((r) => r.consumed)).toEqual([true, true]);
    expect(await expectation(e)).toBeNull();
  });

  it("a write whose answer shows a user's edit made between our read and our write records no expectation, and the edit is synced", async () => {
    const e = await echoWorld();
    e.aroundPut = {
      // The user sets the close date in HighLevel just before our PUT of the new value lands.
      before: () =>
        void e.w.sb.highlevel.service.updateOpportunity(e.oppId, {
          customFields: [{ id: e.closeDateFieldId, field_value: "2031-08-08" }],
        }),
    };
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { value: { amount_minor: 390_000_00, currency: "USD" } });
    await e.w.sb.fourdegrees.flush();
    await e.w.drain();
    expect(e.aroundPut).toBeNull();
    expect(await expectation(e)).toBeNull();
    const link = await e.w.linkOf("highlevel", e.oppId);
    expect(link?.hlUpdatedAt, "the link keeps our read's updatedAt").not.toBe(
      e.w.sb.highlevel.store.opportunities.get(e.oppId)?.updatedAt,
    );
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-08-08");
    expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.monetaryValue).toBe(390_000);
    await expectConverged(e.w);
  });

  it("a pair on the review list does not use its expectation: the echo takes the normal path", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 400_000_00);
    await addReview(env.DB, {
      accountId: ACCOUNT,
      side: "highlevel",
      recordId: e.oppId,
      reason: "test: under review",
      detail: {},
    });
    e.reset();
    await handIn(e, ours);
    expect(await expectation(e)).toBeNull();
    expect(recordJobs(e.w)).toBeGreaterThanOrEqual(1);
    expect(e.counts.requests).toContain(`GET /highlevel/opportunities/${e.oppId}`);
  });

  it("a newer save of the pair clears the expectation of the older write", async () => {
    const e = await echoWorld();
    await syncFourDegreesValue(e, 410_000_00);
    expect(await expectation(e)).not.toBeNull();
    // A 4Degrees edit HighLevel does not map: its job re-reads and saves the pair, writing nothing to HighLevel.
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { tags: ["newer"] });
    await e.w.settle();
    const link = await findLink(env.DB, ACCOUNT, "highlevel", e.oppId);
    expect(link?.state).toBe("active");
    expect(await expectation(e)).toBeNull();
  });
});

/** The metered rows of every expected-echo slot take so far (statements, rows read, rows written). */
function slotTakes(): { queries: number; rowsRead: number; rowsWritten: number } {
  const takes = d1MeterStatements().filter((t) => t.sql.startsWith("UPDATE links SET hl_echo_json = json_set"));
  return {
    queries: takes.reduce((n, t) => n + t.queries, 0),
    rowsRead: takes.reduce((n, t) => n + t.rowsRead, 0),
    rowsWritten: takes.reduce((n, t) => n + t.rowsWritten, 0),
  };
}

/**
 * Hands deliveries in as one queue batch (`consumeBatch`, D1 metered), in this order; returns the
 * slot takes' rows and the record jobs the batch ran.
 */
async function handInAsBatch(
  e: EchoWorld,
  deliveries: Queued[],
): Promise<{ takes: ReturnType<typeof slotTakes>; jobs: number }> {
  const inner = syncHandlers(() => e.w.deps);
  let jobs = 0;
  const handlers: Handlers = {
    ...inner,
    "sync.record": async (msg, ctx) => {
      jobs++;
      return (inner["sync.record"] ?? expect.fail("no record handler"))(msg, ctx);
    },
  };
  const batch = createMessageBatch<unknown>(
    "sync-events",
    deliveries.map((q, i) => ({ id: `eb${i}`, timestamp: new Date(), attempts: 1, body: q.body })),
  );
  const before = slotTakes();
  await consumeBatch(batch, { ...env, DB: meterDatabase(env.DB) }, loadConfig(env), handlers);
  const after = slotTakes();
  const acks = (await getQueueResult(batch, createExecutionContext())).explicitAcks;
  expect(acks, "every delivery acked").toHaveLength(deliveries.length);
  return {
    takes: {
      queries: after.queries - before.queries,
      rowsRead: after.rowsRead - before.rowsRead,
      rowsWritten: after.rowsWritten - before.rowsWritten,
    },
    jobs,
  };
}

describe("our write's deliveries in one queue batch", () => {
  it("happy: HighLevel's Update and MonetaryValueUpdate of our write take both slots in one statement (1 row read, 1 written), no read, no job", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 420_000_00);
    e.reset();
    const { takes, jobs } = await handInAsBatch(e, ours);
    expect(takes).toEqual({ queries: 1, rowsRead: 1, rowsWritten: 1 });
    expect(jobs).toBe(0);
    expect(e.counts.requests).toEqual([]);
    expect(await listPending(env.DB, ACCOUNT)).toEqual([]);
    expect(await expectation(e), "every slot taken: nothing left to expect").toBeNull();
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("a user's close-date edit in the same batch, before our deliveries: both our slots go to the first Update, and the edit is still read and synced", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 430_000_00);
    const theirs = await userEditsCloseDate(e, "2031-09-09");
    e.reset();
    const { jobs } = await handInAsBatch(e, [...theirs, ...ours]);
    expect(jobs).toBe(1);
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-09-09");
    expect(await expectation(e)).toBeNull();
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("a user's close-date edit in the same batch, between our deliveries: it finds no slot, it is read and synced", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 440_000_00);
    const theirs = await userEditsCloseDate(e, "2031-10-10");
    e.reset();
    const { takes, jobs } = await handInAsBatch(e, [ours[0] ?? expect.fail("ours"), ...theirs, ...ours.slice(1)]);
    expect(takes.queries, "our two slots in one statement; the user's Update finds none").toBe(2);
    expect(jobs).toBe(1);
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-10-10");
    await e.w.settle();
    await expectConverged(e.w);
  });

  it("a partner that does not carry the recorded state (a field left out) is not taken with ours: our Update takes its own slot, the other voids what is left", async () => {
    const e = await echoWorld();
    const ours = await syncFourDegreesValue(e, 450_000_00);
    const damaged = ours.map((q) => {
      if (q.body.kind !== "highlevel.webhook" || q.body.type !== "OpportunityMonetaryValueUpdate") return q;
      const { name: _name, ...rest } = q.body.body;
      return { ...q, body: { ...q.body, body: rest } };
    });
    e.reset();
    e.w.resetCounts();
    const { jobs } = await handInAsBatch(e, damaged);
    expect(jobs, "the damaged delivery takes the normal path").toBe(1);
    expect(await expectation(e)).toBeNull();
    expect(e.w.writes(), "the job finds both sides as synced").toEqual({ highlevel: 0, fourdegrees: 0 });
    await e.w.settle();
    await expectConverged(e.w);
  });
});
