/**
 * `/marketplace/*`: the sandbox's stand-in for https://marketplace.gohighlevel.com — the app's
 * authorization page `GET /v2/oauth/chooselocation?response_type=code&client_id=…&redirect_uri=…&scope=…&state=…`
 * (ghl/oauth-docs/Authorization.md). It renders a small real page: pick a sub-account (or the
 * whole agency), then Approve (redirect to `redirect_uri?code=…&state=…`) or Deny
 * (`redirect_uri?error=access_denied&state=…`). A bad client id or redirect URI gets an error page
 * and never a redirect (an open redirector would be a security bug).
 */
import { Hono } from "hono";
import { html, raw } from "hono/html";
import type { IdSource, HighLevelStore } from "./store.ts";
import type { OAuthServer } from "./oauth.ts";

interface Pending {
  redirectUri: string;
  scopes: string[];
  state: string | null;
  expiresAt: number;
}

const PAGE_STYLE = raw(`<style>
  body{font-family:system-ui,sans-serif;background:#f4f6fa;margin:0;padding:40px;color:#1f2937}
  main{max-width:520px;margin:auto;background:#fff;border-radius:10px;padding:28px;box-shadow:0 2px 10px #0001}
  h1{font-size:20px;margin-top:0} .scopes{font-size:13px;color:#4b5563} label{display:block;padding:8px;border:1px solid #e5e7eb;border-radius:6px;margin:6px 0;cursor:pointer}
  .actions{display:flex;gap:12px;margin-top:18px} button{padding:10px 18px;border-radius:6px;border:0;font-size:15px;cursor:pointer}
  .approve{background:#155eef;color:#fff} .deny{background:#e5e7eb} .error{color:#b42318}
</style>`);

/** Creates the marketplace app (OAuth pages). */
export function createMarketplace(options: {
  oauth: OAuthServer;
  store: HighLevelStore;
  ids: () => IdSource;
  now: () => number;
}): Hono {
  const { oauth, store } = options;
  const pending = new Map<string, Pending>();
  const app = new Hono();

  const errorPage = (title: string, detail: string) =>
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>HighLevel sandbox — ${title}</title>${PAGE_STYLE}</head>
<body><main><h1 class="error">${title}</h1><p>${detail}</p><p class="scopes">HighLevel sandbox · marketplace</p></main></body></html>`;

  app.get("/v2/oauth/chooselocation", (c) => {
    const q = c.req.query();
    if (!q.client_id || q.client_id !== oauth.app.clientId)
      return c.html(errorPage("Invalid client", "No Marketplace app has this client_id."), 400);
    if (!q.redirect_uri || !oauth.redirectAllowed(q.redirect_uri))
      return c.html(errorPage("Invalid redirect URI", "The redirect_uri is not one of this app's redirect URLs."), 400);
    if (q.response_type !== "code") return c.html(errorPage("Invalid request", "response_type must be code."), 400);
    const scopes = (q.scope ?? "").split(/\s+/).filter(Boolean);
    const bad = scopes.filter((s) => !/^[a-z][a-zA-Z0-9/._-]*\.(readonly|write|read)$/.test(s));
    if (scopes.length === 0 || bad.length > 0)
      return c.html(
        errorPage(
          "Invalid scope",
          bad.length > 0 ? `Unknown scope: ${bad.join(", ")}` : "The scope parameter is required.",
        ),
        400,
      );
    const requestId = options.ids().hex(32);
    pending.set(requestId, {
      redirectUri: q.redirect_uri,
      scopes,
      state: q.state ?? null,
      expiresAt: options.now() + 30 * 60_000,
    });
    const locations = [...store.locations.values()];
    const companies = [...store.companies.values()];
    return c.html(html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>HighLevel sandbox — Choose account</title>${PAGE_STYLE}</head>
<body><main>
<h1>Install the app</h1>
<p>Choose the sub-account the app may access.</p>
<p class="scopes">Requested access: ${scopes.join(", ")}</p>
<form method="post" action="chooselocation">
<input type="hidden" name="request_id" value="${requestId}">
${locations.length === 0 ? html`<p class="error">This sandbox has no locations yet: seed it (POST /_sandbox/highlevel/seed).</p>` : ""}
${locations.map((l, i) => html`<label><input type="radio" name="location" value="location:${l.id}" ${i === 0 ? "checked" : ""}> ${l.name} <small>(${l.id})</small></label>`)}
${companies.map((co) => html`<label><input type="radio" name="location" value="company:${co.id}"> Agency: ${co.name} — all sub-accounts <small>(${co.id})</small></label>`)}
<div class="actions">
<button class="approve" type="submit" name="decision" value="approve" ${locations.length === 0 ? "disabled" : ""}>Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</div>
</form>
</main></body></html>`);
  });

  app.post("/v2/oauth/chooselocation", async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.startsWith("application/x-www-form-urlencoded") && !type.startsWith("multipart/form-data"))
      return c.html(errorPage("Invalid request", "Submit the form."), 400);
    const form = await c.req.parseBody();
    const requestId = typeof form.request_id === "string" ? form.request_id : "";
    const p = pending.get(requestId);
    if (!p || p.expiresAt <= options.now())
      return c.html(errorPage("Request expired", "Start the installation again from the app."), 400);
    pending.delete(requestId);
    const target = new URL(p.redirectUri);
    if (form.decision !== "approve") {
      target.searchParams.set("error", "access_denied");
      if (p.state !== null) target.searchParams.set("state", p.state);
      return c.redirect(target.toString(), 302);
    }
    const choice = typeof form.location === "string" ? form.location : "";
    const [kind, id] = choice.split(":");
    let companyId: string | undefined;
    let locationId: string | null = null;
    if (kind === "location" && id && store.locations.has(id)) {
      locationId = id;
      companyId = store.locations.get(id)!.companyId;
    } else if (kind === "company" && id && store.companies.has(id)) {
      companyId = id;
    }
    if (!companyId) return c.html(errorPage("Choose an account", "Pick a sub-account or the agency."), 400);
    const code = oauth.authorize({ companyId, locationId, scopes: p.scopes, redirectUri: p.redirectUri });
    target.searchParams.set("code", code);
    if (p.state !== null) target.searchParams.set("state", p.state);
    return c.redirect(target.toString(), 302);
  });

  return app;
}
