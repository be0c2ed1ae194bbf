/**
 * End-to-end: a stage added in HighLevel after the pipelines cache was filled, named by the
 * webhook of an opportunity moved into it, refreshes the cache once and raises one `new_stage`
 * alert for the operator; the opportunity itself goes to review (the stage has no mapping).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { readCache } from "../../../src/store/highlevel-cache.ts";
import { kvKeys } from "../../../src/store/kv-keys.ts";
import { listEvents, listReview } from "../../../src/store/sync-events.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** Moves an opportunity to a stage by name through the sandbox's control API (as a HighLevel user would). */
async function moveTo(w: World, opportunityId: string, stageName: string): Promise<void> {
  const res = await w.sb.fetch(
    new Request(`http://sandbox.test/_sandbox/highlevel/opportunities/${opportunityId}/stage`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ stageName }),
    }),
  );
  expect(res.status).toBe(200);
}

const newStageAlerts = async () =>
  (await listEvents(env.DB, ACCOUNT, { kind: "alert" })).filter((e) => e.outcome === "new_stage");

describe("a stage HighLevel gained (webhook)", () => {
  it("refreshes the pipelines cache, alerts once with the stage's name, and sends the opportunity to review", async () => {
    const w = await createWorld(routes);
    const first = newDeal(w, { name: "Stage One", stage: "Sourced" });
    const second = newDeal(w, { name: "Stage Two", stage: "Sourced" });
    await w.settle();
    const oppOf = async (fdId: string) =>
      (await w.linkOf("fourdegrees", fdId))?.hlOpportunityId ?? expect.fail(`no link for ${fdId}`);
    // A move into a mapped stage is answered from the cache: no alert.
    await moveTo(w, await oppOf(first.id), "First Meeting");
    await w.settle();
    expect(await newStageAlerts()).toHaveLength(0);

    // A user adds a stage in HighLevel (the sandbox control API has no stage endpoint: use its store).
    const pipeline = w.sb.highlevel.store.pipelines.get(w.hlPipelineId) ?? expect.fail("demo pipeline missing");
    const stageId = crypto.randomUUID();
    pipeline.stages.push({
      id: stageId,
      name: "IC Memo",
      position: pipeline.stages.length,
      showInFunnel: true,
      showInPieChart: true,
    });
    await moveTo(w, await oppOf(first.id), "IC Memo");
    await w.settle();

    const alerts = await newStageAlerts();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.detail).toMatchObject({ stageId, stageName: "IC Memo", pipelineId: w.hlPipelineId });
    expect(String(alerts[0]?.detail["reason"])).toMatch(/gained stage "IC Memo".*no 4Degrees stage in the mapping/);
    const cached = await readCache(
      env.CACHE,
      kvKeys.hlPipelines(w.locationId),
      z.array(z.object({ stages: z.array(z.object({ id: z.string() })) })),
    );
    expect(cached?.value.flatMap((p) => p.stages.map((s) => s.id))).toContain(stageId);
    const review = await listReview(env.DB, ACCOUNT);
    expect(review.find((r) => r.recordId === first.id || r.recordId === (alerts[0]?.hlId ?? ""))?.reason).toMatch(
      /has no 4Degrees stage in the mapping/,
    );

    // The cache knows it now: a second opportunity moved there raises no second alert.
    await moveTo(w, await oppOf(second.id), "IC Memo");
    await w.settle();
    expect(await newStageAlerts()).toHaveLength(1);
  });
});
