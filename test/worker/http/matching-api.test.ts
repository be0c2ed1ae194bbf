/**
 * The /api routes of filters and duplicates (src/http/matching.ts) through the Worker's fetch, with
 * the sandboxes behind it: validation (400), unknown records (404), already linked (409), and link,
 * list, unlink, preview and match keys answering as documented. Its own file: the Worker's live
 * connectors share the gate's burst budget with the test world's calls on the same location.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld, type World } from "../sync/world.ts";

const routes: Record<string, RouteHandler> = { "worker.test": (r) => exports.default.fetch(r) };
useNetwork(routes);

function opp(w: World, name: string) {
  return w.sb.highlevel.service.createOpportunity({
    locationId: w.locationId,
    pipelineId: w.hlPipelineId,
    pipelineStageId: w.hlStage("Sourced"),
    name,
    status: "open",
    contactId: w.sb.highlevel.service.createContact({ locationId: w.locationId, name: `${name} contact` }).id,
    monetaryValue: 10,
  });
}

describe("/api links and possible matches", () => {
  const auth = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "application/json" };
  const api = (path: string, init: { method?: string; body?: unknown } = {}) =>
    exports.default.fetch(`http://worker.test/api/accounts/${ACCOUNT}/${path}`, {
      method: init.method ?? "GET",
      headers: auth,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });

  it("validated: 400 for a bad body, 404 for unknown records, 409 for a linked one; link, list, unlink", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Api Co", stage: "Sourced" });
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    w.sb.highlevel.unsubscribe("http://worker.test/webhooks/highlevel");
    const lone = opp(w, "Api Lone");

    expect((await api("links", { method: "POST", body: { fdDealId: deal.id } })).status).toBe(400);
    expect((await api("links", { method: "POST", body: { fdDealId: "nope", hlOpportunityId: lone.id } })).status).toBe(
      404,
    );
    expect((await api("links", { method: "POST", body: { fdDealId: deal.id, hlOpportunityId: lone.id } })).status).toBe(
      409,
    );
    expect((await api("links/nope", { method: "DELETE" })).status).toBe(404);
    expect((await api("pipelines/0/filter", { method: "PUT", body: { filter: { minValue: -1 } } })).status).toBe(400);
    expect((await api("pipelines/7/filter/preview", { method: "POST", body: { filter: null } })).status).toBe(404);
    expect((await api("match-keys", { method: "PUT", body: { matchKeys: "fuzzy" } })).status).toBe(400);

    const listed = (await (await api("links")).json()) as { links: Array<{ fdDealId: string; name: string }> };
    expect(listed.links).toContainEqual(expect.objectContaining({ fdDealId: deal.id, name: "Api Co" }));
    const unlinked = await api(`links/${deal.id}`, { method: "DELETE" });
    expect(unlinked.status).toBe(200);
    expect(await unlinked.json()).toEqual({ unlinked: { fdDealId: deal.id, hlOpportunityId: oppId } });
    const relinked = await api("links", { method: "POST", body: { fdDealId: deal.id, hlOpportunityId: lone.id } });
    expect(relinked.status, await relinked.clone().text()).toBe(201);
    expect((await w.linkOf("highlevel", lone.id))?.fdDealId).toBe(deal.id);
    expect(w.sb.highlevel.store.opportunities.has(oppId)).toBe(true);

    const preview = await api("pipelines/0/filter/preview", { method: "POST", body: { filter: { minValue: 1 } } });
    expect(preview.status).toBe(200);
    expect(((await preview.json()) as { preview: { source: string } }).preview.source).toBe("providers");
    expect((await api("match-keys", { method: "PUT", body: { matchKeys: "name" } })).status).toBe(200);
    expect((await w.account()).mapping?.matchKeys).toBe("name");
    expect((await api("possible-matches")).status).toBe(200);
  });
});
