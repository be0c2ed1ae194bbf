/**
 * Where the engine reads and writes HighLevel's close date (src/sync/engine/mapping.ts): the
 * mapping's custom field when named, else the native forecast field when the API has one, else
 * nowhere — then HighLevel's canonical record omits the key and no write carries it.
 */
import { describe, expect, it } from "vitest";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { OpportunitySchema, OpportunityV3Schema } from "../../../src/highlevel/schemas.ts";
import {
  closeDateSource,
  flatten,
  fromOpportunity,
  toOpportunityCreate,
  toOpportunityUpdate,
  type Canonical,
} from "../../../src/sync/engine/mapping.ts";

const pipelines = [
  {
    fourdegreesPipelineId: "pl",
    highlevelLocationId: "loc",
    highlevelPipelineId: "hp",
    stages: [{ fourdegrees: "st", highlevel: "hs" }],
  },
];
const withField = MappingSchema.parse({ pipelines, closeDateFieldId: "cf_close" });
const noField = MappingSchema.parse({ pipelines });
const raw = {
  id: "o1",
  name: "Deal",
  pipelineId: "hp",
  pipelineStageId: "hs",
  status: "open",
  forecastExpectedCloseDate: "2027-01-31",
  customFields: [{ id: "cf_close", fieldValue: "2026-12-01T00:00:00.000Z" }],
};
const canonical: Canonical = {
  name: "Deal",
  pipeline: "pl",
  stage: "st",
  status: "open",
  value: null,
  currency: null,
  owner: null,
  closeDate: "2027-02-28",
  fields: {},
};
const closeOf = (t: ReturnType<typeof fromOpportunity>) => (t.ok ? flatten(t.canonical) : {});

describe("close date source", () => {
  it("happy: native under v3 with no field; the field whenever the mapping names one", () => {
    expect(closeDateSource(noField, true)).toBe("native");
    expect(closeDateSource(withField, true)).toBe("field");
    expect(closeDateSource(withField, false)).toBe("field");
    expect(closeDateSource(noField, false)).toBeNull();
    const v3 = OpportunityV3Schema.parse(raw);
    expect(closeOf(fromOpportunity(v3, "loc", noField, { users: [], nativeCloseDate: true }))["closeDate"]).toBe(
      "2027-01-31",
    );
    expect(closeOf(fromOpportunity(v3, "loc", withField, { users: [], nativeCloseDate: true }))["closeDate"]).toBe(
      "2026-12-01",
    );
  });

  it("edge: 2021-07-28 with no field — HighLevel's record has no closeDate key, and no write sets one", () => {
    const v2 = OpportunitySchema.parse(raw);
    expect(v2.forecastExpectedCloseDate).toBeNull();
    const flat = closeOf(fromOpportunity(v2, "loc", noField, { users: [], nativeCloseDate: false }));
    expect("closeDate" in flat).toBe(false);
    const ctx = { users: [], nativeCloseDate: false, contactId: "c", fdDealId: "d" };
    const create = toOpportunityCreate(canonical, noField, ctx).body;
    expect(create.forecastExpectedCloseDate).toBeUndefined();
    expect(create.customFields).toBeUndefined();
  });

  it("happy: v3 writes go to forecastExpectedCloseDate (null clears on update), never to a custom field", () => {
    const ctx = { users: [], nativeCloseDate: true, contactId: "c", fdDealId: "d" };
    expect(toOpportunityCreate(canonical, noField, ctx).body).toMatchObject({
      forecastExpectedCloseDate: "2027-02-28",
    });
    const update = toOpportunityUpdate(new Set(["closeDate"]), { ...canonical, closeDate: null }, noField, {
      ...ctx,
      currentStageId: "hs",
    }).body;
    expect(update).toEqual({ forecastExpectedCloseDate: null });
    const viaField = toOpportunityUpdate(new Set(["closeDate"]), canonical, withField, {
      ...ctx,
      currentStageId: "hs",
    });
    expect(viaField.body).toEqual({ customFields: [{ id: "cf_close", field_value: "2027-02-28" }] });
  });
});
