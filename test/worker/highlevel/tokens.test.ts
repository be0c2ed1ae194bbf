import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { tokenGate } from "../../../src/gate/client.ts";
import { createHighLevelClient, HighLevelError } from "../../../src/highlevel/client.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { useNetwork } from "../helpers/network.ts";
import { createFakeHighLevel, type FakeHighLevel } from "./fake-highlevel.ts";

let fake: FakeHighLevel = createFakeHighLevel();
const net = useNetwork(() => {
  fake = createFakeHighLevel();
  return { "sandbox.test": (r) => fake.fetch(r) };
});

/** Installs a connection whose access token expires in `expiresIn` seconds. */
async function install(expiresIn = 86399) {
  const locationId = `loc-${crypto.randomUUID()}`;
  const pair = fake.issue();
  const connectionId = locationConnectionId(locationId);
  await tokenGate(env, connectionId).installTokens({
    connectionId,
    kind: "location",
    locationId,
    companyId: "co-1",
    tokenSource: "refresh",
    accessToken: pair.access,
    refreshToken: pair.refresh,
    expiresInSeconds: expiresIn,
    scopes: ["opportunities.readonly"],
    userId: "u-1",
    appId: null,
  });
  return { locationId, connectionId, pair };
}

describe("token refresh (AccountGate)", () => {
  it("happy: 50 concurrent calls at an expired token cause exactly one /oauth/token call and all succeed", async () => {
    const { locationId, connectionId, pair } = await install(1);
    fake.expire(pair.access);
    const hl = createHighLevelClient(env, loadConfig(env), locationId);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => hl.opportunities.get(`opp-${i}`)));
    expect(results.map((o) => o.id)).toEqual(Array.from({ length: 50 }, (_, i) => `opp-${i}`));
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
    const row = await getConnection(env.DB, connectionId);
    expect(row?.tokenVersion).toBe(2);
    expect(row?.status).toBe("active");
  });

  it("security: tokens are stored encrypted, bound to their row", async () => {
    const { connectionId, pair } = await install();
    const raw = await env.DB.prepare("SELECT access_token_enc, refresh_token_enc, key_id FROM connections WHERE id = ?")
      .bind(connectionId)
      .first<Record<string, string>>();
    expect(raw?.access_token_enc).toMatch(/^v1\.k1\./);
    expect(JSON.stringify(raw)).not.toContain(pair.access);
    expect(JSON.stringify(raw)).not.toContain(pair.refresh);
    expect(raw?.key_id).toBe("k1");
  });

  it("happy: a 401 on a call refreshes once and retries", async () => {
    const { locationId, pair } = await install();
    fake.expire(pair.access); // HighLevel revoked it before our clock says so
    const hl = createHighLevelClient(env, loadConfig(env), locationId);
    const opp = await hl.opportunities.get("o-1");
    expect(opp.customFields).toEqual([{ id: "cf1", type: "string", value: "2026-12-01" }]);
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
    expect(fake.calls.get("GET /opportunities/o-1")).toBe(2);
  });

  it("error: a rejected (reused) refresh token marks the connection needs_reconnect and stops calling HighLevel", async () => {
    const { locationId, connectionId, pair } = await install(1);
    fake.expire(pair.access);
    fake.failNextRefresh(400, {
      statusCode: 400,
      error: "invalid_grant",
      message: "Invalid grant: refresh token is invalid",
    });
    const hl = createHighLevelClient(env, loadConfig(env), locationId);
    const err = await hl.opportunities.get("o-1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    if (err instanceof HighLevelError) {
      expect(err.category).toBe("reconnect");
      expect(err.retryable).toBe(false);
    }
    expect((await getConnection(env.DB, connectionId))?.status).toBe("needs_reconnect");
    await expect(hl.opportunities.get("o-2")).rejects.toMatchObject({ category: "reconnect" });
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
  });

  it("error: 'Location is not active' backs off with the same refresh token, which works later", async () => {
    const { locationId, connectionId, pair } = await install(1);
    fake.expire(pair.access);
    fake.failNextRefresh(400, { statusCode: 400, message: "Location is not active" });
    const hl = createHighLevelClient(env, loadConfig(env), locationId);
    const err = await hl.opportunities.get("o-1").catch((e: unknown) => e);
    expect(err).toMatchObject({ category: "server", retryable: true });
    if (err instanceof HighLevelError) expect(err.retryAfterMs).toBeGreaterThan(4 * 60 * 1000);
    const row = await getConnection(env.DB, connectionId);
    expect(row?.status).toBe("backoff");
    // During the backoff nobody calls /oauth/token again …
    await expect(hl.opportunities.get("o-2")).rejects.toMatchObject({ category: "server" });
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
    // … and once the backoff has passed, the same (unspent) refresh token works.
    const stub = tokenGate(env, connectionId);
    expect(await stub.tokenStatus(connectionId)).toMatchObject({ status: "backoff" });
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE tokens SET state = json_set(state, '$.retryAt', 1) WHERE connection_id = ?",
        connectionId,
      );
    });
    expect((await hl.opportunities.get("o-3")).id).toBe("o-3");
    expect(fake.calls.get("POST /oauth/token")).toBe(2);
    expect((await getConnection(env.DB, connectionId))?.status).toBe("active");
  });

  it("security: a 2xx refresh answer that fails the schema keeps HighLevel's rotated refresh token for the next refresh", async () => {
    const { locationId, connectionId, pair } = await install(1);
    fake.expire(pair.access);
    const rotated = fake.issue(); // what HighLevel minted while spending pair.refresh
    const presented: string[] = [];
    fake.override("POST /oauth/token", async (req) => {
      presented.push(new URLSearchParams(await req.clone().text()).get("refresh_token") ?? "");
      if (presented.length > 1) return null;
      // `expires_in` as a string: the answer fails the schema, yet the old refresh token is spent.
      return new Response(
        JSON.stringify({
          access_token: rotated.access,
          refresh_token: rotated.refresh,
          expires_in: "86399",
          userType: "Location",
        }),
        { status: 200, headers: { "content-type": "application/json" } },
      );
    });
    const hl = createHighLevelClient(env, loadConfig(env), locationId);
    expect((await hl.opportunities.get("o-1")).id).toBe("o-1");
    expect(presented).toEqual([pair.refresh, rotated.refresh]);
    expect((await getConnection(env.DB, connectionId))?.status).toBe("active");
  });

  it("happy: the cron refreshes tokens that expire soon and leaves fresh ones alone", async () => {
    const soon = await install(60);
    const fresh = await install();
    expect(await tokenGate(env, soon.connectionId).refreshIfDue(soon.connectionId, 30 * 60 * 1000)).toBe("refreshed");
    expect(await tokenGate(env, fresh.connectionId).refreshIfDue(fresh.connectionId, 30 * 60 * 1000)).toBe("fresh");
    expect(fake.calls.get("POST /oauth/token")).toBe(1);
    expect(net.calls.every((c) => !c.url.includes("refresh_token"))).toBe(true);
  });

  it("error: a location with no connection fails as reconnect without any call", async () => {
    const hl = createHighLevelClient(env, loadConfig(env), `loc-none-${crypto.randomUUID()}`);
    await expect(hl.opportunities.get("x")).rejects.toMatchObject({ category: "reconnect" });
    expect(net.calls).toHaveLength(0);
  });
});
