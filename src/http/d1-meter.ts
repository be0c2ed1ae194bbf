/**
 * `GET /api/debug/d1-meter` (behind adminAuth): the D1 rows read/written this isolate has run so
 * far, in total and per SQL text, from D1's own `meta` (src/store/d1-meter.ts). Only when the `D1_METER` var is "true" (the
 * benchmark turns it on); otherwise the route does not exist (404).
 */
import { Hono } from "hono";
import { AppError } from "../lib/errors.ts";
import { d1MeterStatements, d1MeterTotals } from "../store/d1-meter.ts";
import type { AppEnv } from "./context.ts";

export const d1Meter = new Hono<AppEnv>().get("/debug/d1-meter", (c) => {
  if (!c.var.config.D1_METER) throw new AppError("not_found", 'D1 metering is off (set the D1_METER var to "true")');
  return c.json({ d1: d1MeterTotals(), statements: d1MeterStatements() });
});
