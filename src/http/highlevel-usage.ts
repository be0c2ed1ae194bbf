/**
 * `GET /api/usage/highlevel/:locationId` (mounted under `/api`, behind adminAuth): one HighLevel
 * location's rate usage from its gate — calls and 429s per hour, the burst window, the day's
 * budget, paused lanes — with the token-free summary of its connection. JSON for scripts and
 * alerting; the console's usage page shows the same numbers.
 */
import { Hono } from "hono";
import * as z from "zod";
import { gateFor } from "../gate/client.ts";
import { AppError } from "../lib/errors.ts";
import { connectionSummary, getConnection, locationConnectionId } from "../store/connections.ts";
import type { AppEnv } from "./context.ts";

/** HighLevel location ids are short alphanumerics; anything else is refused before any lookup. */
const LocationIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "locationId must be 1–64 characters of A–Z, a–z, 0–9, _ and -");

export const highlevelUsage = new Hono<AppEnv>().get("/usage/highlevel/:locationId", async (c) => {
  const parsed = LocationIdSchema.safeParse(c.req.param("locationId"));
  if (!parsed.success) throw new AppError("bad_request", parsed.error.issues[0]?.message ?? "invalid locationId");
  const locationId = parsed.data;
  // Only connected locations: asking a gate for usage would otherwise create a Durable Object per guessed id.
  const connection = await getConnection(c.env.DB, locationConnectionId(locationId));
  if (!connection) throw new AppError("not_found", `No HighLevel connection for location ${locationId}`);
  const usage = await gateFor(c.env, "hl", locationId).usage();
  return c.json({ locationId, connection: connectionSummary(connection), usage });
});
