/**
 * The HighLevel Custom Page entry: `POST /embed/session` turns HighLevel's encrypted user context
 * into a scoped session (location user → its location's account, agency admin → its agency's
 * accounts, operator → all), enforced on the console pages and on `/api`; framing only for HighLevel.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { encryptUserContext, type SsoUserContext } from "../../../sandbox/highlevel/sso.ts";
import { createApp } from "../../../src/http/app.ts";
import { scopeFromContext } from "../../../src/http/embed.tsx";
import { HIGHLEVEL_FRAME_ORIGINS, originAllowed } from "../../../src/http/embed-framing.ts";
import { createAccount } from "../../../src/store/accounts.ts";
import { locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { consoleCookie } from "../helpers/console-session.ts";

const BASE = "https://worker.test";
const KEY = TEST_BINDINGS.HIGHLEVEL_SSO_KEY;

const locationUser = (activeLocation: string, companyId = "coEmbedA"): SsoUserContext => ({
  userId: "usrPriya",
  companyId,
  role: "user",
  type: "location",
  activeLocation,
  userName: "Priya Shah",
  email: "priya@example.com",
  isAgencyOwner: false,
});
const agencyAdmin = (companyId: string): SsoUserContext => ({
  userId: "usrAlex",
  companyId,
  role: "admin",
  type: "agency",
  userName: "Alex Admin",
  email: "alex@example.com",
  isAgencyOwner: true,
});

async function connect(locationId: string, companyId: string): Promise<void> {
  await saveConnectionTokens(env.DB, {
    id: locationConnectionId(locationId),
    kind: "location",
    locationId,
    companyId,
    tokenSource: "refresh",
    scopes: [],
    accessTokenEnc: "x",
    refreshTokenEnc: "y",
    keyId: "k",
    expiresAt: Date.now() + 86_400_000,
    tokenVersion: 1,
    userId: null,
    appId: null,
  });
}

const startSession = (encryptedData: unknown, headers: Record<string, string> = {}) =>
  exports.default.fetch(`${BASE}/embed/session`, {
    method: "POST",
    headers: { origin: BASE, "content-type": "application/json", ...headers },
    body: JSON.stringify({ encryptedData }),
  });

/** Signs in as `context` and answers the embedded session's cookie header and its Set-Cookie line. */
async function embedCookie(context: SsoUserContext): Promise<{ cookie: string; setCookie: string }> {
  const res = await startSession(await encryptUserContext(context, KEY));
  expect(res.status).toBe(200);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0] ?? "", setCookie };
}

const get = (path: string, cookie: string) =>
  exports.default.fetch(`${BASE}${path}`, { redirect: "manual", headers: { cookie } });

beforeAll(async () => {
  // Agency A: two locations, each its own account. Agency B: one location, one account.
  await createAccount(env.DB, { id: "emb-a1", name: "Marlow Partners", locations: ["locEmbA1"] });
  await createAccount(env.DB, { id: "emb-a2", name: "Verdant Fund", locations: ["locEmbA2"] });
  await createAccount(env.DB, { id: "emb-b1", name: "Other Agency Co", locations: ["locEmbB1"] });
  await connect("locEmbA1", "coEmbedA");
  await connect("locEmbA2", "coEmbedA");
  await connect("locEmbB1", "coEmbedB");
});

describe("POST /embed/session", () => {
  it("happy: a good payload starts a short, scoped session with a partitioned cross-site cookie", async () => {
    const res = await startSession(await encryptUserContext(locationUser("locEmbA1"), KEY));
    expect(res.status).toBe(200);
    const body = await res.json<{ next: string; scope: { kind: string } }>();
    expect(body).toMatchObject({ next: "/embed/home", scope: { kind: "location" } });
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^__Host-embed_session=v2\.\d+\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43};/);
    for (const attr of [/; HttpOnly/, /; Secure/, /; SameSite=None/, /; Partitioned/, /; Path=\//, /Max-Age=1800/])
      expect(set).toMatch(attr);
    expect(set).not.toMatch(/Domain=/i);
  });

  it("happy: over local plain http the cookie is SameSite=Lax without Secure (same-site app shell)", async () => {
    const res = await exports.default.fetch("http://127.0.0.1:8787/embed/session", {
      method: "POST",
      headers: { origin: "http://127.0.0.1:8787", "content-type": "application/json" },
      body: JSON.stringify({ encryptedData: await encryptUserContext(locationUser("locEmbA1"), KEY) }),
    });
    expect(res.status).toBe(200);
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^embed_session=/);
    expect(set).toMatch(/SameSite=Lax/);
    expect(set).not.toMatch(/Secure|Partitioned/);
  });

  it("sad: a payload made with another secret is 401, and sets no cookie", async () => {
    const res = await startSession(await encryptUserContext(locationUser("locEmbA1"), "not-the-app-secret"));
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("sad: malformed payloads and bodies are 400; a wrong media type 415; a foreign Origin 403", async () => {
    expect((await startSession("not base64 at all!")).status).toBe(400);
    expect((await startSession(btoa("no salted header here, just text"))).status).toBe(400);
    expect((await startSession(42)).status).toBe(400);
    const payload = await encryptUserContext(locationUser("locEmbA1"), KEY);
    const text = await exports.default.fetch(`${BASE}/embed/session`, {
      method: "POST",
      headers: { origin: BASE, "content-type": "text/plain" },
      body: JSON.stringify({ encryptedData: payload }),
    });
    expect(text.status).toBe(415);
    expect((await startSession(payload, { origin: "https://evil.example" })).status).toBe(403);
    expect((await startSession("U2FsdGVkX1" + "A".repeat(40_000))).status).toBe(413);
  });

  it("sad: a location user claiming another agency than the location's install is 403", async () => {
    const res = await startSession(await encryptUserContext(locationUser("locEmbA1", "coEmbedB"), KEY));
    expect(res.status).toBe(403);
  });

  it("sad: an agency user who is not an admin, at agency level, gets no session (403)", async () => {
    const ctx = { ...agencyAdmin("coEmbedA"), role: "user" };
    expect((await startSession(await encryptUserContext(ctx, KEY))).status).toBe(403);
  });

  it("sad: without HIGHLEVEL_SSO_KEY the entry is off: /embed says so, /embed/session is 404", async () => {
    const app = createApp();
    const offEnv = { ...env, HIGHLEVEL_SSO_KEY: "" };
    const page = await app.fetch(new Request(`${BASE}/embed`), offEnv);
    expect(page.status).toBe(404);
    expect(await page.text()).toContain("HIGHLEVEL_SSO_KEY");
    const res = await app.fetch(
      new Request(`${BASE}/embed/session`, {
        method: "POST",
        headers: { origin: BASE, "content-type": "application/json" },
        body: JSON.stringify({ encryptedData: await encryptUserContext(locationUser("locEmbA1"), KEY) }),
      }),
      offEnv,
    );
    expect(res.status).toBe(404);
  });
});

describe("a location user's session", () => {
  let cookie = "";
  beforeAll(async () => {
    ({ cookie } = await embedCookie(locationUser("locEmbA1")));
  });

  it("happy: /api lists and reads only the location's account", async () => {
    const list = await get("/api/accounts", cookie);
    expect(list.status).toBe(200);
    const { accounts } = await list.json<{ accounts: Array<{ id: string }> }>();
    expect(accounts.map((a) => a.id)).toEqual(["emb-a1"]);
    expect((await get("/api/accounts/emb-a1", cookie)).status).toBe(200);
    expect((await get("/api/accounts/emb-a1/mapping", cookie)).status).not.toBe(403);
  });

  it("sad: another account through /api is 403 (read, write, and unknown ids alike)", async () => {
    for (const path of ["/api/accounts/emb-a2", "/api/accounts/emb-b1/events", "/api/accounts/nope"])
      expect((await get(path, cookie)).status).toBe(403);
    const write = await exports.default.fetch(`${BASE}/api/accounts/emb-a2/pause`, {
      method: "POST",
      headers: { cookie, origin: BASE, "content-type": "application/json" },
    });
    expect(write.status).toBe(403);
    const del = await exports.default.fetch(`${BASE}/api/accounts/emb-a1`, {
      method: "DELETE",
      headers: { cookie, origin: BASE },
    });
    expect(del.status).toBe(403);
    expect((await get("/api/health", cookie)).status).toBe(403);
    expect((await get("/api/notifications", cookie)).status).toBe(403);
  });

  it("sad: the deployment's own 4Degrees key (useSecret) is refused to a scoped session", async () => {
    const res = await exports.default.fetch(`${BASE}/api/accounts/emb-a1/fourdegrees`, {
      method: "PUT",
      headers: { cookie, origin: BASE, "content-type": "application/json" },
      body: JSON.stringify({ useSecret: true }),
    });
    expect(res.status).toBe(403);
  });

  it("happy: console pickers list only the location's account; another account's URL is 403", async () => {
    const page = await get("/console/activity", cookie);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Marlow Partners");
    expect(html).not.toContain("Verdant Fund");
    expect(html).not.toContain("Other Agency Co");
    expect((await get("/console/activity?account=emb-a2", cookie)).status).toBe(403);
    expect((await get("/console/mapping?account=emb-b1", cookie)).status).toBe(403);
    // A browser navigating there (inside HighLevel's frame) reads the reason on a page, not JSON.
    const refused = await exports.default.fetch(`${BASE}/console/mapping?account=emb-b1`, {
      headers: { cookie, accept: "text/html,application/xhtml+xml", "sec-fetch-dest": "iframe" },
    });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("content-type")).toContain("text/html");
    expect(await refused.text()).toContain('id="error-reason" data-code="forbidden">account emb-b1 is outside');
    expect((await get("/console/connections", cookie)).status).toBe(403);
    expect((await get("/console", cookie)).headers.get("location")).toBe("/embed/home");
    const form = await exports.default.fetch(`${BASE}/console/backfill/start`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, origin: BASE, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ account: "emb-a2" }),
    });
    expect(form.status).toBe(403);
  });

  it("happy: /embed/home names the user, the account and offers the 4Degrees key form", async () => {
    const res = await get("/embed/home", cookie);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Priya Shah");
    expect(html).toContain('data-account="emb-a1"');
    expect(html).toContain('name="apiKey"');
    expect(html).not.toContain("emb-a2");
  });

  it("happy: embedded responses may be framed by HighLevel only; other responses keep DENY-style framing", async () => {
    const res = await get("/console/activity", cookie);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain(
      "frame-ancestors https://app.gohighlevel.com https://*.gohighlevel.com " +
        "https://app.leadconnectorhq.com https://*.leadconnectorhq.com",
    );
    expect(csp).not.toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBeNull();
    const entry = await exports.default.fetch(`${BASE}/embed`);
    expect(entry.headers.get("content-security-policy")).toMatch(/frame-ancestors https:\/\/app\.gohighlevel\.com/);
    expect(entry.headers.get("content-security-policy")).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'/);
    expect(entry.headers.get("x-frame-options")).toBeNull();
    const operator = await get("/console/activity", await consoleCookie(BASE));
    expect(operator.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(operator.headers.get("x-frame-options")).toBe("SAMEORIGIN");
  });

  it("happy: HIGHLEVEL_FRAME_ANCESTORS adds white-label origins (https only outside local dev)", async () => {
    const app = createApp();
    const wlEnv = { ...env, HIGHLEVEL_FRAME_ANCESTORS: "https://crm.agency.example http://insecure.example" };
    const res = await app.fetch(new Request(`${BASE}/embed`), wlEnv);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("https://crm.agency.example");
    expect(csp).not.toContain("http://insecure.example");
  });
});

describe("a location with no account yet", () => {
  it("happy: the user is signed in, sees no account, and is told who attaches one", async () => {
    const { cookie } = await embedCookie(locationUser("locEmbNone"));
    const home = await (await get("/embed/home", cookie)).text();
    expect(home).toContain('id="embed-no-account"');
    const list = await get("/api/accounts", cookie);
    expect((await list.json<{ accounts: unknown[] }>()).accounts).toEqual([]);
    expect((await get("/api/accounts/emb-a1", cookie)).status).toBe(403);
  });
});

describe("an agency admin's session and the operator", () => {
  it("happy: an agency admin sees its agency's locations' accounts, not another agency's", async () => {
    const { cookie } = await embedCookie(agencyAdmin("coEmbedA"));
    const list = await get("/api/accounts", cookie);
    const ids = (await list.json<{ accounts: Array<{ id: string }> }>()).accounts.map((a) => a.id);
    expect(ids).toEqual(expect.arrayContaining(["emb-a1", "emb-a2"]));
    expect(ids).not.toContain("emb-b1");
    expect((await get("/api/accounts/emb-a2", cookie)).status).toBe(200);
    expect((await get("/api/accounts/emb-b1", cookie)).status).toBe(403);
    const html = await (await get("/console/activity?account=emb-a2", cookie)).text();
    expect(html).toContain("Verdant Fund");
    expect(html).not.toContain("Other Agency Co");
  });

  it("happy: the operator (ADMIN_TOKEN) sees every account, on /api and in the console", async () => {
    const res = await exports.default.fetch(`${BASE}/api/accounts`, {
      headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
    });
    const ids = (await res.json<{ accounts: Array<{ id: string }> }>()).accounts.map((a) => a.id);
    expect(ids).toEqual(expect.arrayContaining(["emb-a1", "emb-a2", "emb-b1"]));
    const page = await get("/console/activity?account=emb-b1", await consoleCookie(BASE));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Other Agency Co");
  });

  it("happy: a signed-out console request from an iframe goes back through HighLevel's sign-in (/embed)", async () => {
    const res = await exports.default.fetch(`${BASE}/console/activity`, {
      redirect: "manual",
      headers: { "sec-fetch-dest": "iframe" },
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/embed");
    const home = await exports.default.fetch(`${BASE}/embed/home`, {
      redirect: "manual",
      headers: { "sec-fetch-dest": "iframe" },
    });
    expect(home.headers.get("location")).toBe("/embed");
    expect((await exports.default.fetch(`${BASE}/embed/home`)).status).toBe(401);
    const top = await exports.default.fetch(`${BASE}/console/activity`, { redirect: "manual" });
    expect(top.headers.get("location")).toMatch(/^\/console\/login/);
  });

  it("happy: with Cloudflare Access configured, an embedded session still gets in (scoped); others need Access", async () => {
    const { cookie } = await embedCookie(locationUser("locEmbA1"));
    const app = createApp();
    const accessEnv = { ...env, CF_ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.com", CF_ACCESS_AUD: "aud" };
    const scoped = await app.fetch(new Request(`${BASE}/api/accounts`, { headers: { cookie } }), accessEnv);
    expect(scoped.status).toBe(200);
    expect((await scoped.json<{ accounts: Array<{ id: string }> }>()).accounts.map((a) => a.id)).toEqual(["emb-a1"]);
    const page = await app.fetch(
      new Request(`${BASE}/console/activity?account=emb-a2`, { headers: { cookie } }),
      accessEnv,
    );
    expect(page.status).toBe(403);
    const bare = await app.fetch(new Request(`${BASE}/api/accounts`), accessEnv);
    expect(bare.status).toBe(401);
  });

  it("sad: logout ends the embedded session server-side", async () => {
    const { cookie } = await embedCookie(locationUser("locEmbA1"));
    const out = await exports.default.fetch(`${BASE}/console/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, origin: BASE },
    });
    expect(out.status).toBe(303);
    expect((await get("/api/accounts", cookie)).status).toBe(401);
  });
});

describe("scope and origin rules", () => {
  it("happy: an agency user who is not an admin, inside a sub-account, gets that location only", () => {
    const ctx = { ...agencyAdmin("coEmbedA"), role: "user", type: "agency" as const, activeLocation: "locEmbA2" };
    expect(scopeFromContext(ctx)).toMatchObject({ kind: "location", locationId: "locEmbA2", companyId: "coEmbedA" });
    const admin = { ...agencyAdmin("coEmbedA"), type: "agency" as const, activeLocation: "locEmbA2" };
    expect(scopeFromContext(admin)).toMatchObject({
      kind: "agency",
      companyId: "coEmbedA",
      activeLocation: "locEmbA2",
    });
  });

  it("security: only HighLevel's origins (and their subdomains) match the frame-ancestors list", () => {
    for (const ok of [
      "https://app.gohighlevel.com",
      "https://eu.app.gohighlevel.com",
      "https://app.leadconnectorhq.com",
    ])
      expect(originAllowed(ok, HIGHLEVEL_FRAME_ORIGINS), ok).toBe(true);
    for (const bad of [
      "http://app.gohighlevel.com",
      "https://evilgohighlevel.com",
      "https://gohighlevel.com.evil.example",
      "https://app.gohighlevel.com:8443",
      "null",
    ])
      expect(originAllowed(bad, HIGHLEVEL_FRAME_ORIGINS), bad).toBe(false);
  });
});
