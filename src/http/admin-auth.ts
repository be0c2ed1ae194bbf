/**
 * Protection of every `/api` route (and, through `consoleAuth` in src/http/console/auth.ts, of the
 * console). Two modes, chosen by configuration:
 *
 * - **Cloudflare Access** (`CF_ACCESS_TEAM_DOMAIN` and `CF_ACCESS_AUD` set): the request must carry
 *   a valid `Cf-Access-Jwt-Assertion` (RS256, the team's keys, audience, issuer, expiry — see
 *   src/http/access.ts). A bearer token is not accepted then: Access is the only door.
 * - **ADMIN_TOKEN** (Access not set up): `Authorization: Bearer <ADMIN_TOKEN>` compared in constant
 *   time, through Hono's `bearerAuth`.
 *
 * Callers keep mounting `adminAuth()` unchanged.
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { timingSafeEqualStrings } from "../lib/crypto.ts";
import { accessAuth, accessSettings } from "./access.ts";
import type { AppEnv } from "./context.ts";

/** Options of `adminAuth` (the realm shows in `WWW-Authenticate`). */
export interface AdminAuthOptions {
  realm?: string;
}

/**
 * Middleware refusing (401) any request without valid admin credentials: an Access JWT where
 * Access is configured, else `Authorization: Bearer <ADMIN_TOKEN>`.
 */
export function adminAuth(options: AdminAuthOptions = {}): MiddlewareHandler<AppEnv> {
  const bearer = bearerAuth<AppEnv>({
    realm: options.realm ?? "fourdegrees-ghl-sync admin",
    verifyToken: (token, c) => timingSafeEqualStrings(token, c.var.config.ADMIN_TOKEN),
  });
  const access = accessAuth();
  return async function adminAuthMiddleware(c, next) {
    if (accessSettings(c.var.config)) return access(c, next);
    return bearer(c, next);
  };
}
