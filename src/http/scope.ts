/**
 * Per-location roles: which accounts a request may see and change. Every authenticated request
 * carries a `SessionScope` in `c.var.scope` (set by src/http/admin-auth.ts for `/api` and by
 * src/http/console/auth.ts for the console):
 *
 * - `operator` (ADMIN_TOKEN, Cloudflare Access): every account.
 * - `location` (a HighLevel user inside a sub-account): the accounts attached to that location.
 * - `agency` (a HighLevel agency admin): the accounts whose every location belongs to that agency
 *   (its HighLevel connections carry the agency's `companyId`).
 *
 * The set is computed per request from D1, so attaching or detaching a location takes effect at once.
 */
import type { Context, MiddlewareHandler } from "hono";
import { AppError } from "../lib/errors.ts";
import { listAccounts, type Account } from "../store/accounts.ts";
import type { SessionScope } from "../store/console-auth.ts";
import { listConnections } from "../store/connections.ts";
import type { AppEnv } from "./context.ts";

export type { SessionScope } from "../store/console-auth.ts";

/** The operator scope (everything). */
export const OPERATOR: SessionScope = { kind: "operator" };

/** The request's scope; a route reached without authentication is a wiring bug, never "everything". */
export function requestScope(c: Context<AppEnv>): SessionScope {
  const scope = c.var.scope;
  if (!scope) throw new AppError("internal", "no session scope on this request (authentication not mounted)");
  return scope;
}

/** Short text naming a scope, for logs and page banners (no email). */
export function describeScope(scope: SessionScope): string {
  if (scope.kind === "operator") return "operator";
  if (scope.kind === "location")
    return `HighLevel user ${scope.userName || scope.userId} in location ${scope.locationId}`;
  return `HighLevel agency admin ${scope.userName || scope.userId} of agency ${scope.companyId}`;
}

/** The accounts `scope` may see, in `listAccounts` order. */
export async function visibleAccounts(db: D1Database, scope: SessionScope): Promise<Account[]> {
  const accounts = await listAccounts(db);
  if (scope.kind === "operator") return accounts;
  if (scope.kind === "location") return accounts.filter((a) => a.locations.includes(scope.locationId));
  const agencyLocations = new Set(
    (await listConnections(db, { companyId: scope.companyId })).flatMap((c) => (c.locationId ? [c.locationId] : [])),
  );
  return accounts.filter((a) => a.locations.length > 0 && a.locations.every((l) => agencyLocations.has(l)));
}

/** Throws 403 unless `scope` may see account `accountId` (an unknown id is refused the same way). */
export async function requireVisibleAccount(db: D1Database, scope: SessionScope, accountId: string): Promise<void> {
  if (scope.kind === "operator") return;
  if ((await visibleAccounts(db, scope)).some((a) => a.id === accountId)) return;
  throw new AppError("forbidden", `account ${accountId.slice(0, 100)} is outside this session's scope`);
}

const ACCOUNT_PATH = /^\/api\/accounts\/([^/]+)(\/.*)?$/;

/**
 * `/api` rules for scoped sessions (mounted after `adminAuth`): only `GET /api/accounts` (which lists
 * the visible accounts) and the routes of a visible account (`/api/accounts/{id}/…`), and never
 * deleting an account; everything else is the operator's (403).
 */
export function apiScopeGuard(): MiddlewareHandler<AppEnv> {
  return async function apiScopeGuardMiddleware(c, next) {
    const scope = requestScope(c);
    if (scope.kind === "operator") return next();
    if (c.req.path === "/api/accounts" && c.req.method === "GET") return next();
    const match = ACCOUNT_PATH.exec(c.req.path);
    if (!match) throw new AppError("forbidden", `${c.req.method} ${c.req.path} is for the operator only`);
    let accountId: string;
    try {
      accountId = decodeURIComponent(match[1] ?? "");
    } catch {
      throw new AppError("bad_request", "account id: not a valid URL component");
    }
    if (c.req.method === "DELETE" && !match[2])
      throw new AppError("forbidden", "deleting an account is for the operator only");
    await requireVisibleAccount(c.env.DB, scope, accountId);
    return next();
  };
}
