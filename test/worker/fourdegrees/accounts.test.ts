/**
 * The admin API for an account's 4Degrees key, its protection, and the encrypted store.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import {
  accountForWorkspace,
  credentialsFor,
  webhookSecretForWorkspace,
} from "../../../src/store/fourdegrees-accounts.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };
const keys = () => loadConfig(env).TOKEN_ENCRYPTION_KEY;

/** A 4Degrees that knows two keys, each in its own workspace. */
const WORKSPACES: Record<string, string> = {
  "4d_live_key_alpha_1234": "ws_alpha",
  "4d_live_key_beta_5678": "ws_beta",
  "4d_live_key_alpha_again": "ws_alpha",
  "4d_live_key_gamma_9999": "ws_gamma",
  // The deployment's FOURDEGREES_API_KEY secret (test/bindings.ts).
  [TEST_BINDINGS.FOURDEGREES_API_KEY]: "ws_single",
};
const meCalls: string[] = [];

function put(accountId: string, body: unknown, headers: Record<string, string> = ADMIN) {
  return exports.default.fetch(`http://worker.test/api/accounts/${accountId}/fourdegrees`, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("/api/accounts/{id}/fourdegrees", () => {
  useNetwork({
    "sandbox.test": (request) => {
      const key = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
      meCalls.push(new URL(request.url).pathname);
      const ws = WORKSPACES[key];
      if (!ws)
        return Response.json(
          { error: { type: "authentication", code: "invalid_api_key", message: "unknown key", request_id: "r1" } },
          { status: 401 },
        );
      return Response.json({
        workspace: { id: ws, name: ws.toUpperCase() },
        actor: { type: "api_key", id: `key_${ws}` },
      });
    },
  });

  it("security: /api refuses a missing or wrong bearer token with 401", async () => {
    const none = await exports.default.fetch("http://worker.test/api/accounts/acc1/fourdegrees");
    expect(none.status).toBe(401);
    expect((await none.json<{ error: { code: string } }>()).error.code).toBe("unauthorized");
    const wrong = await exports.default.fetch("http://worker.test/api/accounts/acc1/fourdegrees", {
      headers: { authorization: "Bearer test-admin-token-0123456780" },
    });
    expect(wrong.status).toBe(401);
    expect((await put("acc1", { apiKey: "4d_live_key_alpha_1234" }, { authorization: "Bearer nope" })).status).toBe(
      401,
    );
    expect(meCalls).toEqual([]);
  });

  it("happy: a verified key is stored encrypted, bound to its row, and summarised without the key", async () => {
    const res = await put("acc-alpha", { apiKey: "4d_live_key_alpha_1234", name: "Alpha Capital" });
    expect(res.status).toBe(200);
    const body = await res.json<{ account: Record<string, unknown> }>();
    expect(body.account).toMatchObject({
      accountId: "acc-alpha",
      workspaceId: "ws_alpha",
      keyHint: "1234",
      actor: { type: "integration", id: "key_ws_alpha" },
    });
    expect(JSON.stringify(body)).not.toContain("4d_live_key_alpha_1234");
    expect(meCalls).toContain("/4degrees/v1/me");

    const row = await env.DB.prepare("SELECT api_key_enc FROM fourdegrees_accounts WHERE account_id = ?")
      .bind("acc-alpha")
      .first<{ api_key_enc: string }>();
    expect(row?.api_key_enc).toMatch(/^v1\.k1\./);
    expect(row?.api_key_enc).not.toContain("alpha_1234");
    const account = await env.DB.prepare("SELECT name FROM accounts WHERE id = ?")
      .bind("acc-alpha")
      .first<{ name: string }>();
    expect(account?.name).toBe("Alpha Capital");

    const creds = await credentialsFor(env.DB, keys(), "acc-alpha", undefined);
    expect(creds).toEqual({
      accountId: "acc-alpha",
      apiKey: "4d_live_key_alpha_1234",
      workspaceId: "ws_alpha",
      source: "d1",
      actor: expect.objectContaining({ type: expect.any(String) }),
    });

    const get = await exports.default.fetch("http://worker.test/api/accounts/acc-alpha/fourdegrees", {
      headers: ADMIN,
    });
    expect(await get.json()).toMatchObject({ account: { workspaceId: "ws_alpha", keyHint: "1234", source: "d1" } });
  });

  it("security: a ciphertext copied into another account's row does not decrypt", async () => {
    await put("acc-beta", { apiKey: "4d_live_key_beta_5678" });
    const alpha = await put("acc-copy", { apiKey: "4d_live_key_beta_5678" }).then((r) => r.status);
    expect(alpha).toBe(409); // the beta workspace already belongs to acc-beta
    await env.DB.prepare(
      "INSERT INTO accounts (id, name, created_at, updated_at) VALUES ('acc-thief', 'x', 0, 0)",
    ).run();
    await env.DB.prepare(
      "INSERT INTO fourdegrees_accounts (account_id, workspace_id, api_key_enc, key_id, key_hint, verified_at, created_at, updated_at) SELECT 'acc-thief', 'ws_thief', api_key_enc, key_id, key_hint, 0, 0, 0 FROM fourdegrees_accounts WHERE account_id = 'acc-beta'",
    ).run();
    await expect(credentialsFor(env.DB, keys(), "acc-thief", undefined)).rejects.toThrow(/failed authentication/);
  });

  it("error: a key 4Degrees refuses is a 400 and nothing is stored", async () => {
    const res = await put("acc-bad", { apiKey: "4d_wrong_key_000000" });
    expect(res.status).toBe(400);
    expect((await res.json<{ error: { message: string } }>()).error.message).toMatch(/refused this API key/);
    expect(await env.DB.prepare("SELECT 1 FROM fourdegrees_accounts WHERE account_id = 'acc-bad'").first()).toBeNull();
  });

  it("error: a malformed body or account id is a 400 without calling 4Degrees", async () => {
    const before = meCalls.length;
    expect((await put("acc1", { key: "x" })).status).toBe(400);
    expect((await put("bad%20id", { apiKey: "4d_live_key_alpha_1234" })).status).toBe(400);
    expect(meCalls.length).toBe(before);
  });

  it("error: an account keeps its workspace — a key of another workspace is a 409 and the stored key is untouched", async () => {
    expect((await put("acc-keep", { apiKey: "4d_live_key_alpha_1234" })).status).toBe(409); // ws_alpha is acc-alpha's
    expect((await put("acc-keep", { apiKey: "4d_live_key_gamma_9999" })).status).toBe(200);
    const before = await env.DB.prepare(
      "SELECT api_key_enc FROM fourdegrees_accounts WHERE account_id = 'acc-keep'",
    ).first<{ api_key_enc: string }>();
    await env.DB.prepare("DELETE FROM fourdegrees_accounts WHERE account_id = 'acc-beta'").run();
    const res = await put("acc-keep", { apiKey: "4d_live_key_beta_5678" });
    expect(res.status).toBe(409);
    expect((await res.json<{ error: { message: string } }>()).error.message).toMatch(
      /paired with 4Degrees workspace ws_gamma/,
    );
    const after = await env.DB.prepare(
      "SELECT workspace_id, api_key_enc FROM fourdegrees_accounts WHERE account_id = 'acc-keep'",
    ).first<{ workspace_id: string; api_key_enc: string }>();
    expect(after).toEqual({ workspace_id: "ws_gamma", api_key_enc: before?.api_key_enc });
    expect(await accountForWorkspace(env.DB, "ws_beta")).toBeNull();
    // Deleting the key releases the pairing; then the account may take another workspace.
    expect(
      (
        await exports.default.fetch("http://worker.test/api/accounts/acc-keep/fourdegrees", {
          method: "DELETE",
          headers: ADMIN,
        })
      ).status,
    ).toBe(204);
    expect((await put("acc-keep", { apiKey: "4d_live_key_beta_5678" })).status).toBe(200);
    expect(await accountForWorkspace(env.DB, "ws_beta")).toBe("acc-keep");
  });

  it("happy: {useSecret: true} verifies the FOURDEGREES_API_KEY secret and records its workspace for the account", async () => {
    const res = await put("acc-single", { useSecret: true, name: "Single" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      account: {
        accountId: "acc-single",
        workspaceId: "ws_single",
        keyHint: TEST_BINDINGS.FOURDEGREES_API_KEY.slice(-4),
      },
    });
    expect(await accountForWorkspace(env.DB, "ws_single")).toBe("acc-single");
    expect(await credentialsFor(env.DB, keys(), "acc-single", undefined)).toEqual({
      accountId: "acc-single",
      apiKey: TEST_BINDINGS.FOURDEGREES_API_KEY,
      workspaceId: "ws_single",
      source: "d1",
      actor: expect.objectContaining({ type: expect.any(String) }),
    });
    // Both shapes at once, or anything else, is refused before 4Degrees is called.
    const before = meCalls.length;
    expect((await put("acc-single", { useSecret: true, apiKey: "4d_live_key_gamma_9999" })).status).toBe(400);
    expect((await put("acc-single", { useSecret: false })).status).toBe(400);
    expect(meCalls.length).toBe(before);
  });

  it("happy: replacing and deleting a key; the single-account secret is the fallback", async () => {
    expect((await put("acc-alpha", { apiKey: "4d_live_key_alpha_again" })).status).toBe(200);
    expect((await credentialsFor(env.DB, keys(), "acc-alpha", undefined)).apiKey).toBe("4d_live_key_alpha_again");
    const del = await exports.default.fetch("http://worker.test/api/accounts/acc-alpha/fourdegrees", {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(del.status).toBe(204);
    expect(
      (
        await exports.default.fetch("http://worker.test/api/accounts/acc-alpha/fourdegrees", {
          method: "DELETE",
          headers: ADMIN,
        })
      ).status,
    ).toBe(404);
    expect(await credentialsFor(env.DB, keys(), "acc-alpha", "4d_secret_key")).toEqual({
      accountId: "acc-alpha",
      apiKey: "4d_secret_key",
      workspaceId: null,
      source: "secret",
    });
    await expect(credentialsFor(env.DB, keys(), "acc-alpha", undefined)).rejects.toThrow(/has no 4Degrees API key/);
  });

  it("security: a workspace's own webhook secret is set through the admin API, validated, stored encrypted, never answered, and cleared back to the global one", async () => {
    const secretUrl = "http://worker.test/api/accounts/acc-hooks/fourdegrees/webhook-secret";
    const putSecret = (body: unknown, headers: Record<string, string> = ADMIN) =>
      exports.default.fetch(secretUrl, {
        method: "PUT",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const SECRET = "whsec_aG9va3Mtd29ya3NwYWNlLXNlY3JldC0wMTIzNDU2Nzg5";
    expect((await putSecret({ secret: SECRET }, { authorization: "Bearer nope" })).status).toBe(401);
    // No stored key yet: the workspace is unknown.
    const early = await putSecret({ secret: SECRET });
    expect(early.status).toBe(404);
    expect((await early.json<{ error: { message: string } }>()).error.message).toMatch(
      /PUT \/api\/accounts\/acc-hooks\/fourdegrees first/,
    );
    expect((await put("acc-hooks", { apiKey: "4d_live_key_gamma_9999" })).status).toBe(200);
    for (const bad of [{ secret: "not-a-secret" }, { secret: "whsec_c2hvcnQ=" }, { secret: SECRET, extra: 1 }, {}]) {
      const res = await putSecret(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(JSON.stringify(await res.json())).toMatch(/secret|body must be/);
    }
    const set = await putSecret({ secret: SECRET });
    expect(set.status).toBe(200);
    const text = await set.text();
    expect(JSON.parse(text)).toMatchObject({
      account: { accountId: "acc-hooks", workspaceId: "ws_gamma", webhookSecret: "workspace" },
    });
    expect(text).not.toContain(SECRET.slice(6));
    const get = await exports.default.fetch("http://worker.test/api/accounts/acc-hooks/fourdegrees", {
      headers: ADMIN,
    });
    const getText = await get.text();
    expect(JSON.parse(getText)).toMatchObject({ account: { webhookSecret: "workspace" } });
    expect(getText).not.toContain(SECRET.slice(6));
    const row = await env.DB.prepare(
      "SELECT webhook_secret_enc FROM fourdegrees_accounts WHERE account_id = 'acc-hooks'",
    ).first<{ webhook_secret_enc: string }>();
    expect(row?.webhook_secret_enc).toMatch(/^v1\.k1\./);
    expect(await webhookSecretForWorkspace(env.DB, keys(), "ws_gamma")).toBe(SECRET);
    // Re-pairing with a rotated API key keeps the webhook secret.
    expect((await put("acc-hooks", { apiKey: "4d_live_key_gamma_9999" })).status).toBe(200);
    expect(await webhookSecretForWorkspace(env.DB, keys(), "ws_gamma")).toBe(SECRET);
    const cleared = await exports.default.fetch(secretUrl, { method: "DELETE", headers: ADMIN });
    expect(await cleared.json()).toMatchObject({ account: { webhookSecret: "global" } });
    expect(await webhookSecretForWorkspace(env.DB, keys(), "ws_gamma")).toBeNull();
  });
});
