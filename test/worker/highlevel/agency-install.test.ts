/**
 * Agency (Company) installs against the sandbox: the callback connects the first
 * `MAX_LOCATIONS_PER_INSTALL` approved locations, records the rest as pending, and the cron mints
 * them later through the agency's gate; failed mints back off; an agency uninstall drops them.
 */
import { exports, env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { loadConfig } from "../../../src/config.ts";
import { gateFor } from "../../../src/gate/client.ts";
import { createHighLevelClient } from "../../../src/highlevel/client.ts";
import { PENDING_BACKOFF_MS, runHighLevelCron } from "../../../src/highlevel/cron.ts";
import { handleUninstallEvent, installFromGrant, MAX_LOCATIONS_PER_INSTALL } from "../../../src/highlevel/install.ts";
import { TokenResponseSchema } from "../../../src/highlevel/schemas.ts";
import { createLogger } from "../../../src/lib/log.ts";
import {
  companyConnectionId,
  getConnection,
  listPendingLocations,
  locationConnectionId,
} from "../../../src/store/connections.ts";
import { beginInstall } from "../helpers/install.ts";
import { useNetwork } from "../helpers/network.ts";

const log = createLogger("error", { test: "agency-install" });
const config = loadConfig(env);
const sb = createSandbox({ webhookMode: "manual" });
useNetwork({ "sandbox.test": (r) => sb.fetch(r) });

const newId = (prefix: string) => `${prefix}${crypto.randomUUID().replace(/-/g, "").slice(0, 19)}`;

/** A new agency in the sandbox with `count` sub-accounts (the control API cannot create them). */
async function addAgency(count: number): Promise<{ companyId: string; locationIds: string[] }> {
  await sb.highlevel.seedDemo();
  const companyId = newId("C");
  sb.highlevel.store.companies.set(companyId, { id: companyId, name: `Agency ${companyId}` });
  const locationIds = Array.from({ length: count }, () => {
    const id = newId("L");
    sb.highlevel.store.locations.set(id, {
      id,
      companyId,
      name: `Sub-account ${id}`,
      address: "",
      timezone: "UTC",
      active: true,
    });
    return id;
  });
  return { companyId, locationIds };
}

/** Every approved location of the agency, as the Worker sees it. */
async function connectionsOf(locationIds: string[]) {
  return Promise.all(locationIds.map((id) => getConnection(env.DB, locationConnectionId(id))));
}

describe("agency install with more locations than one callback connects", () => {
  it("happy: the callback connects 40, records the rest as pending, and the cron mints them through the agency's gate", async () => {
    const { companyId, locationIds } = await addAgency(MAX_LOCATIONS_PER_INSTALL + 5);
    sb.highlevel.oauth.resetCounters();

    // The agency admin approves the app for the whole agency on the choose-location page.
    const { authorize, cookie } = await beginInstall();
    const page = await (await sb.fetch(new Request(authorize))).text();
    const requestId = /name="request_id" value="([^"]+)"/.exec(page)?.[1] ?? "";
    expect(page).toContain(`value="company:${companyId}"`);
    const chosen = await sb.fetch(
      new Request(new URL("chooselocation", authorize).toString(), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          request_id: requestId,
          location: `company:${companyId}`,
          decision: "approve",
        }).toString(),
        redirect: "manual",
      }),
    );
    expect(chosen.status).toBe(302);
    const done = await exports.default.fetch(chosen.headers.get("location") ?? "", { headers: { cookie } });
    const text = await done.text();
    expect(done.status, text).toBe(200);
    expect(text).toContain(`Connected ${MAX_LOCATIONS_PER_INSTALL} location(s)`);
    expect(text).toContain("5 more will connect shortly");
    // The Location ask is refused for an agency-wide code; the Company ask gets the agency token.
    expect(sb.highlevel.tokenCalls()).toMatchObject({
      authorizationCode: 2,
      failed: 1,
      locationToken: MAX_LOCATIONS_PER_INSTALL,
    });
    expect((await getConnection(env.DB, companyConnectionId(companyId)))?.status).toBe("active");

    const pending = await listPendingLocations(env.DB, companyId);
    expect(pending.map((p) => p.locationId).sort()).toEqual(locationIds.slice(MAX_LOCATIONS_PER_INSTALL).sort());
    expect(pending.every((p) => p.attempts === 0 && p.lastError === null)).toBe(true);
    expect((await connectionsOf(locationIds.slice(MAX_LOCATIONS_PER_INSTALL))).every((c) => c === null)).toBe(true);

    const result = await runHighLevelCron(env, log);
    expect(result).toMatchObject({ minted: 5, mintFailed: 0 });
    expect(await listPendingLocations(env.DB, companyId)).toEqual([]);
    const all = await connectionsOf(locationIds);
    expect(all.every((c) => c?.status === "active" && c.tokenSource === "agency" && c.companyId === companyId)).toBe(
      true,
    );
    expect(sb.highlevel.tokenCalls().locationToken).toBe(MAX_LOCATIONS_PER_INSTALL + 5);
    // The mints took permits from the agency's rate budget.
    expect((await gateFor(env, "hl", companyConnectionId(companyId)).usage()).daily.used).toBe(5);
    // A location connected by the cron works.
    const late = locationIds.at(-1) ?? "";
    await expect(createHighLevelClient(env, config, late).users.refresh()).resolves.toBeInstanceOf(Array);
  });

  it("error: a mint that fails ('Location is not active') backs off and succeeds once the location is active again", async () => {
    const { companyId, locationIds } = await addAgency(MAX_LOCATIONS_PER_INSTALL + 1);
    const last = locationIds.at(-1) ?? "";
    await installFromGrant(
      env,
      config,
      TokenResponseSchema.parse(sb.highlevel.connect({ companyId, userType: "Company" })),
      log,
    );
    sb.highlevel.setLocationActive(last, false);
    sb.highlevel.oauth.resetCounters();
    const now = Date.now();

    expect(await runHighLevelCron(env, log, now)).toMatchObject({ minted: 0, mintFailed: 1 });
    const [row] = await listPendingLocations(env.DB, companyId);
    expect(row).toMatchObject({ locationId: last, attempts: 1, nextAttemptAt: now + PENDING_BACKOFF_MS });
    expect(row?.lastError).toMatch(/not active/);
    // Not due yet: the next run leaves it alone.
    await runHighLevelCron(env, log, now + 60_000);
    expect(sb.highlevel.tokenCalls().locationToken).toBe(1);

    sb.highlevel.setLocationActive(last, true);
    expect(await runHighLevelCron(env, log, now + PENDING_BACKOFF_MS)).toMatchObject({ minted: 1, mintFailed: 0 });
    expect(await listPendingLocations(env.DB, companyId)).toEqual([]);
    expect((await getConnection(env.DB, locationConnectionId(last)))?.status).toBe("active");
  });

  it("security: an agency UNINSTALL drops its pending locations, so the cron mints nothing for it", async () => {
    const { companyId } = await addAgency(MAX_LOCATIONS_PER_INSTALL + 3);
    await installFromGrant(
      env,
      config,
      TokenResponseSchema.parse(sb.highlevel.connect({ companyId, userType: "Company" })),
      log,
    );
    expect(await listPendingLocations(env.DB, companyId)).toHaveLength(3);
    await handleUninstallEvent(env, { companyId }, log);
    expect(await listPendingLocations(env.DB, companyId)).toEqual([]);
    sb.highlevel.oauth.resetCounters();
    expect(await runHighLevelCron(env, log)).toMatchObject({ minted: 0, mintFailed: 0 });
    expect(sb.highlevel.tokenCalls().locationToken).toBe(0);
  });
});
