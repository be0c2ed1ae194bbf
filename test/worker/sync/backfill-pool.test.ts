/**
 * The backfill page pool: a few records at a time, but never two with the same match key at once
 * (two same-named records in flight together could both claim the one opportunity that matches).
 */
import { describe, expect, it } from "vitest";
import { pool } from "../../../src/lib/pool.ts";

interface Item {
  id: number;
  name: string;
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

async function run(items: Item[], limit: number) {
  const inFlight = new Map<string, number>();
  let maxSameKey = 0;
  let maxTotal = 0;
  let total = 0;
  const started: number[] = [];
  const results = await pool(
    items,
    limit,
    (item) => item.name.toLowerCase(),
    async (item) => {
      const key = item.name.toLowerCase();
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      total++;
      maxSameKey = Math.max(maxSameKey, inFlight.get(key) ?? 0);
      maxTotal = Math.max(maxTotal, total);
      started.push(item.id);
      await tick();
      inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
      total--;
      return item.id * 10;
    },
    () => false,
  );
  return { results, maxSameKey, maxTotal, started };
}

describe("backfill pool", () => {
  it("happy: same-named records run one after another, in page order; others run alongside", async () => {
    const items: Item[] = [
      { id: 1, name: "Acme — Seed" },
      { id: 2, name: "Bolt" },
      { id: 3, name: "acme — seed" },
      { id: 4, name: "Cobalt" },
      { id: 5, name: "ACME — SEED" },
    ];
    const { results, maxSameKey, maxTotal, started } = await run(items, 5);
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(maxSameKey).toBe(1);
    expect(maxTotal).toBeGreaterThan(1);
    expect(started.filter((id) => id === 1 || id === 3 || id === 5)).toEqual([1, 3, 5]);
  });

  it("happy: never more than the limit in flight", async () => {
    const items = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, name: `deal ${i}` }));
    const { results, maxTotal } = await run(items, 3);
    expect(results).toHaveLength(12);
    expect(maxTotal).toBeLessThanOrEqual(3);
  });

  it("error: the first error is rethrown after every started item finished, and nothing new starts", async () => {
    const finished: number[] = [];
    const items = Array.from({ length: 6 }, (_, i) => ({ id: i + 1, name: `n${i}` }));
    await expect(
      pool(
        items,
        2,
        (item) => item.name,
        async (item) => {
          await tick();
          if (item.id === 2) throw new Error("boom 2");
          finished.push(item.id);
          return item.id;
        },
        () => false,
      ),
    ).rejects.toThrow("boom 2");
    expect(finished).toContain(1);
    expect(finished.length).toBeLessThan(5);
  });

  it("happy: stop() halts the page after the item that asked, also inside a same-key group", async () => {
    const items: Item[] = [
      { id: 1, name: "same" },
      { id: 2, name: "same" },
      { id: 3, name: "same" },
    ];
    const results = await pool(
      items,
      3,
      (item) => item.name,
      async (item) => item.id,
      (r) => r === 2,
    );
    expect(results[0]).toBe(1);
    expect(results[1]).toBe(2);
    expect(results[2]).toBeUndefined();
  });
});
