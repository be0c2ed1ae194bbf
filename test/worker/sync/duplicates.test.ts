/**
 * Duplicates: the match keys decide what a backfill pairs; the matcher's unsure cases are possible
 * matches an operator links by hand (then the pair syncs) or tells apart (never suggested again);
 * unlinking a pair deletes nothing and the two records stop syncing. The /api routes: test/worker/http/matching-api.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { MatchKeys } from "../../../src/domain/mapping-config.ts";
import { listEvents, listReview } from "../../../src/store/sync-events.ts";
import { beginBackfill } from "../../../src/sync/jobs/backfill.ts";
import { linkByHand, listPossibleMatches, tellApart, unlinkPair } from "../../../src/sync/jobs/duplicates.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const HL_HOOK = "http://worker.test/webhooks/highlevel";
const FD_HOOK = "http://worker.test/webhooks/4degrees";
const deps = (w: World) => ({ db: env.DB, connectors: w.deps.connectors, log: w.ctx.log, now: () => Date.now() });

/** Records made while the Worker hears nothing (a backfill's starting point). */
function quiet(w: World): void {
  w.sb.highlevel.unsubscribe(HL_HOOK);
  w.sb.fourdegrees.webhooks.subscribers.clear();
}
function listen(w: World): void {
  w.sb.highlevel.subscribe(HL_HOOK);
  w.sb.fourdegrees.subscribe(FD_HOOK);
}

function opp(w: World, name: string, externalId?: string) {
  return w.sb.highlevel.service.createOpportunity({
    locationId: w.locationId,
    pipelineId: w.hlPipelineId,
    pipelineStageId: w.hlStage("Sourced"),
    name,
    status: "open",
    contactId: w.sb.highlevel.service.createContact({ locationId: w.locationId, name: `${name} ${Math.random()}` }).id,
    monetaryValue: 10,
    ...(externalId ? { customFields: [{ id: w.mapping.externalIdFieldId ?? "", field_value: externalId }] } : {}),
  });
}

async function backfill(w: World): Promise<void> {
  await beginBackfill(env.DB, w.deps, ACCOUNT);
  await w.drain();
}

const oppsNamed = (w: World, name: string) =>
  [...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === name);

describe("match keys", () => {
  it.each<[MatchKeys, { byName: boolean; byExternalId: boolean }]>([
    ["name_email", { byName: true, byExternalId: true }],
    ["name", { byName: true, byExternalId: true }],
    ["external_id", { byName: false, byExternalId: true }],
    ["none", { byName: false, byExternalId: false }],
  ])("%s: pairs by name and by external id as chosen", async (matchKeys, expected) => {
    const w = await createWorld(routes, { mapping: (m) => ({ ...m, matchKeys }) });
    quiet(w);
    const byName = newDeal(w, { name: "Acme Match", stage: "Sourced" });
    const byId = newDeal(w, { name: "Ext Match", stage: "Sourced" });
    const sameName = opp(w, "Acme Match");
    const carrying = opp(w, "Ext Match (HighLevel)", byId.id);
    await backfill(w);

    const nameLink = await w.linkOf("fourdegrees", byName.id);
    expect(nameLink?.hlOpportunityId === sameName.id).toBe(expected.byName);
    expect(oppsNamed(w, "Acme Match")).toHaveLength(expected.byName ? 1 : 2);
    const idLink = await w.linkOf("fourdegrees", byId.id);
    expect(idLink?.hlOpportunityId === carrying.id).toBe(expected.byExternalId);
    // Unpaired records are created on the other side, never dropped.
    expect(idLink?.state).toBe("active");
    expect((await w.linkOf("highlevel", carrying.id))?.state).toBe("active");
  });
});

describe("possible matches", () => {
  it("an ambiguous match is listed by name with both candidates; linking one by hand syncs the pair through the engine", async () => {
    const w = await createWorld(routes);
    quiet(w);
    const deal = newDeal(w, { name: "Twin Co", stage: "Sourced", amountMinor: 5_000_00 });
    const a = opp(w, "Twin Co");
    const b = opp(w, "Twin Co");
    await backfill(w);
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();

    const matches = await listPossibleMatches(deps(w), await w.account());
    expect(matches).toHaveLength(1);
    expect(matches[0]?.deal).toMatchObject({ id: deal.id, name: "Twin Co", value: 5_000, found: true });
    expect(matches[0]?.candidates).toHaveLength(2);
    expect(matches[0]?.candidates).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: a.id, name: "Twin Co" }),
        expect.objectContaining({ id: b.id, name: "Twin Co" }),
      ]),
    );

    listen(w);
    const result = await linkByHand(deps(w), await w.account(), deal.id, a.id);
    expect(["ok", "noop"]).toContain(result.outcome);
    expect((await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId).toBe(a.id);
    expect(w.sb.fourdegrees.deal(deal.id).external_refs).toContainEqual({ system: "highlevel", id: a.id });
    // Neither the deal nor the other candidate is left on the review list for this deal.
    const review = await listReview(env.DB, ACCOUNT);
    expect(review.some((r) => r.recordId === deal.id || r.recordId === b.id)).toBe(false);
    expect(await listPossibleMatches(deps(w), await w.account())).toEqual([]);
    // 409: already linked.
    await expect(linkByHand(deps(w), await w.account(), deal.id, b.id)).rejects.toThrow(/already linked/);

    await w.settle();
    w.sb.fourdegrees.updateDealAsUser(deal.id, { name: "Twin Co Renamed" });
    await w.settle();
    expect(w.sb.highlevel.store.opportunities.get(a.id)?.name).toBe("Twin Co Renamed");
    expect(w.sb.highlevel.store.opportunities.get(b.id)?.name).toBe("Twin Co");
    const linkEvents = (await listEvents(env.DB, ACCOUNT, { kind: "link" })).map((e) => e.outcome);
    expect(linkEvents).toContain(result.outcome);
  });

  it("told apart: the pair is never suggested or matched again", async () => {
    const w = await createWorld(routes);
    quiet(w);
    const deal = newDeal(w, { name: "Pair Co", stage: "Sourced" });
    const a = opp(w, "Pair Co");
    const b = opp(w, "Pair Co");
    await backfill(w);
    expect(await tellApart(deps(w), await w.account(), deal.id, a.id)).toEqual([b.id]);
    const left = await listPossibleMatches(deps(w), await w.account());
    expect(left[0]?.candidates.map((c) => c.id)).toEqual([b.id]);
    expect(await tellApart(deps(w), await w.account(), deal.id, b.id)).toEqual([]);
    expect(await listPossibleMatches(deps(w), await w.account())).toEqual([]);

    await backfill(w);
    const link = await w.linkOf("fourdegrees", deal.id);
    expect(link?.state).toBe("active");
    expect([a.id, b.id]).not.toContain(link?.hlOpportunityId);
    expect(oppsNamed(w, "Pair Co")).toHaveLength(3);
    // The two opportunities became deals of their own; no review item suggests them for the deal.
    expect((await w.linkOf("highlevel", a.id))?.fdDealId).not.toBe(deal.id);
    expect((await w.linkOf("highlevel", b.id))?.fdDealId).not.toBe(deal.id);
    expect(await listPossibleMatches(deps(w), await w.account())).toEqual([]);
  });

  it("unlink: the link goes, both records stay, neither syncs again (live or backfill)", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Solo Co", stage: "Sourced" });
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    expect(oppId).not.toBe("");

    expect(await unlinkPair(deps(w), await w.account(), deal.id)).toEqual({ hlId: oppId });
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
    await expect(unlinkPair(deps(w), await w.account(), deal.id)).rejects.toThrow(/has no link/);

    await w.settle();
    w.resetCounts();
    w.sb.fourdegrees.updateDealAsUser(deal.id, { name: "Solo Co Renamed" });
    w.sb.highlevel.service.updateOpportunity(oppId, { monetaryValue: 999 });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    // A backfill (which also syncs the demo records) neither re-pairs nor re-creates them.
    await backfill(w);
    expect(w.sb.highlevel.store.opportunities.get(oppId)?.name).toBe("Solo Co");
    expect([...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name?.startsWith("Solo Co"))).toHaveLength(
      1,
    );
    expect(w.sb.fourdegrees.deals().filter((d) => d.name.startsWith("Solo Co"))).toHaveLength(1);
    expect(w.sb.fourdegrees.deal(deal.id).archived_at).toBeNull();
    expect(w.sb.fourdegrees.deal(deal.id).value).toBeNull();
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
    expect(await w.linkOf("highlevel", oppId)).toBeNull();
    const reasons = (await listEvents(env.DB, ACCOUNT, { limit: 500 })).map((e) => e.detail["reason"]);
    expect(reasons).toContain("unlinked by hand: the record no longer syncs (link it by hand to sync it again)");

    // Linking by hand makes them sync again.
    await linkByHand(deps(w), await w.account(), deal.id, oppId);
    expect((await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId).toBe(oppId);
  });
});
