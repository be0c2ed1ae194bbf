/**
 * The evaluator's edge cases that the end-to-end tests do not reach: crossing a value either way,
 * a number field crossing, a field set to a given value once (not again while it stays), and a cron
 * finding's occurrence staying the same while its situation does.
 */
import { describe, expect, it } from "vitest";
import { TriggerSchema } from "../../../src/domain/automation-rule.ts";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import type { RunContext, Structure } from "../../../src/automations/context.ts";
import { crossed, triggerMatches } from "../../../src/automations/evaluate.ts";
import { cronOccurrence } from "../../../src/automations/scan.ts";

const s: Structure = {
  mapping: MappingSchema.parse({
    currency: "USD",
    pipelines: [
      {
        fourdegreesPipelineId: "pl",
        highlevelLocationId: "loc",
        highlevelPipelineId: "hp",
        stages: [{ fourdegrees: "st_a", highlevel: "hs_a" }],
      },
    ],
  }),
  fourdegrees: [{ id: "pl", name: "Deals", stages: [{ id: "st_a", name: "A", position: 0, kind: "open" }] }],
  highlevel: [{ id: "hp", name: "Deals", stages: [{ id: "hs_a", name: "A" }] }],
};
const ctx = (before: Record<string, unknown> | null, after: Record<string, unknown>): RunContext => ({
  event: "change",
  source: "highlevel",
  fdId: "d",
  hlId: "o",
  locationId: "loc",
  name: "D",
  before,
  after,
  depth: 0,
  madeBy: null,
});

describe("evaluator", () => {
  it("crossing is either way and needs both values", () => {
    expect(crossed(90, 110, 100)).toBe(true);
    expect(crossed(110, 90, 100)).toBe(true);
    expect(crossed(100, 120, 100)).toBe(false);
    expect(crossed(null, 120, 100)).toBe(false);
  });

  it("field_set: crosses, equals (once), any value", () => {
    const crosses = TriggerSchema.parse({ kind: "field_set", field: "own", crosses: 10 });
    expect(triggerMatches(crosses, ctx({ "field.own": 5 }, { "field.own": 12 }), s)).toBe(true);
    expect(triggerMatches(crosses, ctx({ "field.own": 12 }, { "field.own": 15 }), s)).toBe(false);
    const equals = TriggerSchema.parse({ kind: "field_set", field: "own", equals: "Seed" });
    expect(triggerMatches(equals, ctx({ "field.own": "Pre" }, { "field.own": "seed" }), s)).toBe(true);
    expect(triggerMatches(equals, ctx({ "field.own": "Seed" }, { "field.own": "Seed" }), s)).toBe(false);
    const any = TriggerSchema.parse({ kind: "field_set", field: "own" });
    expect(triggerMatches(any, ctx({ "field.own": null }, { "field.own": "x" }), s)).toBe(true);
    expect(triggerMatches(any, ctx({ "field.own": "x" }, { "field.own": null }), s)).toBe(false);
  });

  it("a cron finding keeps its occurrence while the situation lasts and changes with it", () => {
    const t = TriggerSchema.parse({ kind: "close_date", withinDays: 3 });
    const base = { pipeline: "pl", stage: "st_a", status: "open", closeDate: "2030-01-10" };
    const at = (d: string) => Date.parse(`${d}T12:00:00Z`);
    const pair = { fdId: "d", base, lastActivityAt: 0, stageEntry: null };
    expect(cronOccurrence(t, pair, s, at("2030-01-05"))).toBeNull();
    const first = cronOccurrence(t, pair, s, at("2030-01-08"));
    expect(first).toBe("cron:close_date:d:2030-01-10");
    expect(cronOccurrence(t, pair, s, at("2030-01-20"))).toBe(first);
    const moved = { ...pair, base: { ...base, closeDate: "2030-02-01" } };
    expect(cronOccurrence(t, moved, s, at("2030-01-30"))).toBe("cron:close_date:d:2030-02-01");
    expect(cronOccurrence(t, { ...pair, base: { ...base, status: "won" } }, s, at("2030-01-08"))).toBeNull();
  });
});
