/**
 * Protection of the admin API: every `/api` route refuses a request without valid credentials —
 * ADMIN_TOKEN (bearer, constant time) where Access is not configured; a Cloudflare Access JWT
 * (RS256, the team's keys, audience, issuer, expiry) where it is. The Access keys are a test RSA
 * pair generated here and served as the team's JWKS through the fail-closed network router.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app.ts";
import { TEST_BINDINGS } from "../bindings.ts";
import { useNetwork } from "./helpers/network.ts";

const TEAM = "https://team.cloudflareaccess.test";
const AUD = "aud-0123456789abcdef";
const accessEnv = { ...env, CF_ACCESS_TEAM_DOMAIN: TEAM, CF_ACCESS_AUD: AUD };
const app = createApp();

/** Every `/api` route the app serves, with params filled in. */
const apiRoutes = [
  ...new Map(
    app.routes.filter((r) => r.path.startsWith("/api/") && r.method !== "ALL").map((r) => [`${r.method} ${r.path}`, r]),
  ).values(),
].map((r) => ({
  method: r.method,
  path: r.path.replace(/:[A-Za-z]+(\{[^}]*\})?/g, "x1"),
}));

type Jwk = JsonWebKey & { kid: string };
let publicJwk: Jwk;
let privateJwk: Jwk;
let rogueJwk: Jwk;
let certsFetches = 0;

async function rsaPair(kid: string): Promise<{ pub: Jwk; priv: Jwk }> {
  const pair = await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  );
  if (!("privateKey" in pair)) throw new Error("expected a key pair");
  const pub = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const priv = await crypto.subtle.exportKey("jwk", pair.privateKey);
  if (pub instanceof ArrayBuffer || priv instanceof ArrayBuffer) throw new Error("expected JWKs");
  return { pub: { ...pub, kid, alg: "RS256" }, priv: { ...priv, kid, alg: "RS256" } };
}

beforeAll(async () => {
  const good = await rsaPair("team-key-1");
  publicJwk = good.pub;
  privateJwk = good.priv;
  // Same kid, different key: a forgery that names a real key id.
  rogueJwk = (await rsaPair("team-key-1")).priv;
});

function claims(overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: [AUD],
    email: "ops@example.com",
    sub: "user-1",
    iss: TEAM,
    iat: now,
    nbf: now - 5,
    exp: now + 600,
    type: "app",
    ...overrides,
  };
}

async function callWithAccess(
  path: string,
  token: string | null,
  extra: Record<string, string> = {},
): Promise<Response> {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = { ...extra };
  if (token !== null) headers["cf-access-jwt-assertion"] = token;
  const res = await app.fetch(new Request(`http://worker.test${path}`, { headers }), accessEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("admin API protection with ADMIN_TOKEN (Access not configured)", () => {
  useNetwork({});

  it("the app serves /api routes to check (the list is not empty)", () => {
    expect(apiRoutes.length).toBeGreaterThanOrEqual(5);
    expect(apiRoutes.map((r) => `${r.method} ${r.path}`)).toContain("POST /api/notifications");
  });

  it("security: every /api route answers 401 without credentials", async () => {
    for (const r of apiRoutes) {
      const res = await exports.default.fetch(`http://worker.test${r.path}`, {
        method: r.method,
        headers: { "content-type": "application/json" },
        ...(r.method === "GET" || r.method === "HEAD" ? {} : { body: "{}" }),
      });
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
      await res.body?.cancel();
    }
  });

  it("security: every /api route refuses a wrong token, a token prefix and a non-bearer scheme", async () => {
    const wrong = [
      `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}x`,
      `Bearer ${TEST_BINDINGS.ADMIN_TOKEN.slice(0, -1)}`,
      `Basic ${btoa(`admin:${TEST_BINDINGS.ADMIN_TOKEN}`)}`,
      TEST_BINDINGS.ADMIN_TOKEN,
    ];
    for (const r of apiRoutes) {
      for (const authorization of wrong) {
        const res = await exports.default.fetch(`http://worker.test${r.path}`, {
          method: r.method,
          headers: { authorization, "content-type": "application/json" },
          ...(r.method === "GET" ? {} : { body: "{}" }),
        });
        // A wrong bearer value is 401; a header that is not `Bearer <token>` at all is Hono's 400.
        const expected = authorization.startsWith("Bearer ") ? [401] : [400, 401];
        expect(expected, `${r.method} ${r.path} with ${authorization.slice(0, 8)}… → ${res.status}`).toContain(
          res.status,
        );
        await res.body?.cancel();
      }
    }
  });

  it("happy: the right bearer token passes (GET /api/notifications → 200)", async () => {
    const res = await exports.default.fetch("http://worker.test/api/notifications", {
      headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ rules: expect.any(Array) });
  });

  it("security: an Access JWT is not accepted where Access is not configured", async () => {
    const token = await sign(claims(), privateJwk, "RS256");
    const res = await exports.default.fetch("http://worker.test/api/notifications", {
      headers: { "cf-access-jwt-assertion": token },
    });
    expect(res.status).toBe(401);
  });
});

describe("admin API protection with Cloudflare Access", () => {
  useNetwork({
    "team.cloudflareaccess.test": (request) => {
      expect(new URL(request.url).pathname).toBe("/cdn-cgi/access/certs");
      certsFetches++;
      return Response.json({ keys: [publicJwk], public_cert: { kid: publicJwk.kid, cert: "unused" } });
    },
  });

  it("happy: a valid Access JWT passes, and the team's keys are fetched once then cached in KV", async () => {
    await env.CACHE.delete(`v1:access:certs:${TEAM}`);
    const before = certsFetches;
    const token = await sign(claims(), privateJwk, "RS256");
    const first = await callWithAccess("/api/notifications", token);
    expect(first.status).toBe(200);
    const second = await callWithAccess("/api/notifications", token);
    expect(second.status).toBe(200);
    expect(certsFetches - before).toBe(1);
    expect(await env.CACHE.get(`v1:access:certs:${TEAM}`, "json")).toMatchObject({ keys: [{ kid: "team-key-1" }] });
  });

  it("security: no Access header → 401, even with the right ADMIN_TOKEN (Access is the only door)", async () => {
    const res = await callWithAccess("/api/notifications", null, {
      authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`,
    });
    expect(res.status).toBe(401);
  });

  it("security: every /api route refuses a request without the Access JWT", async () => {
    for (const r of apiRoutes) {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`http://worker.test${r.path}`, {
          method: r.method,
          headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
        }),
        accessEnv,
        ctx,
      );
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
      await res.body?.cancel();
    }
  });

  it.each([
    ["expired", { exp: Math.floor(Date.now() / 1000) - 120 }],
    ["not yet valid (nbf)", { nbf: Math.floor(Date.now() / 1000) + 3600 }],
    ["wrong audience", { aud: ["some-other-app"] }],
    ["wrong issuer", { iss: "https://evil.cloudflareaccess.test" }],
  ])("security: a token that is %s → 401", async (_label, override) => {
    const token = await sign(claims(override), privateJwk, "RS256");
    const res = await callWithAccess("/api/notifications", token);
    expect(res.status).toBe(401);
    expect((await res.json<{ error: { code: string } }>()).error.code).toBe("unauthorized");
  });

  it("security: with the CF_Authorization cookie, a state-changing request needs this site's Origin", async () => {
    const token = await sign(claims(), privateJwk, "RS256");
    // What Access forwards for a browser: the JWT header and the cookie it came from.
    const service = { "cf-access-jwt-assertion": token, "content-type": "application/json" };
    const browser = { ...service, cookie: `CF_Authorization=${token}` };
    const rules = "http://worker.test/api/notifications";
    const post = async (url: string, headers: Record<string, string>) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(new Request(url, { method: "POST", headers, body: "{}" }), accessEnv, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    const cross = await post(rules, { ...browser, origin: "https://evil.example" });
    expect(cross.status).toBe(403);
    expect((await cross.json<{ error: { code: string; message: string } }>()).error.message).toContain("Origin");
    expect((await post(rules, browser)).status).toBe(403);
    expect((await post(rules, { ...browser, origin: "null" })).status).toBe(403);
    expect((await post(rules, { ...browser, "sec-fetch-site": "cross-site" })).status).toBe(403);
    // Past the guard and Access: the empty rule is the handler's own 400.
    expect((await post(rules, { ...browser, origin: "http://worker.test" })).status).toBe(400);
    expect((await post(rules, { ...browser, "sec-fetch-site": "same-origin" })).status).toBe(400);
    // The request's own origin also passes when it differs from PUBLIC_URL (a second hostname).
    const second = "https://sync.internal.test";
    expect((await post(`${second}/api/notifications`, { ...browser, origin: second })).status).toBe(400);
    // A service token (no cookie) is not a browser: no Origin needed.
    expect((await post(rules, service)).status).toBe(400);
  });

  it("security: a token signed by another key under the team's kid → 401", async () => {
    const token = await sign(claims(), rogueJwk, "RS256");
    expect((await callWithAccess("/api/notifications", token)).status).toBe(401);
  });

  it("security: HS256 signed with the public modulus, alg none, and garbage → 401", async () => {
    const hs = await sign(claims(), "some-shared-secret", "HS256");
    const header = btoa(JSON.stringify({ alg: "none", typ: "JWT", kid: "team-key-1" })).replace(/=+$/, "");
    const none = `${header}.${btoa(JSON.stringify(claims())).replace(/=+$/, "")}.`;
    for (const token of [hs, none, "not.a.jwt", "garbage"]) {
      const res = await callWithAccess("/api/notifications", token);
      expect(res.status, token.slice(0, 20)).toBe(401);
    }
  });
});
