/**
 * Won and lost in the default mapping: 4Degrees won/lost *stages* pair with same-named HighLevel
 * stages ("Closed" ↔ "Closed"), so a closed deal lands in the right HighLevel stage next to its
 * status; a HighLevel won/lost moves the 4Degrees deal to the mapping's won/lost stage; and a
 * status without a mapped HighLevel stage ("Passed" has no HighLevel partner) leaves the HighLevel
 * stage where it was instead of resetting it. Both sides converge and nothing is written twice.
 */
import { describe, expect, it } from "vitest";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { API_VERSIONS, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

async function oppOf(w: World, fdId: string) {
  const link = await w.linkOf("fourdegrees", fdId);
  const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
  if (!opp) throw new Error(`no opportunity linked to ${fdId}`);
  return opp;
}

describe.each(API_VERSIONS)("HIGHLEVEL_API_VERSION=%s", (apiVersion) => {
  describe("won/lost stages in the default mapping", () => {
    it("pairs the won 4Degrees stage with HighLevel's same-named stage, and leaves lost unpaired when HighLevel has no such stage", async () => {
      const w = await createWorld(routes, { apiVersion });
      const pair = w.mapping.pipelines[0];
      expect(pair?.wonStageId).toBe(w.fdStage("Closed"));
      expect(pair?.highlevelWonStageId).toBe(w.hlStage("Closed"));
      expect(pair?.highlevelLostStageId).toBeNull();
    });

    it("a won deal created in 4Degrees' Closed is created won in HighLevel's Closed stage (not the first stage), with zero ping-pong", async () => {
      const w = await createWorld(routes, { apiVersion });
      const deal = newDeal(w, { name: "Won Already", stage: "Closed", amountMinor: 5_00 });
      await w.settle();
      const opp = await oppOf(w, deal.id);
      expect([opp.status, opp.pipelineStageId]).toEqual(["won", w.hlStage("Closed")]);
      w.resetCounts();
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
      await expectConverged(w);
    });

    it("closing in 4Degrees: won moves the opportunity to Closed; lost (no mapped HighLevel stage) sets the status and keeps the stage", async () => {
      const w = await createWorld(routes, { apiVersion });
      const winner = newDeal(w, { name: "Will Win", stage: "Term Sheet" });
      const loser = newDeal(w, { name: "Will Pass", stage: "Due Diligence" });
      await w.settle();
      w.sb.fourdegrees.updateDealAsUser(winner.id, { stage_id: w.fdStage("Closed") });
      w.sb.fourdegrees.updateDealAsUser(loser.id, { stage_id: w.fdStage("Passed") });
      await w.settle();
      const won = await oppOf(w, winner.id);
      const lost = await oppOf(w, loser.id);
      expect([won.status, won.pipelineStageId]).toEqual(["won", w.hlStage("Closed")]);
      expect([lost.status, lost.pipelineStageId]).toEqual(["lost", w.hlStage("Due Diligence")]);
      w.resetCounts();
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
      await expectConverged(w);
    });

    it("HighLevel marks won / lost → the 4Degrees deal moves to the mapping's won / lost stage", async () => {
      const w = await createWorld(routes, { apiVersion });
      const a = newDeal(w, { name: "HL Wins", stage: "Sourced" });
      const b = newDeal(w, { name: "HL Loses", stage: "Sourced" });
      await w.settle();
      w.sb.highlevel.service.setStatus((await oppOf(w, a.id)).id, "won");
      w.sb.highlevel.service.setStatus((await oppOf(w, b.id)).id, "lost");
      await w.settle();
      expect(w.sb.fourdegrees.deal(a.id).stage_id).toBe(w.fdStage("Closed"));
      expect(w.sb.fourdegrees.deal(b.id).stage_id).toBe(w.fdStage("Passed"));
      // The HighLevel stage is not rewritten by the 4Degrees side's echo.
      expect((await oppOf(w, a.id)).pipelineStageId).toBe(w.hlStage("Sourced"));
      w.resetCounts();
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
      await expectConverged(w);
    });
  });
});
