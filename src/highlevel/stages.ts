/**
 * Keeping the pipelines cache (KV, `v1:hl:pipelines:{locationId}`, 10 min TTL) honest when a
 * webhook names a stage it does not know: a stage added in HighLevel since the cache was filled.
 * The webhook ingress must answer in milliseconds and never calls HighLevel, so this runs where
 * the `highlevel.webhook` message is handled (the sync engine's queue consumer).
 *
 * ```ts
 * const named = stageNamedBy(msg.body);
 * if (named) await ensureStageKnown(client, named.pipelineId, named.stageId);
 * ```
 */
import type { HighLevelClient } from "./client.ts";
import type { Pipeline } from "./schemas.ts";

/** A stage of a HighLevel pipeline, as parsed from `GET /opportunities/pipelines`. */
export type Stage = Pipeline["stages"][number];

/**
 * The outcome of `ensureStageKnown`:
 * - `cached`: the cache already knew the stage (no HighLevel call);
 * - `refreshed`: it did not; the cache was reloaded (one call) and now knows it;
 * - `unknown`: not even HighLevel knows it (deleted since the event): the caller should treat the
 *   event as "re-read the opportunity", not map this stage.
 */
export type StageCheck =
  | { status: "cached" | "refreshed"; pipeline: Pipeline; stage: Stage }
  | { status: "unknown"; pipeline: null; stage: null };

function find(
  pipelines: Pipeline[],
  pipelineId: string | null,
  stageId: string,
): { pipeline: Pipeline; stage: Stage } | null {
  for (const pipeline of pipelines) {
    if (pipelineId !== null && pipeline.id !== pipelineId) continue;
    const stage = pipeline.stages.find((s) => s.id === stageId);
    if (stage) return { pipeline, stage };
  }
  return null;
}

/**
 * Makes sure the location's pipelines cache knows `stageId` (in `pipelineId`, when given): reads
 * the cache and, only when the stage is missing, reloads it from HighLevel once.
 */
export async function ensureStageKnown(
  client: Pick<HighLevelClient, "pipelines">,
  pipelineId: string | null,
  stageId: string,
): Promise<StageCheck> {
  const hit = find(await client.pipelines.list(), pipelineId, stageId);
  if (hit) return { status: "cached", ...hit };
  const fresh = find(await client.pipelines.refresh(), pipelineId, stageId);
  return fresh ? { status: "refreshed", ...fresh } : { status: "unknown", pipeline: null, stage: null };
}

/**
 * The pipeline and stage a HighLevel webhook body names (opportunity events carry
 * `pipelineId` + `pipelineStageId`; note and app events carry none → `null`).
 */
export function stageNamedBy(body: Record<string, unknown>): { pipelineId: string | null; stageId: string } | null {
  const stageId = body["pipelineStageId"];
  if (typeof stageId !== "string" || stageId === "") return null;
  const pipelineId = body["pipelineId"];
  return { pipelineId: typeof pipelineId === "string" && pipelineId !== "" ? pipelineId : null, stageId };
}
