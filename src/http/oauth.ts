/**
 * OAuth install: `GET /oauth/install` redirects to HighLevel's chooselocation page with a
 * single-use `state`; `GET /oauth/callback` checks it, exchanges the code and stores the
 * connection. Failures (denied consent, bad or reused code, 422) answer a plain page and a log
 * line — never a stack trace, never a token.
 */
import { Hono, type Context } from "hono";
import { html } from "hono/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HighLevelError } from "../highlevel/errors.ts";
import { installFromGrant } from "../highlevel/install.ts";
import { authorizeUrl, exchangeInstallCode } from "../highlevel/oauth.ts";
import { consumeOAuthState, createOAuthState } from "../store/oauth-state.ts";
import type { AppEnv } from "./context.ts";

function page(c: Context<AppEnv>, status: ContentfulStatusCode, title: string, body: string) {
  return c.html(
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><main><h1>${title}</h1><p>${body}</p><p><small>Request id: ${c.var.requestId}</small></p></main></body></html>`,
    status,
  );
}

export const oauth = new Hono<AppEnv>()
  .get("/oauth/install", async (c) => {
    const state = await createOAuthState(c.env.DB);
    c.var.log.info({ event: "oauth.install_started", outcome: "ok" });
    return c.redirect(authorizeUrl(c.var.config, state), 302);
  })
  .get("/oauth/callback", async (c) => {
    const log = c.var.log.child({ direction: "inbound", provider: "highlevel" });
    const { code, state, error, error_description: errorDescription } = c.req.query();
    if (error) {
      log.warn({ event: "oauth.denied", outcome: "rejected", reason: error });
      return page(c, 400, "HighLevel did not connect", `HighLevel answered “${errorDescription ?? error}”. Start again from /oauth/install if this was a mistake.`);
    }
    // HighLevel may or may not echo `state`; we always send one, so its absence means the flow
    // did not start here: an install from the Marketplace listing (accepted only when
    // HIGHLEVEL_ALLOW_STATELESS_INSTALL is on), or an unsolicited code (refused by default).
    if (!state) {
      if (!c.var.config.HIGHLEVEL_ALLOW_STATELESS_INSTALL) {
        log.warn({ event: "oauth.rejected", outcome: "rejected", reason: "state missing" });
        return page(c, 400, "Install link expired or invalid", "This callback carries no state. Start the install again from /oauth/install.");
      }
      log.info({ event: "oauth.stateless_install", outcome: "ok", reason: "no state; HIGHLEVEL_ALLOW_STATELESS_INSTALL is on" });
    } else {
      // A callback that does carry a state is always checked, whatever the setting.
      const consumed = await consumeOAuthState(c.env.DB, state);
      if (!consumed.ok) {
        log.warn({ event: "oauth.rejected", outcome: "rejected", reason: `state ${consumed.reason}` });
        return page(c, 400, "Install link expired or invalid", "This install link was already used or is older than 10 minutes. Start again from /oauth/install.");
      }
    }
    if (!code) {
      log.warn({ event: "oauth.rejected", outcome: "rejected", reason: "code missing" });
      return page(c, 400, "HighLevel did not connect", "The callback carries no authorization code.");
    }
    try {
      const grant = await exchangeInstallCode(c.var.config, code);
      const outcome = await installFromGrant(c.env, c.var.config, grant, log);
      const pending = outcome.pending.length ? ` ${outcome.pending.length} more will connect shortly.` : "";
      return page(c, 200, "HighLevel connected", `Connected ${outcome.locations.length} location(s): ${outcome.locations.join(", ")}.${pending} You can close this window.`);
    } catch (err) {
      if (!(err instanceof HighLevelError)) throw err;
      log.warn({ event: "oauth.exchange_failed", outcome: "failed", category: err.category, upstream_status: err.upstreamStatus, reason: err.upstreamMessage, trace_id: err.traceId });
      const status: ContentfulStatusCode = err.retryable ? 502 : 400;
      const detail = err.retryable ? "HighLevel could not be reached or failed; try again in a minute." : `HighLevel refused the authorization (${err.upstreamMessage || err.category}). Start again from /oauth/install.`;
      return page(c, status, "HighLevel did not connect", detail);
    }
  });
