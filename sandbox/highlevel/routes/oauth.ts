/**
 * `/oauth/*` (ghl/apps/oauth.json): the token endpoint, agency → location tokens, and
 * the agency's installed locations.
 */
import type { Hono } from "hono";
import { GhlError, unprocessable } from "../errors.ts";
import { OAuthError } from "../oauth.ts";
import { checkQuery, intParam, send, tokenOf } from "./shared.ts";
import type { RouteDeps, Vars } from "./shared.ts";

/** Registers the OAuth routes. */
export function registerOAuthRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { store, oauth, guard } = d;

  app.post("/oauth/token", guard({ auth: "none", version: false }), async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      oauth.counters.token++;
      oauth.counters.failed++;
      throw new OAuthError(
        400,
        "invalid_request",
        "Invalid request: content must be application/x-www-form-urlencoded",
      );
    }
    const form = Object.fromEntries(new URLSearchParams(await c.req.text()));
    return c.json(oauth.token(form));
  });

  app.post("/oauth/locationToken", guard({ auth: "Company", scope: "oauth.write" }), async (c) => {
    const type = c.req.header("content-type") ?? "";
    const form = type.toLowerCase().startsWith("application/x-www-form-urlencoded")
      ? Object.fromEntries(new URLSearchParams(await c.req.text()))
      : {};
    return send(c, oauth.locationToken(tokenOf(c), form));
  });

  app.get("/oauth/installedLocations", guard({ auth: "Company", scope: "oauth.readonly" }), (c) => {
    const q = checkQuery(c, [
      "skip",
      "limit",
      "query",
      "isInstalled",
      "companyId",
      "appId",
      "versionId",
      "onTrial",
      "planId",
      "locationId",
    ]);
    const missing = (["companyId", "appId"] as const).filter((k) => !q[k]).map((k) => `${k} should not be empty`);
    if (missing.length > 0) throw unprocessable(missing);
    const t = tokenOf(c);
    if (q.companyId !== t.companyId) throw new GhlError(403, "The token does not have access to this company.");
    const company = store.companies.get(t.companyId)!;
    let rows = oauth.installedLocations(
      company,
      [...store.locations.values()].filter((l) => l.companyId === company.id),
    );
    if (q.isInstalled !== undefined) rows = rows.filter((r) => r.isInstalled === (q.isInstalled === "true"));
    if (q.locationId) rows = rows.filter((r) => r._id === q.locationId);
    if (q.query) rows = rows.filter((r) => String(r.name).toLowerCase().includes(q.query!.toLowerCase()));
    const skip = intParam(q, "skip", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(q, "limit", 20, 1, 100);
    return send(c, { locations: rows.slice(skip, skip + limit), count: rows.length, installToFutureLocations: false });
  });
}
