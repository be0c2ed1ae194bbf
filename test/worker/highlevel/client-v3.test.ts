/**
 * The HighLevel client under HIGHLEVEL_API_VERSION=v3, against the sandbox: opportunity and
 * pipeline calls say `Version: v3` (every other surface stays on 2021-07-28), search filters go
 * camelCase, custom fields `fieldValue`, the forecast round-trips in the port shape; upsert's
 * create path, and why a retried upsert cannot stand in for the engine's find-before-create.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { highLevelSource } from "../../../src/fourdegrees/csv/export.ts";
import { createHighLevelClient } from "../../../src/highlevel/client.ts";
import { V3_PATH_PREFIX } from "../../../src/highlevel/version.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { createWorld, type World } from "../sync/world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** A v3 client on the world's location, and every request it sends (method, path, Version). */
function v3Client(w: World) {
  const seen: Array<{ method: string; path: string; version: string | null; query: URLSearchParams }> = [];
  const inner = routes["sandbox.test"]!;
  routes["sandbox.test"] = async (r) => {
    const u = new URL(r.url);
    seen.push({ method: r.method, path: u.pathname, version: r.headers.get("version"), query: u.searchParams });
    return inner(r);
  };
  const hl = createHighLevelClient(env, { ...loadConfig(env), HIGHLEVEL_API_VERSION: "v3" }, w.locationId);
  return { hl, seen };
}

describe("HighLevel client on API v3", () => {
  it("happy: v3 headers on opportunities and pipelines only, camelCase search, forecast and fieldValue round-trip", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    const { hl, seen } = v3Client(w);
    const demo = await w.sb.highlevel.seedDemo();
    expect(V3_PATH_PREFIX).toBe("");
    const contact = w.sb.highlevel.service.createContact({ locationId: w.locationId, firstName: "Vic" });
    const created = await hl.opportunities.create({
      pipelineId: w.hlPipelineId,
      name: "V3 Client Deal",
      status: "open",
      contactId: contact.id,
      forecastExpectedCloseDate: "2027-08-01",
      forecastProbability: 30,
      customFields: [{ id: demo.closeDateFieldId, field_value: "2027-01-01" }],
    });
    expect(created).toMatchObject({ forecastExpectedCloseDate: "2027-08-01", forecastProbability: 30 });
    expect(created.customFields.find((f) => f.id === demo.closeDateFieldId)?.value).toBeTruthy();
    const cleared = await hl.opportunities.update(created.id, { forecastExpectedCloseDate: null });
    expect(cleared.forecastExpectedCloseDate).toBeNull();
    expect(cleared.forecastProbability).toBe(30);
    const page = await hl.opportunities.searchPage({ pipelineId: w.hlPipelineId, q: "V3 Client Deal" });
    expect(page.opportunities.map((o) => o.id)).toEqual([created.id]);
    await hl.pipelines.refresh();
    await hl.users.list();

    const search = seen.find((s) => s.path.endsWith("/opportunities/search"));
    expect([...(search?.query.keys() ?? [])]).toEqual(expect.arrayContaining(["locationId", "pipelineId", "q"]));
    expect(search?.query.has("location_id")).toBe(false);
    for (const s of seen) {
      const v3 = s.path.startsWith("/highlevel/opportunities");
      expect(s.version, `${s.method} ${s.path}`).toBe(v3 ? "v3" : "2021-07-28");
    }
    expect(seen.some((s) => s.path.startsWith("/highlevel/users"))).toBe(true);
  });

  it("happy: upsert creates (created: true) with the forecast, and updates by id (created: false)", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    const { hl } = v3Client(w);
    const contact = w.sb.highlevel.service.createContact({ locationId: w.locationId, firstName: "Una" });
    const first = await hl.opportunities.upsert({
      pipelineId: w.hlPipelineId,
      name: "Upserted",
      status: "open",
      contactId: contact.id,
      forecastExpectedCloseDate: "2027-10-10",
    });
    expect(first.created).toBe(true);
    expect(first.opportunity.forecastExpectedCloseDate).toBe("2027-10-10");
    const again = await hl.opportunities.upsert({
      id: first.opportunity.id,
      pipelineId: w.hlPipelineId,
      name: "Upserted (renamed)",
      status: "open",
      contactId: contact.id,
    });
    expect(again).toMatchObject({
      created: false,
      opportunity: { id: first.opportunity.id, name: "Upserted (renamed)" },
    });
  });

  it("happy: the CSV export source reads the native close date when no field is named", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    const { hl } = v3Client(w);
    const contact = w.sb.highlevel.service.createContact({ locationId: w.locationId, firstName: "Eve" });
    const opp = await hl.opportunities.create({
      pipelineId: w.hlPipelineId,
      name: "Exported",
      status: "open",
      contactId: contact.id,
      forecastExpectedCloseDate: "2027-11-30",
    });
    const pages = highLevelSource(hl, { pipelineId: w.hlPipelineId, closeDateFieldId: null }).pages();
    const rows: Array<{ id: string; closeDate?: string | null }> = [];
    for (let next = await pages.next(); !next.done; next = await pages.next()) rows.push(...next.value);
    expect(rows.find((r) => r.id === opp.id)?.closeDate).toBe("2027-11-30");
  });

  it("error: a retried upsert without an id is no idempotent create — a second copy, or another opportunity overwritten", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    const { hl } = v3Client(w);
    const contact = w.sb.highlevel.service.createContact({ locationId: w.locationId, firstName: "Rhea" });
    const create = (name: string) =>
      hl.opportunities.upsert({ pipelineId: w.hlPipelineId, name, status: "open", contactId: contact.id });

    // Duplicates allowed: the "retry" after a crash makes a second opportunity.
    w.sb.highlevel.service.settingsOf(w.locationId).allowDuplicateOpportunities = true;
    const a = await create("Deal One");
    const b = await create("Deal One");
    expect([a.created, b.created]).toEqual([true, true]);
    expect(b.opportunity.id).not.toBe(a.opportunity.id);

    // No duplicates: another deal of the same contact in the pipeline lands on the first one.
    w.sb.highlevel.service.settingsOf(w.locationId).allowDuplicateOpportunities = false;
    w.sb.highlevel.service.deleteOpportunity(b.opportunity.id);
    const other = await create("Deal Two");
    expect(other).toMatchObject({ created: false, opportunity: { id: a.opportunity.id, name: "Deal Two" } });
  });
});
