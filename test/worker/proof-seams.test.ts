/**
 * The seams `npm run bench` relies on: D1 metering from D1's own `meta` (identical results,
 * counted rows, batch through the real statements), the metering route being off by default,
 * and the time-scaled HighLevel limits.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { HIGHLEVEL_LIMITS, timeScaledLimits } from "../../src/gate/client.ts";
import { d1MeterTotals, meterDatabase } from "../../src/store/d1-meter.ts";

describe("D1 meter", () => {
  it("happy: counts D1's rows read/written and answers run/all/first/raw/batch exactly like D1", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS meter_probe (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    await env.DB.exec("DELETE FROM meter_probe");
    const db = meterDatabase(env.DB);
    const before = d1MeterTotals();
    await db.prepare("INSERT INTO meter_probe (id, v) VALUES (?, ?)").bind(1, "a").run();
    await db.batch([
      db.prepare("INSERT INTO meter_probe (id, v) VALUES (?, ?)").bind(2, "b"),
      db.prepare("INSERT INTO meter_probe (id, v) VALUES (?, ?)").bind(3, "c"),
    ]);
    const afterWrites = d1MeterTotals();
    expect(afterWrites.rowsWritten - before.rowsWritten).toBeGreaterThanOrEqual(3);
    expect(afterWrites.queries - before.queries).toBe(3);

    const sql = "SELECT id, v FROM meter_probe ORDER BY id";
    expect(await db.prepare(sql).first()).toEqual(await env.DB.prepare(sql).first());
    expect(await db.prepare(sql).first("v")).toEqual(await env.DB.prepare(sql).first("v"));
    expect(await db.prepare("SELECT v FROM meter_probe WHERE id = ?").bind(99).first()).toBeNull();
    expect((await db.prepare(sql).all()).results).toEqual((await env.DB.prepare(sql).all()).results);
    expect(await db.prepare(sql).raw()).toEqual(await env.DB.prepare(sql).raw());
    expect(await db.prepare(sql).raw({ columnNames: true })).toEqual(
      await env.DB.prepare(sql).raw({ columnNames: true }),
    );
    const afterReads = d1MeterTotals();
    expect(afterReads.rowsRead - afterWrites.rowsRead).toBeGreaterThanOrEqual(3 * 5);
  });

  it("security: GET /api/debug/d1-meter needs admin credentials and is off (404) unless D1_METER=true", async () => {
    expect((await exports.default.fetch("http://worker.test/api/debug/d1-meter")).status).toBe(401);
    const res = await exports.default.fetch("http://worker.test/api/debug/d1-meter", {
      headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(404);
  });
});

describe("time-scaled HighLevel limits", () => {
  it("happy: scale 1 is the real limits; scale 10 keeps the count and shortens the window tenfold", () => {
    expect(timeScaledLimits(HIGHLEVEL_LIMITS, 1)).toBe(HIGHLEVEL_LIMITS);
    expect(timeScaledLimits(HIGHLEVEL_LIMITS, 10)).toEqual({
      ...HIGHLEVEL_LIMITS,
      burst: { max: 100, intervalMs: 1_000 },
    });
  });
});
