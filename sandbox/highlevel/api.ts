/**
 * `/highlevel/*`: the sandbox's stand-in for https://services.leadconnectorhq.com.
 *
 * Every request goes through the same gate HighLevel's API has, in this order:
 * bearer token (401 "Invalid token: access token is invalid") → per-app-per-location rate limit
 * (the five `X-RateLimit-*` headers on every authenticated answer, 429 when over) → injected faults
 * → `Version` header (2021-07-28 or the SDK's 2023-02-21) → token class and scope (401 "The token
 * is not authorized for this scope.") → the endpoint, whose bodies are whitelist-validated
 * (422 `property foo should not exist`). Every answer carries a `traceId`.
 *
 * Endpoints and shapes: ../shared/reference/highlevel-api.md and ghl/apps/*.json.
 * The routes live in routes/, one module per resource; this module builds the gate and mounts them.
 */
import { Hono } from "hono";
import type { FaultInjector } from "../core/faults.ts";
import { sleep } from "../core/faults.ts";
import type { RateLimiter } from "../core/ratelimit.ts";
import { AUTH_CLASS_NOT_ALLOWED, GhlError, NO_LOCATION_ACCESS, REASON, SCOPE_NOT_AUTHORIZED } from "./errors.ts";
import type { AccessToken, OAuthServer } from "./oauth.ts";
import { OAuthError } from "./oauth.ts";
import { registerContactRoutes } from "./routes/contacts.ts";
import { registerLocationRoutes } from "./routes/locations.ts";
import { registerNoteRoutes } from "./routes/notes.ts";
import { registerOAuthRoutes } from "./routes/oauth.ts";
import { registerOpportunityRoutes } from "./routes/opportunities.ts";
import { registerPipelineRoutes } from "./routes/pipelines.ts";
import { registerUserRoutes } from "./routes/users.ts";
import type { Ctx, Guard, RouteDeps, Vars } from "./routes/shared.ts";
import { tokenOf } from "./routes/shared.ts";
import type { HighLevelService } from "./service.ts";

/** API versions the sandbox accepts: the spec's and the official Node SDK's default. */
export const ACCEPTED_VERSIONS = ["2021-07-28", "2023-02-21"] as const;

/** What the `/highlevel` app runs on: the sandbox's service, OAuth server, rate limiter and faults. */
export interface ApiOptions {
  service: HighLevelService;
  oauth: OAuthServer;
  limiter: RateLimiter;
  faults: FaultInjector;
  /** Read per request: whether a 429 carries `Retry-After` (unconfirmed for HighLevel; default on). */
  retryAfter: () => boolean;
}

/** HighLevel's (Express's) 404 for a path no route answers, with the request's `traceId`. */
function notFound(c: Ctx): Response {
  const path = new URL(c.req.url).pathname.replace(/^\/highlevel/, "");
  const body = {
    statusCode: 404,
    message: `Cannot ${c.req.method} ${path}`,
    error: "Not Found",
    traceId: c.get("traceId"),
  };
  return c.json(body, 404);
}

/** Creates the `/highlevel` Hono app. */
export function createHighLevelApi(o: ApiOptions): Hono<Vars> {
  const { service, oauth, limiter, faults } = o;
  const store = service.store;
  const app = new Hono<Vars>();

  app.use("*", async (c, next) => {
    c.set("traceId", crypto.randomUUID());
    c.set("token", null);
    await next();
  });

  app.onError((err, c) => {
    const traceId = c.get("traceId") ?? crypto.randomUUID();
    if (err instanceof OAuthError && oauth.settings.errorStyle === "oauth2")
      return c.json({ error: err.code, error_description: err.message }, err.status as 400);
    if (err instanceof GhlError) return c.json(err.body(traceId), err.status as 400);
    // A crash is a sandbox bug: say so loudly, still in HighLevel's shape.
    console.error("highlevel sandbox: unexpected error", err);
    return c.json(
      {
        statusCode: 500,
        message: `sandbox bug: ${err instanceof Error ? err.message : String(err)}`,
        error: REASON[500],
        traceId,
      },
      500,
    );
  });

  app.notFound(notFound);

  /** The gate every endpoint goes through (see the module comment for the order). */
  const guard = (g: Guard) =>
    async function highLevelGate(c: Ctx, next: () => Promise<void>): Promise<Response | void> {
      let token: AccessToken | null = null;
      if (g.auth !== "none") {
        token = oauth.authenticate(c.req.header("authorization"));
        c.set("token", token);
        const decision = limiter.take(`${token.appKey}|${token.locationId ?? token.companyId}`);
        const headers: Record<string, string> = {
          "X-RateLimit-Limit-Daily": String(decision.dailyLimit ?? ""),
          "X-RateLimit-Daily-Remaining": String(decision.dailyRemaining ?? ""),
          "X-RateLimit-Interval-Milliseconds": String(decision.intervalMs),
          "X-RateLimit-Max": String(decision.limit),
          "X-RateLimit-Remaining": String(decision.remaining),
        };
        for (const [k, v] of Object.entries(headers)) c.header(k, v);
        if (!decision.allowed) {
          if (o.retryAfter()) c.header("Retry-After", String(Math.max(1, Math.ceil(decision.resetInMs / 1000))));
          throw new GhlError(429, "Too Many Requests");
        }
      }
      const fault = faults.forRequest(c.req.method, new URL(c.req.url).pathname.replace(/^\/highlevel/, ""));
      await sleep(fault.delayMs);
      if (fault.kind === "timeout") throw new GhlError(504, "Gateway Timeout");
      if (fault.kind === "error") {
        if (fault.retryAfter !== undefined) c.header("Retry-After", String(fault.retryAfter));
        throw new GhlError(fault.status, REASON[fault.status] ?? "Injected fault");
      }
      if (g.version ?? true) {
        const version = c.req.header("version");
        if (!version) throw new GhlError(400, "Version header was not found");
        if (!(ACCEPTED_VERSIONS as readonly string[]).includes(version))
          throw new GhlError(400, `Invalid version header: ${version}`);
      }
      if (token) {
        if (g.auth !== "any" && token.userType !== g.auth) throw new GhlError(401, AUTH_CLASS_NOT_ALLOWED);
        if (g.scope && !token.scopes.includes(g.scope)) throw new GhlError(401, SCOPE_NOT_AUTHORIZED);
      }
      await next();
    };

  /** 403 unless the token is for `locationId` (a Location token) or its agency (a Company token). */
  const assertLocation = (c: Ctx, locationId: string) => {
    const t = tokenOf(c);
    const ok =
      t.userType === "Location"
        ? t.locationId === locationId
        : store.locations.get(locationId)?.companyId === t.companyId;
    if (!ok) throw new GhlError(403, NO_LOCATION_ACCESS);
  };

  const deps: RouteDeps = { service, store, oauth, guard, assertLocation };
  // Order matters where paths overlap: Hono answers with the first route registered that matches.
  registerPipelineRoutes(app, deps);
  registerOpportunityRoutes(app, deps);
  registerContactRoutes(app, deps);
  registerNoteRoutes(app, deps);
  registerUserRoutes(app, deps);
  registerLocationRoutes(app, deps);
  registerOAuthRoutes(app, deps);

  // Last: anything no route above answered (a parent app's notFound would drop the traceId).
  app.all("*", notFound);

  return app;
}
