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
 * In both modes a request without an `Authorization` header that carries a HighLevel embedded
 * session (`embed_session`, made by `POST /embed/session`) is let through with that session's
 * scope; `apiScopeGuard` (src/http/scope.ts) then limits it to its accounts. Every other request
 * gets the operator scope.
 *
 * Callers keep mounting `adminAuth()` unchanged.
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { timingSafeEqualStrings } from "../lib/crypto.ts";
import { accessAuth, accessSettings } from "./access.ts";
import type { AppEnv } from "./context.ts";
import { embedSessionScope } from "./console/session.ts";
import { OPERATOR } from "./scope.ts";

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
  const asOperator = (c: Parameters<MiddlewareHandler<AppEnv>>[0], next: () => Promise<void>) => async () => {
    c.set("scope", OPERATOR);
    await next();
  };
  return async function adminAuthMiddleware(c, next) {
    if (c.req.header("authorization") === undefined) {
      const scope = await embedSessionScope(c, c.env.DB, c.var.config.ADMIN_TOKEN);
      if (scope) {
        c.set("scope", scope);
        c.set("embedded", true);
        return next();
      }
    }
    if (accessSettings(c.var.config)) return access(c, asOperator(c, next));
    return bearer(c, asOperator(c, next));
  };
}
