/**
 * One statement for an account's whole configuration (src/store/account-config.ts): by each of its
 * routes it answers exactly what the separate reads answer — an account with locations, a
 * connection, a 4Degrees key with a webhook secret and enabled and disabled rules of both kinds;
 * one with nothing but its `accounts` row; a paused one — and through the cache one miss fills
 * every entry of the account, while a forget during that load keeps none of them.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { addRule } from "../automations/helpers.ts";
import { loadConfig } from "../../../src/config.ts";
import { encryptSecret } from "../../../src/lib/crypto.ts";
import { ruleAad } from "../../../src/notify/deliver.ts";
import {
  cachedAccount,
  cachedAccountIdOfLocation,
  cachedAccountIdOfWorkspace,
  cachedAutomationRules,
  cachedConnectionScopes,
  cachedKeyRow,
  cachedNotificationRules,
  cachedWorkspaceKeyRow,
  readAccountConfig,
} from "../../../src/store/account-config.ts";
import { accountIdForLocation, createAccount, getAccount, updateAccount } from "../../../src/store/accounts.ts";
import { listAutomations } from "../../../src/store/automations.ts";
import { cachedConfigSet, forgetConfig, setConfigCacheTtl, WRITE_QUIET_MS } from "../../../src/store/config-cache.ts";
import { getConnection, locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import {
  accountForWorkspace,
  credentialsFor,
  saveFourDegreesKey,
  setFourDegreesWebhookSecret,
  webhookSecretForWorkspace,
  webhookSecretOf,
} from "../../../src/store/fourdegrees-accounts.ts";
import { insertRule, listRules, type NotificationRule } from "../../../src/store/notifications.ts";

const keys = () => loadConfig(env).TOKEN_ENCRYPTION_KEY;
afterEach(() => setConfigCacheTtl(0));

async function notificationRule(accountId: string, id: string, enabled: boolean, createdAt: number) {
  const rule: NotificationRule = {
    id,
    accountId,
    name: `rule ${id}`,
    trigger: "stage_entered",
    params: { stage: "Sourced" },
    targetKind: "webhook",
    targetUrlEnc: await encryptSecret(keys(), "https://hooks.example.test/x", ruleAad(id)),
    targetHint: "hooks.example.test",
    signingSecretEnc: null,
    keyId: "k1",
    enabled,
    createdAt,
    updatedAt: createdAt,
  };
  await insertRule(env.DB, rule);
}

/** A fully configured account: two locations (one with a connection), a key with its own webhook secret, rules. */
async function fullAccount(id: string) {
  const [loc1, loc2, ws] = [`${id}LocA`, `${id}LocB`, `ws_${id}`];
  await createAccount(env.DB, { id, name: `Co ${id}`, locations: [loc1, loc2], conflictPolicy: "fourdegrees" });
  await saveFourDegreesKey(env.DB, keys(), {
    accountId: id,
    accountName: `Co ${id}`,
    apiKey: `4d_key_${id}`,
    workspaceId: ws,
    actor: { type: "user", id: "u1" },
  });
  await setFourDegreesWebhookSecret(env.DB, keys(), id, "whsec_c2VjcmV0LW9mLXRoZS13b3Jrc3BhY2U=");
  await saveConnectionTokens(env.DB, {
    id: locationConnectionId(loc1),
    kind: "location",
    locationId: loc1,
    companyId: null,
    tokenSource: "refresh",
    scopes: ["opportunities.readonly", "opportunities.write"],
    accessTokenEnc: "x",
    refreshTokenEnc: "y",
    keyId: "k1",
    expiresAt: Date.now() + 86_400_000,
    tokenVersion: 1,
    userId: null,
    appId: null,
  });
  await addRule({ name: "on", trigger: { kind: "won" }, actions: [{ kind: "hl_tag", op: "add", tag: "won" }] }, id);
  await addRule(
    { name: "off", enabled: false, trigger: { kind: "won" }, actions: [{ kind: "hl_tag", op: "add", tag: "x" }] },
    id,
  );
  await addRule({ name: "on 2", trigger: { kind: "lost" }, actions: [{ kind: "hl_tag", op: "add", tag: "l" }] }, id);
  await notificationRule(id, `${id}-n2`, true, 2_000);
  await notificationRule(id, `${id}-n1`, true, 1_000);
  await notificationRule(id, `${id}-n3`, false, 3_000);
  return { loc1, loc2, ws };
}

/** What the separate reads answer for an account. */
async function separately(id: string, locations: string[]) {
  return {
    account: await getAccount(env.DB, id),
    scopes: new Map(
      await Promise.all(
        locations.map(
          async (l) => [l, (await getConnection(env.DB, locationConnectionId(l)))?.scopes ?? null] as const,
        ),
      ),
    ),
    automations: await listAutomations(env.DB, id, { enabledOnly: true }),
    notifications: await listRules(env.DB, { accountId: id, enabledOnly: true }),
    credentials: await credentialsFor(env.DB, keys(), id, undefined).catch(() => null),
  };
}

describe("account configuration in one statement", () => {
  it("happy: every route answers what the separate reads answer", async () => {
    const { loc1, loc2, ws } = await fullAccount("cfgFull");
    const expected = await separately("cfgFull", [loc1, loc2]);
    expect(expected.automations).toHaveLength(2);
    expect(expected.notifications.map((r) => r.id)).toEqual(["cfgFull-n1", "cfgFull-n2"]);
    for (const by of [{ accountId: "cfgFull" }, { workspaceId: ws }, { locationId: loc2 }]) {
      const config = await readAccountConfig(env.DB, by);
      expect(config?.account).toEqual(expected.account);
      expect(config?.scopes).toEqual(expected.scopes);
      expect(config?.automations).toEqual(expected.automations);
      expect(config?.notifications).toEqual(expected.notifications);
      const row = config?.keyRow ?? null;
      expect(await credentialsFor(env.DB, keys(), "cfgFull", undefined, { row })).toEqual(expected.credentials);
      expect(await webhookSecretOf(keys(), row)).toBe(await webhookSecretForWorkspace(env.DB, keys(), ws));
    }
    expect(await accountIdForLocation(env.DB, loc1)).toBe("cfgFull");
    expect(await accountForWorkspace(env.DB, ws)).toBe("cfgFull");
  });

  it("edge: an account with only its accounts row — no settings, routes, key or rules", async () => {
    await saveFourDegreesKey(env.DB, keys(), {
      accountId: "cfgBare",
      accountName: "Bare",
      apiKey: "4d_bare",
      workspaceId: "ws_bare",
      actor: null,
    });
    await env.DB.prepare("DELETE FROM fourdegrees_accounts WHERE account_id = 'cfgBare'").run();
    const config = await readAccountConfig(env.DB, { accountId: "cfgBare" });
    const expected = await separately("cfgBare", []);
    expect(config?.account).toEqual(expected.account);
    expect(config?.account.configured).toBe(false);
    expect(config?.account.locations).toEqual([]);
    expect(config?.keyRow).toBeNull();
    expect(config?.scopes.size).toBe(0);
    expect(config?.automations).toEqual([]);
    expect(config?.notifications).toEqual([]);
    expect(await readAccountConfig(env.DB, { workspaceId: "ws_bare" })).toBeNull();
  });

  it("edge: a paused account with a location but no connection; unknown routes answer null", async () => {
    await createAccount(env.DB, { id: "cfgPaused", name: "Paused", locations: ["cfgPausedLoc"] });
    await updateAccount(env.DB, "cfgPaused", { status: "paused", readOnly: true });
    const config = await readAccountConfig(env.DB, { locationId: "cfgPausedLoc" });
    const expected = await separately("cfgPaused", ["cfgPausedLoc"]);
    expect(config?.account).toEqual(expected.account);
    expect(config?.account.status).toBe("paused");
    expect(config?.scopes).toEqual(new Map([["cfgPausedLoc", null]]));
    expect(await readAccountConfig(env.DB, { locationId: "noSuchLoc" })).toBeNull();
    expect(await readAccountConfig(env.DB, { workspaceId: "ws_none" })).toBeNull();
    expect(await readAccountConfig(env.DB, { accountId: "none" })).toBeNull();
  });

  it("happy: through the cache, one miss fills every entry of the account", async () => {
    const { loc1, loc2, ws } = await fullAccount("cfgCache");
    const expected = await separately("cfgCache", [loc1, loc2]);
    setConfigCacheTtl(60_000);
    forgetConfig(Date.now() - WRITE_QUIET_MS - 1); // past the writers' quiet window
    expect((await cachedWorkspaceKeyRow(env.DB, ws))?.account_id).toBe("cfgCache");
    // Behind the cache's back: every later answer below comes from that one read.
    await env.DB.batch([
      env.DB.prepare("DELETE FROM account_locations WHERE account_id = 'cfgCache'"),
      env.DB.prepare("DELETE FROM automation_rules WHERE account_id = 'cfgCache'"),
      env.DB.prepare("DELETE FROM notification_rules WHERE account_id = 'cfgCache'"),
      env.DB.prepare("DELETE FROM fourdegrees_accounts WHERE account_id = 'cfgCache'"),
      env.DB.prepare("UPDATE accounts SET status = 'paused' WHERE id = 'cfgCache'"),
    ]);
    expect(await cachedAccount(env.DB, "cfgCache")).toEqual(expected.account);
    expect(await cachedAccountIdOfLocation(env.DB, loc2)).toBe("cfgCache");
    expect(await cachedAccountIdOfWorkspace(env.DB, ws)).toBe("cfgCache");
    expect(await cachedConnectionScopes(env.DB, loc1)).toEqual(["opportunities.readonly", "opportunities.write"]);
    expect(await cachedConnectionScopes(env.DB, loc2)).toBeNull();
    expect(await cachedAutomationRules(env.DB, "cfgCache")).toEqual(expected.automations);
    expect(await cachedNotificationRules(env.DB, "cfgCache")).toEqual(expected.notifications);
    expect((await cachedKeyRow(env.DB, "cfgCache"))?.workspace_id).toBe(ws);
    // A store writer forgets it all: the next read is D1's.
    forgetConfig(Date.now() - WRITE_QUIET_MS - 1);
    expect((await cachedAccount(env.DB, "cfgCache"))?.status).toBe("paused");
    expect(await cachedAutomationRules(env.DB, "cfgCache")).toEqual([]);
    forgetConfig();
  });

  it("happy: a forget while the shared load runs keeps none of its entries", async () => {
    setConfigCacheTtl(60_000);
    const t0 = Date.now() + 10 * WRITE_QUIET_MS;
    let release: (m: Map<string, unknown>) => void = () => {};
    const loading = cachedConfigSet<string>(
      "set:a",
      () => new Promise<Map<string, unknown>>((done) => (release = done)),
      t0,
    );
    forgetConfig(t0 - WRITE_QUIET_MS - 1); // a writer, while the load is on its way
    release(
      new Map([
        ["set:a", "old a"],
        ["set:b", "old b"],
      ]),
    );
    expect(await loading).toBe("old a");
    const fresh = () => Promise.resolve(new Map([["set:b", "new b"]]));
    expect(await cachedConfigSet<string>("set:b", fresh, t0 + 1)).toBe("new b");
    // Without a forget, the other entries are kept and answered.
    await cachedConfigSet<string>(
      "set:c",
      () =>
        Promise.resolve(
          new Map([
            ["set:c", "c"],
            ["set:d", "d"],
          ]),
        ),
      t0 + 2,
    );
    expect(await cachedConfigSet<string>("set:d", () => Promise.resolve(new Map()), t0 + 3)).toBe("d");
    forgetConfig();
  });
});
