/**
 * The HighLevel sandbox over real HTTP, as the Worker meets it: the choose-location page and the
 * code exchange, single-use rotating refresh tokens (issue 2 "Done when": a refresh with a used
 * refresh token fails as HighLevel's does), token lifetime and expiry, scopes, "Location is not
 * active", the agency → location token, and the per-app-per-location rate limit (the 101st request
 * within 10 s gets 429 with the headers). Control-API misuse answers 400, never 500.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestSandbox, type RunningSandbox } from "./helpers.ts";
import type { JsonBody } from "../../support.ts";

let sb: RunningSandbox;
const CALLBACK = "http://worker.test/oauth/callback";
const CLIENT = { client_id: "sandbox-client-id", client_secret: "sandbox-client-secret" };

beforeAll(async () => {
  sb = await startTestSandbox();
});

afterAll(async () => {
  await sb?.close();
});

beforeEach(async () => {
  await sb.control("PUT", "/ratelimit", { max: 100, intervalMs: 10_000, daily: 200_000, retryAfter: true });
  await sb.control("PUT", "/oauth/settings", { accessTokenLifetimeSec: 86_399, errorStyle: "nest" });
});

/** `POST /oauth/token`, form-urlencoded as HighLevel requires. */
async function token(form: Record<string, string>): Promise<{ status: number; body: Record<string, JsonBody> }> {
  const res = await fetch(`${sb.highlevel}/oauth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, JsonBody> };
}

async function api(
  path: string,
  accessToken: string,
  init: Omit<RequestInit, "headers"> & { headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${sb.highlevel}${path}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${accessToken}`,
      Version: "2021-07-28",
      ...(init.body ? { "Content-Type": "application/json" } : {}),
      ...init.headers,
    },
  });
}

/** Goes through the choose-location page like a browser: GET the page, submit the form, read the redirect. */
async function approveInBrowser(
  query: Record<string, string>,
  decision: "approve" | "deny" = "approve",
  location?: string,
): Promise<URL> {
  const page = await fetch(`${sb.url}/marketplace/v2/oauth/chooselocation?${new URLSearchParams(query)}`);
  expect(page.status).toBe(200);
  const html = await page.text();
  const requestId = /name="request_id" value="([0-9a-f]+)"/.exec(html)?.[1];
  expect(requestId).toBeDefined();
  expect(html).toContain("Acme Capital Partners");
  const res = await fetch(`${sb.url}/marketplace/v2/oauth/chooselocation`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      request_id: requestId!,
      location: location ?? `location:${sb.demo.locationId}`,
      decision,
    }).toString(),
  });
  expect(res.status).toBe(302);
  return new URL(res.headers.get("location")!);
}

const INSTALL = {
  response_type: "code",
  client_id: "sandbox-client-id",
  redirect_uri: CALLBACK,
  scope: "opportunities.readonly opportunities.write contacts.readonly contacts.write",
  state: "st4te-123",
};

describe("OAuth", () => {
  it("happy: the page approves, redirects with code and state, and the code exchanges for Location tokens", async () => {
    const redirect = await approveInBrowser(INSTALL);
    expect(`${redirect.origin}${redirect.pathname}`).toBe(CALLBACK);
    expect(redirect.searchParams.get("state")).toBe("st4te-123");
    const code = redirect.searchParams.get("code")!;
    const { status, body } = await token({
      ...CLIENT,
      grant_type: "authorization_code",
      code,
      user_type: "Location",
      redirect_uri: CALLBACK,
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      token_type: "Bearer",
      expires_in: 86399,
      userType: "Location",
      locationId: sb.demo.locationId,
      companyId: sb.demo.companyId,
      scope: INSTALL.scope,
    });
    const res = await api(`/opportunities/pipelines?locationId=${sb.demo.locationId}`, body.access_token);
    expect(res.status).toBe(200);
    // The code is single-use.
    const again = await token({ ...CLIENT, grant_type: "authorization_code", code, user_type: "Location" });
    expect(again).toMatchObject({ status: 400, body: { message: "Invalid grant: authorization code is invalid" } });
  });

  it("happy: Deny redirects with error=access_denied and the state", async () => {
    const redirect = await approveInBrowser(INSTALL, "deny");
    expect(redirect.searchParams.get("error")).toBe("access_denied");
    expect(redirect.searchParams.get("state")).toBe("st4te-123");
    expect(redirect.searchParams.has("code")).toBe(false);
  });

  it("security: an unknown client id or an unregistered redirect gets an error page, never a redirect", async () => {
    const badClient = await fetch(
      `${sb.url}/marketplace/v2/oauth/chooselocation?${new URLSearchParams({ ...INSTALL, client_id: "someone-else" })}`,
      { redirect: "manual" },
    );
    expect(badClient.status).toBe(400);
    expect(badClient.headers.get("location")).toBeNull();
    expect(await badClient.text()).toContain("Invalid client");
    await sb.control("PUT", "/oauth/settings", { redirectUris: [CALLBACK] });
    try {
      const badRedirect = await fetch(
        `${sb.url}/marketplace/v2/oauth/chooselocation?${new URLSearchParams({ ...INSTALL, redirect_uri: "https://evil.example/steal" })}`,
        { redirect: "manual" },
      );
      expect(badRedirect.status).toBe(400);
      expect(badRedirect.headers.get("location")).toBeNull();
    } finally {
      await sb.control("PUT", "/oauth/settings", { redirectUris: null });
    }
  });

  it("error: a refresh with a used refresh token fails as HighLevel's does (400 invalid grant), the new one works once", async () => {
    const { refresh_token: first } = await sb.control<{ refresh_token: string }>("POST", "/oauth/connect", {});
    const before = await sb.control<{ refreshToken: number }>("GET", "/oauth/counters");
    const rotated = await token({
      ...CLIENT,
      grant_type: "refresh_token",
      refresh_token: first,
      user_type: "Location",
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(first);
    const reused = await token({ ...CLIENT, grant_type: "refresh_token", refresh_token: first, user_type: "Location" });
    expect(reused.status).toBe(400);
    expect(reused.body).toMatchObject({ statusCode: 400, message: "Invalid grant: refresh token is invalid" });
    expect(
      (
        await token({
          ...CLIENT,
          grant_type: "refresh_token",
          refresh_token: rotated.body.refresh_token,
          user_type: "Location",
        })
      ).status,
    ).toBe(200);
    const after = await sb.control<{ refreshToken: number }>("GET", "/oauth/counters");
    expect(after.refreshToken - before.refreshToken).toBe(3);
  });

  it("error: the token endpoint refuses JSON and bad client credentials", async () => {
    const json = await fetch(`${sb.highlevel}/oauth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...CLIENT, grant_type: "refresh_token", refresh_token: "x" }),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({
      message: "Invalid request: content must be application/x-www-form-urlencoded",
    });
    const wrongSecret = await token({
      client_id: "sandbox-client-id",
      client_secret: "nope",
      grant_type: "refresh_token",
      refresh_token: "x",
    });
    expect(wrongSecret).toMatchObject({ status: 401, body: { message: "Invalid client: client is invalid" } });
  });

  it("error: access tokens expire after the configured lifetime (sandbox time)", async () => {
    await sb.control("PUT", "/oauth/settings", { accessTokenLifetimeSec: 60 });
    const { access_token, expires_in } = await sb.control<{ access_token: string; expires_in: number }>(
      "POST",
      "/oauth/connect",
      {},
    );
    expect(expires_in).toBe(60);
    expect((await api(`/opportunities/pipelines?locationId=${sb.demo.locationId}`, access_token)).status).toBe(200);
    await fetch(`${sb.url}/_sandbox/time/advance`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ms: 61_000 }),
    });
    const expired = await api(`/opportunities/pipelines?locationId=${sb.demo.locationId}`, access_token);
    expect(expired.status).toBe(401);
    expect(await expired.json()).toMatchObject({ statusCode: 401, message: "Invalid token: access token is invalid" });
  });

  it("error: a paused location fails refreshes with 'Location is not active'; the same token works once it is active", async () => {
    const { refresh_token } = await sb.control<{ refresh_token: string }>("POST", "/oauth/connect", {});
    await sb.control("POST", `/locations/${sb.demo.locationId}/deactivate`);
    try {
      const paused = await token({ ...CLIENT, grant_type: "refresh_token", refresh_token, user_type: "Location" });
      expect(paused).toMatchObject({ status: 400, body: { message: "Location is not active" } });
    } finally {
      await sb.control("POST", `/locations/${sb.demo.locationId}/activate`);
    }
    expect((await token({ ...CLIENT, grant_type: "refresh_token", refresh_token, user_type: "Location" })).status).toBe(
      200,
    );
  });

  it("security: scopes are enforced per endpoint and token class", async () => {
    const readOnly = await sb.control<{ access_token: string }>("POST", "/oauth/connect", {
      scope: "opportunities.readonly",
    });
    expect((await api(`/opportunities/${sb.demo.opportunityIds[0]}`, readOnly.access_token)).status).toBe(200);
    const write = await api(`/opportunities/${sb.demo.opportunityIds[0]}`, readOnly.access_token, {
      method: "PUT",
      body: JSON.stringify({ name: "nope" }),
    });
    expect(write.status).toBe(401);
    expect(await write.json()).toMatchObject({ message: "The token is not authorized for this scope." });
    const notes = await api(`/contacts/${sb.demo.contactIds[0]}/notes`, readOnly.access_token);
    expect(notes.status).toBe(401);
    const agency = await sb.control<{ access_token: string }>("POST", "/oauth/connect", {
      companyId: sb.demo.companyId,
      userType: "Company",
    });
    const agencyOnOpps = await api(`/opportunities/${sb.demo.opportunityIds[0]}`, agency.access_token);
    expect(agencyOnOpps.status).toBe(401);
  });

  it("happy: an agency token gets a location token through /oauth/locationToken", async () => {
    const agency = await sb.control<{ access_token: string; approvedLocations: string[] }>("POST", "/oauth/connect", {
      companyId: sb.demo.companyId,
      userType: "Company",
    });
    expect(agency.approvedLocations).toEqual(expect.arrayContaining([sb.demo.locationId, sb.demo.otherLocationId]));
    const res = await api("/oauth/locationToken", agency.access_token, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ companyId: sb.demo.companyId, locationId: sb.demo.locationId }).toString(),
    });
    expect(res.status).toBe(200);
    const loc = (await res.json()) as { access_token: string; locationId: string };
    expect(loc.locationId).toBe(sb.demo.locationId);
    expect((await api(`/opportunities/pipelines?locationId=${sb.demo.locationId}`, loc.access_token)).status).toBe(200);
  });
});

describe("rate limits", () => {
  it("error: the 101st request within 10 s for one location gets 429 with the five X-RateLimit-* headers", async () => {
    const { token: pit } = await sb.control<{ token: string }>("POST", "/pit", {});
    const path = `/opportunities/pipelines?locationId=${sb.demo.locationId}`;
    const first = await api(path, pit);
    expect(first.headers.get("x-ratelimit-max")).toBe("100");
    expect(first.headers.get("x-ratelimit-remaining")).toBe("99");
    expect(first.headers.get("x-ratelimit-interval-milliseconds")).toBe("10000");
    expect(first.headers.get("x-ratelimit-limit-daily")).toBe("200000");
    expect(first.headers.get("x-ratelimit-daily-remaining")).toBe("199999");
    const statuses = await Promise.all(Array.from({ length: 99 }, () => api(path, pit).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const limited = await api(path, pit);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(limited.headers.get("x-ratelimit-max")).toBe("100");
    expect(limited.headers.get("x-ratelimit-interval-milliseconds")).toBe("10000");
    expect(limited.headers.get("x-ratelimit-limit-daily")).toBe("200000");
    expect(limited.headers.get("x-ratelimit-daily-remaining")).toBe("199900");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ statusCode: 429, traceId: expect.any(String) });
    // Locations do not pool: another location's PIT is not limited.
    const { token: other } = await sb.control<{ token: string }>("POST", "/pit", {
      locationId: sb.demo.otherLocationId,
    });
    expect((await api(`/opportunities/pipelines?locationId=${sb.demo.otherLocationId}`, other)).status).toBe(200);
    // The window rolls in sandbox time.
    await fetch(`${sb.url}/_sandbox/time/advance`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ms: 10_000 }),
    });
    expect((await api(path, pit)).status).toBe(200);
  });

  it("happy: limits are configurable and Retry-After can be turned off", async () => {
    await sb.control("PUT", "/ratelimit", { max: 2, intervalMs: 1000, retryAfter: false });
    const { token: pit } = await sb.control<{ token: string }>("POST", "/pit", {});
    const path = `/opportunities/pipelines?locationId=${sb.demo.locationId}`;
    expect((await api(path, pit)).status).toBe(200);
    expect((await api(path, pit)).status).toBe(200);
    const limited = await api(path, pit);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBeNull();
    expect(limited.headers.get("x-ratelimit-interval-milliseconds")).toBe("1000");
  });
});

describe("control API", () => {
  it("error: bad input answers a clear 400 (or 404 for unknown records), never a 500", async () => {
    const cases: Array<[string, string, unknown, number]> = [
      ["PUT", "/faults", { errorRate: 2 }, 400],
      ["PUT", "/faults", "not json", 400],
      ["POST", "/faults/script", { status: 500, path: "([" }, 400],
      ["POST", "/opportunities", { name: "" }, 400],
      ["POST", "/opportunities/unknown/stage", { stageName: "Closed" }, 404],
      ["POST", "/opportunities/unknown/status", { status: "won" }, 404],
      ["PUT", "/ratelimit", { max: -1 }, 400],
      ["POST", "/webhooks/subscribers", { url: "ftp://x" }, 400],
      ["PUT", "/webhooks/mode", { mode: "sometimes" }, 400],
      ["POST", "/pit", { locationId: "nope" }, 404],
      ["POST", "/locations/nope/deactivate", undefined, 404],
      ["POST", "/time/advance", { ms: -5 }, 400],
      ["GET", "/no-such-endpoint", undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await fetch(`${sb.url}/_sandbox/highlevel${path}`, {
        method,
        headers: { "Content-Type": "application/json" },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(await res.json(), `${method} ${path}`).toHaveProperty("error");
    }
  });

  it("error: malformed API input gets HighLevel's error kind, never a 500", async () => {
    const pit = sb.demo.pit;
    const cases: Array<[string, string, string | undefined, number]> = [
      ["POST", "/opportunities/", "{not json", 400],
      ["POST", "/opportunities/", "[1,2]", 422],
      ["GET", `/opportunities/search?location_id=${sb.demo.locationId}&limit=101`, undefined, 422],
      ["GET", `/opportunities/search?location_id=${sb.demo.locationId}&limit=abc`, undefined, 422],
      ["GET", `/opportunities/search?location_id=${sb.demo.locationId}&date=2024-01-01`, undefined, 422],
      ["GET", "/opportunities/search", undefined, 422],
      ["PUT", `/opportunities/${sb.demo.opportunityIds[0]}`, JSON.stringify({ pipelineStageId: "not-a-stage" }), 400],
      [
        "PUT",
        `/opportunities/${sb.demo.opportunityIds[0]}`,
        JSON.stringify({ customFields: [{ id: "nope", field_value: "x" }] }),
        422,
      ],
      ["POST", "/contacts/", JSON.stringify({ locationId: sb.demo.locationId, email: "not-an-email" }), 422],
      ["GET", "/contacts/nope/notes", undefined, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await api(path, pit, { method, ...(body === undefined ? {} : { body }) });
      const json = (await res.json()) as Record<string, unknown>;
      expect(res.status, `${method} ${path} ${JSON.stringify(json)}`).toBe(status);
      expect(json.statusCode).toBe(status);
      expect(json.traceId).toEqual(expect.any(String));
    }
    const noVersion = await fetch(`${sb.highlevel}/opportunities/pipelines?locationId=${sb.demo.locationId}`, {
      headers: { Authorization: `Bearer ${pit}` },
    });
    expect(noVersion.status).toBe(400);
    const badVersion = await fetch(`${sb.highlevel}/opportunities/pipelines?locationId=${sb.demo.locationId}`, {
      headers: { Authorization: `Bearer ${pit}`, Version: "2020-01-01" },
    });
    expect(badVersion.status).toBe(400);
  });
});
