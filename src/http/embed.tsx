/**
 * The HighLevel Marketplace Custom Page (mounted at `/embed`; configure `<PUBLIC_URL>/embed` as the
 * Custom Page URL). Flow, as HighLevel documents it (docs/highlevel-sso.md):
 *
 * 1. `GET /embed`: a small page that posts `REQUEST_USER_DATA` to its parent (HighLevel), takes the
 *    `REQUEST_USER_DATA_RESPONSE` payload from a parent on a HighLevel origin, and POSTs it here.
 * 2. `POST /embed/session` `{encryptedData}`: decrypts it with `HIGHLEVEL_SSO_KEY`
 *    (src/highlevel/sso.ts), turns the user context into a scope (src/http/scope.ts) and starts a
 *    short embedded session (src/http/console/session.ts, `embed_session`).
 * 3. `GET /embed/home`: who HighLevel says you are, the accounts you may open, each one's 4Degrees key
 *    status and a form to enter the key (`PUT /api/accounts/{id}/fourdegrees`), links into the console.
 *
 * Without `HIGHLEVEL_SSO_KEY` every route answers 404 with a page saying the entry is off.
 */
import { isLive } from "./console/setup-steps.ts";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { raw } from "hono/html";
import * as z from "zod";
import { contextLocationId, decryptUserContext, type UserContext } from "../highlevel/sso.ts";
import { bytesToBase64 } from "../lib/crypto.ts";
import { AppError } from "../lib/errors.ts";
import { getConnection, locationConnectionId } from "../store/connections.ts";
import { getFourDegreesAccount } from "../store/fourdegrees-accounts.ts";
import { isSiteOrigin } from "./api-guard.ts";
import { embedSessionScope, startEmbedSession } from "./console/session.ts";
import type { AppEnv } from "./context.ts";
import { frameAncestors } from "./embed-framing.ts";
import { describeScope, visibleAccounts, type SessionScope } from "./scope.ts";
import { LocationLabel, locationNames } from "./console/names.tsx";

const SessionBody = z.object({ encryptedData: z.string().min(1).max(20_000) });

/**
 * The scope a user context grants. A sub-account user, or an agency user who is not an admin but
 * opened the page inside a sub-account, gets that location; an agency admin gets the agency. An agency
 * non-admin at agency level gets nothing: HighLevel does not say which sub-accounts they may open.
 */
export function scopeFromContext(ctx: UserContext): Exclude<SessionScope, { kind: "operator" }> {
  const user = { userId: ctx.userId, userName: ctx.userName };
  if (ctx.type === "agency" && ctx.role === "admin")
    return { kind: "agency", companyId: ctx.companyId, activeLocation: ctx.activeLocation ?? null, ...user };
  const locationId = contextLocationId(ctx);
  if (!locationId)
    throw new AppError("forbidden", "an agency user who is not an admin must open this app inside a sub-account");
  return { kind: "location", locationId, companyId: ctx.companyId, ...user };
}

function ssoKey(c: Context<AppEnv>): string {
  const key = c.var.config.HIGHLEVEL_SSO_KEY;
  if (!key) throw new AppError("not_found", "the embedded entry is off: this deployment has no HIGHLEVEL_SSO_KEY");
  return key;
}

const newNonce = () => bytesToBase64(crypto.getRandomValues(new Uint8Array(16)));

/** CSP of the embed pages: this origin's stylesheet and fetches, scripts only with the nonce. */
function csp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const Page = (p: { title: string; nonce: string; children?: unknown; script?: string; data?: unknown }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${p.title} · 4Degrees ↔ HighLevel sync`}</title>
      <link rel="stylesheet" href="/console/app.css" />
    </head>
    <body>
      <header>
        <div class="topbar">
          <strong class="brand">4Degrees ↔ HighLevel sync</strong>
        </div>
      </header>
      <main>{p.children}</main>
      {p.data !== undefined && (
        <script type="application/json" id="embed-data">
          {raw(JSON.stringify(p.data).replace(/</g, "\\u003c"))}
        </script>
      )}
      {p.script && <script nonce={p.nonce}>{raw(p.script)}</script>}
    </body>
  </html>
);

/** Asks the parent for the user context, checks who answered, hands the payload to the Worker. */
const ENTRY_SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById("embed-data").textContent);
  const status = document.getElementById("embed-status");
  const allowed = (origin) => data.ancestors.some((s) => {
    const m = /^(https?:\\/\\/)\\*\\.(.+)$/.exec(s);
    return m ? origin.startsWith(m[1]) && origin.endsWith("." + m[2]) : origin === s;
  });
  if (window.parent === window) {
    status.textContent = "Open this page from HighLevel: it is the app's Custom Page.";
    return;
  }
  window.addEventListener("message", async (event) => {
    if (event.source !== window.parent || !allowed(event.origin)) return;
    const msg = event.data;
    if (!msg || msg.message !== "REQUEST_USER_DATA_RESPONSE" || typeof msg.payload !== "string") return;
    status.textContent = "Signing in…";
    const res = await fetch("/embed/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ encryptedData: msg.payload }),
    });
    const body = await res.json().catch(() => null);
    if (res.ok && body && typeof body.next === "string") window.location.assign(body.next);
    else status.textContent = "HighLevel's sign-in was refused (" + res.status + "): " +
      ((body && body.error && body.error.message) || "no details");
  });
  window.parent.postMessage({ message: "REQUEST_USER_DATA" }, "*");
})();
`;

/** Sends the typed 4Degrees API key to the account's existing set-key route. */
const KEY_SCRIPT = `
(() => {
  for (const form of document.querySelectorAll("form.fd-key")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = form.querySelector("output");
      out.textContent = "Checking the key with 4Degrees…";
      const res = await fetch("/api/accounts/" + encodeURIComponent(form.dataset.account) + "/fourdegrees", {
        method: "PUT",
        credentials: "same-origin",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ apiKey: form.elements.apiKey.value }),
      });
      const body = await res.json().catch(() => null);
      if (res.ok) window.location.reload();
      else out.textContent = "Not saved (" + res.status + "): " + ((body && body.error && body.error.message) || "");
    });
  }
})();
`;

function off(c: Context<AppEnv>, nonce: string): Response | Promise<Response> {
  return c.html(
    <Page title="Embedded app off" nonce={nonce}>
      <h1>The HighLevel embedded page is off</h1>
      <p id="embed-off">
        This deployment has no <code>HIGHLEVEL_SSO_KEY</code>. Set it to the Marketplace app's Shared Secret with{" "}
        <code>wrangler secret put HIGHLEVEL_SSO_KEY</code> to sign HighLevel users in here.
      </p>
    </Page>,
    404,
    { "Content-Security-Policy": csp(nonce) },
  );
}

export const embedApp = new Hono<AppEnv>();

embedApp.use(async function embedded(c, next) {
  c.set("embedded", true);
  c.header("Cache-Control", "no-store");
  await next();
});

embedApp.get("/", (c) => {
  const nonce = newNonce();
  if (!c.var.config.HIGHLEVEL_SSO_KEY) return off(c, nonce);
  return c.html(
    <Page title="Connecting" nonce={nonce} script={ENTRY_SCRIPT} data={{ ancestors: frameAncestors(c.var.config) }}>
      <p id="embed-status">Asking HighLevel who you are…</p>
    </Page>,
    200,
    { "Content-Security-Policy": csp(nonce) },
  );
});

embedApp.post(
  "/session",
  bodyLimit({
    maxSize: 32 * 1024,
    onError: () => {
      throw new AppError("payload_too_large", "POST /embed/session takes a body of at most 32 KiB");
    },
  }),
  async (c) => {
    const key = ssoKey(c);
    // Only this page may start a session (no login CSRF from another site holding a captured payload).
    const origin = c.req.header("origin");
    if (!origin || !isSiteOrigin(origin, c.req.url, c.var.config.PUBLIC_URL))
      throw new AppError("forbidden", "POST /embed/session must come from this site's embed page (Origin)");
    const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json")
      throw new AppError("unsupported_media_type", "send {encryptedData} with Content-Type: application/json");
    const body = SessionBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success) throw new AppError("bad_request", "body must be {encryptedData: <HighLevel's payload>}");
    const context = await decryptUserContext(body.data.encryptedData, key);
    const scope = scopeFromContext(context);
    if (scope.kind === "location") {
      // The location's install names its agency: a context claiming another agency is refused.
      const connection = await getConnection(c.env.DB, locationConnectionId(scope.locationId));
      if (connection?.companyId && connection.companyId !== scope.companyId)
        throw new AppError("forbidden", `location ${scope.locationId} belongs to another agency`);
    }
    await startEmbedSession(c, c.env.DB, c.var.config.ADMIN_TOKEN, scope);
    c.var.log.info({ event: "embed.session", outcome: "ok", scope: scope.kind, user: scope.userId });
    return c.json({ next: "/embed/home", scope: { kind: scope.kind, describe: describeScope(scope) } });
  },
);

embedApp.get("/home", async (c) => {
  const nonce = newNonce();
  if (!c.var.config.HIGHLEVEL_SSO_KEY) return off(c, nonce);
  const scope = await embedSessionScope(c, c.env.DB, c.var.config.ADMIN_TOKEN);
  if (!scope || scope.kind === "operator") {
    // Inside HighLevel's iframe: ask HighLevel again instead of showing a dead end.
    if (c.req.header("sec-fetch-dest") === "iframe") return c.redirect("/embed", 303);
    return c.html(
      <Page title="Sign in from HighLevel" nonce={nonce}>
        <p id="embed-signed-out">
          No HighLevel session here (or it ended: they last 30 minutes). Open the app again from HighLevel.
        </p>
      </Page>,
      401,
      { "Content-Security-Policy": csp(nonce) },
    );
  }
  c.set("scope", scope);
  const accounts = await visibleAccounts(c.env.DB, scope);
  const keys = await Promise.all(accounts.map((a) => getFourDegreesAccount(c.env.DB, a.id)));
  const names = await locationNames(c, [
    ...accounts.flatMap((a) => a.locations),
    ...(scope.kind === "location" ? [scope.locationId] : []),
  ]);
  return c.html(
    <Page title="Inside HighLevel" nonce={nonce} script={KEY_SCRIPT}>
      <h1>4Degrees ↔ HighLevel sync</h1>
      <p id="embed-who">
        Signed in from HighLevel as <strong>{scope.userName || scope.userId}</strong> (
        {scope.kind === "agency" ? (
          <>
            agency admin, <span title={scope.companyId}>this agency</span>
          </>
        ) : (
          <>
            sub-account user, <LocationLabel id={scope.locationId} names={names} />
          </>
        )}
        ).
      </p>
      {accounts.length === 0 ? (
        <p id="embed-no-account">
          No sync account is attached to this {scope.kind === "agency" ? "agency's locations" : "location"} yet. The
          operator attaches an installed location to an account on the console's Connections page
          {scope.kind === "location" ? (
            <>
              , or{" "}
              <a href="/console/setup?new=1" id="embed-start-setup">
                start the guided setup
              </a>{" "}
              for this location
            </>
          ) : null}
          .
        </p>
      ) : (
        <table id="embed-accounts">
          <thead>
            <tr>
              <th>Account</th>
              <th>HighLevel locations</th>
              <th>4Degrees key</th>
              <th>Open</th>
            </tr>
          </thead>
          <tbody>
            {accounts.map((a, i) => {
              const key = keys[i] ?? null;
              const q = `?account=${encodeURIComponent(a.id)}`;
              return (
                <tr data-account={a.id}>
                  <td>
                    <span title={a.id}>{a.name}</span>
                  </td>
                  <td>
                    {a.locations.length === 0
                      ? "—"
                      : a.locations.map((id, n) => (
                          <>
                            {n > 0 && ", "}
                            <LocationLabel id={id} names={names} />
                          </>
                        ))}
                  </td>
                  <td>
                    {key ? <span>set (…{key.keyHint})</span> : <span>not set</span>}
                    <form class="fd-key" data-account={a.id}>
                      <label>
                        {key ? "Replace the key " : "Enter the workspace API key "}
                        <input type="password" name="apiKey" required minlength={8} autocomplete="off" />
                      </label>
                      <button type="submit">Save key</button>
                      <output />
                    </form>
                  </td>
                  <td>
                    {!isLive(a) && (
                      <>
                        <a href={`/console/setup${q}`} class="setup-link">
                          Guided setup (not live yet)
                        </a>{" "}
                        ·{" "}
                      </>
                    )}
                    <a href={`/console/mapping${q}`}>Mapping</a> · <a href={`/console/activity${q}`}>Activity</a> ·{" "}
                    <a href={`/console/problems${q}`}>Problems</a> · <a href={`/console/backfill${q}`}>Backfill</a>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Page>,
    200,
    { "Content-Security-Policy": csp(nonce) },
  );
});
