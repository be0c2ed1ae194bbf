/**
 * Saving the console's Mapping form keeps what the form does not show: each pipeline pair's filter
 * and HighLevel won/lost stages, and the match keys (domain/mapping-config.ts `keepSyncRules`).
 */
import { describe, expect, it } from "vitest";
import { keepSyncRules, MappingSchema, type MappingInput } from "../../../src/domain/mapping-config.ts";

const pair = (extra: Partial<MappingInput["pipelines"][number]> = {}) => ({
  fourdegreesPipelineId: "pl_1",
  highlevelLocationId: "loc1",
  highlevelPipelineId: "hp1",
  stages: [{ fourdegrees: "st_a", highlevel: "hs_a" }],
  ...extra,
});

describe("keepSyncRules", () => {
  it("happy: a form save keeps the pair's HighLevel won/lost stages, its filter and the match keys", () => {
    const previous = MappingSchema.parse({
      currency: "USD",
      matchKeys: "name",
      pipelines: [pair({ highlevelWonStageId: "hs_won", highlevelLostStageId: "hs_lost", filter: { minValue: 5 } })],
    });
    const fromForm = MappingSchema.parse({ currency: "USD", pipelines: [pair()] });
    const kept = keepSyncRules(fromForm, previous);
    expect(kept.matchKeys).toBe("name");
    expect(kept.pipelines[0]).toMatchObject({
      highlevelWonStageId: "hs_won",
      highlevelLostStageId: "hs_lost",
      filter: { minValue: 5 },
    });
  });

  it("a pair moved to another HighLevel pipeline keeps nothing of the old pair's stages", () => {
    const previous = MappingSchema.parse({
      currency: "USD",
      pipelines: [pair({ highlevelWonStageId: "hs_won" })],
    });
    const moved = MappingSchema.parse({ currency: "USD", pipelines: [pair({ highlevelPipelineId: "hp2" })] });
    expect(keepSyncRules(moved, previous).pipelines[0]?.highlevelWonStageId).toBeNull();
  });
});
