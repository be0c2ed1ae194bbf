/**
 * Zero-read echo recognition for HighLevel opportunity webhooks (src/sync/engine/echo.ts),
 * end to end against both sandboxes: the webhooks of our own HighLevel writes are acked without a
 * job and without a HighLevel call when their payload is the pair's last-synced state; real
 * changes, fields the payload cannot speak for, late and reordered events, a pair with a sync in
 * flight and unlinked opportunities still take the normal path (mark, job, re-read).
 *
 * Structure lookups come from the KV caches as in production (calls-per-change.test.ts); every
 * request the Worker makes to either sandbox is counted per side (reads: GET and search).
 * The accounts here map no HighLevel custom field unless a test says so (`closeDateFieldId: null`):
 * the world's default mapping syncs the close date through one, which a webhook never carries.
 *
 * The subject here is the payload alone. Our own writes also record the echo they expect
 * (expected-echo.test.ts), which would take our echoes before the payload is looked at: tests of
 * the payload path forget that record first (`forgetExpectedEcho`), as if its deliveries came
 * after it expired.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { saveMapping } from "../../../src/store/accounts.ts";
import { CachedStructureCrm } from "../../../src/fourdegrees/cached-crm.ts";
import { deleteCache } from "../../../src/store/highlevel-cache.ts";
import { kvKeys } from "../../../src/store/kv-keys.ts";
import { clearExpectedEcho, findExpectedEcho } from "../../../src/store/links.ts";
import { getPending, listPending } from "../../../src/store/pending.ts";
import { listEvents } from "../../../src/store/sync-events.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { MappingSchema, type ExtraField, type MappingInput } from "../../../src/domain/mapping-config.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { countProviderCall, expectConverged, newDeal, noProviderCalls, type ProviderCalls } from "./checks.ts";
import { ACCOUNT, createWorld, type Queued, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

interface EchoWorld {
  w: World;
  counts: ProviderCalls;
  reset(): void;
  dealId: string;
  oppId: string;
  /** Runs once right after the next read of an opportunity returns, before the job goes on (a race). */
  afterOpportunityRead: (() => Promise<void>) | null;
}

/**
 * A world whose mapping is `mapping(default)` (default: no close-date custom field), one deal with
 * an owner (so the opportunity's webhooks carry `assignedTo`) synced and settled, and every
 * sandbox request counted from `reset()` on.
 */
async function echoWorld(
  mapping: (m: MappingInput) => MappingInput = (m) => ({ ...m, closeDateFieldId: null }),
): Promise<EchoWorld> {
  const w = await createWorld(routes, { mapping });
  // 4Degrees structure (pipelines, users) from KV as in production, so the counts are the records'.
  const connectors = w.deps.connectors;
  const structureKey = `echo-test:${crypto.randomUUID()}`;
  let e: EchoWorld | null = null;
  w.deps.connectors = async (account, lane) => {
    const c = await connectors(account, lane);
    return {
      ...c,
      fourdegrees: new CachedStructureCrm(c.fourdegrees, env.CACHE, structureKey),
      highlevel: (loc) => {
        const port = c.highlevel(loc);
        return {
          ...port,
          async getOpportunity(id) {
            const opp = await port.getOpportunity(id);
            const race = e?.afterOpportunityRead;
            if (e && race) {
              e.afterOpportunityRead = null;
              await race();
            }
            return opp;
          },
        };
      },
    };
  };
  const counts: ProviderCalls = noProviderCalls();
  const sandbox = routes["sandbox.test"];
  if (!sandbox) throw new Error("the world routes sandbox.test");
  routes["sandbox.test"] = async (r) => {
    countProviderCall(counts, r);
    return sandbox(r);
  };
  const owner = [...w.sb.fourdegrees.store.users.values()][1];
  expect(owner, "a 4Degrees demo user").toBeDefined();
  const dealId = newDeal(w, {
    name: "Echo Labs",
    stage: "Sourced",
    amountMinor: 100_000_00,
    ownerId: owner?.id ?? null,
  }).id;
  await w.settle();
  const oppId = (await w.linkOf("fourdegrees", dealId))?.hlOpportunityId ?? "";
  expect(oppId).not.toBe("");
  expect(w.sb.highlevel.store.opportunities.get(oppId)?.assignedTo, "the opportunity has an assignee").toBeTruthy();
  const reset = () => {
    counts.highlevel = { reads: 0, writes: 0 };
    counts.fourdegrees = { reads: 0, writes: 0 };
    counts.requests.length = 0;
    w.handled.length = 0;
  };
  reset();
  e = { w, counts, reset, dealId, oppId, afterOpportunityRead: null };
  return e;
}

/** Delivers the sandbox's pending HighLevel webhooks and takes their queue messages out of the queue (to hand in later). */
async function takeHighLevelDeliveries(w: World): Promise<Queued[]> {
  await w.sb.highlevel.flush();
  const taken = w.queue.filter((q) => q.body.kind === "highlevel.webhook");
  w.queue.splice(0, w.queue.length, ...w.queue.filter((q) => q.body.kind !== "highlevel.webhook"));
  return taken;
}

/** A 4Degrees value edit, synced to HighLevel by its job; the HighLevel webhooks of that write are left undelivered. */
async function syncFourDegreesValue(e: EchoWorld, amountMinor: number): Promise<void> {
  e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { value: { amount_minor: amountMinor, currency: "USD" } });
  await e.w.sb.fourdegrees.flush();
  await e.w.drain();
  expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.monetaryValue).toBe(amountMinor / 100);
}

const recordJobs = (w: World) => w.handled.filter((h) => h.kind === "sync.record").length;

/** Drops the echo our last write expects (asserting there was one), so the payload alone decides. */
async function forgetExpectedEcho(e: EchoWorld): Promise<void> {
  expect(await findExpectedEcho(env.DB, ACCOUNT, e.oppId), "our write recorded its expected echo").not.toBeNull();
  await clearExpectedEcho(env.DB, ACCOUNT, e.oppId);
}

describe("the echo of our own HighLevel write", () => {
  it("a 4Degrees value edit synced to HighLevel: its echo webhooks cost no HighLevel read, no write, no job, and leave no dirty mark", async () => {
    const e = await echoWorld();
    await syncFourDegreesValue(e, 300_000_00);
    // The job: one re-read of the deal, one read and one write of the opportunity.
    expect({ highlevel: e.counts.highlevel, fourdegrees: e.counts.fourdegrees }, e.counts.requests.join("\n")).toEqual({
      highlevel: { reads: 1, writes: 1 },
      fourdegrees: { reads: 1, writes: 0 },
    });

    await forgetExpectedEcho(e);
    e.reset();
    const echoes = await takeHighLevelDeliveries(e.w);
    expect(echoes.map((q) => (q.body.kind === "highlevel.webhook" ? q.body.type : "")).sort()).toEqual([
      "OpportunityMonetaryValueUpdate",
      "OpportunityUpdate",
    ]);
    e.w.queue.push(...echoes);
    await e.w.drain();
    expect(e.counts.requests, "requests made for the echoes").toEqual([]);
    expect(recordJobs(e.w)).toBe(0);
    expect(await getPending(env.DB, ACCOUNT, "highlevel", "deal", e.oppId)).toBeNull();
    expect(await listPending(env.DB, ACCOUNT)).toEqual([]);

    // Quiet afterwards, and both sides hold the new value.
    await e.w.settle();
    expect(e.counts.requests).toEqual([]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(300_000_00);
    await expectConverged(e.w);
  });

  it("a cold users cache makes the echo uncertain: one re-read of the opportunity by the job, and no users call", async () => {
    const e = await echoWorld();
    await syncFourDegreesValue(e, 250_000_00);
    await forgetExpectedEcho(e);
    await deleteCache(env.CACHE, kvKeys.hlUsers(e.w.locationId));
    e.reset();
    await e.w.settle();
    expect(e.counts.requests, "the job's re-read only").toEqual([`GET /highlevel/opportunities/${e.oppId}`]);
    expect(recordJobs(e.w)).toBe(1);
    expect(e.counts.highlevel.writes + e.counts.fourdegrees.writes).toBe(0);
  });
});

describe("real HighLevel changes", () => {
  it("value, stage, name and status changed in HighLevel are each re-read and synced to 4Degrees", async () => {
    const e = await echoWorld();
    const changes: Array<{ what: string; change: () => void; check: () => void }> = [
      {
        what: "value",
        change: () => void e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 275_000 }),
        check: () => expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(275_000_00),
      },
      {
        what: "stage",
        change: () =>
          void e.w.sb.highlevel.service.updateOpportunity(e.oppId, { pipelineStageId: e.w.hlStage("Term Sheet") }),
        check: () => expect(e.w.sb.fourdegrees.deal(e.dealId).stage_id).toBe(e.w.fdStage("Term Sheet")),
      },
      {
        what: "name",
        change: () => void e.w.sb.highlevel.service.updateOpportunity(e.oppId, { name: "Echo Labs II" }),
        check: () => expect(e.w.sb.fourdegrees.deal(e.dealId).name).toBe("Echo Labs II"),
      },
      {
        what: "status",
        change: () => void e.w.sb.highlevel.service.setStatus(e.oppId, "won"),
        check: () => expect(e.w.sb.fourdegrees.deal(e.dealId).status).toBe("won"),
      },
    ];
    for (const c of changes) {
      e.reset();
      c.change();
      await e.w.settle();
      c.check();
      // One job: one read per side, one 4Degrees write; its 4Degrees echo is dropped by version.
      expect(
        { what: c.what, highlevel: e.counts.highlevel, fourdegrees: e.counts.fourdegrees },
        e.counts.requests.join("\n"),
      ).toEqual({ what: c.what, highlevel: { reads: 1, writes: 0 }, fourdegrees: { reads: 1, writes: 1 } });
      expect(recordJobs(e.w), c.what).toBeGreaterThanOrEqual(1);
    }
    await expectConverged(e.w);
  });

  it("a HighLevel change reverted before its job ran: the second event (equal to the last sync) finds the record dirty and takes the normal path", async () => {
    const e = await echoWorld();
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 999_000 });
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 100_000 });
    await e.w.settle();
    // One job read the opportunity (as synced: nothing to write); the value never reached 4Degrees.
    expect(recordJobs(e.w)).toBeGreaterThanOrEqual(1);
    expect(e.counts.highlevel.writes + e.counts.fourdegrees.writes).toBe(0);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(100_000_00);
    await expectConverged(e.w);
  });
});

describe("fields a webhook does not carry", () => {
  it("a mapping that syncs the close date through a HighLevel custom field: the payload cannot prove the echo (one re-read), and a close-date edit in HighLevel (whose webhook looks like an echo) is synced", async () => {
    const e = await echoWorld((m) => m);
    expect(e.w.mapping.closeDateFieldId).not.toBeNull();
    await syncFourDegreesValue(e, 320_000_00);
    await forgetExpectedEcho(e);
    e.reset();
    await e.w.settle();
    expect(e.counts.requests, "the job's re-read of the opportunity for its echo").toEqual([
      `GET /highlevel/opportunities/${e.oppId}`,
    ]);
    expect(e.counts.highlevel.writes + e.counts.fourdegrees.writes).toBe(0);

    e.reset();
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, {
      customFields: [{ id: e.w.mapping.closeDateFieldId ?? "", field_value: "2031-05-17" }],
    });
    const [update] = e.w.sb.highlevel.deliveries().filter((d) => d.state === "pending");
    expect(update?.payload["type"]).toBe("OpportunityUpdate");
    expect(update?.payload["monetaryValue"]).toBe(320_000);
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).expected_close_date).toBe("2031-05-17");
    expect(e.counts.fourdegrees.writes).toBe(1);
    await expectConverged(e.w);
  });

  /** The world with the "Round" field of both demo pipelines mapped in `direction` (and no close date). */
  async function roundWorld(
    direction: ExtraField["direction"],
  ): Promise<EchoWorld & { hlRound: string; fdRound: string }> {
    const e = await echoWorld();
    const hlRound =
      [...e.w.sb.highlevel.store.customFields.values()].find(
        (f) => f.name === "Round" && f.locationId === e.w.locationId,
      )?.id ?? "";
    const fdRound = e.w.sb.fourdegrees.store.fieldsOf(e.w.fdPipelineId).find((f) => f.name === "Round")?.id ?? "";
    expect([hlRound, fdRound]).not.toContain("");
    const mapping = MappingSchema.parse({
      ...e.w.mapping,
      fields: [{ key: "round", fourdegreesFieldId: fdRound, highlevelFieldId: hlRound, direction }],
    });
    await saveMapping(env.DB, ACCOUNT, mapping);
    e.w.mapping = mapping;
    // A sync under the new mapping puts the field in the pair's base.
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { name: "Echo Labs (round)" });
    await e.w.settle();
    e.reset();
    return { ...e, hlRound, fdRound };
  }

  it("a mapped custom field synced both ways: the payload cannot prove the echo (one re-read), and an edit of that field in HighLevel is synced", async () => {
    const e = await roundWorld("both");
    await syncFourDegreesValue(e, 330_000_00);
    await forgetExpectedEcho(e);
    e.reset();
    await e.w.settle();
    expect(e.counts.requests).toEqual([`GET /highlevel/opportunities/${e.oppId}`]);
    expect(recordJobs(e.w)).toBe(1);

    e.reset();
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { customFields: [{ id: e.hlRound, field_value: "Series A" }] });
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).fields[e.fdRound]).toBe("Series A");
    await expectConverged(e.w);
  });

  it("a custom field mapped to HighLevel only is not compared: the echo is free, as the engine would never sync a HighLevel edit of it", async () => {
    const e = await roundWorld("to_highlevel");
    await syncFourDegreesValue(e, 340_000_00);
    await forgetExpectedEcho(e);
    e.reset();
    await e.w.settle();
    expect(e.counts.requests).toEqual([]);
    expect(recordJobs(e.w)).toBe(0);
    expect(e.w.sb.fourdegrees.deal(e.dealId).fields[e.fdRound] ?? null).toBeNull();
  });
});

describe("order, lateness and the dirty mark", () => {
  it("a late event older than the base (its payload differs) costs one read and rolls nothing back", async () => {
    const e = await echoWorld();
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 200_000 });
    const older = await takeHighLevelDeliveries(e.w);
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 300_000 });
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(300_000_00);

    e.reset();
    e.w.queue.push(...older);
    await e.w.settle();
    expect(e.counts.requests, "the late event's job: the opportunity is as synced").toEqual([
      `GET /highlevel/opportunities/${e.oppId}`,
    ]);
    expect(e.counts.highlevel.writes + e.counts.fourdegrees.writes).toBe(0);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(300_000_00);
    expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.monetaryValue).toBe(300_000);
    await expectConverged(e.w);
  });

  it("an old event equal to the base, overtaken by a newer change, is skipped and the newer change's own event still syncs it", async () => {
    const e = await echoWorld();
    await syncFourDegreesValue(e, 150_000_00);
    await forgetExpectedEcho(e);
    const oldEchoes = await takeHighLevelDeliveries(e.w);
    // HighLevel changes the value; its events are held back while the old echoes arrive first.
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 180_000 });
    const newer = await takeHighLevelDeliveries(e.w);
    e.reset();
    e.w.queue.push(...oldEchoes);
    await e.w.drain();
    expect(e.counts.requests, "the old echoes").toEqual([]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(150_000_00);

    e.w.queue.push(...newer);
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(180_000_00);
    expect(e.counts.fourdegrees.writes).toBe(1);
    await expectConverged(e.w);
  });

  it("a revert to the synced state while the HighLevel job is between its read and its save is not skipped: the job runs again and the revert reaches 4Degrees", async () => {
    const e = await echoWorld();
    const handlers = syncHandlers(() => e.w.deps);
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 200_000 });
    let revertHandled = false;
    e.afterOpportunityRead = async () => {
      // The job has read 200 000; the user puts 100 000 back, and that event is handled now.
      e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 100_000 });
      const revert = await takeHighLevelDeliveries(e.w);
      expect(revert.length).toBeGreaterThan(0);
      for (const q of revert) {
        const msg = QueueMessageSchema.parse(q.body);
        if (msg.kind === "highlevel.webhook")
          expect((await handlers["highlevel.webhook"]?.(msg, e.w.ctx))?.kind).toBe("ack");
      }
      revertHandled = true;
    };
    await e.w.settle();
    expect(revertHandled).toBe(true);
    expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.monetaryValue).toBe(100_000);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(100_000_00);
    expect(await listPending(env.DB, ACCOUNT)).toEqual([]);
    await expectConverged(e.w);
  });

  it("a revert to the synced state while a 4Degrees-side job is between its read of the opportunity and its save is not skipped either", async () => {
    const e = await echoWorld();
    const handlers = syncHandlers(() => e.w.deps);
    // A HighLevel change whose webhooks are lost; a 4Degrees edit HighLevel does not map (its job reads the opportunity).
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 200_000 });
    expect((await takeHighLevelDeliveries(e.w)).length).toBeGreaterThan(0);
    e.w.sb.fourdegrees.updateDealAsUser(e.dealId, { tags: ["race"] });
    let revertHandled = false;
    e.afterOpportunityRead = async () => {
      expect(await getPending(env.DB, ACCOUNT, "highlevel", "deal", e.oppId), "no HighLevel-side job").toBeNull();
      e.w.sb.highlevel.service.updateOpportunity(e.oppId, { monetaryValue: 100_000 });
      for (const q of await takeHighLevelDeliveries(e.w)) {
        const msg = QueueMessageSchema.parse(q.body);
        if (msg.kind === "highlevel.webhook")
          expect((await handlers["highlevel.webhook"]?.(msg, e.w.ctx))?.kind).toBe("ack");
      }
      revertHandled = true;
    };
    await e.w.settle();
    expect(revertHandled).toBe(true);
    expect(e.w.sb.highlevel.store.opportunities.get(e.oppId)?.monetaryValue).toBe(100_000);
    expect(e.w.sb.fourdegrees.deal(e.dealId).value?.amount_minor).toBe(100_000_00);
    expect(await listPending(env.DB, ACCOUNT)).toEqual([]);
    await expectConverged(e.w);
  });
});

describe("what the payload must match besides the fields", () => {
  it("a payload naming another contact than the link's is not an echo (the link's contact, which notes follow, is the job's to update)", async () => {
    const e = await echoWorld();
    await syncFourDegreesValue(e, 170_000_00);
    await forgetExpectedEcho(e);
    const echoes = await takeHighLevelDeliveries(e.w);
    const other = e.w.sb.highlevel.service.createContact({
      locationId: e.w.locationId,
      name: "Otto Other",
      email: "otto@other.example",
    });
    e.reset();
    for (const q of echoes)
      if (q.body.kind === "highlevel.webhook")
        e.w.queue.push({ ...q, body: { ...q.body, body: { ...q.body.body, contactId: other.id } } });
    await e.w.drain();
    expect(recordJobs(e.w)).toBe(1);
    expect(e.counts.requests).toEqual([`GET /highlevel/opportunities/${e.oppId}`]);
  });
});

describe("the stage check", () => {
  it("an echo-like event of a won opportunity moved to a stage HighLevel just gained is acked without a job, and the stage check still raises its alert", async () => {
    const e = await echoWorld();
    e.w.sb.highlevel.service.setStatus(e.oppId, "won");
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).status).toBe("won");
    const pipeline = e.w.sb.highlevel.store.pipelines.get(e.w.hlPipelineId) ?? expect.fail("demo pipeline missing");
    const stageId = crypto.randomUUID();
    pipeline.stages.push({
      id: stageId,
      name: "Won Archive",
      position: pipeline.stages.length,
      showInFunnel: true,
      showInPieChart: true,
    });
    e.reset();
    // A won opportunity has no canonical stage: the move changes nothing the pair syncs.
    e.w.sb.highlevel.service.updateOpportunity(e.oppId, { pipelineStageId: stageId });
    await e.w.settle();
    expect(recordJobs(e.w)).toBe(0);
    expect(e.counts.requests, "only the stage check's reload of the pipelines").toEqual([
      "GET /highlevel/opportunities/pipelines",
    ]);
    const alerts = (await listEvents(env.DB, ACCOUNT, { kind: "alert" })).filter((a) => a.outcome === "new_stage");
    expect(alerts.map((a) => a.detail["stageId"])).toEqual([stageId]);
    expect(e.w.sb.fourdegrees.deal(e.dealId).status).toBe("won");
  });
});

describe("records without an active link", () => {
  it("an unlinked opportunity's event takes the normal path: re-read, and a 4Degrees deal is created for it", async () => {
    const e = await echoWorld();
    const contact = e.w.sb.highlevel.service.createContact({
      locationId: e.w.locationId,
      name: "Una Linked",
      email: "una@unlinked.example",
    });
    const opp = e.w.sb.highlevel.service.createOpportunity({
      locationId: e.w.locationId,
      pipelineId: e.w.hlPipelineId,
      pipelineStageId: e.w.hlStage("Sourced"),
      name: "Unlinked Ventures",
      status: "open",
      contactId: contact.id,
      monetaryValue: 42,
    });
    await e.w.settle();
    expect(recordJobs(e.w)).toBeGreaterThanOrEqual(1);
    expect(e.counts.requests).toContain(`GET /highlevel/opportunities/${opp.id}`);
    const link = await e.w.linkOf("highlevel", opp.id);
    expect(link?.state).toBe("active");
    expect(e.w.sb.fourdegrees.deal(link?.fdDealId ?? "").value?.amount_minor).toBe(42_00);
    await expectConverged(e.w);
  });

  it("OpportunityDelete, whose payload is the synced state, is never an echo: the deal is archived", async () => {
    const e = await echoWorld();
    e.w.sb.highlevel.service.deleteOpportunity(e.oppId);
    await e.w.settle();
    expect(e.w.sb.fourdegrees.deal(e.dealId).archived_at).not.toBeNull();
    expect((await e.w.linkOf("highlevel", e.oppId))?.state).toBe("deleted");
  });
});
