/**
 * HIGHLEVEL_API_VERSION=v3: the close date round-trips through HighLevel's native
 * `forecastExpectedCloseDate` with no close-date custom field in the mapping — both ways, cleared,
 * with no ping-pong — and a HighLevel change of the date alone (whose webhook body never carries it)
 * is re-read, not taken for an echo. A mapping that names a close-date field keeps using it under v3.
 */
import { describe, expect, it } from "vitest";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { createWorld } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe("close date under API v3 (native forecast field)", () => {
  it("happy: a 4Degrees close date creates and then updates the native field, with no custom field written", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    expect(w.mapping.closeDateFieldId).toBeNull();
    const deal = newDeal(w, { name: "Native Close", stage: "Sourced", closeDate: "2027-06-30" });
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    expect(w.hlCloseDate(oppId)).toBe("2027-06-30");
    const { closeDateFieldId } = await w.sb.highlevel.seedDemo();
    const opp = w.sb.highlevel.store.opportunities.get(oppId);
    expect(opp?.customFields.map((f) => f.id)).not.toContain(closeDateFieldId);

    w.resetCounts();
    w.sb.fourdegrees.updateDealAsUser(deal.id, { expected_close_date: "2027-09-15" });
    await w.settle();
    expect(w.hlCloseDate(oppId)).toBe("2027-09-15");
    expect(w.writes()).toEqual({ highlevel: 1, fourdegrees: 0 });

    w.resetCounts();
    w.sb.fourdegrees.updateDealAsUser(deal.id, { expected_close_date: null });
    await w.settle();
    expect(w.hlCloseDate(oppId)).toBeNull();
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("happy: HighLevel setting, moving and clearing the forecast close date reaches 4Degrees (the webhook does not carry it)", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    // An owner, so the webhook body carries every field it can (assignedTo): only the date is missing.
    const owner = [...w.sb.fourdegrees.store.users.values()][1];
    const deal = newDeal(w, { name: "Forecast Moves", stage: "Due Diligence", ownerId: owner?.id ?? null });
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    expect(w.hlCloseDate(oppId)).toBeNull();

    for (const date of ["2027-02-01", "2027-04-20", null]) {
      w.resetCounts();
      w.setHlCloseDate(oppId, date);
      await w.settle();
      expect(w.sb.fourdegrees.deal(deal.id).expected_close_date).toBe(date);
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 1 });
    }
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("a v3 account whose mapping names a close-date custom field keeps its dates there (no switch to the empty native field)", async () => {
    const w = await createWorld(routes, {
      apiVersion: "v3",
      mapping: (m, demo) => ({ ...m, closeDateFieldId: demo.closeDateFieldId }),
    });
    const demo = await w.sb.highlevel.seedDemo();
    expect(w.mapping.closeDateFieldId).toBe(demo.closeDateFieldId);
    const deal = newDeal(w, { name: "Field Keeper", stage: "Sourced", closeDate: "2027-05-05" });
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    const opp = w.sb.highlevel.store.opportunities.get(oppId);
    expect(opp?.customFields.find((f) => f.id === demo.closeDateFieldId)?.value).toBeTruthy();
    expect(opp?.forecast?.expectedCloseDate ?? null).toBeNull();
    // HighLevel's empty native field is not a change that clears the 4Degrees date.
    w.sb.highlevel.service.updateOpportunity(oppId, { forecastProbability: 40 });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).expected_close_date).toBe("2027-05-05");
    await expectConverged(w);
  });
});
