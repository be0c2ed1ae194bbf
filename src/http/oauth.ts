/**
 * OAuth install: `GET /oauth/install` (operators only: the console session, Cloudflare Access, or
 * the admin bearer token) redirects to HighLevel's chooselocation page with a single-use `state`
 * and binds it to this browser with a cookie holding the state's SHA-256; `GET /oauth/callback`
 * checks both, exchanges the code and stores the connection. Failures (denied consent, bad or
 * reused code, a state from another browser, 422) answer a plain page and a log line — never a
 * stack trace, never a token.
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { consoleAuth, safeNext } from "./console/auth.ts";
import { isLocalPlainHttp } from "./console/session.ts";
import { HighLevelError } from "../highlevel/errors.ts";
import { installFromGrant, type InstallOutcome } from "../highlevel/install.ts";
import { authorizeUrl, exchangeInstallCode } from "../highlevel/oauth.ts";
import { bytesToBase64, timingSafeEqualStrings } from "../lib/crypto.ts";
import { companyConnectionId, locationConnectionId, setInstallOrigin } from "../store/connections.ts";
import type { InstallOrigin } from "../store/connections.ts";
import { clearAppCondition, HIGHLEVEL_CLIENT_REJECTED } from "../store/app-status.ts";
import { consumeOAuthState, createOAuthState, OAUTH_STATE_TTL_MS } from "../store/oauth-state.ts";
import { accessSettings } from "./access.ts";
import { adminAuth } from "./admin-auth.ts";
import type { AppEnv } from "./context.ts";

/**
 * The cookie binding a `state` to the browser that started the install. SameSite=Lax, because the
 * callback is a top-level navigation from HighLevel's site; `__Host-` and Secure except on plain
 * http from loopback (wrangler dev), as the console session cookie does (src/http/console/session.ts).
 */
const STATE_COOKIE = "oauth_state";
/** The console page an install started from wants the browser back on (`/oauth/install?next=`). */
const NEXT_COOKIE = "oauth_next";

/** base64url(SHA-256(state)): what the browser holds, so the cookie alone cannot be replayed as a state. */
async function stateHash(state: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(state));
  return bytesToBase64(new Uint8Array(digest)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const cookieOptions = (c: Context<AppEnv>) => {
  const secure = !isLocalPlainHttp(c.req.url);
  const prefix = secure ? { prefix: "host" as const } : {};
  return { path: "/", httpOnly: true, secure, sameSite: "Lax" as const, ...prefix };
};

/** Operators only: Access where configured; else the admin bearer token (scripts) or the console session (browsers). */
function installAuth(): MiddlewareHandler<AppEnv> {
  const bearer = adminAuth();
  const session = consoleAuth();
  return async function installAuthMiddleware(c, next) {
    if (!accessSettings(c.var.config) && c.req.header("authorization") !== undefined) return bearer(c, next);
    return session(c, next);
  };
}

/** The connection ids an install stored (the agency's too), for recording where it started. */
function installedIds(outcome: InstallOutcome): string[] {
  const ids = outcome.locations.map(locationConnectionId);
  if (outcome.userType === "Company" && outcome.companyId) ids.push(companyConnectionId(outcome.companyId));
  return ids;
}

function page(c: Context<AppEnv>, status: ContentfulStatusCode, title: string, body: string) {
  return c.html(
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><main><h1>${title}</h1><p>${body}</p><p><small>Request id: ${c.var.requestId}</small></p></main></body></html>`,
    status,
  );
}

export const oauth = new Hono<AppEnv>()
  .get("/oauth/install", installAuth(), async (c) => {
    const state = await createOAuthState(c.env.DB);
    setCookie(c, STATE_COOKIE, await stateHash(state), { ...cookieOptions(c), maxAge: OAUTH_STATE_TTL_MS / 1000 });
    // Where the console wants the browser back (the guided setup); only console paths are kept.
    const next = c.req.query("next");
    if (next && safeNext(next) === next)
      setCookie(c, NEXT_COOKIE, next, { ...cookieOptions(c), maxAge: OAUTH_STATE_TTL_MS / 1000 });
    c.var.log.info({ event: "oauth.install_started", outcome: "ok" });
    return c.redirect(authorizeUrl(c.var.config, state), 302);
  })
  .get("/oauth/callback", async (c) => {
    const log = c.var.log.child({ direction: "inbound", provider: "highlevel" });
    const { code, state, error, error_description: errorDescription } = c.req.query();
    const opts = cookieOptions(c);
    const bound = opts.prefix ? getCookie(c, STATE_COOKIE, "host") : getCookie(c, STATE_COOKIE);
    // The binding is single-use like the state: gone whatever this callback's outcome.
    if (bound !== undefined) deleteCookie(c, STATE_COOKIE, opts);
    const next = opts.prefix ? getCookie(c, NEXT_COOKIE, "host") : getCookie(c, NEXT_COOKIE);
    if (next !== undefined) deleteCookie(c, NEXT_COOKIE, opts);
    if (error) {
      log.warn({ event: "oauth.denied", outcome: "rejected", reason: error });
      return page(
        c,
        400,
        "HighLevel did not connect",
        `HighLevel answered “${errorDescription ?? error}”. Start again from /oauth/install if this was a mistake.`,
      );
    }
    // HighLevel may or may not echo `state`; we always send one, so its absence means the flow
    // did not start here: an install from the Marketplace listing (accepted only when
    // HIGHLEVEL_ALLOW_STATELESS_INSTALL is on), or an unsolicited code (refused by default).
    let origin: InstallOrigin = "console";
    if (!state) {
      if (!c.var.config.HIGHLEVEL_ALLOW_STATELESS_INSTALL) {
        log.warn({ event: "oauth.rejected", outcome: "rejected", reason: "state missing" });
        return page(
          c,
          400,
          "Install link expired or invalid",
          "This callback carries no state. Start the install again from /oauth/install.",
        );
      }
      log.info({
        event: "oauth.stateless_install",
        outcome: "ok",
        reason: "no state; HIGHLEVEL_ALLOW_STATELESS_INSTALL is on",
      });
      origin = "marketplace";
    } else {
      // A callback that does carry a state is always checked, whatever the setting.
      const consumed = await consumeOAuthState(c.env.DB, state);
      if (!consumed.ok) {
        log.warn({ event: "oauth.rejected", outcome: "rejected", reason: `state ${consumed.reason}` });
        return page(
          c,
          400,
          "Install link expired or invalid",
          "This install link was already used or is older than 10 minutes. Start again from /oauth/install.",
        );
      }
      // The state was consumed above, so a callback from the wrong browser also spends it.
      const matches = bound !== undefined && timingSafeEqualStrings(bound, await stateHash(state));
      const reason = bound === undefined ? "no install cookie" : matches ? null : "install cookie does not match";
      if (reason) {
        log.warn({ event: "oauth.rejected", outcome: "rejected", reason: `state not bound to the browser: ${reason}` });
        const again = "Sign in to the console and use “Connect HighLevel” again, in the same browser.";
        const why = `This install was not started from this browser (${reason}).`;
        return page(c, 400, "Install started in another browser", `${why} ${again}`);
      }
    }
    if (!code) {
      log.warn({ event: "oauth.rejected", outcome: "rejected", reason: "code missing" });
      return page(c, 400, "HighLevel did not connect", "The callback carries no authorization code.");
    }
    try {
      const grant = await exchangeInstallCode(c.var.config, code);
      // The client credentials work: a `highlevel_client_rejected` condition is over.
      if (await clearAppCondition(c.env.DB, HIGHLEVEL_CLIENT_REJECTED)) {
        log.info({ event: "highlevel.app_recovered", outcome: "ok", reason: "code exchange accepted" });
      }
      const outcome = await installFromGrant(c.env, c.var.config, grant, log);
      await setInstallOrigin(c.env.DB, installedIds(outcome), origin);
      const pending = outcome.pending.length ? ` ${outcome.pending.length} more will connect shortly.` : "";
      const marketplace =
        origin === "marketplace"
          ? " They are not attached to any account: an operator checks and attaches them in the console (Connections)."
          : "";
      const connected = `Connected ${outcome.locations.length} location(s): ${outcome.locations.join(", ")}.`;
      if (origin === "console" && next !== undefined && safeNext(next) === next) return c.redirect(next, 303);
      return page(c, 200, "HighLevel connected", `${connected}${pending}${marketplace} You can close this window.`);
    } catch (err) {
      if (!(err instanceof HighLevelError)) throw err;
      log.warn({
        event: "oauth.exchange_failed",
        outcome: "failed",
        category: err.category,
        upstream_status: err.upstreamStatus,
        reason: err.upstreamMessage,
        trace_id: err.traceId,
      });
      const status: ContentfulStatusCode = err.retryable ? 502 : 400;
      const detail = err.retryable
        ? "HighLevel could not be reached or failed; try again in a minute."
        : `HighLevel refused the authorization (${err.upstreamMessage || err.category}). Start again from /oauth/install.`;
      return page(c, status, "HighLevel did not connect", detail);
    }
  });
