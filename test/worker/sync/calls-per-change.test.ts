/**
 * Provider calls per user change in steady state (structure already in the KV caches), counted
 * at the sandboxes — what `npm run bench` measures, made a test. Production connectors
 * (`liveConnectors`: gated, 4Degrees structure from KV) drive the engine; every request the Worker
 * makes to either sandbox is counted, reads (GET, POST …/search) and writes per side, from the
 * user's change until both sides are quiet — echoes of our own writes included.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { liveConnectors } from "../../../src/sync/connectors.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { countProviderCall, expectConverged, newDeal, noProviderCalls, type ProviderCalls } from "./checks.ts";
import { API_VERSIONS, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

interface Counts {
  fourdegrees: { reads: number; writes: number };
  highlevel: { reads: number; writes: number };
}

let w: World;
let calls: ProviderCalls;
let dealId: string;
let oppId: string;

describe.each(API_VERSIONS)("HIGHLEVEL_API_VERSION=%s", (apiVersion) => {
  /** A world on the production connectors, one deal synced, and the structure caches warm. */
  beforeEach(async () => {
    w = await createWorld(routes, { apiVersion });
    w.deps.connectors = liveConnectors(env, { ...loadConfig(env), HIGHLEVEL_API_VERSION: apiVersion });
    calls = noProviderCalls();
    const sandbox = routes["sandbox.test"];
    if (!sandbox) throw new Error("the world routes sandbox.test");
    routes["sandbox.test"] = async (r) => {
      countProviderCall(calls, r);
      return sandbox(r);
    };
    dealId = newDeal(w, { name: "Counted Co", stage: "Sourced", amountMinor: 100_000_00 }).id;
    await w.settle();
    oppId = (await w.linkOf("fourdegrees", dealId))?.hlOpportunityId ?? "";
    expect(oppId).not.toBe("");
  });

  /** Runs one user change to quiet and returns the calls it cost. */
  async function measure(change: () => void): Promise<Counts> {
    calls = noProviderCalls();
    change();
    await w.settle();
    return { fourdegrees: calls.fourdegrees, highlevel: calls.highlevel };
  }

  describe("provider calls per change (steady state)", () => {
    it("a 4Degrees field update: one re-read of the deal, one read and one write of the opportunity, the echo free", async () => {
      const c = await measure(
        () => void w.sb.fourdegrees.updateDealAsUser(dealId, { value: { amount_minor: 300_000_00, currency: "USD" } }),
      );
      expect(w.sb.highlevel.store.opportunities.get(oppId)?.monetaryValue).toBe(300_000);
      // This mapping syncs the close date from HighLevel through a custom field, which webhook
      // payloads never carry, so the payload alone cannot prove the echo of our write. The write
      // records the deliveries HighLevel will send for it (one OpportunityUpdate + one
      // OpportunityMonetaryValueUpdate, with the answer's state), and each of them takes its slot
      // without a read (src/sync/engine/echo.ts, "Expected echoes"; expected-echo.test.ts).
      expect(c, calls.requests.join("\n")).toEqual({
        fourdegrees: { reads: 1, writes: 0 },
        highlevel: { reads: 1, writes: 1 },
      });
      await expectConverged(w);
    });

    it("a HighLevel stage change (fan-out pair): one read per side, one 4Degrees write, the echo free", async () => {
      const c = await measure(
        () => void w.sb.highlevel.service.updateOpportunity(oppId, { pipelineStageId: w.hlStage("Term Sheet") }),
      );
      expect(w.sb.fourdegrees.deal(dealId).stage_id).toBe(w.fdStage("Term Sheet"));
      expect(c, calls.requests.join("\n")).toEqual({
        fourdegrees: { reads: 1, writes: 1 },
        highlevel: { reads: 1, writes: 0 },
      });
      await expectConverged(w);
    });

    it("a HighLevel status change (won): one read per side, one 4Degrees write", async () => {
      const c = await measure(() => void w.sb.highlevel.service.setStatus(oppId, "won"));
      expect(w.sb.fourdegrees.deal(dealId).status).toBe("won");
      expect(c, calls.requests.join("\n")).toEqual({
        fourdegrees: { reads: 1, writes: 1 },
        highlevel: { reads: 1, writes: 0 },
      });
      await expectConverged(w);
    });

    it("a 4Degrees note: one listing per side, one HighLevel write, the echo free", async () => {
      const c = await measure(() => void w.sb.fourdegrees.addNoteAsUser(dealId, "Met the founders."));
      const contactId = w.sb.highlevel.store.opportunities.get(oppId)?.contactId ?? "";
      expect(
        w.sb.highlevel.store.notesOf(contactId).filter((n) => n.body.startsWith("Met the founders.")),
      ).toHaveLength(1);
      expect(c, calls.requests.join("\n")).toEqual({
        fourdegrees: { reads: 1, writes: 0 },
        highlevel: { reads: 1, writes: 1 },
      });
    });

    it("the structure comes from KV: no pipelines, users or fields call in steady state", async () => {
      await measure(() => void w.sb.fourdegrees.updateDealAsUser(dealId, { name: "Counted Co II" }));
      await measure(() => void w.sb.highlevel.service.updateOpportunity(oppId, { name: "Counted Co III" }));
      expect(calls.requests.filter((r) => /pipelines|users|customFields|fields/.test(r))).toEqual([]);
    });
  });
});
