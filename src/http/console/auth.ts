/**
 * Console protection: Cloudflare Access where configured (the same JWT check as `/api`), else a
 * login with ADMIN_TOKEN that sets the signed session cookie (src/http/console/session.ts). A request
 * without either is sent to the login page (pages) — never served.
 */
import type { MiddlewareHandler } from "hono";
import { accessAuth, accessSettings } from "../access.ts";
import type { AppEnv } from "../context.ts";
import { readSession, verifySessionValue } from "./session.ts";

/** Only same-site console paths are accepted as the post-login destination (no open redirect). */
export function safeNext(raw: string | undefined | null): string {
  if (!raw) return "/console";
  return /^\/console(\/[A-Za-z0-9/_-]*)?(\?[A-Za-z0-9=&%_.~+-]*)?$/.test(raw) ? raw : "/console";
}

/** Middleware guarding console pages and forms. */
export function consoleAuth(): MiddlewareHandler<AppEnv> {
  const access = accessAuth();
  return async function consoleAuthMiddleware(c, next) {
    if (accessSettings(c.var.config)) return access(c, next);
    if (await verifySessionValue(c.var.config.ADMIN_TOKEN, readSession(c))) return next();
    if (c.req.method !== "GET") return c.text("Sign in first: /console/login", 401);
    const url = new URL(c.req.url);
    return c.redirect(`/console/login?next=${encodeURIComponent(safeNext(url.pathname + url.search))}`, 303);
  };
}
