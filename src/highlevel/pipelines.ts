/**
 * HighLevel pipelines and stages, cached in KV per location (`v1:hl:pipelines:{locationId}`).
 * A stage id the cache does not know (a webhook named a new stage) reloads the cache once.
 */
import * as z from "zod";
import { cached, writeCache } from "../store/highlevel-cache.ts";
import { kvKeys, kvTtl } from "../store/kv-keys.ts";
import type { HighLevelTransport } from "./http.ts";
import { PipelineSchema, PipelinesResponseSchema, type Pipeline } from "./schemas.ts";
import { versionedPath } from "./version.ts";

const PipelineListSchema = z.array(PipelineSchema);

/** Pipeline calls bound to one location. */
export function pipelinesApi(t: HighLevelTransport, kv: KVNamespace) {
  /**
   * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/get-pipelines
   */
  const fetchPipelines = async (): Promise<Pipeline[]> =>
    (
      await t.call({
        method: "GET",
        path: versionedPath(t.apiVersion, "/opportunities/pipelines"),
        version: t.apiVersion,
        query: { locationId: t.locationId },
        schema: PipelinesResponseSchema,
      })
    ).pipelines;

  const api = {
    /** The location's pipelines with their stages (cached). */
    list: (): Promise<Pipeline[]> =>
      cached(kv, kvKeys.hlPipelines(t.locationId), kvTtl.hlPipelines, PipelineListSchema, fetchPipelines),

    /** Reloads from HighLevel and replaces the cache. */
    async refresh(): Promise<Pipeline[]> {
      const fresh = await fetchPipelines();
      await writeCache(kv, kvKeys.hlPipelines(t.locationId), fresh, kvTtl.hlPipelines);
      return fresh;
    },

    /**
     * The pipeline and stage for `stageId`, reloading the cache once when the stage is unknown
     * (stages added in HighLevel since the cache was filled). `null` when HighLevel does not know it either.
     */
    async findStage(stageId: string): Promise<{ pipeline: Pipeline; stage: Pipeline["stages"][number] } | null> {
      const lookup = (pipelines: Pipeline[]) => {
        for (const pipeline of pipelines) {
          const stage = pipeline.stages.find((s) => s.id === stageId);
          if (stage) return { pipeline, stage };
        }
        return null;
      };
      return lookup(await api.list()) ?? lookup(await api.refresh());
    },
  };
  return api;
}

export type PipelinesApi = ReturnType<typeof pipelinesApi>;
