/**
 * Both Workers' routes in one application: what the Workers-runtime tests call (`createApp()`, and
 * test/worker/entry.ts as their `exports.default`). Deployed, the routes run in two Workers
 * (src/index.ts and src/console.ts) with the same middleware and error mapper (src/http/app-base.ts).
 */
import type { Hono } from "hono";
import { buildApp } from "./app-base.ts";
import { mountConsoleRoutes } from "./console-routes.ts";
import type { AppEnv } from "./context.ts";
import { mountSyncRoutes } from "./sync-routes.ts";

/** Every route of both Workers. */
export function createApp(): Hono<AppEnv> {
  return buildApp((app) => {
    mountSyncRoutes(app);
    mountConsoleRoutes(app);
  });
}
