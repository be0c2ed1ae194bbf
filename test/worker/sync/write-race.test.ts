/**
 * A HighLevel edit made between a job's read of the opportunity and its write (HighLevel has no
 * If-Match, so it keeps both) reaches 4Degrees: the link must not record the write's `updatedAt`
 * — which covers the user's edit — with the base of the earlier read, or the user's own webhook
 * and every reconcile would look like the echo of our write and the edit would be lost for good.
 */
import { describe, expect, it } from "vitest";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { createWorld } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe("a HighLevel edit racing our HighLevel write", () => {
  it("the user's rename made while our value update is on its way reaches 4Degrees; our value stays", async () => {
    const w = await createWorld(routes);
    const dealId = newDeal(w, { name: "Race Ltd", stage: "Sourced", amountMinor: 100_000_00 }).id;
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", dealId))?.hlOpportunityId ?? expect.fail("not linked");

    // The user renames the opportunity in HighLevel just before our PUT of the new value lands.
    const sandbox = routes["sandbox.test"] ?? expect.fail("no sandbox route");
    let armed = true;
    routes["sandbox.test"] = async (r) => {
      if (armed && r.method === "PUT" && new URL(r.url).pathname.endsWith(`/opportunities/${oppId}`)) {
        armed = false;
        w.sb.highlevel.service.updateOpportunity(oppId, { name: "Race Ltd (renamed in HighLevel)" });
      }
      return sandbox(r);
    };
    w.sb.fourdegrees.updateDealAsUser(dealId, { value: { amount_minor: 777_000_00, currency: "USD" } });
    await w.settle();

    expect(armed).toBe(false);
    const opp = w.sb.highlevel.store.opportunities.get(oppId);
    expect(opp?.monetaryValue).toBe(777_000);
    expect(opp?.name).toBe("Race Ltd (renamed in HighLevel)");
    expect(w.sb.fourdegrees.deal(dealId).name).toBe("Race Ltd (renamed in HighLevel)");
    expect(w.sb.fourdegrees.deal(dealId).value?.amount_minor).toBe(777_000_00);
    await expectConverged(w);
  });

  it("without a racing edit, the echo of our write is still recognised (no write back, one job)", async () => {
    const w = await createWorld(routes);
    const dealId = newDeal(w, { name: "Calm Ltd", stage: "Sourced", amountMinor: 100_000_00 }).id;
    await w.settle();
    w.resetCounts();
    w.sb.fourdegrees.updateDealAsUser(dealId, { value: { amount_minor: 200_000_00, currency: "USD" } });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 1, fourdegrees: 0 });
    const link = await w.linkOf("fourdegrees", dealId);
    const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
    // The link records the write's answer: the echo compares equal.
    expect(link?.hlUpdatedAt).toBe(opp?.updatedAt);
  });
});
