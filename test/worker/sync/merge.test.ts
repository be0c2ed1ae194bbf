import { describe, expect, it } from "vitest";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import type { Flat } from "../../../src/domain/port.ts";
import { merge, same } from "../../../src/sync/engine/merge.ts";

const mapping = MappingSchema.parse({
  pipelines: [
    {
      fourdegreesPipelineId: "pl_1",
      highlevelLocationId: "loc_1",
      highlevelPipelineId: "hp_1",
      stages: [
        { fourdegrees: "st_a", highlevel: "hs_a" },
        { fourdegrees: "st_b", highlevel: "hs_b" },
      ],
    },
  ],
  closeDateFieldId: "cf_close",
  fields: [{ key: "sector", fourdegreesFieldId: "f_sector", highlevelFieldId: "cf_sector", direction: "to_highlevel" }],
});

const base: Flat = {
  name: "Acme",
  pipeline: "pl_1",
  stage: "st_a",
  status: "open",
  value: 1000,
  currency: "USD",
  owner: "a@x.io",
  closeDate: null,
  "field.sector": "SaaS",
};
const t1 = "2026-01-01T00:00:00.000Z";
const t2 = "2026-01-02T00:00:00.000Z";
const run = (fd: Flat, hl: Flat, over: Partial<Parameters<typeof merge>[0]> = {}) =>
  merge({
    base,
    fourdegrees: fd,
    highlevel: hl,
    fourdegreesUpdatedAt: t1,
    highlevelUpdatedAt: t2,
    policy: "newest",
    mapping,
    ...over,
  });

describe("merge (happy)", () => {
  it("writes nothing when neither side changed — the echo of our own write", () => {
    const r = run({ ...base }, { ...base });
    expect([...r.toHighLevel, ...r.toFourDegrees]).toEqual([]);
    expect(r.conflicts).toEqual([]);
    expect(r.merged).toEqual(base);
  });

  it("flows a one-sided change to the other side only", () => {
    const r = run({ ...base, value: 2500 }, { ...base, name: "Acme Corp" });
    expect([...r.toHighLevel]).toEqual(["value"]);
    expect([...r.toFourDegrees]).toEqual(["name"]);
    expect(r.merged["value"]).toBe(2500);
    expect(r.merged["name"]).toBe("Acme Corp");
  });

  it("treats the same change on both sides as converged", () => {
    const r = run({ ...base, value: 7 }, { ...base, value: 7 });
    expect(r.toHighLevel.size + r.toFourDegrees.size).toBe(0);
    expect(r.conflicts).toEqual([]);
  });
});

describe("merge (conflicts under each policy)", () => {
  const fd = { ...base, value: 2000 };
  const hl = { ...base, value: 3000 };
  it("newest wins by default (HighLevel changed later here)", () => {
    const r = run(fd, hl);
    expect(r.conflicts).toEqual([
      { field: "value", base: 1000, fourdegrees: 2000, highlevel: 3000, winner: "highlevel" },
    ]);
    expect([...r.toFourDegrees]).toEqual(["value"]);
    expect(r.merged["value"]).toBe(3000);
  });
  it("newest picks 4Degrees when it changed later", () => {
    const r = run(fd, hl, { fourdegreesUpdatedAt: t2, highlevelUpdatedAt: t1 });
    expect(r.conflicts[0]?.winner).toBe("fourdegrees");
    expect([...r.toHighLevel]).toEqual(["value"]);
  });
  it("4Degrees wins under the fourdegrees policy even when older", () => {
    const r = run(fd, hl, { policy: "fourdegrees" });
    expect(r.conflicts[0]?.winner).toBe("fourdegrees");
    expect(r.merged["value"]).toBe(2000);
  });
  it("HighLevel wins under the highlevel policy even when older", () => {
    const r = run(fd, hl, { policy: "highlevel", fourdegreesUpdatedAt: t2, highlevelUpdatedAt: t1 });
    expect(r.conflicts[0]?.winner).toBe("highlevel");
    expect(r.merged["value"]).toBe(3000);
  });
});

describe("merge (directions and modes)", () => {
  it("a to_highlevel field never flows back to 4Degrees", () => {
    const r = run({ ...base }, { ...base, "field.sector": "Fintech" });
    expect(r.toFourDegrees.size).toBe(0);
    expect(r.merged["field.sector"]).toBe("SaaS");
  });
  it("read-only mode writes 4Degrees only", () => {
    const r = run({ ...base, name: "New" }, { ...base, value: 5 }, { readOnly: new Set(["highlevel"]) });
    expect([...r.toHighLevel]).toEqual([]);
    expect([...r.toFourDegrees]).toEqual(["value"]);
  });
  it("closeDate is never written when HighLevel holds none (its record omits the key) and keeps its base value", () => {
    const noClose = MappingSchema.parse({ ...mapping, closeDateFieldId: null });
    const { closeDate: _none, ...hlWithout } = base;
    const r = run({ ...base, closeDate: "2026-03-01" }, hlWithout, { mapping: noClose });
    expect(r.toHighLevel.size).toBe(0);
    expect(r.toFourDegrees.size).toBe(0);
    expect(r.merged["closeDate"]).toBeNull();
  });
  it("a HighLevel close (won) drops the canonical stage and never writes a stage", () => {
    const r = run({ ...base }, { ...base, status: "won", stage: null });
    expect(r.merged["status"]).toBe("won");
    expect(r.merged["stage"]).toBeNull();
    expect([...r.toFourDegrees].sort()).toEqual(["stage", "status"]);
  });
  it("reopening takes the stage of the side that reopened", () => {
    const closed = { ...base, status: "lost", stage: null };
    const r = merge({
      base: closed,
      fourdegrees: { ...closed },
      highlevel: { ...closed, status: "open", stage: "st_b" },
      fourdegreesUpdatedAt: t1,
      highlevelUpdatedAt: t2,
      policy: "newest",
      mapping,
    });
    expect(r.merged["stage"]).toBe("st_b");
    expect(r.toFourDegrees.has("stage")).toBe(true);
  });
  it("with no base (first match) differences resolve by policy and are reported", () => {
    const r = run({ ...base, name: "A" }, { ...base, name: "B" }, { base: null, policy: "fourdegrees" });
    expect(r.conflicts.map((c) => c.field)).toEqual(["name"]);
    expect([...r.toHighLevel]).toEqual(["name"]);
  });
  it("compares only keys both sides can express (contact unknown on 4Degrees)", () => {
    const r = run({ ...base }, { ...base, contact: "c@x.io" });
    expect(r.toFourDegrees.has("contact")).toBe(false);
  });
});

describe("same", () => {
  it("null and undefined are equal, arrays compare by value", () => {
    expect(same(null, undefined)).toBe(true);
    expect(same(["a"], ["a"])).toBe(true);
    expect(same(["a"], ["b"])).toBe(false);
    expect(same(0, null)).toBe(false);
  });
});
