/**
 * D1 `connections`: HighLevel token holders (sub-accounts and agencies). Token columns hold
 * ciphertexts only (src/lib/crypto.ts); the per-location Durable Object (src/gate/) is their only
 * writer after install. `connectionSummary` is the token-free view for APIs and logs.
 */
import { z } from "zod";

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
}

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
export async function listConnections(db: D1Database, filter: { status?: ConnectionStatus; companyId?: string } = {}): Promise<Connection[]> {
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
  const { results } = await db.prepare(sql).bind(...args).all();
  return results.map(toConnection);
}

/** Ids of active or backing-off connections whose access token expires before `before` (cron). */
export async function listConnectionsExpiringBefore(db: D1Database, before: number, limit = 100): Promise<Array<{ id: string; locationId: string | null; companyId: string | null }>> {
  const { results } = await db
    .prepare("SELECT id, location_id, company_id FROM connections WHERE status IN ('active', 'backoff') AND expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at LIMIT ?")
    .bind(before, limit)
    .all();
  return results.map((raw) => {
    const r = z.object({ id: z.string(), location_id: z.string().nullable(), company_id: z.string().nullable() }).parse(raw);
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
export async function saveConnectionTokens(db: D1Database, t: ConnectionTokens, now: number = Date.now()): Promise<void> {
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
    .bind(t.id, t.kind, t.locationId, t.companyId, t.tokenSource, t.scopes.join(" "), t.accessTokenEnc, t.refreshTokenEnc, t.keyId, t.expiresAt, t.tokenVersion, t.userId, t.appId, now)
    .run();
}

/** Sets a connection's status (with the reason and, for `backoff`, when to try again). */
export async function setConnectionStatus(db: D1Database, id: string, status: ConnectionStatus, options: { lastError?: string | null; retryAt?: number | null; now?: number } = {}): Promise<void> {
  const now = options.now ?? Date.now();
  await db
    .prepare("UPDATE connections SET status = ?, last_error = ?, retry_at = ?, updated_at = ?, uninstalled_at = CASE WHEN ? = 'uninstalled' THEN ? ELSE uninstalled_at END WHERE id = ?")
    .bind(status, options.lastError ?? null, options.retryAt ?? null, now, status, now, id)
    .run();
}

/**
 * Retires connections on an `UNINSTALL`: the location's, or an agency's and every location it
 * minted tokens for. Token ciphertexts are wiped (they are useless after an uninstall). Returns
 * the ids retired.
 */
export async function retireConnections(db: D1Database, target: { locationId?: string | null; companyId?: string | null }, now: number = Date.now()): Promise<string[]> {
  const wipe = "status = 'uninstalled', access_token_enc = NULL, refresh_token_enc = NULL, expires_at = NULL, updated_at = ?, uninstalled_at = ?";
  if (target.locationId) {
    const { results } = await db.prepare(`UPDATE connections SET ${wipe} WHERE location_id = ? RETURNING id`).bind(now, now, target.locationId).all();
    return results.map((r) => z.object({ id: z.string() }).parse(r).id);
  }
  if (target.companyId) {
    const { results } = await db
      .prepare(`UPDATE connections SET ${wipe} WHERE id = ? OR (company_id = ? AND token_source = 'agency') RETURNING id`)
      .bind(now, now, companyConnectionId(target.companyId), target.companyId)
      .all();
    return results.map((r) => z.object({ id: z.string() }).parse(r).id);
  }
  return [];
}
