/**
 * D1 `app_status`: deployment-wide conditions that belong to no single connection, such as
 * HighLevel refusing this app's client credentials. A row lives while its condition lasts; raising
 * is atomic (`INSERT … ON CONFLICT DO NOTHING RETURNING`), so exactly one caller opens an episode
 * and alerts, however many connections hit the condition at once.
 */
import * as z from "zod";

/** HighLevel's token endpoint answers `invalid_client`: HIGHLEVEL_CLIENT_ID / HIGHLEVEL_CLIENT_SECRET are wrong. */
export const HIGHLEVEL_CLIENT_REJECTED = "highlevel_client_rejected";

/** One open condition; `since` (epoch ms) names its episode. */
export interface AppCondition {
  key: string;
  since: number;
  reason: string;
}

const RowSchema = z.object({ key: z.string(), since: z.number(), reason: z.string() });

/** Opens the condition unless it is open already; true when this call opened it (the one to alert). */
export async function raiseAppCondition(
  db: D1Database,
  key: string,
  reason: string,
  now = Date.now(),
): Promise<boolean> {
  const row = await db
    .prepare("INSERT INTO app_status (key, since, reason) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING key")
    .bind(key, now, reason.slice(0, 500))
    .first();
  return row !== null;
}

/** Closes the condition; the closed one (to log the recovery), or null when it was not open. */
export async function clearAppCondition(db: D1Database, key: string): Promise<AppCondition | null> {
  const raw = await db.prepare("DELETE FROM app_status WHERE key = ? RETURNING key, since, reason").bind(key).first();
  return raw === null ? null : RowSchema.parse(raw);
}

/** The condition while it is open, else null. */
export async function getAppCondition(db: D1Database, key: string): Promise<AppCondition | null> {
  const raw = await db.prepare("SELECT key, since, reason FROM app_status WHERE key = ?").bind(key).first();
  return raw === null ? null : RowSchema.parse(raw);
}
