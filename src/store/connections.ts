/**
 * D1 `connections`: HighLevel token holders (sub-accounts and agencies). Token columns hold
 * ciphertexts only (src/lib/crypto.ts); the per-location Durable Object (src/gate/) is their only
 * writer after install. `connectionSummary` is the token-free view for APIs and logs.
 */
import * as z from "zod";
import { forgetConfig } from "./config-cache.ts";

/** Connection lifecycle: `needs_reconnect` = refresh token rejected (user must reinstall). */
export type ConnectionStatus = "active" | "needs_reconnect" | "backoff" | "uninstalled";

const RowSchema = z.object({
  id: z.string(),
  kind: z.enum(["location", "company"]),
  location_id: z.string().nullable(),
  company_id: z.string().nullable(),
  token_source: z.enum(["refresh", "agency"]),
  account_id: z.string().nullable(),
  status: z.enum(["active", "needs_reconnect", "backoff", "uninstalled"]),
  scopes: z.string(),
  access_token_enc: z.string().nullable(),
  refresh_token_enc: z.string().nullable(),
  key_id: z.string().nullable(),
  expires_at: z.number().nullable(),
  token_version: z.number(),
  user_id: z.string().nullable(),
  app_id: z.string().nullable(),
  last_error: z.string().nullable(),
  retry_at: z.number().nullable(),
  installed_at: z.number(),
  updated_at: z.number(),
  uninstalled_at: z.number().nullable(),
  install_origin: z.enum(["console", "marketplace"]).nullable().default(null),
});

/** A connection row (token fields are ciphertexts). */
export interface Connection {
  id: string;
  kind: "location" | "company";
  locationId: string | null;
  companyId: string | null;
  tokenSource: "refresh" | "agency";
  accountId: string | null;
  status: ConnectionStatus;
  scopes: string[];
  accessTokenEnc: string | null;
  refreshTokenEnc: string | null;
  keyId: string | null;
  expiresAt: number | null;
  tokenVersion: number;
  userId: string | null;
  appId: string | null;
  lastError: string | null;
  retryAt: number | null;
  installedAt: number;
  updatedAt: number;
  uninstalledAt: number | null;
  /** Where the install started: the console (state bound to a signed-in browser) or the Marketplace (no state). */
  installOrigin: InstallOrigin | null;
}

/** Where an OAuth install started (see migrations/0012_install_origin_app_status.sql). */
export type InstallOrigin = "console" | "marketplace";

/** The connection id of a sub-account. */
export const locationConnectionId = (locationId: string) => `location:${locationId}`;
/** The connection id of an agency. */
export const companyConnectionId = (companyId: string) => `company:${companyId}`;

function toConnection(raw: unknown): Connection {
  const r = RowSchema.parse(raw);
  return {
    id: r.id,
    kind: r.kind,
    locationId: r.location_id,
    companyId: r.company_id,
    tokenSource: r.token_source,
    accountId: r.account_id,
    status: r.status,
    scopes: r.scopes.split(/\s+/).filter(Boolean),
    accessTokenEnc: r.access_token_enc,
    refreshTokenEnc: r.refresh_token_enc,
    keyId: r.key_id,
    expiresAt: r.expires_at,
    tokenVersion: r.token_version,
    userId: r.user_id,
    appId: r.app_id,
    lastError: r.last_error,
    retryAt: r.retry_at,
    installedAt: r.installed_at,
    updatedAt: r.updated_at,
    uninstalledAt: r.uninstalled_at,
    installOrigin: r.install_origin,
  };
}

/** The token-free view of a connection, safe for API answers and log lines. */
export function connectionSummary(c: Connection) {
  return {
    id: c.id,
    kind: c.kind,
    locationId: c.locationId,
    companyId: c.companyId,
    accountId: c.accountId,
    status: c.status,
    scopes: c.scopes,
    expiresAt: c.expiresAt,
    lastError: c.lastError,
    retryAt: c.retryAt,
    installedAt: c.installedAt,
    updatedAt: c.updatedAt,
  };
}

/** Reads one connection by id. */
export async function getConnection(db: D1Database, id: string): Promise<Connection | null> {
  const raw = await db.prepare("SELECT * FROM connections WHERE id = ?").bind(id).first();
  return raw === null ? null : toConnection(raw);
}

/** Lists connections (token-bearing rows; map through `connectionSummary` before showing). */
export async function listConnections(
  db: D1Database,
  filter: { status?: ConnectionStatus; companyId?: string } = {},
): Promise<Connection[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.status) {
    where.push("status = ?");
    args.push(filter.status);
  }
  if (filter.companyId) {
    where.push("company_id = ?");
    args.push(filter.companyId);
  }
  const sql = `SELECT * FROM connections${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id`;
  const { results } = await db
    .prepare(sql)
    .bind(...args)
    .all();
  return results.map(toConnection);
}

/** Ids of active or backing-off connections whose access token expires before `before` (cron). */
export async function listConnectionsExpiringBefore(
  db: D1Database,
  before: number,
  limit = 100,
): Promise<Array<{ id: string; locationId: string | null; companyId: string | null }>> {
  const { results } = await db
    .prepare(
      "SELECT id, location_id, company_id FROM connections WHERE status IN ('active', 'backoff') AND expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at LIMIT ?",
    )
    .bind(before, limit)
    .all();
  return results.map((raw) => {
    const r = z
      .object({ id: z.string(), location_id: z.string().nullable(), company_id: z.string().nullable() })
      .parse(raw);
    return { id: r.id, locationId: r.location_id, companyId: r.company_id };
  });
}

/** What an install or a refresh writes. */
export interface ConnectionTokens {
  id: string;
  kind: "location" | "company";
  locationId: string | null;
  companyId: string | null;
  tokenSource: "refresh" | "agency";
  scopes: string[];
  accessTokenEnc: string;
  refreshTokenEnc: string | null;
  keyId: string;
  expiresAt: number;
  tokenVersion: number;
  userId: string | null;
  appId: string | null;
}

/**
 * Inserts or updates a connection with fresh tokens and marks it active. A stale write (a lower
 * `token_version` than stored) changes nothing, so a late writer cannot roll tokens back.
 */
export async function saveConnectionTokens(
  db: D1Database,
  t: ConnectionTokens,
  now: number = Date.now(),
): Promise<void> {
  forgetConfig();
  await db
    .prepare(
      `INSERT INTO connections (id, kind, location_id, company_id, token_source, status, scopes, access_token_enc, refresh_token_enc, key_id, expires_at, token_version, user_id, app_id, last_error, retry_at, installed_at, updated_at, uninstalled_at)
       VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL, NULL, ?14, ?14, NULL)
       ON CONFLICT (id) DO UPDATE SET
         token_source = excluded.token_source, status = 'active', scopes = excluded.scopes,
         access_token_enc = excluded.access_token_enc, refresh_token_enc = excluded.refresh_token_enc,
         key_id = excluded.key_id, expires_at = excluded.expires_at, token_version = excluded.token_version,
         company_id = COALESCE(excluded.company_id, connections.company_id),
         user_id = COALESCE(excluded.user_id, connections.user_id), app_id = COALESCE(excluded.app_id, connections.app_id),
         last_error = NULL, retry_at = NULL, updated_at = excluded.updated_at, uninstalled_at = NULL
       WHERE excluded.token_version >= connections.token_version`,
    )
    .bind(
      t.id,
      t.kind,
      t.locationId,
      t.companyId,
      t.tokenSource,
      t.scopes.join(" "),
      t.accessTokenEnc,
      t.refreshTokenEnc,
      t.keyId,
      t.expiresAt,
      t.tokenVersion,
      t.userId,
      t.appId,
      now,
    )
    .run();
}

/** Records where the install of these connections started (the OAuth callback, after the gate stored the tokens). */
export async function setInstallOrigin(db: D1Database, ids: string[], origin: InstallOrigin): Promise<void> {
  forgetConfig();
  if (ids.length === 0) return;
  const update = db.prepare("UPDATE connections SET install_origin = ? WHERE id = ?");
  await db.batch(ids.map((id) => update.bind(origin, id)));
}

/** Sets a connection's status (with the reason and, for `backoff`, when to try again). */
export async function setConnectionStatus(
  db: D1Database,
  id: string,
  status: ConnectionStatus,
  options: { lastError?: string | null; retryAt?: number | null; now?: number } = {},
): Promise<void> {
  forgetConfig();
  const now = options.now ?? Date.now();
  await db
    .prepare(
      "UPDATE connections SET status = ?, last_error = ?, retry_at = ?, updated_at = ?, uninstalled_at = CASE WHEN ? = 'uninstalled' THEN ? ELSE uninstalled_at END WHERE id = ?",
    )
    .bind(status, options.lastError ?? null, options.retryAt ?? null, now, status, now, id)
    .run();
}

/**
 * Retires connections on an `UNINSTALL`: the location's, or an agency's and every location it
 * minted tokens for. Token ciphertexts are wiped (they are useless after an uninstall). Returns
 * the ids retired.
 */
export async function retireConnections(
  db: D1Database,
  target: { locationId?: string | null; companyId?: string | null },
  now: number = Date.now(),
): Promise<string[]> {
  forgetConfig();
  const wipe =
    "status = 'uninstalled', access_token_enc = NULL, refresh_token_enc = NULL, expires_at = NULL, updated_at = ?, uninstalled_at = ?";
  if (target.locationId) {
    const { results } = await db
      .prepare(`UPDATE connections SET ${wipe} WHERE location_id = ? RETURNING id`)
      .bind(now, now, target.locationId)
      .all();
    return results.map((r) => z.object({ id: z.string() }).parse(r).id);
  }
  if (target.companyId) {
    const { results } = await db
      .prepare(
        `UPDATE connections SET ${wipe} WHERE id = ? OR (company_id = ? AND token_source = 'agency') RETURNING id`,
      )
      .bind(now, now, companyConnectionId(target.companyId), target.companyId)
      .all();
    return results.map((r) => z.object({ id: z.string() }).parse(r).id);
  }
  return [];
}

// ---------- pending agency locations (migrations/0006) ----------

const PendingRowSchema = z.object({
  location_id: z.string(),
  company_id: z.string(),
  attempts: z.number(),
  next_attempt_at: z.number(),
  last_error: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});

/** An agency-approved location whose location token is not minted yet. */
export interface PendingLocation {
  locationId: string;
  companyId: string;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
}

function toPending(raw: unknown): PendingLocation {
  const r = PendingRowSchema.parse(raw);
  return {
    locationId: r.location_id,
    companyId: r.company_id,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    createdAt: r.created_at,
  };
}

/**
 * Records approved locations to connect later (due at once). A location already pending keeps its
 * attempt count; `errors` carries why a mint failed, per location.
 */
export async function addPendingLocations(
  db: D1Database,
  companyId: string,
  locationIds: string[],
  now: number = Date.now(),
  errors: Record<string, string> = {},
): Promise<void> {
  if (locationIds.length === 0) return;
  const insert = db.prepare(
    `INSERT INTO highlevel_pending_locations (location_id, company_id, attempts, next_attempt_at, last_error, created_at, updated_at)
     VALUES (?1, ?2, 0, ?3, ?4, ?3, ?3)
     ON CONFLICT (location_id) DO UPDATE SET company_id = excluded.company_id, next_attempt_at = excluded.next_attempt_at,
       last_error = COALESCE(excluded.last_error, highlevel_pending_locations.last_error), updated_at = excluded.updated_at`,
  );
  await db.batch(locationIds.map((id) => insert.bind(id, companyId, now, errors[id] ?? null)));
}

/** Pending locations due by `now`, oldest due first (the cron's work list). */
export async function listDuePendingLocations(db: D1Database, now: number, limit: number): Promise<PendingLocation[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM highlevel_pending_locations WHERE next_attempt_at <= ? ORDER BY next_attempt_at, location_id LIMIT ?",
    )
    .bind(now, limit)
    .all();
  return results.map(toPending);
}

/** Every pending location (of one agency, when given): for the console and tests. */
export async function listPendingLocations(db: D1Database, companyId?: string): Promise<PendingLocation[]> {
  const { results } = companyId
    ? await db
        .prepare("SELECT * FROM highlevel_pending_locations WHERE company_id = ? ORDER BY location_id")
        .bind(companyId)
        .all()
    : await db.prepare("SELECT * FROM highlevel_pending_locations ORDER BY location_id").all();
  return results.map(toPending);
}

/** A failed mint: one more attempt, not before `nextAttemptAt`. */
export async function deferPendingLocation(
  db: D1Database,
  locationId: string,
  nextAttemptAt: number,
  lastError: string,
  now: number = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "UPDATE highlevel_pending_locations SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE location_id = ?",
    )
    .bind(nextAttemptAt, lastError, now, locationId)
    .run();
}

/** The location is connected (or no longer wanted): drops its pending row. */
export async function removePendingLocation(db: D1Database, locationId: string): Promise<void> {
  await db.prepare("DELETE FROM highlevel_pending_locations WHERE location_id = ?").bind(locationId).run();
}

/** An agency was uninstalled: drops its pending locations; returns how many. */
export async function removePendingLocationsOf(db: D1Database, companyId: string): Promise<number> {
  const result = await db.prepare("DELETE FROM highlevel_pending_locations WHERE company_id = ?").bind(companyId).run();
  return result.meta.changes;
}
