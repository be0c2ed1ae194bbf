/**
 * `ensureStageKnown` against the sandbox: a stage added in HighLevel after the pipelines cache was
 * filled, named by a webhook the sandbox itself delivers, reloads the cache once.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { loadConfig } from "../../../src/config.ts";
import { createHighLevelClient, HighLevelError } from "../../../src/highlevel/client.ts";
import { installFromGrant } from "../../../src/highlevel/install.ts";
import { TokenResponseSchema } from "../../../src/highlevel/schemas.ts";
import { ensureStageKnown, stageNamedBy } from "../../../src/highlevel/stages.ts";
import { createApp } from "../../../src/http/app.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { readCache } from "../../../src/store/highlevel-cache.ts";
import { kvKeys } from "../../../src/store/kv-keys.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import { useNetwork } from "../helpers/network.ts";
import { z } from "zod";

const HOOK = "http://worker.test/webhooks/highlevel";
const config = loadConfig(env);
const sent: unknown[] = [];
const queue: Queue = {
  metrics: () => env.SYNC_QUEUE.metrics(),
  async send(message) {
    sent.push(message);
    return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
  },
  sendBatch: (messages, options) => env.SYNC_QUEUE.sendBatch(messages, options),
};
const app = createApp();
const sb = createSandbox({ webhookMode: "manual" });
const net = useNetwork({
  "sandbox.test": (r) => sb.fetch(r),
  "worker.test": (r) => app.fetch(r, { ...env, SYNC_QUEUE: queue }),
});

/** The demo location connected to the Worker, its client, and the cache filled once. */
async function setup() {
  const demo = await sb.highlevel.seedDemo();
  await installFromGrant(
    env,
    config,
    TokenResponseSchema.parse(sb.highlevel.connect({ locationId: demo.locationId })),
    createLogger("error"),
  );
  const client = createHighLevelClient(env, config, demo.locationId);
  await client.pipelines.refresh();
  return { demo, client };
}

const pipelineCalls = () => net.count(/\/highlevel\/opportunities\/pipelines/);

describe("ensureStageKnown", () => {
  it("happy: a webhook naming a stage added after the cache was filled reloads the cache once", async () => {
    const { demo, client } = await setup();
    // A user adds a stage in HighLevel (the sandbox control API has no stage endpoint: use its store).
    const stageName = `IC Memo ${crypto.randomUUID().slice(0, 8)}`;
    const pipeline = sb.highlevel.store.pipelines.get(demo.pipelineId);
    if (!pipeline) throw new Error("demo pipeline missing");
    const newStageId = crypto.randomUUID();
    pipeline.stages.push({
      id: newStageId,
      name: stageName,
      position: pipeline.stages.length,
      showInFunnel: true,
      showInPieChart: true,
    });
    // … and moves a deal into it; HighLevel sends the webhooks.
    sb.highlevel.subscribe(HOOK);
    const moved = await sb.fetch(
      new Request(`http://sandbox.test/_sandbox/highlevel/opportunities/${demo.opportunityIds[0]}/stage`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ stageName }),
      }),
    );
    expect(moved.status).toBe(200);
    await sb.highlevel.flush();
    const event = sent
      .map((m) => QueueMessageSchema.parse(m))
      .find((m) => m.kind === "highlevel.webhook" && m.type === "OpportunityStageUpdate");
    if (event?.kind !== "highlevel.webhook") throw new Error("no OpportunityStageUpdate on the queue");

    const named = stageNamedBy(event.body);
    expect(named).toEqual({ pipelineId: demo.pipelineId, stageId: newStageId });
    const before = pipelineCalls();
    const first = await ensureStageKnown(client, named?.pipelineId ?? null, named?.stageId ?? "");
    expect(first).toMatchObject({
      status: "refreshed",
      pipeline: { id: demo.pipelineId },
      stage: { id: newStageId, name: stageName },
    });
    expect(pipelineCalls()).toBe(before + 1);
    const cachedNow = await readCache(
      env.CACHE,
      kvKeys.hlPipelines(demo.locationId),
      z.array(z.object({ stages: z.array(z.object({ id: z.string() })) })),
    );
    expect(cachedNow?.value.flatMap((p) => p.stages.map((s) => s.id))).toContain(newStageId);

    // The next event naming it is answered from the cache.
    expect(await ensureStageKnown(client, demo.pipelineId, newStageId)).toMatchObject({ status: "cached" });
    expect(pipelineCalls()).toBe(before + 1);
  });

  it("happy: a known stage costs no HighLevel call", async () => {
    const { demo, client } = await setup();
    const before = pipelineCalls();
    expect(await ensureStageKnown(client, null, demo.stageIds[1] ?? "")).toMatchObject({
      status: "cached",
      pipeline: { id: demo.pipelineId },
    });
    expect(pipelineCalls()).toBe(before);
  });

  it("error: a stage HighLevel does not know either is 'unknown' after exactly one reload", async () => {
    const { demo, client } = await setup();
    const before = pipelineCalls();
    expect(await ensureStageKnown(client, demo.pipelineId, "deleted-stage")).toEqual({
      status: "unknown",
      pipeline: null,
      stage: null,
    });
    expect(pipelineCalls()).toBe(before + 1);
    // A stage of another pipeline does not count as "in this pipeline".
    expect(await ensureStageKnown(client, "other-pipeline", demo.stageIds[0] ?? "")).toMatchObject({
      status: "unknown",
    });
  });

  it("error: a HighLevel failure during the reload surfaces as a retryable HighLevelError", async () => {
    const { demo, client } = await setup();
    sb.highlevel.faults.script({ count: 1, status: 503, path: "pipelines" });
    const err = await ensureStageKnown(client, demo.pipelineId, "brand-new-stage").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    expect(err).toMatchObject({ category: "server", retryable: true });
  });

  it("happy: stageNamedBy reads opportunity events and ignores the others", () => {
    expect(stageNamedBy({ type: "OpportunityCreate", pipelineId: "p", pipelineStageId: "s" })).toEqual({
      pipelineId: "p",
      stageId: "s",
    });
    expect(stageNamedBy({ type: "OpportunityStageUpdate", pipelineStageId: "s" })).toEqual({
      pipelineId: null,
      stageId: "s",
    });
    expect(stageNamedBy({ type: "NoteCreate", body: "x", contactId: "c" })).toBeNull();
    expect(stageNamedBy({ type: "OpportunityUpdate", pipelineStageId: "" })).toBeNull();
  });
});
