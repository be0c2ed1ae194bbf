/**
 * End-to-end flows against both sandboxes (in-process): 4Degrees → HighLevel create and update,
 * HighLevel → 4Degrees updates with fan-out coalesced, echoes producing no writes, conflicts under
 * each policy, out-of-order / duplicated deliveries. After each test both sides agree on every
 * mapped field and no record exists twice (`expectConverged`).
 */
import { describe, expect, it } from "vitest";
import { listEvents } from "../../../src/store/sync-events.ts";
import { env } from "cloudflare:workers";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { ACCOUNT, API_VERSIONS, createWorld } from "./world.ts";
import { expectConverged, newDeal } from "./checks.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe.each(API_VERSIONS)("HIGHLEVEL_API_VERSION=%s", (apiVersion) => {
  describe("4Degrees → HighLevel (happy)", () => {
    it("a new deal becomes an opportunity in the mapped stage with value, owner and close date, linked both ways, with zero ping-pong", async () => {
      const w = await createWorld(routes, { apiVersion });
      const owner = [...w.sb.fourdegrees.store.users.values()][1];
      const deal = newDeal(w, {
        name: "Orbit Labs",
        stage: "Due Diligence",
        amountMinor: 250_000_00,
        ownerId: owner?.id ?? null,
        closeDate: "2027-03-31",
      });
      await w.settle();

      const link = await w.linkOf("fourdegrees", deal.id);
      expect(link?.state).toBe("active");
      const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
      expect(opp?.name).toBe("Orbit Labs");
      expect(opp?.pipelineStageId).toBe(w.hlStage("Due Diligence"));
      expect(opp?.monetaryValue).toBe(250_000);
      expect(opp?.status).toBe("open");
      const hlOwner = [...w.sb.highlevel.store.users.values()].find((u) => u.id === opp?.assignedTo);
      expect(hlOwner?.email?.toLowerCase()).toBe(owner?.email.toLowerCase());
      expect(w.hlCloseDate(opp?.id ?? "")).toBe("2027-03-31");
      expect(opp?.customFields.find((f) => f.id === w.mapping.externalIdFieldId)?.value).toBe(deal.id);
      // Linked both ways: the 4Degrees deal carries the HighLevel id.
      expect(w.sb.fourdegrees.deal(deal.id).external_refs).toContainEqual({ system: "highlevel", id: opp?.id });

      // Zero ping-pong: the webhooks of our own writes were settled above; nothing more is written.
      w.resetCounts();
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
      await expectConverged(w);
    });

    it("an edit in 4Degrees updates the opportunity once and the echo writes nothing back", async () => {
      const w = await createWorld(routes, { apiVersion });
      const deal = newDeal(w, { name: "Quanta", stage: "Sourced", amountMinor: 1_000_00 });
      await w.settle();
      w.resetCounts();
      const seen = Math.max(0, ...(await listEvents(env.DB, ACCOUNT, { limit: 200 })).map((e) => e.id));
      w.sb.fourdegrees.updateDealAsUser(deal.id, {
        name: "Quanta AI",
        stage_id: w.fdStage("Term Sheet"),
        value: { amount_minor: 5_000_00, currency: "USD" },
      });
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 1, fourdegrees: 0 });
      const link = await w.linkOf("fourdegrees", deal.id);
      const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
      expect([opp?.name, opp?.pipelineStageId, opp?.monetaryValue]).toEqual([
        "Quanta AI",
        w.hlStage("Term Sheet"),
        5_000,
      ]);
      // The opportunity's webhooks of our write were acked as echoes before any job: the edit's sync is the only event.
      const events = (await listEvents(env.DB, ACCOUNT, { limit: 200 })).filter((e) => e.id > seen);
      expect(events.map((e) => [e.kind, e.direction])).toEqual([["sync", "to_highlevel"]]);
      await expectConverged(w);
    });
  });

  describe("HighLevel → 4Degrees (happy)", () => {
    it("a stage change (fan-out pair Update + StageUpdate) becomes one re-read and one 4Degrees write", async () => {
      const w = await createWorld(routes, { apiVersion });
      const deal = newDeal(w, { name: "Fanout Co", stage: "Sourced" });
      await w.settle();
      const link = await w.linkOf("fourdegrees", deal.id);
      w.resetCounts();
      w.handled.length = 0;
      w.sb.highlevel.service.updateOpportunity(link?.hlOpportunityId ?? "", {
        pipelineStageId: w.hlStage("Term Sheet"),
      });
      const deliveries = w.sb.highlevel.deliveries().filter((d) => d.state === "pending").length;
      expect(deliveries).toBeGreaterThanOrEqual(2);
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 1 });
      expect(w.sb.fourdegrees.deal(deal.id).stage_id).toBe(w.fdStage("Term Sheet"));
      // The pair's deliveries became one job that did work; the rest were no-ops or never enqueued.
      const recordJobs = w.handled.filter((h) => h.kind === "sync.record");
      expect(recordJobs.length).toBeLessThanOrEqual(2);
      await expectConverged(w);
    });

    it("a burst of edits to one opportunity (status won, value, owner) is coalesced into one 4Degrees write", async () => {
      const w = await createWorld(routes, { apiVersion });
      const deal = newDeal(w, { name: "Burst Inc", stage: "Due Diligence", amountMinor: 100_00 });
      await w.settle();
      const link = await w.linkOf("fourdegrees", deal.id);
      const hlId = link?.hlOpportunityId ?? "";
      const users = [...w.sb.highlevel.store.users.values()].filter((u) => u.locationIds.includes(w.locationId));
      w.resetCounts();
      w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 750 });
      w.sb.highlevel.service.updateOpportunity(hlId, { assignedTo: users[2]?.id });
      w.sb.highlevel.service.setStatus(hlId, "won");
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 1 });
      const after = w.sb.fourdegrees.deal(deal.id);
      expect(after.status).toBe("won");
      expect(after.value?.amount_minor).toBe(750_00);
      await expectConverged(w);
    });

    it("abandoned follows the account's rule (lost by default)", async () => {
      const w = await createWorld(routes, { apiVersion });
      const deal = newDeal(w, { name: "Ghosted", stage: "Sourced" });
      await w.settle();
      const link = await w.linkOf("fourdegrees", deal.id);
      w.sb.highlevel.service.setStatus(link?.hlOpportunityId ?? "", "abandoned");
      await w.settle();
      expect(w.sb.fourdegrees.deal(deal.id).status).toBe("lost");
      w.resetCounts();
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    });
  });

  describe("delivery faults", () => {
    it("duplicated and reordered deliveries change nothing twice and never roll state back", async () => {
      const w = await createWorld(routes, { apiVersion });
      const deal = newDeal(w, { name: "Dup Ltd", stage: "Sourced", amountMinor: 10_00 });
      await w.settle();
      const link = await w.linkOf("fourdegrees", deal.id);
      const hlId = link?.hlOpportunityId ?? "";
      w.sb.highlevel.faults.configure({ webhookDuplicateRate: 1, webhookReorderRate: 0.5 });
      w.resetCounts();
      w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 20 });
      w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 30 });
      // Reordered deliveries are due later in sandbox time.
      w.sb.clock.advance(60_000);
      await w.settle();
      expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(30_00);
      expect(w.writes().fourdegrees).toBeLessThanOrEqual(2);
      // An old delivery replayed late re-reads current state: still 30.
      w.sb.clock.advance(600_000);
      await w.settle();
      expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(30_00);
      await expectConverged(w);
    });
  });

  describe("conflicts", () => {
    for (const policy of ["newest", "fourdegrees", "highlevel"] as const) {
      it(`a true conflict resolves by the ${policy} policy and is logged`, async () => {
        const w = await createWorld(routes, { apiVersion, account: { conflictPolicy: policy } });
        const deal = newDeal(w, { name: "Contested", stage: "Sourced", amountMinor: 100_00 });
        await w.settle();
        const link = await w.linkOf("fourdegrees", deal.id);
        // Both sides change the value before either webhook is processed; HighLevel's change is later.
        w.sb.fourdegrees.updateDealAsUser(deal.id, { value: { amount_minor: 200_00, currency: "USD" } });
        w.sb.clock.advance(5_000);
        w.sb.highlevel.service.updateOpportunity(link?.hlOpportunityId ?? "", { monetaryValue: 300 });
        await w.settle();
        const expected = policy === "fourdegrees" ? 200_00 : 300_00;
        expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(expected);
        expect(w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "")?.monetaryValue).toBe(expected / 100);
        const conflicts = await listEvents(env.DB, ACCOUNT, { kind: "conflict" });
        expect(
          conflicts.some(
            (c) =>
              c.detail["field"] === "value" &&
              c.outcome === (policy === "fourdegrees" ? "fourdegrees_wins" : "highlevel_wins"),
          ),
        ).toBe(true);
        await expectConverged(w);
      });
    }
  });
});
