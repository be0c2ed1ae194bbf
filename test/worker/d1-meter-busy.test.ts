/**
 * The D1 meter's busy time (what `npm run bench` part `accounts` divides by changes to project one
 * database's ceiling): D1's own `meta.duration` summed, and the part of it spent on statements that
 * changed the database (`meta.changed_db`), counted for single statements and batches alike.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { d1MeterTotals, meterDatabase } from "../../src/store/d1-meter.ts";

describe("D1 meter busy time", () => {
  it("happy: counts writes apart from reads and never loses busy time", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS busy_probe (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    await env.DB.exec("DELETE FROM busy_probe");
    const db = meterDatabase(env.DB);
    const t0 = d1MeterTotals();
    await db.prepare("INSERT INTO busy_probe (id, v) VALUES (?, ?)").bind(1, "a").run();
    await db.batch([
      db.prepare("INSERT INTO busy_probe (id, v) VALUES (?, ?)").bind(2, "b"),
      db.prepare("SELECT v FROM busy_probe WHERE id = ?").bind(1),
    ]);
    const t1 = d1MeterTotals();
    expect(t1.queries - t0.queries).toBe(3);
    expect(t1.writeQueries - t0.writeQueries).toBe(2);

    await db.prepare("SELECT id, v FROM busy_probe ORDER BY id").all();
    await db.prepare("SELECT v FROM busy_probe WHERE id = ?").bind(2).first("v");
    // An UPDATE that matches nothing changes nothing: a read as far as the primary's share goes.
    await db.prepare("UPDATE busy_probe SET v = 'z' WHERE id = ?").bind(404).run();
    const t2 = d1MeterTotals();
    expect(t2.queries - t1.queries).toBe(3);
    expect(t2.writeQueries - t1.writeQueries).toBe(0);
    expect(t2.writeBusyMs - t1.writeBusyMs).toBe(0);

    for (const t of [t0, t1, t2]) {
      expect(t.busyMs).toBeGreaterThanOrEqual(t.writeBusyMs);
      expect(t.writeBusyMs).toBeGreaterThanOrEqual(0);
    }
    expect(t2.busyMs).toBeGreaterThanOrEqual(t0.busyMs);
  });
});
