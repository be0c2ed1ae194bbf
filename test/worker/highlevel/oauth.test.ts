import { exports, env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/config.ts";
import { createApp } from "../../../src/http/app.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { beginInstall } from "../helpers/install.ts";
import { useNetwork } from "../helpers/network.ts";
import { createFakeHighLevel, type FakeHighLevel } from "./fake-highlevel.ts";
import { consoleCookie } from "../helpers/console-session.ts";

let fake: FakeHighLevel = createFakeHighLevel();
useNetwork(() => {
  fake = createFakeHighLevel();
  return { "sandbox.test": (r) => fake.fetch(r) };
});

/** Starts an install as a signed-in operator: the state it carries and the cookie binding it to this "browser". */
async function startInstall(): Promise<{ url: URL; state: string; cookie: string }> {
  const { authorize, cookie } = await beginInstall();
  const url = new URL(authorize);
  return { url, state: url.searchParams.get("state") ?? "", cookie };
}

/** The callback as the browser that started the install sends it (its cookie), or as another one (`cookie` omitted). */
const callbackFrom = (query: string, cookie?: string) =>
  exports.default.fetch(`http://worker.test/oauth/callback?${query}`, cookie ? { headers: { cookie } } : {});

describe("OAuth install", () => {
  it("happy: /oauth/install redirects to chooselocation with client id, redirect URI, scopes and state", async () => {
    const { url } = await startInstall();
    expect(`${url.origin}${url.pathname}`).toBe("http://sandbox.test/marketplace/v2/oauth/chooselocation");
    expect(url.searchParams.get("response_type")).toBe("code");
    expect(url.searchParams.get("client_id")).toBe("sandbox-client-id");
    expect(url.searchParams.get("redirect_uri")).toBe("http://worker.test/oauth/callback");
    // SYNC_MODE is two-way in the test bindings: write scopes are asked for.
    expect(url.searchParams.get("scope")?.split(" ")).toEqual(
      expect.arrayContaining([
        "opportunities.readonly",
        "contacts.readonly",
        "users.readonly",
        "locations.readonly",
        "opportunities.write",
        "contacts.write",
      ]),
    );
    expect(url.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  });

  it("happy: callback exchanges the code (form-encoded) and stores an encrypted connection row", async () => {
    const { state, cookie } = await startInstall();
    const res = await callbackFrom(`code=good-code&state=${state}`, cookie);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain("HighLevel connected");
    expect(page).not.toMatch(/at-\d|rt-\d/); // no token in the answer
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
    const row = await getConnection(env.DB, locationConnectionId("loc-fake"));
    expect(row?.status).toBe("active");
    expect(row?.accessTokenEnc).toMatch(/^v1\.k1\./);
    expect(row?.refreshTokenEnc).toMatch(/^v1\.k1\./);
    expect([...fake.liveAccess].some((t) => row?.accessTokenEnc?.includes(t))).toBe(false);
  });

  it("security: a state is usable once", async () => {
    const { state, cookie } = await startInstall();
    expect((await callbackFrom(`code=good-code&state=${state}`, cookie)).status).toBe(200);
    const replay = await callbackFrom(`code=good-code&state=${state}`, cookie);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain("expired or invalid");
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
  });

  it("security: a missing or unknown state is refused without calling HighLevel", async () => {
    expect((await exports.default.fetch("http://worker.test/oauth/callback?code=good-code")).status).toBe(400);
    expect((await exports.default.fetch("http://worker.test/oauth/callback?code=good-code&state=forged")).status).toBe(
      400,
    );
    expect(fake.calls.get("POST /oauth/token")).toBeUndefined();
  });

  it("security: an anonymous /oauth/install is sent to the console login and writes nothing", async () => {
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM oauth_states").first<{ n: number }>();
    const res = await exports.default.fetch("http://worker.test/oauth/install", { redirect: "manual" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toMatch(/^\/console\/login\?next=/);
    expect(res.headers.get("set-cookie")).toBeNull();
    const wrong = await exports.default.fetch("http://worker.test/oauth/install", {
      redirect: "manual",
      headers: { authorization: "Bearer not-the-admin-token-000" },
    });
    expect(wrong.status).toBe(401);
    const after = await env.DB.prepare("SELECT COUNT(*) AS n FROM oauth_states").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });

  it("security: a signed-in console session may start an install; the state cookie is __Host-, Secure, HttpOnly, Lax", async () => {
    const login = await exports.default.fetch("http://worker.test/console/login", {
      method: "POST",
      redirect: "manual",
      headers: { origin: "http://worker.test", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN }),
    });
    const session = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const res = await exports.default.fetch("http://worker.test/oauth/install", {
      redirect: "manual",
      headers: { cookie: session },
    });
    expect(res.status).toBe(302);
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^__Host-oauth_state=[A-Za-z0-9_-]{43};/);
    expect(set).toMatch(/; HttpOnly/i);
    expect(set).toMatch(/; Secure/i);
    expect(set).toMatch(/; SameSite=Lax/i);
    expect(set).toMatch(/; Path=\//i);
    expect(set).not.toContain(new URL(res.headers.get("location") ?? "").searchParams.get("state") ?? "-"); // the hash, not the state
  });

  it("security: on plain http from loopback (wrangler dev) the state cookie is a plain Lax cookie, as the console session is", async () => {
    const res = await exports.default.fetch("http://127.0.0.1:8787/oauth/install", {
      redirect: "manual",
      headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
    });
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^oauth_state=[A-Za-z0-9_-]{43};/);
    expect(set).not.toMatch(/Secure/i);
    expect(set).toMatch(/; SameSite=Lax/i);
    const state = new URL(res.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const done = await exports.default.fetch(`http://127.0.0.1:8787/oauth/callback?code=good-code&state=${state}`, {
      headers: { cookie: set.split(";")[0] ?? "" },
    });
    expect(done.status).toBe(200);
  });

  it("happy: an install started with ?next= (the guided setup) returns to that console page; other targets are ignored", async () => {
    const start = (next: string) =>
      exports.default.fetch(`http://worker.test/oauth/install?next=${encodeURIComponent(next)}`, {
        redirect: "manual",
        headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
      });
    const res = await start("/console/setup?account=acme");
    const cookies = res.headers.getSetCookie().map((c) => c.split(";")[0] ?? "");
    expect(cookies).toHaveLength(2);
    const state = new URL(res.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const done = await exports.default.fetch(`http://worker.test/oauth/callback?code=good-code&state=${state}`, {
      redirect: "manual",
      headers: { cookie: cookies.join("; ") },
    });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe("/console/setup?account=acme");

    const evil = await start("https://evil.example/phish");
    expect(evil.headers.getSetCookie()).toHaveLength(1);
    const evilState = new URL(evil.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const page = await callbackFrom(
      `code=good-code&state=${evilState}`,
      evil.headers.getSetCookie()[0]?.split(";")[0] ?? "",
    );
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("HighLevel connected");
  });

  it("security: a callback from a browser that did not start the install is refused, and its state is spent", async () => {
    const victim = await startInstall();
    const other = await startInstall();
    const missing = await callbackFrom(`code=good-code&state=${victim.state}`);
    expect(missing.status).toBe(400);
    expect(await missing.text()).toContain("no install cookie");
    // The state is consumed: the right browser cannot use it afterwards either.
    expect((await callbackFrom(`code=good-code&state=${victim.state}`, victim.cookie)).status).toBe(400);
    const mismatched = await callbackFrom(`code=good-code&state=${other.state}`, victim.cookie);
    expect(mismatched.status).toBe(400);
    expect(await mismatched.text()).toContain("install cookie does not match");
    expect(fake.calls.get("POST /oauth/token")).toBeUndefined();
  });

  it("security: a console install is recorded as such", async () => {
    const { state, cookie } = await startInstall();
    expect((await callbackFrom(`code=good-code&state=${state}`, cookie)).status).toBe(200);
    expect((await getConnection(env.DB, locationConnectionId("loc-fake")))?.installOrigin).toBe("console");
  });

  it("error: denied consent answers a clear page, not a stack trace", async () => {
    const res = await exports.default.fetch(
      "http://worker.test/oauth/callback?error=access_denied&error_description=User%20denied",
    );
    expect(res.status).toBe(400);
    const page = await res.text();
    expect(page).toContain("User denied");
    expect(page).not.toContain("at ");
  });

  it("error: a bad code (HighLevel 400) answers a clear page and stores nothing", async () => {
    const { state, cookie } = await startInstall();
    const res = await callbackFrom(`code=bad-code&state=${state}`, cookie);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("refused the authorization");
  });

  it("error: a 422 from the token endpoint is a clear page", async () => {
    fake.override(
      "POST /oauth/token",
      () =>
        new Response(JSON.stringify({ statusCode: 422, message: ["redirect_uri must be a URL"], traceId: "t-422" }), {
          status: 422,
        }),
    );
    const { state, cookie } = await startInstall();
    const res = await callbackFrom(`code=good-code&state=${state}`, cookie);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("redirect_uri must be a URL");
  });
});

describe("installs without state (HighLevel Marketplace listing)", () => {
  const app = createApp();
  /** The Worker with HIGHLEVEL_ALLOW_STATELESS_INSTALL set to `allow`. */
  const callback = (allow: "true" | "false", query: string, cookie?: string) =>
    app.request(`http://worker.test/oauth/callback?${query}`, cookie ? { headers: { cookie } } : {}, {
      ...env,
      HIGHLEVEL_ALLOW_STATELESS_INSTALL: allow,
    });

  it("security: off (the default), a callback without state is refused and no code is exchanged", async () => {
    expect(loadConfig(env).HIGHLEVEL_ALLOW_STATELESS_INSTALL).toBe(false);
    const res = await callback("false", "code=good-code");
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("carries no state");
    expect(fake.calls.get("POST /oauth/token")).toBeUndefined();
  });

  it("happy: on, a callback without state exchanges the code and stores an encrypted connection", async () => {
    const res = await callback("true", "code=good-code");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("HighLevel connected");
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
    const row = await getConnection(env.DB, locationConnectionId("loc-fake"));
    expect(row?.status).toBe("active");
    expect(row?.accessTokenEnc).toMatch(/^v1\.k1\./);
  });

  it("security: on, a Marketplace install lands unattached, flagged, with a banner in the console", async () => {
    const res = await callback("true", "code=good-code");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("not attached to any account");
    const row = await getConnection(env.DB, locationConnectionId("loc-fake"));
    expect(row?.installOrigin).toBe("marketplace");
    expect(row?.accountId).toBeNull();
    const page = await exports.default.fetch("http://worker.test/console/connections", {
      headers: { cookie: await consoleCookie() },
    });
    const text = await page.text();
    expect(text).toContain('id="marketplace-banner"');
    expect(text).toContain("not attached (Marketplace install)");
  });

  it("security: on, a callback that carries a state still needs it to be valid and unused", async () => {
    expect((await callback("true", "code=good-code&state=forged")).status).toBe(400);
    const { state, cookie } = await startInstall();
    expect((await callback("true", `code=good-code&state=${state}`, cookie)).status).toBe(200);
    expect((await callback("true", `code=good-code&state=${state}`, cookie)).status).toBe(400);
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
  });

  it("error: a value other than true/false is a named configuration error", () => {
    let caught: unknown;
    try {
      loadConfig({ ...env, HIGHLEVEL_ALLOW_STATELESS_INSTALL: "yes" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    if (caught instanceof ConfigError) expect(caught.settings).toEqual(["HIGHLEVEL_ALLOW_STATELESS_INSTALL"]);
  });
});
