/**
 * Console sign-in state in D1: server-side sessions (so logout revokes a session, not only the
 * browser's copy of its cookie) and the per-client login throttle. Both tables stay bounded: expired
 * sessions are pruned at each login, finished throttle windows at each attempt (migrations/0016_console_auth.sql).
 */
import { z } from "zod";

/** Sign-in attempts a client may make per window (a success resets the count). */
export const LOGIN_ATTEMPTS_PER_WINDOW = 5;
/** The throttle window. */
export const LOGIN_WINDOW_MS = 15 * 60 * 1000;
/** Rows pruned per call: keeps one request's work bounded however much has piled up. */
const PRUNE_BATCH = 200;

async function idHash(sessionId: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sessionId));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Records a new session (and prunes expired ones). */
export async function insertConsoleSession(
  db: D1Database,
  sessionId: string,
  expiresAt: number,
  now: number = Date.now(),
): Promise<void> {
  await db.batch([
    db
      .prepare(
        "DELETE FROM console_sessions WHERE id_hash IN " +
          "(SELECT id_hash FROM console_sessions WHERE expires_at <= ? LIMIT ?)",
      )
      .bind(now, PRUNE_BATCH),
    db
      .prepare("INSERT INTO console_sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)")
      .bind(await idHash(sessionId), now, expiresAt),
  ]);
}

/** True when the session exists server-side and has not expired. */
export async function consoleSessionActive(db: D1Database, sessionId: string, now = Date.now()): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS ok FROM console_sessions WHERE id_hash = ? AND expires_at > ?")
    .bind(await idHash(sessionId), now)
    .first();
  return row !== null;
}

/** Revokes a session; true when it existed. */
export async function deleteConsoleSession(db: D1Database, sessionId: string): Promise<boolean> {
  const res = await db
    .prepare("DELETE FROM console_sessions WHERE id_hash = ?")
    .bind(await idHash(sessionId))
    .run();
  return (res.meta.changes ?? 0) > 0;
}

const AttemptRow = z.object({ attempts: z.number().int(), window_start: z.number().int() });

/** The throttle's answer for one attempt. */
export type LoginAttempt = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Counts one sign-in attempt for `client` before the token is compared, atomically (an upsert that
 * returns the new count), so a burst of parallel guesses cannot all pass one check. Beyond
 * `LOGIN_ATTEMPTS_PER_WINDOW` in the window the attempt is refused with the seconds until it ends.
 */
export async function countLoginAttempt(db: D1Database, client: string, now = Date.now()): Promise<LoginAttempt> {
  const windowFloor = now - LOGIN_WINDOW_MS;
  const [, upserted] = await db.batch([
    db
      .prepare(
        "DELETE FROM console_login_attempts WHERE client IN " +
          "(SELECT client FROM console_login_attempts WHERE window_start <= ? LIMIT ?)",
      )
      .bind(windowFloor, PRUNE_BATCH),
    db
      .prepare(
        `INSERT INTO console_login_attempts (client, attempts, window_start) VALUES (?1, 1, ?2)
         ON CONFLICT (client) DO UPDATE SET
           attempts = CASE WHEN window_start <= ?3 THEN 1 ELSE attempts + 1 END,
           window_start = CASE WHEN window_start <= ?3 THEN ?2 ELSE window_start END
         RETURNING attempts, window_start`,
      )
      .bind(client, now, windowFloor),
  ]);
  const row = AttemptRow.parse(upserted?.results[0]);
  if (row.attempts <= LOGIN_ATTEMPTS_PER_WINDOW) return { allowed: true };
  const retryAfterSeconds = Math.max(1, Math.ceil((row.window_start + LOGIN_WINDOW_MS - now) / 1000));
  return { allowed: false, retryAfterSeconds };
}

/** Forgets `client`'s attempts (after a successful sign-in). */
export async function clearLoginAttempts(db: D1Database, client: string): Promise<void> {
  await db.prepare("DELETE FROM console_login_attempts WHERE client = ?").bind(client).run();
}
