/**
 * The bench's bundle part (scripts/bench/bundle.ts): start-up time is read from a V8 profile as
 * `wrangler check startup` reads it, and the size row is met only at or under the target.
 */
import { describe, expect, it } from "vitest";
import { bundleRows, summarizeProfile, type BundleReport } from "../../scripts/bench/bundle.ts";

describe("bench bundle part", () => {
  it("counts every sample but the idle ones as active, garbage collection included", () => {
    const node = (id: number, functionName: string) => ({ id, callFrame: { functionName } });
    const profile = {
      nodes: [node(1, "(root)"), node(2, "(idle)"), node(3, "(garbage collector)"), node(4, "init")],
      samples: [4, 2, 3, 4, 2],
      timeDeltas: [1000, 5000, 2000, 3000, 7000],
    };
    expect(summarizeProfile(profile)).toEqual({ activeMs: 6, gcMs: 2 });
    expect(() => summarizeProfile({ samples: [] })).toThrow();
  });

  it("meets the size target at or under it, prints the start-up figure without a verdict", () => {
    const report = (gzipKib: number): BundleReport => ({
      worker: "console",
      bytes: 700 * 1024,
      gzipBytes: gzipKib * 1024,
      targetKib: 150,
      budgetKib: 235,
      startupActiveMs: [30, 31, 29],
      startupMedianMs: 30,
      startupGcMs: 3,
    });
    const [size, startup] = bundleRows(report(150));
    expect(size?.[3]).toBe(true);
    expect(size?.[0]).toBe("bundle: console Worker, KiB gzip (minified upload)");
    expect(size?.[1]).toContain("150.00 KiB gzip (1.00 of the target");
    expect(startup?.[1]).toBe("30.0 ms active, median of 3 (3.0 ms GC; runs 30, 31, 29)");
    expect(startup?.[3]).toBeNull();
    expect(bundleRows(report(150.5))[0]?.[3]).toBe(false);
  });
});
