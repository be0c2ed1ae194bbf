/**
 * The guided setup (/console/setup) against the sandboxes: every step's state is derived from the
 * account's real state and survives leaving the page; each step refuses bad input with a 400 and
 * its reason, and a step out of order with a 409; the test step reads once per side and writes
 * nothing; the test-mode backfill writes nothing; going live flips test mode off and resumes.
 */
import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { encryptUserContext } from "../../../sandbox/highlevel/sso.ts";
import { loadConfig } from "../../../src/config.ts";
import { savePrivateIntegrationConnection } from "../../../src/highlevel/pit.ts";
import { createApp } from "../../../src/http/app.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { createAccount, deleteAccount, getAccount } from "../../../src/store/accounts.ts";
import { getBackfill } from "../../../src/store/backfill-runs.ts";
import { getSetupProgress } from "../../../src/store/setup-progress.ts";
import { liveConnectors } from "../../../src/sync/connectors.ts";
import { runBackfillJob } from "../../../src/sync/jobs/backfill.ts";
import { handlerContext, liveJobDeps } from "../../../src/sync/jobs/deps.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { consoleCookie } from "../helpers/console-session.ts";
import { useNetwork } from "../helpers/network.ts";

const BASE = "http://worker.test";
const ID = "setup-a";
const OTHER = "setup-other";
const sb = createSandbox({ webhookMode: "manual", settings: { FOURDEGREES_RATE_LIMIT: "100000" } });
const app = createApp();

/** Provider writes (anything but GET/HEAD outside the sandbox's control API). */
const writes: string[] = [];
const reads: string[] = [];
useNetwork({
  "sandbox.test": (r) => {
    const path = new URL(r.url).pathname;
    if (!path.startsWith("/_sandbox"))
      (r.method === "GET" || r.method === "HEAD" ? reads : writes).push(`${r.method} ${path}${new URL(r.url).search}`);
    return sb.fetch(r);
  },
});

/** Every queue message the Worker sent (both queues), so the test runs them itself. */
const sent: QueueMessage[] = [];
const queue = {
  async send(body: unknown) {
    sent.push(QueueMessageSchema.parse(body));
  },
  async sendBatch(messages: Iterable<{ body: unknown }>) {
    for (const m of messages) sent.push(QueueMessageSchema.parse(m.body));
  },
};
const testEnv = { ...env, SYNC_QUEUE: queue, BULK_QUEUE: queue } as unknown as Env;

let cookie = "";
const get = (path: string, as = cookie) =>
  app.fetch(new Request(`${BASE}${path}`, { headers: { cookie: as } }), testEnv);
const post = (path: string, form: Record<string, string>, as = cookie) =>
  app.fetch(
    new Request(`${BASE}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: as, origin: BASE, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    }),
    testEnv,
  );

/** Each step's state as the page shows it (`data-step` / `data-state` on the step list). */
async function steps(account = ID): Promise<Record<string, string>> {
  const html = await (await get(`/console/setup?account=${account}`)).text();
  return Object.fromEntries([...html.matchAll(/data-step="(\w+)" data-state="(\w+)"/g)].map((m) => [m[1], m[2]]));
}

let demo: Awaited<ReturnType<typeof sb.highlevel.seedDemo>>;
let fdDemo: Awaited<ReturnType<typeof sb.fourdegrees.seedDemo>>;

beforeAll(async () => {
  cookie = await consoleCookie(BASE);
});

beforeEach(async () => {
  sb.reset();
  demo = await sb.highlevel.seedDemo();
  fdDemo = await sb.fourdegrees.seedDemo();
  await deleteAccount(env.DB, ID);
  await deleteAccount(env.DB, OTHER);
  writes.length = 0;
  reads.length = 0;
  sent.length = 0;
});

/** Walks the steps up to (not including) `until`, asserting each one as it goes. */
async function walk(until: "test" | "backfill" | "live"): Promise<void> {
  expect((await post("/console/setup/account", { id: ID, name: "Marlow & Finch" })).status).toBe(303);
  await savePrivateIntegrationConnection(env, { locationId: demo.locationId, token: demo.pit });
  expect((await post("/console/setup/attach", { account: ID, location: demo.locationId })).status).toBe(303);
  expect((await post("/console/setup/key", { account: ID, apiKey: sb.fourdegrees.apiKey })).status).toBe(303);
  const pair = { account: ID, [`pair.${fdDemo.pipelineId}`]: `${demo.locationId}::${demo.pipelineId}` };
  expect((await post("/console/setup/pipelines", pair)).status).toBe(303);
  const version = String((await getAccount(env.DB, ID))?.mappingVersion);
  expect((await post("/console/setup/review", { account: ID, version })).status).toBe(303);
  if (until === "test") return;
  expect((await post("/console/setup/test", { account: ID })).status).toBe(200);
  if (until === "backfill") return;
  expect((await post("/console/setup/backfill", { account: ID })).status).toBe(303);
  await drainBackfill();
}

/** Runs the backfill messages the Worker enqueued until none is left. */
async function drainBackfill(): Promise<number> {
  const config = loadConfig(testEnv);
  const deps = liveJobDeps(testEnv, liveConnectors(testEnv, config));
  const ctx = handlerContext(testEnv, config, createLogger("error"));
  let runs = 0;
  for (let msg = sent.shift(); msg; msg = sent.shift()) {
    if (msg.kind !== "sync.backfill") continue;
    await runBackfillJob(msg, ctx, deps);
    runs++;
  }
  return runs;
}

describe("guided setup", () => {
  it("derives every step from the account's state, and resumes where it was left", async () => {
    const fresh = await get("/console/setup?new=1");
    expect(fresh.status).toBe(200);
    const html = await fresh.text();
    expect(html).toContain('data-step="account" data-state="next"');
    expect(html).toContain('data-step="live" data-state="todo"');

    expect((await post("/console/setup/account", { id: ID, name: "Marlow & Finch" })).status).toBe(303);
    const account = await getAccount(env.DB, ID);
    expect(account?.testMode).toBe(true);
    expect(await steps()).toMatchObject({ account: "done", highlevel: "next", key: "todo" });

    // Connected (what the OAuth install stores) but not attached: still the HighLevel step.
    await savePrivateIntegrationConnection(env, { locationId: demo.locationId, token: demo.pit });
    const page = await (await get(`/console/setup?account=${ID}`)).text();
    expect(page).toContain(`<option value="${demo.locationId}">`);
    expect((await post("/console/setup/attach", { account: ID, location: demo.locationId })).status).toBe(303);
    // Leaving and coming back: a new request reads the same state from D1.
    expect(await steps()).toMatchObject({ account: "done", highlevel: "done", key: "next" });

    expect((await post("/console/setup/key", { account: ID, apiKey: sb.fourdegrees.apiKey })).status).toBe(303);
    expect(await steps()).toMatchObject({ key: "done", pipelines: "next" });

    // The pipelines panel speaks in names, ids on hover.
    const pipes = await (await get(`/console/setup?account=${ID}&step=pipelines`)).text();
    expect(pipes).toMatch(new RegExp(`<span title="${fdDemo.pipelineId}">[^<]+</span>`));
    const pair = { account: ID, [`pair.${fdDemo.pipelineId}`]: `${demo.locationId}::${demo.pipelineId}` };
    expect((await post("/console/setup/pipelines", pair)).status).toBe(303);
    expect(await steps()).toMatchObject({ pipelines: "done", review: "next" });

    const review = await (await get(`/console/setup?account=${ID}&step=review`)).text();
    expect(review).toContain("Owners (matched by email)");
    expect(review).not.toContain("no HighLevel user with this email");
    const version = String((await getAccount(env.DB, ID))?.mappingVersion);
    expect((await post("/console/setup/review", { account: ID, version })).status).toBe(303);
    expect((await getSetupProgress(env.DB, ID)).reviewedVersion).toBe(Number(version));
    expect(await steps()).toMatchObject({ review: "done", test: "next" });

    // A new mapping version needs a new review (the stored confirmation names its version).
    expect((await post("/console/setup/pipelines", pair)).status).toBe(303);
    expect(await steps()).toMatchObject({ pipelines: "done", review: "next" });
  });

  it("bad input: 400 with the reason; a step out of order: 409", async () => {
    const badId = await post("/console/setup/account", { id: "no spaces!", name: "X" });
    expect(badId.status).toBe(400);
    expect(await badId.text()).toContain("account id: account ids are 1–64 characters");
    const noName = await post("/console/setup/account", { id: ID, name: "" });
    expect(noName.status).toBe(400);
    expect(await noName.text()).toContain("name: 1–200 characters");
    expect(await getAccount(env.DB, ID)).toBeNull();

    expect((await post("/console/setup/account", { id: ID, name: "Marlow & Finch" })).status).toBe(303);
    const dup = await post("/console/setup/account", { id: ID, name: "Again" });
    expect(dup.status).toBe(409);

    const notConnected = await post("/console/setup/attach", { account: ID, location: "nowhere" });
    expect(notConnected.status).toBe(400);
    expect(await notConnected.text()).toContain("location: nowhere is not a connected HighLevel location");

    const early = await post("/console/setup/test", { account: ID });
    expect(early.status).toBe(409);
    expect(await early.text()).toContain("Finish “Connect HighLevel” first.");

    const badKey = await post("/console/setup/key", { account: ID, apiKey: "4d_not_the_key_at_all" });
    expect(badKey.status).toBe(400);
    expect(await badKey.text()).toContain("4Degrees refused the key");
    const shortKey = await post("/console/setup/key", { account: ID, apiKey: "abc" });
    expect(shortKey.status).toBe(400);
    expect(await shortKey.text()).toContain("API key: paste the whole key");

    await savePrivateIntegrationConnection(env, { locationId: demo.locationId, token: demo.pit });
    await post("/console/setup/attach", { account: ID, location: demo.locationId });
    await post("/console/setup/key", { account: ID, apiKey: sb.fourdegrees.apiKey });
    const none = await post("/console/setup/pipelines", { account: ID });
    expect(none.status).toBe(400);
    expect(await none.text()).toContain("choose a HighLevel pipeline for at least one 4Degrees pipeline");
    const wrong = await post("/console/setup/pipelines", {
      account: ID,
      [`pair.${fdDemo.pipelineId}`]: `${demo.locationId}::no-such-pipeline`,
    });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain("the chosen HighLevel pipeline is not in location");

    await post("/console/setup/pipelines", {
      account: ID,
      [`pair.${fdDemo.pipelineId}`]: `${demo.locationId}::${demo.pipelineId}`,
    });
    const stale = await post("/console/setup/review", { account: ID, version: "0" });
    expect(stale.status).toBe(409);
    expect(await stale.text()).toContain("The mapping changed since this page was shown");
    const badStep = await get(`/console/setup?account=${ID}&step=nope`);
    expect(badStep.status).toBe(400);
    expect(writes).toEqual([]);
  });

  it("test: one read each side, a dry-run of real records by name, and no write to either sandbox", async () => {
    await walk("test");
    reads.length = 0;
    writes.length = 0;
    const res = await post("/console/setup/test", { account: ID });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Test passed: nothing was written to either side.");
    expect(writes).toEqual([]);
    // The connectivity reads: GET /me once, one opportunity search of one record; the rest are the dry-run's.
    expect(reads.filter((r) => r.endsWith("/v1/me"))).toHaveLength(1);
    expect(reads.filter((r) => /\/opportunities\/search\?.*limit=1(&|$)/.test(r))).toHaveLength(1);
    expect(reads.every((r) => r.startsWith("GET "))).toBe(true);
    // Five deals → HighLevel and five opportunities → 4Degrees, named, with what each would write.
    const rows = [...html.matchAll(/<tr data-direction="(to_highlevel|to_fourdegrees)">/g)].map((m) => m[1]);
    expect(rows.filter((d) => d === "to_highlevel")).toHaveLength(5);
    expect(rows.filter((d) => d === "to_fourdegrees")).toHaveLength(5);
    const firstDeal = sb.fourdegrees.deal(fdDemo.dealIds[0] ?? "");
    expect(html).toContain(`<span title="${firstDeal?.id}">${firstDeal?.name}</span>`);
    expect(html).toMatch(/Stage: <span title="[^"]+">[^<]+<\/span>/);
    const progress = await getSetupProgress(env.DB, ID);
    expect(progress.testOk).toBe(true);
    expect(await steps()).toMatchObject({ test: "done", backfill: "next" });
  });

  it("test: a key 4Degrees no longer accepts is shown as its reason, and the step stays failed", async () => {
    await walk("test");
    sb.fourdegrees.apiKeys.delete(sb.fourdegrees.apiKey);
    const html = await (await post("/console/setup/test", { account: ID })).text();
    expect(html).toContain("4Degrees refused the key");
    expect(await steps()).toMatchObject({ test: "failed" });
    expect(writes).toEqual([]);
  });

  it("test: a HighLevel connection without the opportunities scope is shown as its reason", async () => {
    await walk("test");
    const narrow = sb.highlevel.createPit({ locationId: demo.locationId, scopes: ["users.readonly"] });
    await savePrivateIntegrationConnection(env, { locationId: demo.locationId, token: narrow });
    const html = await (await post("/console/setup/test", { account: ID })).text();
    expect(html).toContain("HighLevel refused: the connection lacks a scope");
    expect(await steps()).toMatchObject({ test: "failed" });
    expect(writes).toEqual([]);
  });

  it("backfill in test mode writes nothing; go live flips test mode off, resumes and starts a live backfill", async () => {
    await walk("backfill");
    writes.length = 0;
    const start = await post("/console/setup/backfill", { account: ID });
    expect(start.status).toBe(303);
    expect((await getAccount(env.DB, ID))?.testMode).toBe(true);
    expect(await steps()).toMatchObject({ backfill: "running" });
    expect(await drainBackfill()).toBeGreaterThan(0);
    const run = await getBackfill(env.DB, ID);
    expect(run?.state).toBe("done");
    expect(run?.done).toBeGreaterThan(0);
    expect(writes).toEqual([]);
    expect(await steps()).toMatchObject({ backfill: "done", live: "next" });

    await post("/console/setup/live", { account: ID });
    const live = await getAccount(env.DB, ID);
    expect(live?.testMode).toBe(false);
    expect(live?.status).toBe("active");
    expect(sent.some((m) => m.kind === "sync.backfill" && m.accountId === ID)).toBe(true);
    const all = await steps();
    expect(Object.values(all).every((s) => s === "done")).toBe(true);
    expect(Object.keys(all)).toHaveLength(8);
  });

  it("go live before the test-mode backfill is refused", async () => {
    await walk("backfill");
    const res = await post("/console/setup/live", { account: ID });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("Finish “Backfill in test mode” first.");
    expect((await getAccount(env.DB, ID))?.testMode).toBe(true);
  });

  it("inside HighLevel: a location user sets up its own location's account and cannot reach another", async () => {
    await createAccount(env.DB, { id: OTHER, name: "Harbor Capital", locations: [demo.otherLocationId] });
    await savePrivateIntegrationConnection(env, { locationId: demo.locationId, token: demo.pit });
    const context = {
      userId: "usrPriya",
      companyId: demo.companyId,
      role: "user",
      type: "location",
      activeLocation: demo.locationId,
      userName: "Priya Shah",
      email: "priya@example.com",
      isAgencyOwner: false,
    } as const;
    const session = await app.fetch(
      new Request(`${BASE}/embed/session`, {
        method: "POST",
        headers: { origin: BASE, "content-type": "application/json" },
        body: JSON.stringify({
          encryptedData: await encryptUserContext(context, TEST_BINDINGS.HIGHLEVEL_SSO_KEY),
        }),
      }),
      testEnv,
    );
    expect(session.status).toBe(200);
    const user = (session.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const home = await (await get("/embed/home", user)).text();
    expect(home).toContain('id="embed-start-setup"');

    expect((await post("/console/setup/account", { id: ID, name: "Acme Ventures" }, user)).status).toBe(303);
    expect((await getAccount(env.DB, ID))?.locations).toEqual([demo.locationId]);
    // The location came with the session: the HighLevel step is done without an install.
    const html = await (await get(`/console/setup?account=${ID}`, user)).text();
    expect(html).toContain('data-step="highlevel" data-state="done"');
    expect(html).not.toContain("Harbor Capital");
    expect(await (await get("/embed/home", user)).text()).toContain("Guided setup (not live yet)");

    expect((await get(`/console/setup?account=${OTHER}`, user)).status).toBe(403);
    const key = await post("/console/setup/key", { account: OTHER, apiKey: sb.fourdegrees.apiKey }, user);
    expect(key.status).toBe(403);
    expect(await getSetupProgress(env.DB, OTHER)).toMatchObject({ reviewedVersion: null });
  });
});
