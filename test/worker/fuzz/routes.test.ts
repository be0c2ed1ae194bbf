/**
 * Fuzzing (issue 7) with fast-check on the public and admin entry points: both webhook routes,
 * the OAuth callback, the CSV import and the admin API. Random and mutated inputs (including
 * correctly signed bodies of every shape) must never produce a 5xx, and every message the Worker
 * enqueues must parse with the queue schema (src/sync/messages.ts). The queue is a recording one
 * (the app runs with it in place of SYNC_QUEUE), so each enqueued body is checked as sent.
 * `FUZZ_RUNS` sets the runs per property (default 60).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ED25519_PRIVATE_PEM, pemToDer, toBase64 } from "../../../sandbox/highlevel/keys.ts";
import { signWebhook } from "../../../src/fourdegrees/webhook.ts";
import { createApp } from "../../../src/http/app.ts";
import { createAccount, deleteAccount } from "../../../src/store/accounts.ts";
import { locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import { QueueMessageSchema } from "../../../src/sync/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { proofEnv } from "../proof-env.ts";

const RUNS = Number(proofEnv().FUZZ_RUNS || 60);
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
const testEnv = { ...env, SYNC_QUEUE: queue };
const call = (req: Request) => app.fetch(req, testEnv);
const admin = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };

let edKey: CryptoKey;
async function signHighLevel(body: string): Promise<Record<string, string>> {
  edKey ??= await crypto.subtle.importKey("pkcs8", pemToDer(ED25519_PRIVATE_PEM), { name: "Ed25519" }, false, ["sign"]);
  return { "x-ghl-signature": toBase64(await crypto.subtle.sign({ name: "Ed25519" }, edKey, new TextEncoder().encode(body))) };
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

const jsonish = fc.oneof(fc.json(), fc.string(), fc.constant(""), fc.constant("{"), fc.constant("[]"), fc.constant("null"));
/** HighLevel-shaped events with random and boundary values (what a mutated real delivery looks like). */
const highLevelEvent = fc.record(
  {
    type: fc.oneof(fc.constantFrom("OpportunityCreate", "OpportunityUpdate", "OpportunityDelete", "OpportunityStageUpdate", "NoteCreate", "INSTALL", "UNINSTALL", "ContactCreate"), fc.string()),
    locationId: fc.oneof(fc.constant(LOCATION), fc.string(), fc.constant(null), fc.integer()),
    id: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constant(null), fc.integer()),
    contactId: fc.oneof(fc.string(), fc.constant(null)),
    webhookId: fc.oneof(fc.uuid(), fc.string(), fc.constant(null)),
    timestamp: fc.oneof(fc.constant(new Date().toISOString()), fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.integer(), fc.string()),
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
  it("security: unsigned, badly signed and correctly signed random bodies never get a 5xx; every enqueued message is valid", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(highLevelEvent.map((e) => JSON.stringify(e)), jsonish), fc.constantFrom("signed", "unsigned", "garbage"), async (body, mode) => {
        const headers: Record<string, string> = { "content-type": "application/json", ...(mode === "signed" ? await signHighLevel(body) : mode === "garbage" ? { "x-ghl-signature": "AAAA" + body.slice(0, 10) } : {}) };
        const res = await call(new Request("http://worker.test/webhooks/highlevel", { method: "POST", headers, body }));
        expectNo5xx(res, `webhook (${mode}) ${body.slice(0, 80)}`);
        if (mode !== "signed") expect(res.status).toBeGreaterThanOrEqual(400);
        expectValidMessages();
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: POST /webhooks/4degrees", () => {
  it("security: random bodies, signed or tampered, never get a 5xx; every enqueued message is valid", async () => {
    const fdEvent = fc.record(
      {
        id: fc.string(),
        type: fc.oneof(fc.constantFrom("deal.created", "deal.updated", "deal.stage_changed", "deal.archived", "note.created"), fc.string()),
        workspace_id: fc.oneof(fc.constant("ws_fuzz"), fc.string()),
        occurred_at: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string()),
        data: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(fdEvent.map((e) => JSON.stringify(e)), jsonish), fc.boolean(), fc.string({ maxLength: 40 }), async (body, tamper, id) => {
        const headers = await signWebhook(TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET, `msg_${id}_${crypto.randomUUID()}`, Date.now() / 1000, body);
        const res = await call(new Request("http://worker.test/webhooks/4degrees", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: tamper ? `${body} ` : body }));
        expectNo5xx(res, `4Degrees webhook ${body.slice(0, 80)}`);
        if (tamper) expect(res.status).toBeGreaterThanOrEqual(400);
        expectValidMessages();
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: GET /oauth/callback", () => {
  it("security: random query strings never get a 5xx and never store a connection", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom("code", "state", "error", "locationId", "companyId", "x"), fc.string()), async (query) => {
        const qs = new URLSearchParams(query).toString();
        const res = await call(new Request(`http://worker.test/oauth/callback?${qs}`));
        expectNo5xx(res, `callback ?${qs}`);
        expect(res.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: RUNS },
    );
    expectValidMessages();
  });
});

describe("fuzz: POST /api/import/4degrees", () => {
  it("error: random and mutated CSV bodies never get a 5xx; every enqueued import row is valid", async () => {
    const cell = fc.oneof(fc.string(), fc.constantFrom("Deal Name", "Stage", "Amount", "Owner", "Close Date", "Notes", "HighLevel ID", "Sourced", "$1,000", "2027-03-31", '"quoted, cell"', "\r\n", ";"));
    const csvText = fc.oneof(
      fc.string(),
      fc.array(fc.array(cell, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }).map((rows) => rows.map((r) => r.join(",")).join("\n")),
      fc.array(fc.array(cell, { maxLength: 5 }), { maxLength: 5 }).map((rows) => `Deal Name,Stage,Amount\n${rows.map((r) => r.join(",")).join("\r\n")}`),
    );
    await fc.assert(
      fc.asyncProperty(csvText, fc.constantFrom("text/csv", "text/plain", "application/octet-stream"), fc.constantFrom(ACCOUNT, "no-such-account", ""), async (text, type, account) => {
        const res = await call(new Request(`http://worker.test/api/import/4degrees?account=${encodeURIComponent(account)}`, { method: "POST", headers: { ...admin, "content-type": type }, body: text }));
        expectNo5xx(res, `import (${type}) ${JSON.stringify(text.slice(0, 80))}`);
        expectValidMessages();
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: admin API", () => {
  it("error: random methods, paths and JSON bodies under /api never get a 5xx; every enqueued message is valid", async () => {
    const segment = fc.oneof(fc.constantFrom("accounts", ACCOUNT, "mapping", "suggested", "pause", "resume", "test-mode", "failures", "replay", "backfill", "review", "sync", "events", "bootstrap", "fourdegrees", "highlevel", "fourdegrees", "deal", "x"), fc.string({ maxLength: 12 }).map(encodeURIComponent));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"), fc.array(segment, { minLength: 1, maxLength: 5 }), fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string()), fc.boolean(), async (method, segments, body, authed) => {
        // Never delete the fuzz account itself: the other properties rely on it.
        if (method === "DELETE" && segments.length === 2 && segments[1] === ACCOUNT) return;
        const url = `http://worker.test/api/${segments.join("/")}`;
        const init: RequestInit = { method, headers: { ...(authed ? admin : {}), "content-type": "application/json" }, ...(method === "GET" ? {} : { body }) };
        const res = await call(new Request(url, init));
        expectNo5xx(res, `${method} ${url} ${body.slice(0, 80)}`);
        if (!authed) expect(res.status).toBe(401);
        expectValidMessages();
      }),
      { numRuns: RUNS * 2 },
    );
  });
});
