/**
 * Fuzzing (issue 7) with fast-check on the public and admin entry points: both webhook routes,
 * the OAuth callback, the CSV import and the admin API. Random and mutated inputs (including
 * correctly signed bodies of every shape) must never produce a 5xx, and every message the Worker
 * enqueues must parse with the queue schema (src/queue/messages.ts). The queue is a recording one
 * (the app runs with it in place of SYNC_QUEUE), so each enqueued body is checked as sent.
 *
 * Valid deliveries are generated on purpose (mutations of a real one: every opportunity event type,
 * odd ids and extra fields, but a connected location, a fresh timestamp and a unique id), and the
 * tests count that they reach the queue — a fuzz run where nothing gets past validation proves
 * nothing about the writes behind it. "Never a half-written row", per route:
 *  - webhooks: a 2xx "accepted" enqueued exactly one message for that delivery id, a refused one
 *    none, and the route wrote no receipt (the dedupe row) for a location or workspace event — the
 *    queue consumer claims deliveries, so a receipt can never exist without its message; replays
 *    are enqueued again and the consumer hands each delivery id to its handler exactly once;
 *  - OAuth callback: no connection and no consumed-but-unused state is left behind by a rejected
 *    callback (connections / oauth_states unchanged);
 *  - CSV import: every fourdegrees_import_rows row belongs to an import header row, and every
 *    import header that has rows has as many as it says;
 *  - admin API: every account has its account_settings row and vice versa, and no location or
 *    workspace points at an account that does not exist.
 * `FUZZ_RUNS` sets the runs per property (default 100; the whole file stays a few seconds).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ED25519_PRIVATE_PEM, pemToDer, toBase64 } from "../../../sandbox/highlevel/keys.ts";
import { signWebhook } from "../../../src/fourdegrees/webhook.ts";
import { createApp } from "../../../src/http/app.ts";
import { createAccount, deleteAccount } from "../../../src/store/accounts.ts";
import { recordingHandlers, runBatch } from "../helpers/consume.ts";
import { locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { proofEnv } from "../proof-env.ts";

const RUNS = Number(proofEnv().FUZZ_RUNS || 100);
const LOCATION = "fuzzLocation0001";
const ACCOUNT = "acct-fuzz";
const app = createApp();
const sent: unknown[] = [];
const queue = {
  async send(body: unknown) {
    sent.push(body);
  },
  async sendBatch(messages: Iterable<{ body: unknown }>) {
    for (const m of messages) sent.push(m.body);
  },
};
// Both queues: webhooks go to the live one, CSV rows to the bulk one (src/queue/queues.ts).
const testEnv = { ...env, SYNC_QUEUE: queue, BULK_QUEUE: queue };
const call = (req: Request) => app.fetch(req, testEnv);
const admin = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };

let edKey: CryptoKey;
async function signHighLevel(body: string): Promise<Record<string, string>> {
  edKey ??= await crypto.subtle.importKey("pkcs8", pemToDer(ED25519_PRIVATE_PEM), { name: "Ed25519" }, false, ["sign"]);
  return {
    "x-ghl-signature": toBase64(await crypto.subtle.sign({ name: "Ed25519" }, edKey, new TextEncoder().encode(body))),
  };
}

/** Every message enqueued so far is valid; clears the recording. */
function expectValidMessages(): void {
  for (const body of sent.splice(0)) {
    const parsed = QueueMessageSchema.safeParse(body);
    expect(parsed.success, `enqueued an invalid message: ${JSON.stringify(body).slice(0, 300)}`).toBe(true);
  }
}

function expectNo5xx(res: Response, what: string): void {
  expect(res.status, `${what} answered ${res.status}`).toBeLessThan(500);
}

/** Enqueued messages (since the last check) that carry `webhookId`. */
function sentFor(webhookId: string): unknown[] {
  return sent.filter((b) => typeof b === "object" && b !== null && Reflect.get(b, "webhookId") === webhookId);
}

async function receiptExists(provider: "highlevel" | "fourdegrees", webhookId: string): Promise<boolean> {
  return (
    (await env.DB.prepare("SELECT 1 AS one FROM webhook_receipts WHERE provider = ? AND webhook_id = ?")
      .bind(provider, webhookId)
      .first()) !== null
  );
}

/**
 * The webhook half of "never a half-written row": an "accepted" answer enqueued exactly one
 * message with the delivery's id, any other answer none; the route writes a receipt only for an
 * app INSTALL / UNINSTALL event it applied at once ("applied" / "duplicate"), never for a location
 * or workspace event — those are claimed by the queue consumer.
 */
async function expectWholeDelivery(
  provider: "highlevel" | "fourdegrees",
  webhookId: string,
  res: Response,
  status: string,
): Promise<void> {
  const messages = sentFor(webhookId).length;
  if (res.status < 400 && status === "accepted")
    expect(messages, "an accepted delivery without exactly one queued message").toBe(1);
  else expect(messages, `a ${res.status} "${status}" delivery enqueued a message`).toBe(0);
  const appEvent = status === "applied" || status === "duplicate";
  if (!appEvent)
    expect(
      await receiptExists(provider, webhookId),
      `the ingress wrote a receipt for a ${res.status} "${status}" delivery`,
    ).toBe(false);
}

/** The `status` of a 2xx webhook answer ("" for others). */
async function statusOf(res: Response): Promise<string> {
  return res.status < 400 ? String(Reflect.get(await res.clone().json<object>(), "status")) : "";
}

/** Table-level invariants the admin API and the import must keep after every request. */
async function expectNoOrphans(): Promise<void> {
  const one = async (sql: string) => Number((await env.DB.prepare(sql).first<{ n: number }>())?.n ?? 0);
  expect(
    await one(
      "SELECT COUNT(*) AS n FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM account_settings s WHERE s.account_id = a.id)",
    ),
    "an account without its settings row",
  ).toBe(0);
  expect(
    await one(
      "SELECT COUNT(*) AS n FROM account_settings s WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = s.account_id)",
    ),
    "settings without their account",
  ).toBe(0);
  expect(
    await one(
      "SELECT COUNT(*) AS n FROM account_locations l WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = l.account_id)",
    ),
    "a location of a missing account",
  ).toBe(0);
  expect(
    await one(
      "SELECT COUNT(*) AS n FROM fourdegrees_accounts f WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = f.account_id)",
    ),
    "a workspace of a missing account",
  ).toBe(0);
  expect(
    await one(
      "SELECT COUNT(*) AS n FROM fourdegrees_import_rows r WHERE r.content_hash = '' OR NOT EXISTS (SELECT 1 FROM fourdegrees_imports i WHERE i.id = r.last_import_id)",
    ),
    "an import row without its hash or its import",
  ).toBe(0);
}

const OPPORTUNITY_TYPES = [
  "OpportunityCreate",
  "OpportunityUpdate",
  "OpportunityDelete",
  "OpportunityStatusUpdate",
  "OpportunityStageUpdate",
  "OpportunityMonetaryValueUpdate",
  "OpportunityAssignedToUpdate",
] as const;
/** A valid HighLevel delivery for the connected location, mutated everywhere it may be (ids, extra fields). */
const validHighLevelEvent = fc.record({
  type: fc.constantFrom(...OPPORTUNITY_TYPES),
  id: fc.string({ minLength: 1, maxLength: 40 }),
  pipelineStageId: fc.option(fc.string()),
  status: fc.option(fc.constantFrom("open", "won", "lost", "abandoned", "weird")),
  monetaryValue: fc.option(fc.oneof(fc.double(), fc.integer(), fc.string())),
  extra: fc.jsonValue(),
});

const jsonish = fc.oneof(
  fc.json(),
  fc.string(),
  fc.constant(""),
  fc.constant("{"),
  fc.constant("[]"),
  fc.constant("null"),
);
/** HighLevel-shaped events with random and boundary values (what a mutated real delivery looks like). */
const highLevelEvent = fc.record(
  {
    type: fc.oneof(
      fc.constantFrom(
        "OpportunityCreate",
        "OpportunityUpdate",
        "OpportunityDelete",
        "OpportunityStageUpdate",
        "NoteCreate",
        "INSTALL",
        "UNINSTALL",
        "ContactCreate",
      ),
      fc.string(),
    ),
    locationId: fc.oneof(fc.constant(LOCATION), fc.string(), fc.constant(null), fc.integer()),
    id: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constant(null), fc.integer()),
    contactId: fc.oneof(fc.string(), fc.constant(null)),
    webhookId: fc.oneof(fc.uuid(), fc.string(), fc.constant(null)),
    timestamp: fc.oneof(
      fc.constant(new Date().toISOString()),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.integer(),
      fc.string(),
    ),
    companyId: fc.oneof(fc.string(), fc.constant(null)),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

beforeAll(async () => {
  // A connected location and an account, so valid events go all the way to the queue.
  await saveConnectionTokens(env.DB, {
    id: locationConnectionId(LOCATION),
    kind: "location",
    locationId: LOCATION,
    companyId: "fuzzCompany",
    tokenSource: "refresh",
    scopes: [],
    accessTokenEnc: "unused",
    refreshTokenEnc: null,
    keyId: "k1",
    expiresAt: Date.now() + 86_400_000,
    tokenVersion: 1,
    userId: null,
    appId: null,
  });
  await deleteAccount(env.DB, ACCOUNT);
  await createAccount(env.DB, { id: ACCOUNT, name: "Fuzz", workspaceId: "ws_fuzz", locations: [LOCATION] });
});

describe("fuzz: POST /webhooks/highlevel", () => {
  it("security: unsigned, badly signed and correctly signed random bodies never get a 5xx; every enqueued message is valid; no half-written receipt", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          highLevelEvent.map((e) => JSON.stringify(e)),
          jsonish,
        ),
        fc.constantFrom("signed", "unsigned", "garbage"),
        async (body, mode) => {
          const headers: Record<string, string> = {
            "content-type": "application/json",
            ...(mode === "signed"
              ? await signHighLevel(body)
              : mode === "garbage"
                ? { "x-ghl-signature": "AAAA" + body.slice(0, 10) }
                : {}),
          };
          let webhookId: unknown = null;
          try {
            const parsed: unknown = JSON.parse(body);
            webhookId = typeof parsed === "object" && parsed !== null ? Reflect.get(parsed, "webhookId") : null;
          } catch {
            // not JSON: refused before any write
          }
          const before = typeof webhookId === "string" ? await receiptExists("highlevel", webhookId) : false;
          const res = await call(
            new Request("http://worker.test/webhooks/highlevel", { method: "POST", headers, body }),
          );
          expectNo5xx(res, `webhook (${mode}) ${body.slice(0, 80)}`);
          if (mode !== "signed") expect(res.status).toBeGreaterThanOrEqual(400);
          if (mode !== "signed" && typeof webhookId === "string")
            expect(await receiptExists("highlevel", webhookId)).toBe(before);
          if (mode !== "signed")
            expect(sent, "an unsigned or badly signed delivery enqueued a message").toHaveLength(0);
          if (mode === "signed" && typeof webhookId === "string" && webhookId !== "")
            await expectWholeDelivery("highlevel", webhookId, res, await statusOf(res));
          expectValidMessages();
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("happy: mutated valid deliveries all reach the queue (one message each); their replays are accepted again and the consumer hands each delivery to its handler exactly once", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(validHighLevelEvent, async (e) => {
        const webhookId = crypto.randomUUID();
        const body = JSON.stringify({ ...e, locationId: LOCATION, webhookId, timestamp: new Date().toISOString() });
        const headers = { "content-type": "application/json", ...(await signHighLevel(body)) };
        const res = await call(new Request("http://worker.test/webhooks/highlevel", { method: "POST", headers, body }));
        expect(res.status, await res.clone().text()).toBe(200);
        expect(await res.json()).toMatchObject({ status: "accepted" });
        await expectWholeDelivery("highlevel", webhookId, res, "accepted");
        expect(sentFor(webhookId)[0]).toMatchObject({ kind: "highlevel.webhook", locationId: LOCATION, type: e.type });
        accepted++;
        const replay = await call(
          new Request("http://worker.test/webhooks/highlevel", { method: "POST", headers, body }),
        );
        expect(await replay.json()).toMatchObject({ status: "accepted" });
        const both = sentFor(webhookId);
        expect(both).toHaveLength(2);
        expectValidMessages();
        // The consumer dedupes: of the delivery and its replay, one reaches the handler.
        const { handlers, reached } = recordingHandlers();
        const run = await runBatch(both, handlers);
        expect(reached).toEqual([webhookId]);
        expect(run.acked).toHaveLength(2);
        expect(run.retried).toHaveLength(0);
      }),
      { numRuns: RUNS },
    );
    expect(accepted).toBe(RUNS);
  });
});

describe("fuzz: POST /webhooks/4degrees", () => {
  it("security: random bodies, signed or tampered, never get a 5xx; every enqueued message is valid", async () => {
    const fdEvent = fc.record(
      {
        id: fc.string(),
        type: fc.oneof(
          fc.constantFrom("deal.created", "deal.updated", "deal.stage_changed", "deal.archived", "note.created"),
          fc.string(),
        ),
        workspace_id: fc.oneof(fc.constant("ws_fuzz"), fc.string()),
        occurred_at: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string(),
        ),
        data: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fdEvent.map((e) => JSON.stringify(e)),
          jsonish,
        ),
        fc.boolean(),
        fc.string({ maxLength: 40 }),
        async (body, tamper, id) => {
          const webhookId = `msg_${id}_${crypto.randomUUID()}`;
          const headers = await signWebhook(
            TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET,
            webhookId,
            Date.now() / 1000,
            body,
          );
          const res = await call(
            new Request("http://worker.test/webhooks/4degrees", {
              method: "POST",
              headers: { "content-type": "application/json", ...headers },
              body: tamper ? `${body} ` : body,
            }),
          );
          expectNo5xx(res, `4Degrees webhook ${body.slice(0, 80)}`);
          if (tamper) expect(res.status).toBeGreaterThanOrEqual(400);
          await expectWholeDelivery("fourdegrees", webhookId, res, await statusOf(res));
          expectValidMessages();
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("happy: mutated valid events all reach the queue exactly once (one message, no receipt at the door)", async () => {
    const valid = fc.record({
      type: fc.constantFrom(
        "deal.created",
        "deal.updated",
        "deal.stage_changed",
        "deal.owner_changed",
        "deal.deleted",
        "note.created",
        "note.updated",
        "note.deleted",
      ),
      object: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue(), { maxKeys: 5 }),
      dealId: fc.string({ minLength: 1, maxLength: 30 }),
    });
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(valid, async (e) => {
        const webhookId = `msg_${crypto.randomUUID()}`;
        const body = JSON.stringify({
          id: `evt_${crypto.randomUUID()}`,
          type: e.type,
          created_at: new Date().toISOString(),
          workspace_id: "ws_fuzz",
          data: { object: { ...e.object, id: e.dealId } },
        });
        const headers = await signWebhook(TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET, webhookId, Date.now() / 1000, body);
        const res = await call(
          new Request("http://worker.test/webhooks/4degrees", {
            method: "POST",
            headers: { "content-type": "application/json", ...headers },
            body,
          }),
        );
        expect(res.status, await res.clone().text()).toBe(200);
        await expectWholeDelivery("fourdegrees", webhookId, res, "accepted");
        accepted++;
        expectValidMessages();
      }),
      { numRuns: RUNS },
    );
    expect(accepted).toBe(RUNS);
  });
});

describe("fuzz: GET /oauth/callback", () => {
  it("security: random query strings never get a 5xx and never store a connection", async () => {
    const rows = async () => ({
      connections: Number(
        (await env.DB.prepare("SELECT COUNT(*) AS n FROM connections").first<{ n: number }>())?.n ?? 0,
      ),
      states: Number((await env.DB.prepare("SELECT COUNT(*) AS n FROM oauth_states").first<{ n: number }>())?.n ?? 0),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.constantFrom("code", "state", "error", "locationId", "companyId", "x"), fc.string()),
        async (query) => {
          const before = await rows();
          const qs = new URLSearchParams(query).toString();
          const res = await call(new Request(`http://worker.test/oauth/callback?${qs}`));
          expectNo5xx(res, `callback ?${qs}`);
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(await rows()).toEqual(before);
        },
      ),
      { numRuns: RUNS },
    );
    expectValidMessages();
  });
});

describe("fuzz: POST /api/import/4degrees", () => {
  it("error: random and mutated CSV bodies never get a 5xx; every enqueued import row is valid", async () => {
    const cell = fc.oneof(
      fc.string(),
      fc.constantFrom(
        "Deal Name",
        "Stage",
        "Amount",
        "Owner",
        "Close Date",
        "Notes",
        "HighLevel ID",
        "Sourced",
        "$1,000",
        "2027-03-31",
        '"quoted, cell"',
        "\r\n",
        ";",
      ),
    );
    const csvText = fc.oneof(
      fc.string(),
      fc
        .array(fc.array(cell, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 })
        .map((rows) => rows.map((r) => r.join(",")).join("\n")),
      fc
        .array(fc.array(cell, { maxLength: 5 }), { maxLength: 5 })
        .map((rows) => `Deal Name,Stage,Amount\n${rows.map((r) => r.join(",")).join("\r\n")}`),
    );
    await fc.assert(
      fc.asyncProperty(
        csvText,
        fc.constantFrom("text/csv", "text/plain", "application/octet-stream"),
        fc.constantFrom(ACCOUNT, "no-such-account", ""),
        async (text, type, account) => {
          const res = await call(
            new Request(`http://worker.test/api/import/4degrees?account=${encodeURIComponent(account)}`, {
              method: "POST",
              headers: { ...admin, "content-type": type },
              body: text,
            }),
          );
          expectNo5xx(res, `import (${type}) ${JSON.stringify(text.slice(0, 80))}`);
          expectValidMessages();
          await expectNoOrphans();
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: admin API", () => {
  it("error: random methods, paths and JSON bodies under /api never get a 5xx; every enqueued message is valid", async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        "accounts",
        ACCOUNT,
        "mapping",
        "suggested",
        "pause",
        "resume",
        "test-mode",
        "failures",
        "replay",
        "backfill",
        "review",
        "sync",
        "events",
        "bootstrap",
        "fourdegrees",
        "highlevel",
        "fourdegrees",
        "deal",
        "x",
      ),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
        fc.array(segment, { minLength: 1, maxLength: 5 }),
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string(),
        ),
        fc.boolean(),
        async (method, segments, body, authed) => {
          // Never delete the fuzz account itself: the other properties rely on it.
          if (method === "DELETE" && segments.length === 2 && segments[1] === ACCOUNT) return;
          const url = `http://worker.test/api/${segments.join("/")}`;
          const init: RequestInit = {
            method,
            headers: { ...(authed ? admin : {}), "content-type": "application/json" },
            ...(method === "GET" ? {} : { body }),
          };
          const res = await call(new Request(url, init));
          expectNo5xx(res, `${method} ${url} ${body.slice(0, 80)}`);
          if (!authed) expect(res.status).toBe(401);
          expectValidMessages();
          await expectNoOrphans();
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });
});
