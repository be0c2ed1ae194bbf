/**
 * The Hono application both Workers share: middleware, the error mapper, the guard of `/api`, and a
 * place for each Worker's routes (src/http/sync-routes.ts, src/http/console-routes.ts).
 * Only `AppError`s become structured answers; anything else is logged with its stack and
 * answered with a generic 500 that carries the request id.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { HTTPException } from "hono/http-exception";
import { loadConfig } from "../config.ts";
import { AppError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import type { AppEnv } from "./context.ts";
import { adminAuth } from "./admin-auth.ts";
import { apiGuard } from "./api-guard.ts";
import { embedFraming } from "./embed-framing.ts";
import { consoleErrorPage, wantsConsolePage } from "./error-page.ts";
import { apiScopeGuard } from "./scope.ts";

/** Adds one Worker's routes to the shared application. */
export type Mount = (app: Hono<AppEnv>) => void;

/**
 * The application with `mount`'s routes. `ahead` runs right after the request id is set, before any
 * other middleware: the sync Worker hands the console's paths to the console Worker there, so they
 * get that Worker's headers and checks only once.
 */
export function buildApp(mount: Mount, ahead?: MiddlewareHandler<AppEnv>): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(requestId({ headerName: "X-Request-Id" }));
  if (ahead) app.use(ahead);
  // Outside secureHeaders: lets HighLevel frame embedded responses (src/http/embed-framing.ts).
  app.use(embedFraming());
  app.use(secureHeaders());
  app.use(async function configAndLogger(c, next) {
    const config = loadConfig(c.env);
    c.set("config", config);
    c.set("log", createLogger(config.LOG_LEVEL, { request_id: c.var.requestId }));
    await next();
  });

  mount(app);

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

/**
 * The admin JSON API's guard on `path` (`/api/*`, or the part of it a Worker serves): Origin check
 * where a cookie authenticates, JSON only with a body limit (the CSV import keeps its own types and
 * limit), then adminAuth; an embedded (HighLevel SSO) session reaches only its own accounts' routes
 * (src/http/scope.ts).
 */
export function guardApi(app: Hono<AppEnv>, path: string): void {
  app.use(path, apiGuard({ rawBodyRoutes: ["POST /api/import/4degrees"] }));
  app.use(path, adminAuth());
  app.use(path, apiScopeGuard());
}
