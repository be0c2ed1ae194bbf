/**
 * Console sign-in state in D1: server-side sessions (so logout revokes a session, not only the
 * browser's copy of its cookie) and the per-client login throttle. Both tables stay bounded: expired
 * sessions are pruned at each login, finished throttle windows at each attempt (migrations/0016_console_auth.sql).
 * A session carries its scope (migrations/0018_console_session_scope.sql): what its holder may see.
 */
import * as z from "zod";
import { sha256Hex } from "../lib/hash.ts";

/** Sign-in attempts a client may make per window (a success resets the count). */
export const LOGIN_ATTEMPTS_PER_WINDOW = 5;
/** The throttle window. */
export const LOGIN_WINDOW_MS = 15 * 60 * 1000;
/** Rows pruned per call: keeps one request's work bounded however much has piled up. */
const PRUNE_BATCH = 200;

const idHash = (sessionId: string): Promise<string> => sha256Hex(sessionId);

/**
 * What a session may see. `operator`: everything (an ADMIN_TOKEN login). `location`: the account
 * attached to one HighLevel location. `agency`: the accounts of one agency's locations. The last two
 * come from HighLevel's Custom Page user context (src/http/embed.tsx) and name the HighLevel user.
 */
export type SessionScope =
  | { kind: "operator" }
  | { kind: "location"; locationId: string; companyId: string; userId: string; userName: string }
  | { kind: "agency"; companyId: string; activeLocation: string | null; userId: string; userName: string };

const ScopeRow = z.object({
  scope_kind: z.enum(["operator", "location", "agency"]),
  scope_location_id: z.string().nullable(),
  scope_company_id: z.string().nullable(),
  user_id: z.string().nullable(),
  user_name: z.string().nullable(),
});

function scopeOf(raw: unknown): SessionScope {
  const row = ScopeRow.parse(raw);
  if (row.scope_kind === "operator") return { kind: "operator" };
  const userId = row.user_id ?? "";
  const userName = row.user_name ?? "";
  if (row.scope_kind === "location") {
    const locationId = z.string().min(1).parse(row.scope_location_id);
    return { kind: "location", locationId, companyId: row.scope_company_id ?? "", userId, userName };
  }
  const companyId = z.string().min(1).parse(row.scope_company_id);
  return { kind: "agency", companyId, activeLocation: row.scope_location_id, userId, userName };
}

/** Records a new session (and prunes expired ones); without `scope` it is an operator session. */
export async function insertConsoleSession(
  db: D1Database,
  sessionId: string,
  expiresAt: number,
  now: number = Date.now(),
  scope: SessionScope = { kind: "operator" },
): Promise<void> {
  const location = scope.kind === "location" ? scope.locationId : scope.kind === "agency" ? scope.activeLocation : null;
  const company = scope.kind === "operator" ? null : scope.companyId;
  const user = scope.kind === "operator" ? [null, null] : [scope.userId, scope.userName.slice(0, 200)];
  await db.batch([
    db
      .prepare(
        "DELETE FROM console_sessions WHERE id_hash IN " +
          "(SELECT id_hash FROM console_sessions WHERE expires_at <= ? LIMIT ?)",
      )
      .bind(now, PRUNE_BATCH),
    db
      .prepare(
        "INSERT INTO console_sessions (id_hash, created_at, expires_at, scope_kind, scope_location_id, " +
          "scope_company_id, user_id, user_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .bind(await idHash(sessionId), now, expiresAt, scope.kind, location, company, ...user),
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

/** The scope of the session when it exists server-side and has not expired, else null. */
export async function consoleSessionScope(
  db: D1Database,
  sessionId: string,
  now = Date.now(),
): Promise<SessionScope | null> {
  const row = await db
    .prepare(
      "SELECT scope_kind, scope_location_id, scope_company_id, user_id, user_name FROM console_sessions " +
        "WHERE id_hash = ? AND expires_at > ?",
    )
    .bind(await idHash(sessionId), now)
    .first();
  return row === null ? null : scopeOf(row);
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
