/**
 * The Report page on HIGHLEVEL_API_VERSION=v3, end to end through both sandboxes: an opportunity's
 * own `forecastProbability` weighs it in HighLevel's forecast, the stage's probability weighs the rest.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../entry.ts";
import { saveStageProbabilities } from "../../../src/store/console-views.ts";
import { consoleCookie } from "../helpers/console-session.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld } from "../sync/world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe("Report on API v3", () => {
  it("happy: HighLevel's forecast weighs an opportunity by its forecastProbability, others by the stage's", async () => {
    const w = await createWorld(routes, { apiVersion: "v3" });
    const own = newDeal(w, { name: "Own Probability", stage: "Sourced", amountMinor: 1_000_00 });
    const staged = newDeal(w, { name: "Stage Probability", stage: "Sourced", amountMinor: 400_00 });
    await w.settle();
    const ownOpp = (await w.linkOf("fourdegrees", own.id))?.hlOpportunityId ?? "";
    const stagedOpp = (await w.linkOf("fourdegrees", staged.id))?.hlOpportunityId ?? "";
    w.sb.highlevel.service.updateOpportunity(ownOpp, { forecastProbability: 30 });
    await w.settle();
    await saveStageProbabilities(env.DB, ACCOUNT, new Map([[w.hlStage("Sourced"), 50]]));
    // The demo's other opportunities of the pipeline would count too: take them out of the sum.
    for (const o of w.sb.highlevel.store.opportunities.values())
      if (o.pipelineId === w.hlPipelineId && o.id !== ownOpp && o.id !== stagedOpp)
        w.sb.highlevel.service.deleteOpportunity(o.id);

    const cookie = await consoleCookie();
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`http://worker.test/console/report?account=${ACCOUNT}`, { headers: { cookie } }),
      { ...env, HIGHLEVEL_API_VERSION: "v3" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const html = await res.text();
    expect(res.status, html.slice(0, 300)).toBe(200);
    const forecast = new RegExp(`id="forecast-${w.hlPipelineId}">([^<]*(?:<[^/][^<]*)*)</span>`).exec(html)?.[1] ?? "";
    // HighLevel: 1,000 × 30% (its own probability) + 400 × 50% (the stage's).
    expect(forecast).toContain("HighLevel $500.00");
    expect(forecast).toContain("1 HighLevel opportunity by their own forecast probability");
  });
});
