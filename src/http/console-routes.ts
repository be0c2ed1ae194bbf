/**
 * The console Worker's routes: the admin JSON API (`/api/*`, CSV import and export included), the
 * operator console (`/console`) and HighLevel's Custom Page (`/embed`). Only people and scripts
 * call these, so they live apart from the webhook and queue path (docs/architecture.md "Two Workers").
 */
import type { Hono } from "hono";
import { guardApi } from "./app-base.ts";
import { accounts } from "./accounts.ts";
import { automationsApi } from "./automations.ts";
import { consoleApp } from "./console/app.tsx";
import type { AppEnv } from "./context.ts";
import { csv } from "./csv.ts";
import { embedApp } from "./embed.tsx";
import { deepHealth } from "./health.ts";
import { highlevelUsage } from "./highlevel-usage.ts";
import { matchingApi } from "./matching.ts";
import { notificationsApi } from "./notifications.ts";
import { syncAdmin } from "./sync-admin.ts";

/** Mounts the console Worker's routes: the prefixes of CONSOLE_PREFIXES (src/http/console-forward.ts). */
export function mountConsoleRoutes(app: Hono<AppEnv>): void {
  guardApi(app, "/api/*");
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
}
