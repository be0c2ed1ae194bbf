/**
 * The Report's weighted forecast: a HighLevel opportunity that carries its own
 * `forecastProbability` (API v3) is weighted by it; one without (2021-07-28, or unset) by the
 * stage's configured probability; won/lost rows are never weighted.
 */
import { describe, expect, it } from "vitest";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { OpportunitySchema, OpportunityV3Schema } from "../../../src/highlevel/schemas.ts";
import { buildRows } from "../../../src/http/console/pages/report.tsx";

const mapping = MappingSchema.parse({
  pipelines: [
    {
      fourdegreesPipelineId: "fd-p",
      highlevelLocationId: "loc",
      highlevelPipelineId: "hl-p",
      stages: [
        { fourdegrees: "fd-a", highlevel: "hl-a" },
        { fourdegrees: "fd-b", highlevel: "hl-b" },
      ],
    },
  ],
});
const pair = mapping.pipelines[0]!;
const stages = [
  { id: "hl-a", name: "A" },
  { id: "hl-b", name: "B" },
];

describe("Report probabilities", () => {
  it("happy: v3 opportunities use their forecastProbability, the rest their stage's", () => {
    const opps = [
      OpportunityV3Schema.parse({ id: "o1", pipelineStageId: "hl-a", monetaryValue: 1000, forecastProbability: 20 }),
      OpportunityV3Schema.parse({ id: "o2", pipelineStageId: "hl-a", monetaryValue: 500 }),
      OpportunitySchema.parse({ id: "o3", pipelineStageId: "hl-a", monetaryValue: 300, forecastProbability: 90 }),
      OpportunityV3Schema.parse({ id: "o4", pipelineStageId: "hl-b", monetaryValue: 100, forecastProbability: 70 }),
      OpportunityV3Schema.parse({ id: "o5", status: "won", monetaryValue: 900, forecastProbability: 10 }),
    ];
    const rows = buildRows(pair, mapping, stages, [], opps, new Map([["hl-a", 50]]));
    const row = (key: string) => rows.find((r) => r.key === key)!;
    // A: 1000 × 20% (own) + 500 × 50% (stage) + 300 × 50% (a 2021-07-28 answer has no forecast) — in cents.
    expect(row("hl-a").hl).toEqual({ count: 3, value: 1800_00, weighted: 200_00 + 250_00 + 150_00, own: 1 });
    // B has no stage probability: only the opportunity's own counts.
    expect(row("hl-b").hl).toEqual({ count: 1, value: 100_00, weighted: 70_00, own: 1 });
    expect(row("won").hl).toMatchObject({ count: 1, weighted: 0, own: 0 });
  });

  it("edge: without forecast probabilities the weights are the stage's, as before", () => {
    const opps = [OpportunitySchema.parse({ id: "o1", pipelineStageId: "hl-b", monetaryValue: 400 })];
    const rows = buildRows(pair, mapping, stages, [], opps, new Map([["hl-b", 25]]));
    expect(rows.find((r) => r.key === "hl-b")!.hl).toEqual({ count: 1, value: 400_00, weighted: 100_00, own: 0 });
  });
});
