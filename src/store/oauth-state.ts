/**
 * OAuth `state` values: created for an install, valid 10 minutes, usable once.
 * Stored in D1 rather than KV because "use once" needs an atomic read-and-delete: KV is eventually
 * consistent and has no compare-and-set, so two racing callbacks could both see the value. D1's
 * `DELETE … RETURNING` hands the row to exactly one caller.
 */
import * as z from "zod";
import { bytesToBase64 } from "../lib/crypto.ts";

/** How long an install has to come back with its `state`. */
export const OAUTH_STATE_TTL_MS = 10 * 60 * 1000;

const RowSchema = z.object({
  state: z.string(),
  created_at: z.number(),
  expires_at: z.number(),
  return_to: z.string().nullable(),
});

/** Creates and stores a fresh random `state` (256 bits, URL-safe). */
export async function createOAuthState(
  db: D1Database,
  options: { now?: number; returnTo?: string } = {},
): Promise<string> {
  const now = options.now ?? Date.now();
  const state = bytesToBase64(crypto.getRandomValues(new Uint8Array(32)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  await db.batch([
    // Housekeeping: expired states are useless; drop them as new ones are made.
    db.prepare("DELETE FROM oauth_states WHERE expires_at < ?").bind(now),
    db
      .prepare("INSERT INTO oauth_states (state, created_at, expires_at, return_to) VALUES (?, ?, ?, ?)")
      .bind(state, now, now + OAUTH_STATE_TTL_MS, options.returnTo ?? null),
  ]);
  return state;
}

/** The outcome of presenting a `state`. */
export type ConsumedState = { ok: true; returnTo: string | null } | { ok: false; reason: "unknown" | "expired" };

/** Consumes `state` atomically: the first caller gets `ok`, every later one `unknown`. */
export async function consumeOAuthState(
  db: D1Database,
  state: string,
  now: number = Date.now(),
): Promise<ConsumedState> {
  const raw = await db
    .prepare("DELETE FROM oauth_states WHERE state = ? RETURNING state, created_at, expires_at, return_to")
    .bind(state)
    .first();
  if (raw === null) return { ok: false, reason: "unknown" };
  const row = RowSchema.parse(raw);
  if (row.expires_at < now) return { ok: false, reason: "expired" };
  return { ok: true, returnTo: row.return_to };
}
