/**
 * The Hono application: shared middleware, the error mapper and the feature sub-apps.
 * Only `AppError`s become structured answers; anything else is logged with its stack and
 * answered with a generic 500 that carries the request id.
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { HTTPException } from "hono/http-exception";
import { loadConfig } from "../config.ts";
import { AppError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import type { AppEnv } from "./context.ts";
import { deepHealth, health } from "./health.ts";
import { fourDegreesWebhooks } from "./webhooks-fourdegrees.ts";
import { adminAuth } from "./admin-auth.ts";
import { apiGuard } from "./api-guard.ts";
import { accounts } from "./accounts.ts";
import { notificationsApi } from "./notifications.ts";
import { automationsApi } from "./automations.ts";
import { consoleApp } from "./console/app.tsx";
import { csv } from "./csv.ts";
import { oauth } from "./oauth.ts";
import { highlevelWebhooks } from "./webhooks-highlevel.ts";
import { highlevelUsage } from "./highlevel-usage.ts";
import { syncAdmin } from "./sync-admin.ts";
import { matchingApi } from "./matching.ts";
import { d1Meter } from "./d1-meter.ts";
import { embedApp } from "./embed.tsx";
import { embedFraming } from "./embed-framing.ts";
import { consoleErrorPage, wantsConsolePage } from "./error-page.ts";
import { apiScopeGuard } from "./scope.ts";

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(requestId({ headerName: "X-Request-Id" }));
  // Outside secureHeaders: lets HighLevel frame embedded responses (src/http/embed-framing.ts).
  app.use(embedFraming());
  app.use(secureHeaders());
  app.use(async function configAndLogger(c, next) {
    const config = loadConfig(c.env);
    c.set("config", config);
    c.set("log", createLogger(config.LOG_LEVEL, { request_id: c.var.requestId }));
    await next();
  });

  app.route("/", health);
  app.route("/", fourDegreesWebhooks);
  app.route("/", oauth);
  app.route("/", highlevelWebhooks);
  // Every /api route (admin JSON API): Origin check where a cookie authenticates, JSON only with a
  // body limit (the CSV import keeps its own types and limit), then adminAuth.
  app.use("/api/*", apiGuard({ rawBodyRoutes: ["POST /api/import/4degrees"] }));
  app.use("/api/*", adminAuth());
  // An embedded (HighLevel SSO) session reaches only its own accounts' routes (src/http/scope.ts).
  app.use("/api/*", apiScopeGuard());
  app.route("/api", deepHealth);
  app.route("/api", accounts);
  app.route("/api", highlevelUsage);
  app.route("/api", syncAdmin);
  app.route("/api", notificationsApi);
  app.route("/api", automationsApi);
  app.route("/api", matchingApi);
  // The operator console: its own login/session or Access (src/http/console/auth.ts), CSRF and CSP.
  app.route("/console", consoleApp);
  // HighLevel's Custom Page: SSO from the user context into a scoped session (src/http/embed.tsx).
  app.route("/embed", embedApp);
  app.route("/api", csv);
  app.route("/api", d1Meter);

  app.notFound((c) =>
    c.json(
      {
        error: {
          code: "not_found",
          message: `No route for ${c.req.method} ${new URL(c.req.url).pathname}`,
          requestId: c.var.requestId,
        },
      },
      404,
    ),
  );

  app.onError(function errorMapper(err, c) {
    const requestId = c.var.requestId ?? "unknown";
    if (err instanceof AppError) {
      const log = c.var.log ?? createLogger("info", { request_id: requestId });
      if (err.status >= 500)
        log.error({ event: "http.error", code: err.code, message: err.message, outcome: "failed" });
      if (err.status < 500 && wantsConsolePage(c)) return consoleErrorPage(c, err, requestId);
      return c.json(
        {
          error: {
            code: err.code,
            message: err.message,
            requestId,
            ...(err.details === undefined ? {} : { details: err.details }),
          },
        },
        err.status,
        err.headers,
      );
    }
    if (err instanceof HTTPException) {
      // Hono's built-in middleware (bodyLimit, bearerAuth, csrf) raise these with a ready response.
      const res = err.getResponse();
      const code =
        res.status === 413
          ? "payload_too_large"
          : res.status === 401
            ? "unauthorized"
            : res.status === 403
              ? "forbidden"
              : "bad_request";
      return c.json(
        { error: { code, message: err.message || res.statusText || code, requestId } },
        err.status,
        Object.fromEntries(res.headers),
      );
    }
    const log = c.var.log ?? createLogger("info", { request_id: requestId });
    log.error({ event: "http.unhandled", error: err, outcome: "failed" });
    return c.json(
      { error: { code: "internal", message: "Internal error; see the Worker logs for this request id", requestId } },
      500,
    );
  });

  return app;
}
