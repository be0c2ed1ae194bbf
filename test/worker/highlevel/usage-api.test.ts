/** `GET /api/usage/highlevel/:locationId`: a location's gate usage as JSON, admin only, token-free. */
import { exports, env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { gateFor, HIGHLEVEL_LIMITS, tokenGate } from "../../../src/gate/client.ts";
import { locationConnectionId } from "../../../src/store/connections.ts";
import { TEST_BINDINGS } from "../../bindings.ts";

const ADMIN = { Authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };
const get = (locationId: string, headers: Record<string, string> = ADMIN) =>
  exports.default.fetch(`http://worker.test/api/usage/highlevel/${locationId}`, { headers });

/** A connected location whose gate has seen `calls` answers, the last `rateLimited` of them 429. */
async function connectedWithTraffic(calls: number, rateLimited: number) {
  const locationId = `loc-usage-${crypto.randomUUID().slice(0, 8)}`;
  const id = locationConnectionId(locationId);
  await tokenGate(env, id).installTokens({
    connectionId: id,
    kind: "location",
    locationId,
    companyId: "co",
    tokenSource: "refresh",
    accessToken: "at-secret-usage",
    refreshToken: "rt-secret-usage",
    expiresInSeconds: 86_399,
    scopes: ["opportunities.readonly"],
    userId: null,
    appId: null,
  });
  const gate = gateFor(env, "hl", locationId);
  for (let i = 0; i < calls; i++) {
    const permit = await gate.acquire({ lane: "reconcile", limits: HIGHLEVEL_LIMITS });
    if (!permit.ok) throw new Error(permit.reason);
    const status = i >= calls - rateLimited ? 429 : 200;
    await gate.report(permit.permitId, {
      status,
      headers: {
        "x-ratelimit-max": "100",
        "x-ratelimit-remaining": String(99 - i),
        "x-ratelimit-interval-milliseconds": "10000",
        ...(status === 429 ? { "retry-after": "1" } : {}),
      },
    });
  }
  return locationId;
}

describe("GET /api/usage/highlevel/:locationId", () => {
  it("happy: answers the gate's usage and the connection's token-free summary", async () => {
    const locationId = await connectedWithTraffic(3, 1);
    const res = await get(locationId);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("secret-usage");
    expect(text).not.toMatch(/token_?enc|accessTokenEnc|refreshTokenEnc/i);
    const body: unknown = JSON.parse(text);
    expect(body).toMatchObject({
      locationId,
      connection: { id: locationConnectionId(locationId), status: "active" },
      usage: { daily: { used: 3 }, rateLimited24h: 1, inflight: 0 },
    });
    expect(body).toHaveProperty("usage.pausedUntil.reconcile");
  });

  it("security: without admin credentials it is 401 and reveals nothing", async () => {
    const locationId = await connectedWithTraffic(1, 0);
    const res = await get(locationId, {});
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain(locationId);
    expect((await get(locationId, { Authorization: "Bearer wrong-token-0123456789" })).status).toBe(401);
  });

  it("error: an unknown location is 404 and a malformed id 400", async () => {
    expect((await get(`nobody-${crypto.randomUUID().slice(0, 8)}`)).status).toBe(404);
    expect((await get("bad%20id%3B")).status).toBe(400);
  });
});
