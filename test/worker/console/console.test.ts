/**
 * The operator console: login (session cookie, recorded server-side so logout revokes it; failed
 * attempts throttled per client), protection of every page and form (no session → login redirect
 * / 401; CSRF-less POST refused), secure headers, and pages rendering real data from D1 and the
 * gate (or saying plainly that there is none).
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { consoleApp } from "../../../src/http/console/app.tsx";
import { createSessionValue, newSessionId, sessionIdOf } from "../../../src/http/console/session.ts";
import { LOGIN_WINDOW_MS, countLoginAttempt, insertConsoleSession } from "../../../src/store/console-auth.ts";
import { gateFor, HIGHLEVEL_LIMITS, type GateUsage } from "../../../src/gate/client.ts";
import { createAccount, getAccount } from "../../../src/store/accounts.ts";
import { locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import { recordFailure } from "../../../src/store/failures.ts";
import { recordEvent } from "../../../src/store/sync-events.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const BASE = "https://worker.test";
let cookie = "";

async function login(): Promise<string> {
  const res = await exports.default.fetch(`${BASE}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { origin: BASE, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN, next: "/console/activity" }),
  });
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/console/activity");
  const set = res.headers.get("set-cookie") ?? "";
  expect(set).toMatch(/^__Host-console_session=v2\.\d+\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43};/);
  expect(set).toMatch(/HttpOnly/);
  expect(set).toMatch(/Secure/);
  expect(set).toMatch(/SameSite=Strict/);
  return set.split(";")[0] ?? "";
}

const get = (path: string, headers: Record<string, string> = { cookie }) =>
  exports.default.fetch(`${BASE}${path}`, { redirect: "manual", headers });
const post = (path: string, form: Record<string, string>, headers: Record<string, string> = { cookie, origin: BASE }) =>
  exports.default.fetch(`${BASE}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form),
  });

/** A login attempt as Cloudflare forwards it from client address `ip`. */
const loginFrom = (ip: string, token: string) =>
  exports.default.fetch(`${BASE}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { origin: BASE, "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": ip },
    body: new URLSearchParams({ token }),
  });
const WRONG = "wrong-token-0123456789";

const pages = ["connections", "mapping", "activity", "problems", "backfill", "usage", "report", "notifications"];

describe("console", () => {
  useNetwork({});

  beforeAll(async () => {
    cookie = await login();
  });

  it("security: every page redirects to the login without a session, and forms answer 401", async () => {
    for (const p of pages) {
      const res = await get(`/console/${p}`, {});
      expect(res.status, p).toBe(303);
      expect(res.headers.get("location")).toBe(`/console/login?next=${encodeURIComponent(`/console/${p}`)}`);
    }
    expect((await post("/console/problems/replay-all", { account: "x" }, { origin: BASE })).status).toBe(401);
    expect((await post("/console/mapping", { account: "x" }, { origin: BASE })).status).toBe(401);
  });

  it("security: a wrong token does not log in; a forged or expired session is refused", async () => {
    const bad = await exports.default.fetch(`${BASE}/console/login`, {
      method: "POST",
      redirect: "manual",
      headers: { origin: BASE, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: "not-the-admin-token-at-all" }),
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("set-cookie")).toBeNull();
    const forged = await createSessionValue("some-other-admin-token-xyz", newSessionId());
    expect((await get("/console/activity", { cookie: `__Host-console_session=${forged}` })).status).toBe(303);
    const expiredId = newSessionId();
    await insertConsoleSession(env.DB, expiredId, Date.now() + 3600_000);
    const expired = await createSessionValue(TEST_BINDINGS.ADMIN_TOKEN, expiredId, Date.now() - 9 * 3600_000);
    expect(await sessionIdOf(TEST_BINDINGS.ADMIN_TOKEN, expired)).toBeNull();
    expect((await get("/console/activity", { cookie: `__Host-console_session=${expired}` })).status).toBe(303);
  });

  it("security: a correctly signed cookie whose session is not recorded server-side is refused", async () => {
    const unrecorded = await createSessionValue(TEST_BINDINGS.ADMIN_TOKEN, newSessionId());
    expect(await sessionIdOf(TEST_BINDINGS.ADMIN_TOKEN, unrecorded)).not.toBeNull();
    expect((await get("/console/activity", { cookie: `__Host-console_session=${unrecorded}` })).status).toBe(303);
  });

  it("security: logout revokes the session server-side — a copy of the cookie stops working", async () => {
    const mine = await login();
    expect((await get("/console/activity", { cookie: mine })).status).toBe(200);
    const out = await post("/console/logout", {}, { cookie: mine, origin: BASE });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/__Host-console_session=;/);
    // The browser dropped its cookie; someone who copied it replays it.
    const replay = await get("/console/activity", { cookie: mine });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toContain("/console/login");
    // Other sessions are untouched.
    expect((await get("/console/activity")).status).toBe(200);
  });

  it("security: login throttle per client: 6th try in 15 min → 429 + Retry-After, right token or not", async () => {
    const ip = "203.0.113.61";
    const attempt = (token: string, from: string) => loginFrom(from, token);
    for (let i = 0; i < 5; i++) expect((await attempt(WRONG, ip)).status, `attempt ${i + 1}`).toBe(401);
    const blocked = await attempt(WRONG, ip);
    expect(blocked.status).toBe(429);
    const retryAfter = Number(blocked.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(await blocked.text()).toContain("Too many sign-in attempts");
    const right = await attempt(TEST_BINDINGS.ADMIN_TOKEN, ip);
    expect(right.status).toBe(429);
    expect(right.headers.get("set-cookie")).toBeNull();
    // Another client is not affected, and its success resets its own count.
    const other = "198.51.100.62";
    for (let i = 0; i < 4; i++) expect((await attempt(WRONG, other)).status).toBe(401);
    expect((await attempt(TEST_BINDINGS.ADMIN_TOKEN, other)).status).toBe(303);
    for (let i = 0; i < 5; i++) expect((await attempt(WRONG, other)).status).toBe(401);
  });

  it("security: IPv6 clients are throttled by /64, so rotating addresses within it does not help", async () => {
    const prefix = "2001:db8:61:7";
    const attempt = (from: string) => loginFrom(from, WRONG);
    for (let i = 1; i <= 5; i++) expect((await attempt(`${prefix}::${i}`)).status).toBe(401);
    expect((await attempt(`${prefix}:0:0:0:beef`)).status).toBe(429);
  });

  it("security: the throttle table stays bounded — finished windows are pruned as attempts come in", async () => {
    const now = Date.now();
    for (let i = 0; i < 30; i++) await countLoginAttempt(env.DB, `v4:192.0.2.${i}`, now - LOGIN_WINDOW_MS - 60_000);
    const stale = async () => {
      const sql = "SELECT COUNT(*) AS n FROM console_login_attempts WHERE window_start <= ?";
      return (
        (
          await env.DB.prepare(sql)
            .bind(now - LOGIN_WINDOW_MS)
            .first<{ n: number }>()
        )?.n ?? 0
      );
    };
    expect(await stale()).toBeGreaterThanOrEqual(30);
    await countLoginAttempt(env.DB, "v4:192.0.2.250", now);
    expect(await stale()).toBe(0);
    // Expired sessions go the same way at the next login.
    await insertConsoleSession(env.DB, newSessionId(), now - 1000, now - 9 * 3600_000);
    await login();
    const expiredSessions = await env.DB.prepare("SELECT COUNT(*) AS n FROM console_sessions WHERE expires_at <= ?")
      .bind(Date.now())
      .first<{ n: number }>();
    expect(expiredSessions?.n).toBe(0);
  });

  it("security: a POST without a same-site Origin is refused (CSRF), even with a valid session", async () => {
    const cross = await post(
      "/console/problems/replay-all",
      { account: "con-acc" },
      { cookie, origin: "https://evil.example" },
    );
    expect(cross.status).toBe(403);
    const none = await exports.default.fetch(`${BASE}/console/problems/replay-all`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: "account=con-acc",
    });
    expect(none.status).toBe(403);
    const login = await exports.default.fetch(`${BASE}/console/login`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN }),
    });
    expect(login.status).toBe(403);
    // PUBLIC_URL's origin is this site too, even when the request arrived under another one.
    const publicOrigin = { cookie, origin: TEST_BINDINGS.PUBLIC_URL };
    const viaPublicUrl = await post("/console/problems/replay-all", { account: "con-acc" }, publicOrigin);
    expect(viaPublicUrl.status).toBe(303);
  });

  it("happy: pages send a script-free CSP and frame protection", async () => {
    const res = await get("/console/login", {});
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("script-src");
    expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
  });

  it("happy: without accounts the pages say so plainly", async () => {
    const accounts = await env.DB.prepare("SELECT COUNT(*) AS n FROM accounts").first<{ n: number }>();
    if ((accounts?.n ?? 0) > 0) return; // another test file created accounts in this database
    const res = await get("/console/activity");
    expect(await res.text()).toContain("No account exists yet");
  });

  it("happy: activity shows the real trail, filters it, and a record's history; problems list failures with replay", async () => {
    if (!(await getAccount(env.DB, "con-acc")))
      await createAccount(env.DB, { id: "con-acc", name: "Console Co", workspaceId: null, locations: [] });
    await recordEvent(env.DB, {
      accountId: "con-acc",
      kind: "sync",
      direction: "to_highlevel",
      fdId: "deal_con_1",
      hlId: "opp_con_1",
      outcome: "ok",
      detail: { changed: ["stage"], calls: 2 },
    });
    await recordEvent(env.DB, {
      accountId: "con-acc",
      kind: "sync",
      direction: "to_fourdegrees",
      fdId: "deal_con_2",
      hlId: "opp_con_2",
      outcome: "failed",
      detail: { error: "HighLevel said 422" },
    });
    const all = await (await get("/console/activity?account=con-acc")).text();
    expect(all).toContain("deal_con_1");
    expect(all).toContain("deal_con_2");
    expect(all).toContain("changed: stage");
    expect(all).toContain("<svg");
    const filtered = await (await get("/console/activity?account=con-acc&outcome=failed")).text();
    expect(filtered).toContain("deal_con_2");
    expect(filtered).not.toContain("deal_con_1<");
    const history = await (await get("/console/activity/record?account=con-acc&fd=deal_con_1")).text();
    expect(history).toContain("opp_con_1");
    expect(history).not.toContain("deal_con_2");

    await recordFailure(env.DB, {
      id: "con-fail-1",
      accountId: "con-acc",
      source: "permanent",
      message: {
        v: 1,
        kind: "sync.record",
        accountId: "con-acc",
        side: "fourdegrees",
        record: "deal",
        recordId: "deal_con_2",
        locationId: null,
        lane: "live",
        force: false,
      },
      reason: "HighLevel said 422: stage missing",
    });
    const problems = await (await get("/console/problems?account=con-acc")).text();
    expect(problems).toContain("HighLevel said 422: stage missing");
    expect(problems).toContain("Replay all 1");
    const replay = await post("/console/problems/replay", { account: "con-acc", id: "con-fail-1" });
    expect(replay.status).toBe(303);
    expect(decodeURIComponent((replay.headers.get("location") ?? "").replace(/\+/g, " "))).toContain(
      "Replayed con-fail-1",
    );
    const row = await env.DB.prepare("SELECT status FROM sync_failures WHERE id = 'con-fail-1'").first<{
      status: string;
    }>();
    expect(row?.status).toBe("replayed");
    const again = await post("/console/problems/replay", { account: "con-acc", id: "con-fail-1" });
    expect(decodeURIComponent((again.headers.get("location") ?? "").replace(/\+/g, " "))).toContain("already replayed");
  });

  it("security: a link cannot make a page show its own text as the console's message; the console's own redirect can", async () => {
    const forged = await (
      await get("/console/problems?account=con-acc&error=Session+expired%3A+call+%2B1-555-0100")
    ).text();
    expect(forged).not.toContain("Session expired");
    const badMac = await (await get(`/console/problems?account=con-acc&ok=Saved&fm=${"A".repeat(43)}`)).text();
    expect(badMac).not.toContain(">Saved<");
    const res = await post("/console/problems/replay", { account: "con-acc", id: "no-such-failure" });
    const location = res.headers.get("location") ?? "";
    expect(location).toMatch(/[?&]fm=[A-Za-z0-9_-]{43}/);
    const shown = await (await get(location)).text();
    expect(shown).toContain("no-such-failure");
    // The MAC covers the text: the same MAC with another text shows nothing.
    const swapped = location.replace(/([?&]error=)[^&]*/, "$1Something+else");
    expect(await (await get(swapped)).text()).not.toContain("Something else");
  });

  it("happy: backfill and usage say plainly when there is nothing yet", async () => {
    expect(await (await get("/console/backfill?account=con-acc")).text()).toContain(
      "No backfill has run for this account yet.",
    );
    expect(await (await get("/console/usage?account=con-acc")).text()).toContain("no HighLevel location yet");
    expect(await (await get("/console/report?account=con-acc")).text()).toContain("Save a mapping first");
  });

  it("error: the report rejects a probability outside 0–100 naming the stage", async () => {
    const res = await post("/console/report/probabilities", { account: "con-acc", "p:stage_x": "140" });
    expect(decodeURIComponent(res.headers.get("location") ?? "").replace(/\+/g, " ")).toContain(
      "stage_x: the probability must be a whole number from 0 to 100",
    );
  });

  it("happy: the Usage page shows the same figures as GET /api/usage/highlevel/:locationId; an unconnected location is said so on both", async () => {
    await createAccount(env.DB, {
      id: "con-usage",
      name: "Usage Co",
      workspaceId: null,
      locations: ["locUsageC", "locUsageGone"],
    });
    const id = locationConnectionId("locUsageC");
    await saveConnectionTokens(env.DB, {
      id,
      kind: "location",
      locationId: "locUsageC",
      companyId: null,
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
    const gate = gateFor(env, "hl", "locUsageC");
    for (const status of [200, 200, 200, 429]) {
      const permit = await gate.acquire({ lane: "live", limits: HIGHLEVEL_LIMITS });
      if (!permit.ok) throw new Error(permit.reason);
      await gate.report(permit.permitId, {
        status,
        headers:
          status === 429
            ? { "retry-after": "0" }
            : { "x-ratelimit-daily-remaining": "187654", "x-ratelimit-limit-daily": "200000" },
      });
    }
    const html = await (await get("/console/usage?account=con-usage")).text();
    const figure = (name: string) =>
      Number((new RegExp(`data-figure="${name}"[^>]*>([\\d,]+)<`).exec(html)?.[1] ?? "NaN").replace(/,/g, ""));
    const api = await exports.default.fetch(`${BASE}/api/usage/highlevel/locUsageC`, {
      headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
    });
    expect(api.status).toBe(200);
    const { usage } = await api.json<{ usage: GateUsage }>();
    const dayAgo = Date.now() - 24 * 3600_000;
    expect(figure("calls24h")).toBe(
      usage.hourly.filter((h) => h.hour > dayAgo - 3600_000).reduce((n, h) => n + h.calls, 0),
    );
    expect(figure("calls24h")).toBe(4);
    expect(figure("rateLimited24h")).toBe(usage.rateLimited24h);
    expect(figure("rateLimited24h")).toBe(1);
    expect(figure("dailyRemaining")).toBe(usage.daily.remaining);
    expect(figure("burstUsed")).toBe(usage.burst.used);
    expect(html).toContain(`of ${usage.daily.limit?.toLocaleString("en-US")}`);
    // The location without a connection: the page says so, the API answers 404, no gate is asked.
    expect(html).toMatch(/locUsageGone[\s\S]*not connected/);
    expect(
      (
        await exports.default.fetch(`${BASE}/api/usage/highlevel/locUsageGone`, {
          headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
        })
      ).status,
    ).toBe(404);
  });

  it("happy: the console app mounts every page route", () => {
    const paths = new Set(consoleApp.routes.map((r) => r.path));
    for (const p of pages) expect(paths.has(`/${p}`), p).toBe(true);
  });
});
