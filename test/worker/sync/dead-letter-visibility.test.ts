/**
 * Every message that will not be processed ends as a visible, replayable failure: a dead-lettered
 * webhook under the account of its location/workspace (else the unassigned bucket, shown to the
 * operator in the API and on Problems), a schema-invalid message recorded rather than only logged,
 * a replay or provider re-send re-processed rather than dropped as a duplicate, and a dead letter
 * retried (not acked) while D1 is down.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import wranglerToml from "../../../wrangler.toml?raw";
import { loadConfig } from "../../../src/config.ts";
import { createApp } from "../../../src/http/app.ts";
import { createAccount, deleteAccount } from "../../../src/store/accounts.ts";
import { getFailure, listFailures, type Failure } from "../../../src/store/failures.ts";
import { backoffSeconds, type Handlers } from "../../../src/queue/consumer.ts";
import { consumeDeadLetters, DLQ_MAX_RETRIES } from "../../../src/sync/jobs/dead-letters.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";

const app = createApp();
const BASE = "https://worker.test";
const AUTH = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };
const uid = (p: string) => `${p}-${crypto.randomUUID()}`;

/** The app with a queue that records what a replay sends. */
function withQueue() {
  const sent: QueueMessage[] = [];
  const queue = {
    send: async (body: unknown) => void sent.push(QueueMessageSchema.parse(body)),
    sendBatch: async () => undefined,
  };
  const e = { ...env, SYNC_QUEUE: queue, BULK_QUEUE: queue } as unknown as Env;
  return { sent, fetch: (path: string, init: RequestInit = {}) => app.fetch(new Request(`${BASE}${path}`, init), e) };
}

const hl = (webhookId: string, locationId: string): QueueMessage => ({
  v: 1,
  kind: "highlevel.webhook",
  webhookId,
  locationId,
  type: "OpportunityUpdate",
  receivedAt: Date.now(),
  body: { type: "OpportunityUpdate", id: "opp-1", locationId },
});

/** Runs bodies through the dead-letter consumer; what it acked and retried (with delays). */
async function deadLetter(bodies: unknown[], e: Env = env) {
  const ids = bodies.map(() => crypto.randomUUID());
  const batch = createMessageBatch<unknown>(
    "sync-events-dlq",
    bodies.map((body, i) => ({ id: ids[i]!, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await consumeDeadLetters(batch, e, loadConfig(env));
  return { ids, result: await getQueueResult(batch, ctx) };
}

/** A first delivery that fails every time (its message claims the receipt, then dead-letters). */
const failing: Handlers = { "highlevel.webhook": async () => ({ kind: "retry", reason: "HighLevel answered 503" }) };

async function account(id: string, locations: string[]) {
  await deleteAccount(env.DB, id);
  await createAccount(env.DB, { id, name: id, workspaceId: null, locations });
}

describe("dead letters are visible and replayable", () => {
  it("security: a dead webhook is listed under its location's account and a HighLevel re-send of it is processed, not dropped as a duplicate", async () => {
    await account("dlv-acc", ["loc-dlv"]);
    const webhookId = uid("wh");
    const body = hl(webhookId, "loc-dlv");
    const first = await runBatch([body], failing);
    expect(first.retried).toHaveLength(1);
    const { ids, result } = await deadLetter([body]);
    expect(result.explicitAcks).toEqual(ids);
    const q = withQueue();
    const listed = await (
      await q.fetch("/api/accounts/dlv-acc/failures", { headers: AUTH })
    ).json<{ failures: Failure[] }>();
    expect(listed.failures.map((f) => [f.id, f.accountId, f.source])).toEqual([
      [`dlq:${ids[0]}`, "dlv-acc", "dead_letter"],
    ]);
    // HighLevel sends the same delivery again (another queue message): it reaches its handler.
    const resend = recordingHandlers();
    await runBatch([body], resend.handlers);
    expect(resend.reached).toEqual([webhookId]);
  });

  it("security: replaying a failed webhook re-processes it although its first message still holds the receipt", async () => {
    await account("dlv-replay", []);
    await env.DB.prepare(
      "INSERT INTO fourdegrees_accounts (account_id, workspace_id, api_key_enc, key_id, key_hint, verified_at, created_at, updated_at) VALUES ('dlv-replay', 'ws-dlv-replay', 'x', 'k', 'xxxx', 0, 0, 0)",
    ).run();
    const webhookId = uid("fd");
    // A 4Degrees event this version cannot read: a permanent failure, filed under the workspace's account.
    const body: QueueMessage = {
      v: 1,
      kind: "fourdegrees.webhook",
      webhookId,
      workspaceId: "ws-dlv-replay",
      type: "deal.updated",
      receivedAt: Date.now(),
      body: { nonsense: true },
    };
    const run = await runBatch(
      [body],
      syncHandlers(() => {
        throw new Error("no deps needed");
      }),
    );
    expect(run.acked).toHaveLength(1);
    const failure = await getFailure(env.DB, `webhook:fourdegrees:${webhookId}`);
    expect(failure).toMatchObject({ accountId: "dlv-replay", source: "permanent", status: "open" });
    const q = withQueue();
    const res = await q.fetch(`/api/accounts/dlv-replay/failures/${encodeURIComponent(failure!.id)}/replay`, {
      method: "POST",
      headers: AUTH,
    });
    expect(res.status).toBe(200);
    expect(q.sent).toEqual([body]);
    const again = recordingHandlers();
    await runBatch(q.sent, again.handlers);
    expect(again.reached).toEqual([webhookId]);
  });

  it("security: a dead webhook of a location no account uses lands in the unassigned bucket, shown by the API and on Problems, and replays", async () => {
    const webhookId = uid("orphan");
    const body = hl(webhookId, `loc-nobody-${webhookId}`);
    const { ids } = await deadLetter([body, { v: 9, kind: "from-the-future", locationId: "loc-nobody-too" }]);
    const q = withQueue();
    const res = await q.fetch("/api/failures/unassigned", { headers: AUTH });
    expect(res.status).toBe(200);
    const open = (await res.json<{ failures: Failure[] }>()).failures.map((f) => f.id);
    expect(open).toEqual(expect.arrayContaining(ids.map((id) => `dlq:${id}`)));
    const login = await q.fetch("/console/login", {
      method: "POST",
      redirect: "manual",
      headers: { origin: BASE, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN }),
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const page = await (await q.fetch("/console/problems", { headers: { cookie } })).text();
    expect(page).toContain("Unassigned failures");
    expect(page).toContain(`data-failure="dlq:${ids[0]}"`);
    // Named for people (HighLevel gives no name for an unknown location), its id on hover.
    expect(page).toContain(`title="loc-nobody-${webhookId}"`);
    const replay = await q.fetch("/console/problems/replay", {
      method: "POST",
      redirect: "manual",
      headers: { cookie, origin: BASE, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ bucket: "unassigned", id: `dlq:${ids[0]}` }),
    });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toContain("ok=");
    expect(q.sent).toEqual([body]);
    expect((await getFailure(env.DB, `dlq:${ids[0]}`))?.status).toBe("replayed");
  });

  it("security: a message that fails the queue schema is recorded as a failure of its account, not only logged", async () => {
    await account("dlv-invalid", []);
    const broken = {
      v: 1,
      kind: "sync.record",
      accountId: "dlv-invalid",
      side: "nowhere",
      record: "deal",
      recordId: "d-1",
    };
    const run = await runBatch([broken], recordingHandlers().handlers);
    expect(run.acked).toEqual(run.ids);
    const failures = await listFailures(env.DB, "dlv-invalid");
    expect(failures.map((f) => [f.id, f.message])).toEqual([[`invalid:${run.ids[0]}`, broken]]);
    expect(failures[0]!.reason).toMatch(/does not match the queue schema \(side: /);
  });

  it("security: a schema-invalid message is retried, not acked, when its failure cannot be written", async () => {
    const down = new Proxy(env.DB, {
      get: (t, p) =>
        p === "prepare" || p === "batch"
          ? () => {
              throw new Error("D1 is down");
            }
          : Reflect.get(t, p),
    });
    const run = await runBatch([{ v: 1, kind: "nope" }], recordingHandlers().handlers, { db: down });
    expect(run.acked).toEqual([]);
    expect(run.retried).toEqual(run.ids);
  });

  it("security: while D1 is down a dead letter is retried with growing backoff for about a day, never acked", async () => {
    const down = {
      ...env,
      DB: new Proxy(env.DB, {
        get: (t, p) =>
          p === "prepare" || p === "batch"
            ? () => {
                throw new Error("D1 is down");
              }
            : Reflect.get(t, p),
      }),
    } as Env;
    const { result } = await deadLetter([hl(uid("down"), "loc-dlv")], down);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    // The DLQ consumer's own retries (wrangler.toml) span at least 12 hours even at the lowest jitter.
    const dlq = /\[\[queues\.consumers\]\]\s*\nqueue = "sync-events-dlq"\n([^[]*)/.exec(wranglerToml)?.[1] ?? "";
    expect(Number(/max_retries = (\d+)/.exec(dlq)?.[1])).toBe(DLQ_MAX_RETRIES);
    let window = 0;
    for (let attempt = 1; attempt <= DLQ_MAX_RETRIES; attempt++) window += backoffSeconds(attempt, () => 0);
    expect(window).toBeGreaterThan(12 * 3600);
  });
});
