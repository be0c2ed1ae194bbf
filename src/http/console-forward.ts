/**
 * The sync Worker's hand-over of the console's paths (`/api`, `/console`, `/embed`) to the console
 * Worker over the `CONSOLE` service binding. The public URL stays one: the request goes on as it came
 * (method, headers, body, URL), with this request's id so both Workers' logs name the same request.
 * The console Worker has no public route of its own, so the binding is its only way in.
 */
import type { MiddlewareHandler } from "hono";
import { AppError } from "../lib/errors.ts";
import { forgetConfig } from "../store/config-cache.ts";
import { CONFIG_CHANGED_HEADER } from "./config-changed.ts";
import type { AppEnv } from "./context.ts";
import { SYNC_API_PATHS } from "./sync-routes.ts";

/** The path prefixes the console Worker serves (src/http/console-routes.ts mounts them). */
export const CONSOLE_PREFIXES = ["/api", "/console", "/embed"] as const;

/** True when `path` is the console Worker's to answer. */
export function servedByConsole(path: string): boolean {
  if ((SYNC_API_PATHS as readonly string[]).includes(path)) return false;
  return CONSOLE_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}

/**
 * Middleware: answers the console's paths with the console Worker's response, unchanged but for
 * the configuration-changed mark, which this isolate acts on (forgets its cache) and strips.
 */
export function forwardToConsole(): MiddlewareHandler<AppEnv> {
  return async function consoleForward(c, next) {
    if (!servedByConsole(new URL(c.req.url).pathname)) return next();
    const target = Reflect.get(c.env, "CONSOLE") as Fetcher | undefined;
    if (typeof target?.fetch !== "function")
      throw new AppError(
        "upstream_unavailable",
        "The console Worker is not bound (CONSOLE service binding in wrangler.toml); deploy it with `npm run deploy`",
      );
    const request = new Request(c.req.raw);
    request.headers.set("X-Request-Id", c.var.requestId);
    const response = await target.fetch(request);
    if (!response.headers.has(CONFIG_CHANGED_HEADER)) return response;
    forgetConfig();
    const unmarked = new Response(response.body, response);
    unmarked.headers.delete(CONFIG_CHANGED_HEADER);
    return unmarked;
  };
}
