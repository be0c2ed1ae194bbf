/**
 * The token endpoint refusing the app itself (`invalid_client`: a wrong or rotated client secret),
 * against the HighLevel sandbox: the connection keeps its refresh token, the deployment-wide
 * condition opens once, and the first refresh after the fix recovers by itself.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { tokenGate } from "../../../src/gate/client.ts";
import { CLIENT_REJECTED_RETRY_MS } from "../../../src/gate/tokens.ts";
import { getAppCondition, HIGHLEVEL_CLIENT_REJECTED, raiseAppCondition } from "../../../src/store/app-status.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { useNetwork } from "../helpers/network.ts";
import { consoleCookie } from "../helpers/console-session.ts";

const sb = createSandbox({ webhookMode: "manual" });
useNetwork({ "sandbox.test": (r) => sb.fetch(r) });

describe("HighLevel refuses the client credentials", () => {
  it("security: invalid_client keeps the refresh token, opens one condition, and recovers once the secret is fixed", async () => {
    const demo = await sb.highlevel.seedDemo();
    const grant = sb.highlevel.connect({ locationId: demo.locationId });
    const id = locationConnectionId(demo.locationId);
    const gate = tokenGate(env, id);
    const access = String(grant["access_token"]);
    await gate.installTokens({
      connectionId: id,
      kind: "location",
      locationId: demo.locationId,
      companyId: String(grant["companyId"]),
      tokenSource: "refresh",
      accessToken: access,
      refreshToken: String(grant["refresh_token"]),
      expiresInSeconds: 86_399,
      scopes: [],
      userId: null,
      appId: null,
    });
    // The secret was rotated in the Marketplace; this deployment still sends the old one.
    const secret = sb.highlevel.oauth.app.clientSecret;
    sb.highlevel.oauth.app.clientSecret = "rotated-in-the-marketplace";
    sb.highlevel.oauth.resetCounters();

    const first = await gate.accessToken(id, { rejected: access });
    expect(first).toMatchObject({ ok: false, category: "server", retryAfterMs: CLIENT_REJECTED_RETRY_MS });
    if (!first.ok) expect(first.message).toContain("client credentials");
    expect(sb.highlevel.tokenCalls()).toMatchObject({ refreshToken: 0, failed: 1 }); // refused before the grant was looked at
    const row = await getConnection(env.DB, id);
    expect(row?.status).toBe("active");
    expect(row?.refreshTokenEnc).not.toBeNull();
    expect(row?.lastError).toContain("HIGHLEVEL_CLIENT_SECRET");
    const opened = await getAppCondition(env.DB, HIGHLEVEL_CLIENT_REJECTED);
    expect(opened?.reason).toContain("Invalid client");

    // More refusals are the same episode: the condition (and its alert) is not raised again.
    expect((await gate.accessToken(id, { rejected: access })).ok).toBe(false);
    expect((await getAppCondition(env.DB, HIGHLEVEL_CLIENT_REJECTED))?.since).toBe(opened?.since);
    expect(await raiseAppCondition(env.DB, HIGHLEVEL_CLIENT_REJECTED, "again")).toBe(false);
    const session = await consoleCookie();
    const page = await (
      await exports.default.fetch("http://worker.test/console/connections", { headers: { cookie: session } })
    ).text();
    expect(page).toContain('id="client-rejected-banner"');

    // The operator fixes the secret: the next refresh spends the kept refresh token and works.
    sb.highlevel.oauth.app.clientSecret = secret;
    const recovered = await gate.accessToken(id, { rejected: access });
    expect(recovered.ok).toBe(true);
    expect(sb.highlevel.tokenCalls().refreshToken).toBe(1);
    expect(await getAppCondition(env.DB, HIGHLEVEL_CLIENT_REJECTED)).toBeNull();
    expect((await getConnection(env.DB, id))?.lastError).toBeNull();
    expect(await gate.tokenStatus(id)).toMatchObject({ status: "active" });
  });
});
