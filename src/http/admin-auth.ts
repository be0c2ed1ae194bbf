/**
 * Protection of every `/api` route. Today: a bearer `ADMIN_TOKEN` (secret, ≥ 16 characters)
 * compared in constant time, through Hono's `bearerAuth`. The operator-console work extends this
 * factory with Cloudflare Access (`Cf-Access-Jwt-Assertion` against the team's keys and audience)
 * for deployments where Access is set up; callers keep mounting `adminAuth()` unchanged.
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { timingSafeEqualStrings } from "../lib/crypto.ts";
import type { AppEnv } from "./context.ts";

/** Options of `adminAuth` (none needed today; the realm shows in `WWW-Authenticate`). */
export interface AdminAuthOptions {
  realm?: string;
}

/** Middleware refusing (401) any request without `Authorization: Bearer <ADMIN_TOKEN>`. */
export function adminAuth(options: AdminAuthOptions = {}): MiddlewareHandler<AppEnv> {
  const bearer = bearerAuth<AppEnv>({
    realm: options.realm ?? "fourdegrees-ghl-sync admin",
    verifyToken: (token, c) => timingSafeEqualStrings(token, c.var.config.ADMIN_TOKEN),
  });
  return async function adminAuthMiddleware(c, next) {
    return bearer(c, next);
  };
}
