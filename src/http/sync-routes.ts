/**
 * The sync Worker's own routes: health, both systems' webhooks, HighLevel's OAuth install, and the
 * D1 meter (it reads this isolate's counters, so it must be served where the sync work runs).
 * Everything else a person or a script calls lives in the console Worker (src/http/console-routes.ts).
 */
import type { Hono } from "hono";
import { setConfigCacheTtl } from "../store/config-cache.ts";
import { guardApi } from "./app-base.ts";
import type { AppEnv } from "./context.ts";
import { d1Meter } from "./d1-meter.ts";
import { health } from "./health.ts";
import { oauth } from "./oauth.ts";
import { fourDegreesWebhooks } from "./webhooks-fourdegrees.ts";
import { highlevelWebhooks } from "./webhooks-highlevel.ts";

/** The sync Worker's paths under `/api` (the rest of `/api` is the console Worker's). */
export const SYNC_API_PATHS = ["/api/debug/d1-meter"] as const;

/** Mounts the sync Worker's routes. */
export function mountSyncRoutes(app: Hono<AppEnv>): void {
  // The sync Worker's requests cache configuration as its queue and cron invocations do: the 4Degrees
  // ingress's secret read then fills the account's entries for the job that follows in this isolate.
  app.use(async function configCacheTtl(c, next) {
    setConfigCacheTtl(c.var.config.CONFIG_CACHE_SECONDS * 1000);
    await next();
  });
  app.route("/", health);
  app.route("/", fourDegreesWebhooks);
  app.route("/", oauth);
  app.route("/", highlevelWebhooks);
  guardApi(app, "/api/debug/*");
  app.route("/api", d1Meter);
}
