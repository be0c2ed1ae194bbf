import { exports, env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/config.ts";
import { createApp } from "../../../src/http/app.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { useNetwork } from "../helpers/network.ts";
import { createFakeHighLevel, type FakeHighLevel } from "./fake-highlevel.ts";

let fake: FakeHighLevel = createFakeHighLevel();
useNetwork(() => {
  fake = createFakeHighLevel();
  return { "sandbox.test": (r) => fake.fetch(r) };
});

async function startInstall(): Promise<URL> {
  const res = await exports.default.fetch("http://worker.test/oauth/install", { redirect: "manual" });
  expect(res.status).toBe(302);
  return new URL(res.headers.get("location") ?? "");
}

describe("OAuth install", () => {
  it("happy: /oauth/install redirects to chooselocation with client id, redirect URI, scopes and state", async () => {
    const url = await startInstall();
    expect(`${url.origin}${url.pathname}`).toBe("http://sandbox.test/marketplace/v2/oauth/chooselocation");
    expect(url.searchParams.get("response_type")).toBe("code");
    expect(url.searchParams.get("client_id")).toBe("sandbox-client-id");
    expect(url.searchParams.get("redirect_uri")).toBe("http://worker.test/oauth/callback");
    // SYNC_MODE is two-way in the test bindings: write scopes are asked for.
    expect(url.searchParams.get("scope")?.split(" ")).toEqual(expect.arrayContaining(["opportunities.readonly", "contacts.readonly", "users.readonly", "locations.readonly", "opportunities.write", "contacts.write"]));
    expect(url.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  });

  it("happy: callback exchanges the code (form-encoded) and stores an encrypted connection row", async () => {
    const state = (await startInstall()).searchParams.get("state");
    const res = await exports.default.fetch(`http://worker.test/oauth/callback?code=good-code&state=${state}`);
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
    const state = (await startInstall()).searchParams.get("state");
    expect((await exports.default.fetch(`http://worker.test/oauth/callback?code=good-code&state=${state}`)).status).toBe(200);
    const replay = await exports.default.fetch(`http://worker.test/oauth/callback?code=good-code&state=${state}`);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain("expired or invalid");
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
  });

  it("security: a missing or unknown state is refused without calling HighLevel", async () => {
    expect((await exports.default.fetch("http://worker.test/oauth/callback?code=good-code")).status).toBe(400);
    expect((await exports.default.fetch("http://worker.test/oauth/callback?code=good-code&state=forged")).status).toBe(400);
    expect(fake.calls.get("POST /oauth/token")).toBeUndefined();
  });

  it("error: denied consent answers a clear page, not a stack trace", async () => {
    const res = await exports.default.fetch("http://worker.test/oauth/callback?error=access_denied&error_description=User%20denied");
    expect(res.status).toBe(400);
    const page = await res.text();
    expect(page).toContain("User denied");
    expect(page).not.toContain("at ");
  });

  it("error: a bad code (HighLevel 400) answers a clear page and stores nothing", async () => {
    const state = (await startInstall()).searchParams.get("state");
    const res = await exports.default.fetch(`http://worker.test/oauth/callback?code=bad-code&state=${state}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("refused the authorization");
  });

  it("error: a 422 from the token endpoint is a clear page", async () => {
    fake.override("POST /oauth/token", () => new Response(JSON.stringify({ statusCode: 422, message: ["redirect_uri must be a URL"], traceId: "t-422" }), { status: 422 }));
    const state = (await startInstall()).searchParams.get("state");
    const res = await exports.default.fetch(`http://worker.test/oauth/callback?code=good-code&state=${state}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("redirect_uri must be a URL");
  });
});

describe("installs without state (HighLevel Marketplace listing)", () => {
  const app = createApp();
  /** The Worker with HIGHLEVEL_ALLOW_STATELESS_INSTALL set to `allow`. */
  const callback = (allow: "true" | "false", query: string) => app.request(`http://worker.test/oauth/callback?${query}`, {}, { ...env, HIGHLEVEL_ALLOW_STATELESS_INSTALL: allow });

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

  it("security: on, a callback that carries a state still needs it to be valid and unused", async () => {
    expect((await callback("true", "code=good-code&state=forged")).status).toBe(400);
    const state = (await startInstall()).searchParams.get("state");
    expect((await callback("true", `code=good-code&state=${state}`)).status).toBe(200);
    expect((await callback("true", `code=good-code&state=${state}`)).status).toBe(400);
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
