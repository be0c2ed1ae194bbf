/**
 * Console protection: Cloudflare Access where configured (the same JWT check as `/api`), else a
 * login with ADMIN_TOKEN that sets the signed session cookie (src/http/console/session.ts), checked
 * against the server-side session on every request. A request without either is sent to the
 * login page (pages) — never served. Login attempts are throttled per client (`loginClient`).
 * A session made from HighLevel's user context (`embed_session`, src/http/embed.tsx) is accepted
 * first, in either mode, and scopes the request (src/http/scope.ts).
 */
import type { MiddlewareHandler } from "hono";
import { accessAuth, accessSettings } from "../access.ts";
import type { AppEnv } from "../context.ts";
import { AppError } from "../../lib/errors.ts";
import { OPERATOR, type SessionScope } from "../scope.ts";
import { embedSessionScope, sessionScope } from "./session.ts";

/** Console pages a scoped (HighLevel SSO) session may not open: they list every install. */
const OPERATOR_ONLY = /^\/console\/connections(\/|$)/;

function enterScoped(c: Parameters<MiddlewareHandler<AppEnv>>[0], scope: SessionScope): void {
  // Framable first, so HighLevel's iframe shows the refusal instead of a blocked frame.
  c.set("embedded", true);
  if (OPERATOR_ONLY.test(c.req.path))
    throw new AppError("forbidden", `${c.req.path} is for the operator only; this session is scoped by HighLevel`);
  c.set("scope", scope);
}

/** Only same-site console paths are accepted as the post-login destination (no open redirect). */
export function safeNext(raw: string | undefined | null): string {
  if (!raw) return "/console";
  return /^\/console(\/[A-Za-z0-9/_-]*)?(\?[A-Za-z0-9=&%_.~+-]*)?$/.test(raw) ? raw : "/console";
}

/**
 * The throttle bucket of a login attempt, from `CF-Connecting-IP` (set by Cloudflare, not by the
 * client): an IPv4 address, or an IPv6 /64 — one host usually holds a whole /64, so counting
 * single addresses would let it rotate through them. Without the header (local dev): one bucket.
 */
export function loginClient(ip: string | undefined): string {
  const raw = (ip ?? "").trim().slice(0, 64).toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(raw);
  if (mapped) return `v4:${mapped[1]}`;
  if (!raw.includes(":")) return raw ? `v4:${raw}` : "unknown";
  const [head = "", tail = ""] = raw.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const zeros = Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0");
  const groups = raw.includes("::") ? [...h, ...zeros, ...t] : h;
  return `v6:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/** Middleware guarding console pages and forms. */
export function consoleAuth(): MiddlewareHandler<AppEnv> {
  const access = accessAuth();
  return async function consoleAuthMiddleware(c, next) {
    // A session made inside HighLevel's iframe wins: the frame is that HighLevel user, whatever else is signed in.
    const embedded = await embedSessionScope(c, c.env.DB, c.var.config.ADMIN_TOKEN);
    if (embedded) {
      enterScoped(c, embedded);
      return next();
    }
    if (accessSettings(c.var.config))
      return access(c, async () => {
        c.set("scope", OPERATOR);
        await next();
      });
    const scope = await sessionScope(c, c.env.DB, c.var.config.ADMIN_TOKEN);
    if (scope) {
      if (scope.kind === "operator") c.set("scope", scope);
      else enterScoped(c, scope);
      return next();
    }
    if (c.req.method !== "GET") return c.text("Sign in first: /console/login", 401);
    // Inside HighLevel's iframe (an embedded session that ended): sign in again through HighLevel.
    if (c.req.header("sec-fetch-dest") === "iframe" && c.var.config.HIGHLEVEL_SSO_KEY) return c.redirect("/embed", 303);
    const url = new URL(c.req.url);
    return c.redirect(`/console/login?next=${encodeURIComponent(safeNext(url.pathname + url.search))}`, 303);
  };
}
