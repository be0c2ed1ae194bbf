/** The sync admin API (`/api`, behind adminAuth) against the sandboxes: bootstrap, accounts, mapping validation, pause/resume, replay. */
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { loadConfig } from "../../../src/config.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { deleteAccount, getAccount, saveMapping, updateAccount } from "../../../src/store/accounts.ts";
import { accountForWorkspace } from "../../../src/store/fourdegrees-accounts.ts";
import { bootstrapAccount, BootstrapBody } from "../../../src/sync/bootstrap.ts";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { listFailures, recordFailure } from "../../../src/store/failures.ts";
import { holdDelete } from "../../../src/store/held-deletes.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { tokenGate } from "../../../src/gate/client.ts";
import { createHighLevelClient } from "../../../src/highlevel/client.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { useNetwork } from "../helpers/network.ts";

const sb = createSandbox({ webhookMode: "manual", settings: { FOURDEGREES_RATE_LIMIT: "100000" } });
useNetwork({ "sandbox.test": (r) => sb.fetch(r), "worker.test": (r) => exports.default.fetch(r) });

const auth = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "application/json" };
const api = (path: string, init: { method?: string; body?: unknown; token?: string | null } = {}) =>
  exports.default.fetch(`http://worker.test/api${path}`, {
    method: init.method ?? "GET",
    headers:
      init.token === null
        ? { "content-type": "application/json" }
        : { ...auth, ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });

let demo: Awaited<ReturnType<typeof sb.highlevel.seedDemo>>;
beforeEach(async () => {
  sb.reset();
  demo = await sb.highlevel.seedDemo();
  await sb.fourdegrees.seedDemo();
  for (const id of ["boot", "acct-e2e", "crud"]) await deleteAccount(env.DB, id);
});

const bootstrap = (extra: Record<string, unknown> = {}) =>
  api("/bootstrap", {
    method: "POST",
    body: {
      accountId: "boot",
      highlevel: { locationId: demo.locationId, privateIntegrationToken: demo.pit },
      backfill: false,
      ...extra,
    },
  });

describe("security", () => {
  it("refuses every sync admin route without the admin token", async () => {
    for (const [method, path] of [
      ["GET", "/accounts"],
      ["PUT", "/accounts/x"],
      ["POST", "/bootstrap"],
      ["PUT", "/accounts/x/mapping"],
    ] as const) {
      const res = await api(path, { method, token: null, ...(method === "GET" ? {} : { body: {} }) });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    expect((await api("/accounts", { token: "wrong-token-0123456789" })).status).toBe(401);
  });

  it("security: a Private Integration Token replaced through bootstrap is the one the gate uses", async () => {
    expect((await bootstrap()).status).toBe(201);
    const hl = createHighLevelClient(env, loadConfig(env), demo.locationId);
    expect((await hl.pipelines.refresh()).length).toBeGreaterThan(0); // the gate now holds the first PIT
    // The operator rotates the PIT in HighLevel and bootstraps again with the new one.
    const rotated = sb.highlevel.createPit({ locationId: demo.locationId });
    sb.highlevel.oauth.revoke(demo.pit);
    expect(
      (
        await api("/bootstrap", {
          method: "POST",
          body: {
            accountId: "boot",
            highlevel: { locationId: demo.locationId, privateIntegrationToken: rotated },
            backfill: false,
          },
        })
      ).status,
    ).toBe(200);
    expect((await hl.pipelines.refresh()).length).toBeGreaterThan(0);
    const status = await tokenGate(env, locationConnectionId(demo.locationId)).tokenStatus(
      locationConnectionId(demo.locationId),
    );
    expect(status?.status).toBe("active");
    expect(status?.version).toBe((await getConnection(env.DB, locationConnectionId(demo.locationId)))?.tokenVersion);
  });

  it("security: a manual sync names only a location of the account", async () => {
    expect((await bootstrap()).status).toBe(201);
    const foreign = await api("/accounts/boot/sync", {
      method: "POST",
      body: { side: "highlevel", recordId: "opp-x", locationId: "someone-elses-location" },
    });
    expect(foreign.status).toBe(400);
    const answer = await foreign.json<{ error: { message: string; details: Array<{ field: string }> } }>();
    expect(answer.error.message).toContain("does not belong to account boot");
    expect(answer.error.details[0]?.field).toBe("locationId");
    const own = await api("/accounts/boot/sync", {
      method: "POST",
      body: { side: "highlevel", recordId: "opp-x", locationId: demo.locationId },
    });
    expect(own.status).toBe(202);
  });
});

describe("bootstrap (happy)", () => {
  it("connects the location with its PIT, pairs the workspace, maps by stage name; calling again changes nothing", async () => {
    const first = await bootstrap();
    expect(first.status).toBe(201);
    const body = await first.json<{
      account: { locations: string[]; workspaceId: string };
      mapping: { pipelines: Array<{ stages: unknown[] }> };
      webhooks: { highlevel: string };
    }>();
    expect(body.account.locations).toEqual([demo.locationId]);
    expect(body.account.workspaceId).toMatch(/^ws_|.+/);
    expect(body.mapping.pipelines[0]?.stages.length).toBeGreaterThanOrEqual(3);
    expect(body.webhooks.highlevel).toBe("http://worker.test/webhooks/highlevel");
    const again = await bootstrap();
    expect(again.status).toBe(200);
    const view = await (await api("/accounts/boot")).json<{ account: { mappingVersion: number }; mode: string }>();
    expect(view.account.mappingVersion).toBe(1);
    expect(view.mode).toBe("two-way");
  });

  it("error: an unconnected location without a PIT is refused with the reason", async () => {
    const res = await api("/bootstrap", {
      method: "POST",
      body: { accountId: "boot", highlevel: { locationId: "no-such-location" }, backfill: false },
    });
    expect(res.status).toBe(400);
    expect((await res.json<{ error: { message: string } }>()).error.message).toMatch(/not connected/);
  });
});

describe("mapping (error)", () => {
  it("rejects a malformed mapping with the field named (400) and an unknown stage against the live pipelines (422)", async () => {
    await bootstrap();
    const { mapping } = await (
      await api("/accounts/boot/mapping")
    ).json<{ mapping: { pipelines: Array<{ stages: Array<{ fourdegrees: string; highlevel: string }> }> } }>();
    const shape = await api("/accounts/boot/mapping", { method: "PUT", body: { ...mapping, abandonedAs: "maybe" } });
    expect(shape.status).toBe(400);
    expect(
      (await shape.json<{ error: { details: Array<{ field: string }> } }>()).error.details.map((d) => d.field),
    ).toContain("abandonedAs");

    const broken = structuredClone(mapping);
    const first = broken.pipelines[0]?.stages[0];
    if (first) first.highlevel = "stage-that-does-not-exist";
    const live = await api("/accounts/boot/mapping", { method: "PUT", body: broken });
    expect(live.status).toBe(422);
    const details = (await live.json<{ error: { details: Array<{ field: string; message: string }> } }>()).error
      .details;
    expect(details[0]).toMatchObject({ field: "pipelines.0.stages.0.highlevel" });

    const twice = structuredClone(mapping);
    const p0 = twice.pipelines[0];
    if (p0 && p0.stages[0] && p0.stages[1]) p0.stages[1].highlevel = p0.stages[0].highlevel;
    expect((await api("/accounts/boot/mapping", { method: "PUT", body: twice })).status).toBe(400);

    // The valid one still saves.
    expect((await api("/accounts/boot/mapping", { method: "PUT", body: mapping })).status).toBe(200);
  });
});

describe("accounts, pause/resume, test mode, replay (happy)", () => {
  it("held deletes: listed, approved one or all, discarded, each once; an unknown one is a 404", async () => {
    await api("/accounts/crud", { method: "PUT", body: { name: "CRUD", locations: ["loc-crud"] } });
    for (const fd of ["h1", "h2", "h3"])
      await holdDelete(env.DB, {
        accountId: "crud",
        fdDealId: fd,
        hlOpportunityId: `o-${fd}`,
        hlLocationId: "loc-crud",
        goneSide: "highlevel",
      });
    type Held = { held: Array<{ fdDealId: string; state: string }>; guard: { maxDeletes: number } };
    const listed = await (await api("/accounts/crud/held-deletes")).json<Held>();
    expect(listed.held.map((h) => h.fdDealId)).toEqual(["h1", "h2", "h3"]);
    expect(listed.guard.maxDeletes).toBe(10);
    type Decided = { decided: Array<{ fdDealId: string; state: string }> };
    const one = await api("/accounts/crud/held-deletes/h1/approve", { method: "POST" });
    expect((await one.json<Decided>()).decided).toMatchObject([{ fdDealId: "h1", state: "approved" }]);
    expect((await api("/accounts/crud/held-deletes/h1/approve", { method: "POST" })).status).toBe(404);
    const discard = await api("/accounts/crud/held-deletes/h2/discard", { method: "POST" });
    expect((await discard.json<Decided>()).decided).toMatchObject([{ fdDealId: "h2", state: "discarded" }]);
    expect((await api("/accounts/crud/held-deletes/h3/erase", { method: "POST" })).status).toBe(404);
    const all = await api("/accounts/crud/held-deletes/approve", { method: "POST" });
    expect((await all.json<Decided>()).decided.map((h) => h.fdDealId)).toEqual(["h3"]);
    expect((await (await api("/accounts/crud/held-deletes")).json<Held>()).held).toEqual([]);
    expect((await api("/accounts/nobody/held-deletes")).status).toBe(404);
  });

  it("the mass-delete guard's settings: defaults, either threshold alone, and a 400 naming a bad one", async () => {
    type Guard = { account: { deleteGuard: { maxDeletes: number; maxPercent: number } } };
    const created = await api("/accounts/crud", { method: "PUT", body: { name: "CRUD", locations: ["loc-crud"] } });
    expect((await created.json<Guard>()).account.deleteGuard).toEqual({ maxDeletes: 10, maxPercent: 20 });
    const n = await api("/accounts/crud", { method: "PUT", body: { deleteGuard: { maxDeletes: 25 } } });
    expect((await n.json<Guard>()).account.deleteGuard).toEqual({ maxDeletes: 25, maxPercent: 20 });
    const m = await api("/accounts/crud", { method: "PUT", body: { deleteGuard: { maxPercent: 5 } } });
    expect((await m.json<Guard>()).account.deleteGuard).toEqual({ maxDeletes: 25, maxPercent: 5 });
    expect((await (await api("/accounts/crud")).json<Guard>()).account.deleteGuard).toEqual({
      maxDeletes: 25,
      maxPercent: 5,
    });
    for (const [guard, field] of [
      [{ maxDeletes: 0 }, "deleteGuard.maxDeletes"],
      [{ maxPercent: 150 }, "deleteGuard.maxPercent"],
      [{ maxDeletes: 2.5 }, "deleteGuard.maxDeletes"],
      [{ maxDeletes: 5, extra: 1 }, "deleteGuard"],
    ] as const) {
      const bad = await api("/accounts/crud", { method: "PUT", body: { deleteGuard: guard } });
      expect(bad.status, JSON.stringify(guard)).toBe(400);
      expect(JSON.stringify(await bad.json()), JSON.stringify(guard)).toContain(field);
    }
    expect((await getAccount(env.DB, "crud"))?.deleteGuard).toEqual({ maxDeletes: 25, maxPercent: 5 });
  });

  it("creates, updates, pauses, resumes, toggles test mode and deletes", async () => {
    const created = await api("/accounts/crud", {
      method: "PUT",
      body: { name: "CRUD", locations: ["loc-crud"], deletePolicy: "ignore" },
    });
    expect(created.status).toBe(201);
    const updated = await api("/accounts/crud", { method: "PUT", body: { conflictPolicy: "highlevel" } });
    expect(updated.status).toBe(200);
    expect((await updated.json<{ account: { conflictPolicy: string; deletePolicy: string } }>()).account).toMatchObject(
      { conflictPolicy: "highlevel", deletePolicy: "ignore" },
    );
    expect(
      (await (await api("/accounts/crud/pause", { method: "POST" })).json<{ account: { status: string } }>()).account
        .status,
    ).toBe("paused");
    expect(
      (await (await api("/accounts/crud/resume", { method: "POST" })).json<{ account: { status: string } }>()).account
        .status,
    ).toBe("active");
    expect(
      (
        await (
          await api("/accounts/crud/test-mode", { method: "PUT", body: { enabled: true } })
        ).json<{ account: { testMode: boolean } }>()
      ).account.testMode,
    ).toBe(true);
    expect((await api("/accounts/crud", { method: "DELETE" })).status).toBe(204);
    expect((await api("/accounts/crud")).status).toBe(404);
  });

  it("replays one failure and then all open failures of an account", async () => {
    await api("/accounts/crud", { method: "PUT", body: { name: "CRUD", locations: ["loc-crud"] } });
    // Paused, so the replayed jobs are acked without touching any provider.
    await api("/accounts/crud/pause", { method: "POST" });
    const message = (recordId: string) => ({
      v: 1,
      kind: "sync.record",
      accountId: "crud",
      side: "fourdegrees",
      record: "deal",
      recordId,
      locationId: null,
      lane: "live",
      force: false,
    });
    await recordFailure(env.DB, {
      id: "f1",
      accountId: "crud",
      source: "permanent",
      message: message("deal_a"),
      reason: "422 validation",
    });
    await recordFailure(env.DB, {
      id: "f2",
      accountId: "crud",
      source: "dead_letter",
      message: message("deal_b"),
      reason: "retries exhausted",
    });
    const one = await api("/accounts/crud/failures/f1/replay", { method: "POST" });
    expect(await one.json()).toEqual({ replayed: ["f1"] });
    expect((await listFailures(env.DB, "crud", "open")).map((f) => f.id)).toEqual(["f2"]);
    const all = await api("/accounts/crud/failures/replay", { method: "POST" });
    expect(await all.json()).toEqual({ replayed: ["f2"] });
    expect(await listFailures(env.DB, "crud", "open")).toEqual([]);
    expect((await api("/accounts/crud/failures/nope/replay", { method: "POST" })).status).toBe(404);
  });
});

describe("one owner of an account's 4Degrees workspace", () => {
  it("bootstrap pairs through pairFourDegreesAccount: the account reads the workspace 4Degrees named, and webhooks of that workspace route to it", async () => {
    const res = await bootstrap();
    expect(res.status).toBe(201);
    const { account } = await res.json<{ account: { workspaceId: string | null } }>();
    const key = await (await api("/accounts/boot/fourdegrees")).json<{ account: { workspaceId: string } }>();
    expect(account.workspaceId).toBe(key.account.workspaceId);
    expect(await accountForWorkspace(env.DB, key.account.workspaceId)).toBe("boot");
  });

  it("error: a second account bootstrapped with the same workspace gets the pairing's 409, and keeps no workspace", async () => {
    expect((await bootstrap()).status).toBe(201);
    const other = await api("/bootstrap", {
      method: "POST",
      body: {
        accountId: "crud",
        highlevel: { locationId: demo.locationId },
        fourdegrees: { apiKey: sb.fourdegrees.apiKey },
        backfill: false,
      },
    });
    expect(other.status).toBe(409);
    expect((await other.json<{ error: { message: string } }>()).error.message).toMatch(
      /already paired with account boot/,
    );
    expect((await getAccount(env.DB, "crud"))?.workspaceId ?? null).toBeNull();
  });

  it("error: without an API key and without the FOURDEGREES_API_KEY secret, bootstrap refuses with the reason", async () => {
    const config = { ...loadConfig(env), FOURDEGREES_API_KEY: undefined };
    const input = BootstrapBody.parse({
      accountId: "boot",
      highlevel: { locationId: demo.locationId, privateIntegrationToken: demo.pit },
      backfill: false,
    });
    await expect(bootstrapAccount(env, config, input, createLogger("error"))).rejects.toThrow(/no 4Degrees API key/);
    expect(await getAccount(env.DB, "boot")).toBeNull();
  });

  it("error: PUT /accounts/{id} refuses workspaceId (400 naming the field, pointing to PUT …/fourdegrees)", async () => {
    const res = await api("/accounts/crud", { method: "PUT", body: { name: "CRUD", workspaceId: "ws_typed_in" } });
    expect(res.status).toBe(400);
    const { error } = await res.json<{ error: { message: string; details: Array<{ field: string }> } }>();
    expect(error.details.map((d) => d.field)).toEqual(["workspaceId"]);
    expect(error.message).toContain("PUT /api/accounts/crud/fourdegrees");
    expect(await getAccount(env.DB, "crud")).toBeNull();
  });

  it("an account made by the 4Degrees key endpoint (no settings row) gets one when its mapping or settings are saved — never a silent zero-row update", async () => {
    const keyed = await api("/accounts/crud/fourdegrees", { method: "PUT", body: { apiKey: sb.fourdegrees.apiKey } });
    expect(keyed.status).toBeLessThan(300);
    expect((await getAccount(env.DB, "crud"))?.configured).toBe(false);
    const updated = await updateAccount(env.DB, "crud", { testMode: true });
    expect(updated).toMatchObject({ configured: true, testMode: true, conflictPolicy: "newest" });
    expect(updated.workspaceId).toBeTruthy();

    await deleteAccount(env.DB, "crud");
    expect(
      (await api("/accounts/crud/fourdegrees", { method: "PUT", body: { apiKey: sb.fourdegrees.apiKey } })).status,
    ).toBeLessThan(300);
    const mapping = MappingSchema.parse({
      pipelines: [
        {
          fourdegreesPipelineId: "p",
          highlevelLocationId: "l",
          highlevelPipelineId: "h",
          stages: [{ fourdegrees: "s", highlevel: "t" }],
        },
      ],
    });
    const saved = await saveMapping(env.DB, "crud", mapping);
    expect(saved.mapping).toEqual(mapping);
    expect(saved.mappingVersion).toBe(1);
    await expect(saveMapping(env.DB, "no-such-account", mapping)).rejects.toThrow(/no account/);
  });
});

describe("mapping: the attachments field", () => {
  it("bootstrap with attachments names the FILE_UPLOAD field; an unknown or reused field is refused by name", async () => {
    const res = await bootstrap({ attachments: true });
    expect(res.status).toBe(201);
    const { mapping } = await (await api("/accounts/boot/mapping")).json<{ mapping: Record<string, unknown> }>();
    expect(mapping["attachmentsFieldId"]).toBe(demo.documentsFieldId);
    const unknown = await api("/accounts/boot/mapping", {
      method: "PUT",
      body: { ...mapping, attachmentsFieldId: "cf_does_not_exist" },
    });
    expect(unknown.status).toBe(422);
    const details = (await unknown.json<{ error: { details: Array<{ field: string }> } }>()).error.details;
    expect(details.map((d) => d.field)).toContain("attachmentsFieldId");
    const reused = await api("/accounts/boot/mapping", {
      method: "PUT",
      body: { ...mapping, attachmentsFieldId: mapping["closeDateFieldId"] },
    });
    expect(reused.status).toBe(400);
  });
});
