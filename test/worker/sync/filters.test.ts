/**
 * Which deals sync: a pipeline pair's filter (stage, owner, value, 4Degrees tag, HighLevel field)
 * selects what the engine pairs, creates and updates; a record outside is skipped with its reason in
 * the activity trail; a pair that leaves the filter stops syncing and nothing is deleted; the
 * preview count is what a backfill then syncs. Through both sandboxes (world.ts).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MappingSchema, type DealFilter } from "../../../src/domain/mapping-config.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { getBackfill } from "../../../src/store/backfill-runs.ts";
import { listEvents } from "../../../src/store/sync-events.ts";
import { beginBackfill } from "../../../src/sync/jobs/backfill.ts";
import { runReconcile } from "../../../src/sync/jobs/reconcile.ts";
import { previewFilter, saveFilter } from "../../../src/sync/jobs/filter-preview.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

async function setFilter(w: World, filter: DealFilter | null): Promise<void> {
  const [first, ...rest] = w.mapping.pipelines;
  if (!first) throw new Error("no pipeline pair");
  await saveMapping(env.DB, ACCOUNT, MappingSchema.parse({ ...w.mapping, pipelines: [{ ...first, filter }, ...rest] }));
}

const deps = (w: World) => ({ db: env.DB, connectors: w.deps.connectors, log: w.ctx.log, now: () => Date.now() });

async function skipReasons(fdId: string): Promise<string[]> {
  const events = await listEvents(env.DB, ACCOUNT, { limit: 500 });
  return events
    .filter((e) => e.fdId === fdId && e.outcome === "skipped")
    .map((e) => (typeof e.detail["reason"] === "string" ? e.detail["reason"] : ""));
}

function hlOpp(w: World, name: string, round: string | null) {
  const roundField = [...w.sb.highlevel.store.customFields.values()].find(
    (f) => f.name === "Round" && f.locationId === w.locationId,
  );
  return w.sb.highlevel.service.createOpportunity({
    locationId: w.locationId,
    pipelineId: w.hlPipelineId,
    pipelineStageId: w.hlStage("Sourced"),
    name,
    status: "open",
    contactId: w.sb.highlevel.service.createContact({ locationId: w.locationId, name: `${name} contact` }).id,
    monetaryValue: 1_000,
    ...(round && roundField ? { customFields: [{ id: roundField.id, field_value: round }] } : {}),
  });
}

describe("which deals sync", () => {
  it("stage, owner, value and tag select 4Degrees deals; the others are skipped with the reason, never created", async () => {
    const w = await createWorld(routes);
    const [, alice, bob] = [...w.sb.fourdegrees.store.users.values()];
    await setFilter(w, {
      stages: [w.fdStage("Due Diligence"), w.fdStage("Term Sheet")],
      ownerIds: [alice?.id ?? ""],
      minValue: 10_000,
      fourdegreesTag: "Portfolio",
    });
    const make = (name: string, o: { stage?: string; owner?: string; value?: number; tags?: string[] }) =>
      w.sb.fourdegrees.createDealAsUser({
        name,
        pipeline_id: w.fdPipelineId,
        stage_id: w.fdStage(o.stage ?? "Due Diligence"),
        owner_id: o.owner ?? alice?.id ?? "",
        value: { amount_minor: (o.value ?? 50_000) * 100, currency: "USD" },
        tags: o.tags ?? ["portfolio"],
      }).id;
    const inside = make("Inside Co", {});
    const wrongStage = make("Early Co", { stage: "Sourced" });
    const wrongOwner = make("Bob Co", { owner: bob?.id ?? "" });
    const tooSmall = make("Small Co", { value: 9_999 });
    const untagged = make("Untagged Co", { tags: ["other"] });
    await w.settle();

    expect((await w.linkOf("fourdegrees", inside))?.state).toBe("active");
    const oppNames = [...w.sb.highlevel.store.opportunities.values()].map((o) => o.name);
    expect(oppNames).toContain("Inside Co");
    for (const [id, name, why] of [
      [wrongStage, "Early Co", "not in a selected stage"],
      [wrongOwner, "Bob Co", "not owned by a selected owner"],
      [tooSmall, "Small Co", "value below 10000"],
      [untagged, "Untagged Co", 'no 4Degrees tag "Portfolio"'],
    ] as const) {
      expect(await w.linkOf("fourdegrees", id), name).toBeNull();
      expect(oppNames, name).not.toContain(name);
      expect(await skipReasons(id), name).toContain(`outside the sync filter (${why}): not synced, nothing deleted`);
    }
  });

  it("a HighLevel field value selects HighLevel opportunities; a deal (no opportunity yet) does not meet it", async () => {
    const w = await createWorld(routes);
    const roundField = [...w.sb.highlevel.store.customFields.values()].find(
      (f) => f.name === "Round" && f.locationId === w.locationId,
    );
    await setFilter(w, { highlevelField: { id: roundField?.id ?? "", equals: "seed" } });
    const seed = hlOpp(w, "Seed Opp", "Seed");
    const seriesA = hlOpp(w, "Series A Opp", "Series A");
    const deal = newDeal(w, { name: "Deal Without Opp", stage: "Sourced" });
    await w.settle();
    expect((await w.linkOf("highlevel", seed.id))?.state).toBe("active");
    expect(w.sb.fourdegrees.deals().some((d) => d.name === "Seed Opp")).toBe(true);
    expect(await w.linkOf("highlevel", seriesA.id)).toBeNull();
    expect(w.sb.fourdegrees.deals().some((d) => d.name === "Series A Opp")).toBe(false);
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
  });

  it("a pair that leaves the filter: the change that moved it out reaches the other side once, then it stops; nothing is deleted", async () => {
    const w = await createWorld(routes);
    await setFilter(w, { stages: [w.fdStage("Sourced"), w.fdStage("Due Diligence")] });
    const deal = newDeal(w, { name: "Leaving Co", stage: "Sourced", amountMinor: 1_000_00 });
    await w.settle();
    const link = await w.linkOf("fourdegrees", deal.id);
    expect(link?.state).toBe("active");
    const oppId = link?.hlOpportunityId ?? "";

    w.sb.fourdegrees.updateDealAsUser(deal.id, { stage_id: w.fdStage("Term Sheet") });
    await w.settle();
    expect(w.sb.highlevel.store.opportunities.get(oppId)?.pipelineStageId).toBe(w.hlStage("Term Sheet"));

    w.resetCounts();
    w.sb.fourdegrees.updateDealAsUser(deal.id, { name: "Leaving Co Renamed" });
    w.sb.highlevel.service.updateOpportunity(oppId, { monetaryValue: 777 });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    expect(w.sb.highlevel.store.opportunities.get(oppId)?.name).toBe("Leaving Co");
    expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(1_000_00);
    // Kept on both sides, and the link too (it syncs again once back inside).
    expect(w.sb.fourdegrees.deal(deal.id).archived_at).toBeNull();
    expect((await w.linkOf("fourdegrees", deal.id))?.state).toBe("active");
    expect(
      (await skipReasons(deal.id)).some((r) => r.startsWith("outside the sync filter (not in a selected stage)")),
    ).toBe(true);

    w.sb.fourdegrees.updateDealAsUser(deal.id, { stage_id: w.fdStage("Due Diligence") });
    await w.settle();
    expect(w.sb.highlevel.store.opportunities.get(oppId)?.name).toBe("Leaving Co Renamed");
  });

  it("reconcile does not enqueue unlinked records the filter keeps out: it goes quiet with them still unlinked", async () => {
    const w = await createWorld(routes);
    await setFilter(w, { stages: [w.fdStage("Due Diligence")] });
    const marks: number[] = [];
    for (let pass = 0; pass < 4; pass++) {
      const reports = await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100 });
      marks.push(reports.find((r) => r.accountId === ACCOUNT)?.marked ?? -1);
      await w.settle();
    }
    // The first tick marks what the filter lets in (demo records in Due Diligence), then nothing.
    expect(marks[0]).toBeGreaterThan(0);
    expect(marks.slice(2)).toEqual([0, 0]);
    const outside = w.sb.fourdegrees.deals().filter((d) => d.stage_id !== w.fdStage("Due Diligence"));
    expect(outside.length).toBeGreaterThan(0);
    for (const d of outside) expect(await w.linkOf("fourdegrees", d.id), d.name).toBeNull();
  });

  it("the preview count is what a backfill then syncs (demo records on both sides), and the filter is saved by name-checked ids", async () => {
    const w = await createWorld(routes);
    w.sb.highlevel.unsubscribe("http://worker.test/webhooks/highlevel");
    w.sb.fourdegrees.webhooks.subscribers.clear();
    const filter: DealFilter = { minValue: 1_000_000 };
    const account = await w.account();
    const preview = await previewFilter(deps(w), account, w.mapping, 0, filter);
    const all = await previewFilter(deps(w), account, w.mapping, 0, null);
    expect(preview.source).toBe("providers");
    expect(preview.truncated).toBe(false);
    expect(preview.deals.total).toBe(all.deals.total);
    expect(preview.selected).toBeGreaterThan(0);
    expect(preview.selected).toBeLessThan(all.selected);
    expect(preview.skippedExamples[0]?.reason).toBe("value below 1000000");

    await expect(saveFilter(deps(w), account, 0, { stages: ["no-such-stage"] })).rejects.toThrow(/no-such-stage/);
    await expect(saveFilter(deps(w), account, 3, filter)).rejects.toThrow(/no pipeline pair 3/);
    await saveFilter(deps(w), account, 0, filter);
    await beginBackfill(env.DB, w.deps, ACCOUNT);
    await w.drain();
    const run = await getBackfill(env.DB, ACCOUNT);
    expect(run?.state).toBe("done");
    expect((run?.created ?? 0) + (run?.matched ?? 0) + (run?.reviewed ?? 0)).toBe(preview.selected);
    const kept = (await listEvents(env.DB, ACCOUNT, { limit: 500 })).filter(
      (e) => e.outcome === "skipped" && e.detail["trigger"] === "backfill",
    );
    expect(kept).toHaveLength(all.selected - preview.selected);
  });
});
