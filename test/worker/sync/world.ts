/**
 * An end-to-end world for sync tests: both sandboxes in-process (manual webhooks), the demo data
 * seeded, the HighLevel demo location connected with its Private Integration Token, the 4Degrees
 * demo key (the single-account secret), an account with the default mapping built from the live
 * pipelines, and a captured queue drained by the engine's real handlers.
 *
 * Webhook deliveries are turned into the same queue messages the ingress enqueues (ingress itself
 * — signatures, dedupe — is tested by the connector suites). They are NOT deduplicated here, so
 * duplicated deliveries reach the engine and its coalescing has to absorb them.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import { loadConfig } from "../../../src/config.ts";
import { FourDegreesClient, passThroughGate } from "../../../src/fourdegrees/client.ts";
import {
  FourDegreesConnector,
  fourDegreesWebhooks as fourdegreesWebhooks,
} from "../../../src/fourdegrees/connector.ts";
import { pairFourDegreesAccount } from "../../../src/fourdegrees/wiring.ts";
import { encryptSecret } from "../../../src/lib/crypto.ts";
import { createLogger } from "../../../src/lib/log.ts";
import {
  createAccount,
  deleteAccount,
  getAccount,
  saveMapping,
  updateAccount,
  type Account,
} from "../../../src/store/accounts.ts";
import { locationConnectionId, saveConnectionTokens } from "../../../src/store/connections.ts";
import { findLink } from "../../../src/store/links.ts";
import { highLevelPort } from "../../../src/highlevel/adapter.ts";
import type { AccountConnectors, ConnectorFactory } from "../../../src/sync/connectors.ts";
import type { HandlerContext, Outcome } from "../../../src/queue/consumer.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import type { JobDeps } from "../../../src/sync/jobs/deps.ts";
import { defaultMapping, MappingSchema, type Mapping, type MappingInput } from "../../../src/domain/mapping-config.ts";
import { QueueMessageSchema, type QueueMessageInput } from "../../../src/queue/messages.ts";
import type { RouteHandler } from "../helpers/network.ts";
import { normaliseDate } from "../../../src/sync/engine/mapping.ts";

export const ACCOUNT = "acct-e2e";

/** The HighLevel API versions the sync runs on (`HIGHLEVEL_API_VERSION`); flow suites run on each. */
export const API_VERSIONS = ["2021-07-28", "v3"] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

/** Queue messages the engine produced or webhooks delivered, not yet processed. */
export interface Queued {
  body: QueueMessageInput;
  attempts: number;
}

export interface World {
  sb: Sandbox;
  account: () => Promise<Account>;
  locationId: string;
  fdPipelineId: string;
  hlPipelineId: string;
  /** 4Degrees stage ids by name; HighLevel stage ids by name. */
  fdStage: (name: string) => string;
  hlStage: (name: string) => string;
  mapping: Mapping;
  /** The `HIGHLEVEL_API_VERSION` this world's Worker runs with. */
  apiVersion: ApiVersion;
  /**
   * The close date HighLevel holds for an opportunity, where this world keeps it: the mapping's
   * custom field (2021-07-28), HighLevel's native `forecastExpectedCloseDate` (v3, no field mapped).
   */
  hlCloseDate(oppId: string): string | null;
  /** Sets that close date in HighLevel as a user would (null clears it). */
  setHlCloseDate(oppId: string, date: string | null): void;
  queue: Queued[];
  deps: JobDeps;
  /** Every message handled and its outcome. */
  handled: Array<{ kind: string; outcome: Outcome["kind"] }>;
  /** Delivers due webhooks of both sandboxes and drains the queue until both are quiet. */
  settle(options?: { maxRounds?: number }): Promise<void>;
  /** Processes queued messages only (no webhook flush). */
  drain(): Promise<number>;
  /** Counts the Worker's write calls to each provider since the last `resetCounts()`. */
  writes(): { highlevel: number; fourdegrees: number };
  resetCounts(): void;
  ctx: HandlerContext;
  patchAccount(patch: Parameters<typeof updateAccount>[2]): Promise<Account>;
  linkOf(side: "fourdegrees" | "highlevel", id: string): ReturnType<typeof findLink>;
}

const writeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Builds a world. `network` is the routes object the test file passed to `useNetwork` (its
 * `sandbox.test` entry is pointed at this world's sandbox).
 */
export async function createWorld(
  routes: Record<string, RouteHandler>,
  options: {
    /** Edits the default mapping; `demo` names the HighLevel demo's close-date custom field. */
    mapping?: (m: MappingInput, demo: { closeDateFieldId: string }) => MappingInput;
    account?: Partial<Parameters<typeof createAccount>[1]>;
    fast?: boolean;
    hooks?: JobDeps["hooks"];
    /** Seeds the sandboxes' ids (default: the time, as the sandbox does): a seeded run replays its ids and their order. */
    seed?: number;
    /**
     * `HIGHLEVEL_API_VERSION` (default 2021-07-28). Under v3 the default mapping names no
     * close-date custom field: the close date syncs through the native forecast field.
     */
    apiVersion?: ApiVersion;
  } = {},
): Promise<World> {
  const apiVersion = options.apiVersion ?? "2021-07-28";
  const config = { ...loadConfig(env), HIGHLEVEL_API_VERSION: apiVersion };
  const queue: Queued[] = [];
  const handled: World["handled"] = [];
  const calls: Array<{ method: string; url: string }> = [];
  const sb = createSandbox({
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    webhookMode: "manual",
    // The engine paces itself through the gate in production; here the sandbox budget is not the subject.
    settings: { FOURDEGREES_RATE_LIMIT: "100000" },
    fetch: async (request) => receiveWebhook(request, queue),
  });
  routes["sandbox.test"] = async (r) => {
    const u = new URL(r.url);
    if (writeMethods.has(r.method) && !u.pathname.startsWith("/_sandbox")) calls.push({ method: r.method, url: r.url });
    return sb.fetch(r);
  };
  const hlDemo = await sb.highlevel.seedDemo();
  const fdDemo = await sb.fourdegrees.seedDemo();
  sb.highlevel.setRateLimit({ max: 1_000_000, daily: 10_000_000 });
  // A custom field that carries the 4Degrees deal id (the lookup before any create).
  const externalIdFieldId = "cf_4degrees_deal_id";
  sb.highlevel.store.customFields.set(externalIdFieldId, {
    id: externalIdFieldId,
    locationId: hlDemo.locationId,
    name: "4Degrees Deal ID",
    fieldKey: "opportunity.fourdegrees_deal_id",
    dataType: "TEXT",
    model: "opportunity",
    position: 60,
    placeholder: "",
  });
  sb.highlevel.subscribe("http://worker.test/webhooks/highlevel");
  sb.fourdegrees.subscribe("http://worker.test/webhooks/4degrees");

  // Connect the demo location with its PIT (what an operator's OAuth install would have stored).
  const connectionId = locationConnectionId(hlDemo.locationId);
  await saveConnectionTokens(env.DB, {
    id: connectionId,
    kind: "location",
    locationId: hlDemo.locationId,
    companyId: hlDemo.companyId,
    tokenSource: "refresh",
    scopes: [],
    accessTokenEnc: await encryptSecret(config.TOKEN_ENCRYPTION_KEY, hlDemo.pit, `connection:${connectionId}:access`),
    refreshTokenEnc: null,
    keyId: config.TOKEN_ENCRYPTION_KEY[0]?.id ?? "k1",
    expiresAt: Date.now() + 365 * 86_400_000,
    tokenVersion: 1_000_000,
    userId: null,
    appId: null,
  });

  await deleteAccount(env.DB, ACCOUNT);
  // The workspace comes from its one writer, as in production: 4Degrees names it for the key.
  const paired = await pairFourDegreesAccount(env, config, {
    accountId: ACCOUNT,
    accountName: "E2E",
    apiKey: sb.fourdegrees.apiKey,
  });
  expect(paired.workspaceId).toBe(fdDemo.workspaceId);
  await createAccount(env.DB, { id: ACCOUNT, name: "E2E", locations: [hlDemo.locationId], ...options.account });

  const fdPipelines = await new FourDegreesConnector(
    new FourDegreesClient({
      baseUrl: config.FOURDEGREES_API_BASE,
      apiKey: sb.fourdegrees.apiKey,
      gate: passThroughGate,
    }),
  ).listPipelines();
  const hlPipelines = await highLevelPort(env, config, hlDemo.locationId, "live").listPipelines();
  let input = defaultMapping(
    { fourdegrees: fdPipelines, highlevel: { [hlDemo.locationId]: hlPipelines } },
    hlDemo.locationId,
    { closeDateFieldId: apiVersion === "v3" ? null : hlDemo.closeDateFieldId, externalIdFieldId },
  );
  if (options.mapping) input = options.mapping(input, { closeDateFieldId: hlDemo.closeDateFieldId });
  const mapping = MappingSchema.parse(input);
  await saveMapping(env.DB, ACCOUNT, mapping);

  const fdPipeline = fdPipelines.find((p) => p.id === fdDemo.pipelineId);
  const hlPipeline = hlPipelines.find((p) => p.id === hlDemo.pipelineId);
  const connectors: ConnectorFactory = async (_account, lane) => {
    const fd = new FourDegreesConnector(
      new FourDegreesClient({
        baseUrl: config.FOURDEGREES_API_BASE,
        apiKey: sb.fourdegrees.apiKey,
        gate: passThroughGate,
        sleep: async () => undefined,
      }),
    );
    const out: AccountConnectors = {
      fourdegrees: fd,
      fourdegreesAttachments: fd,
      ourActor: { type: "integration", id: sb.fourdegrees.apiActor.id },
      // The gate's budget is not the subject here (the gate suites test it); give it room.
      highlevel: (loc) =>
        highLevelPort(env, config, loc, lane, {
          limits: { burst: { max: 1_000_000, intervalMs: 1_000 }, concurrency: 50 },
        }),
    };
    return out;
  };
  const deps: JobDeps = {
    connectors,
    fourdegreesWebhooks,
    enqueue: async (body) => {
      queue.push({ body, attempts: 0 });
    },
    now: () => Date.now(),
    coalesceDelaySeconds: 0,
    ...(options.hooks ? { hooks: options.hooks } : {}),
  };
  const log = createLogger("error");
  const ctx: HandlerContext = { env, config, log, attempts: 1 };
  const handlers = syncHandlers(() => deps);

  const drain = async (): Promise<number> => {
    let n = 0;
    while (queue.length > 0) {
      const item = queue.shift();
      if (!item) break;
      const msg = QueueMessageSchema.parse(item.body);
      const handler = handlers[msg.kind];
      expect(handler, `handler for ${msg.kind}`).toBeDefined();
      let outcome: Outcome;
      try {
        // The discriminated union cannot narrow `handlers[msg.kind]`; dispatch per kind.
        switch (msg.kind) {
          case "highlevel.webhook":
            outcome = await handlers["highlevel.webhook"]!(msg, { ...ctx, attempts: item.attempts + 1 });
            break;
          case "fourdegrees.webhook":
            outcome = await handlers["fourdegrees.webhook"]!(msg, { ...ctx, attempts: item.attempts + 1 });
            break;
          case "sync.record":
            outcome = await handlers["sync.record"]!(msg, { ...ctx, attempts: item.attempts + 1 });
            break;
          case "automation.run":
            outcome = await handlers["automation.run"]!(msg, { ...ctx, attempts: item.attempts + 1 });
            break;
          case "sync.backfill":
            outcome = await handlers["sync.backfill"]!(msg, { ...ctx, attempts: item.attempts + 1 });
            break;
          case "sync.attachments":
            outcome = await handlers["sync.attachments"]!(msg, { ...ctx, attempts: item.attempts + 1 });
            break;
          default:
            outcome = { kind: "ack" };
        }
      } catch (err) {
        outcome = { kind: "retry", reason: err instanceof Error ? err.message : String(err) };
      }
      handled.push({ kind: msg.kind, outcome: outcome.kind });
      if (outcome.kind === "retry") {
        if (item.attempts >= 6)
          throw new Error(`message retried too often: ${JSON.stringify(item.body)} (${outcome.reason})`);
        queue.push({ body: item.body, attempts: item.attempts + 1 });
      }
      n++;
    }
    return n;
  };

  const settle = async ({ maxRounds = 20 } = {}) => {
    for (let round = 0; round < maxRounds; round++) {
      const delivered = (await sb.highlevel.flush()) + (await sb.fourdegrees.flush());
      const processed = await drain();
      if (delivered === 0 && processed === 0) return;
    }
    throw new Error("the world did not settle (webhooks and jobs kept coming)");
  };

  return {
    sb,
    account: async () => {
      const a = await getAccount(env.DB, ACCOUNT);
      if (!a) throw new Error("account missing");
      return a;
    },
    locationId: hlDemo.locationId,
    fdPipelineId: fdDemo.pipelineId,
    hlPipelineId: hlDemo.pipelineId,
    fdStage: (name) => fdPipeline?.stages.find((s) => s.name === name)?.id ?? expect.fail(`no 4Degrees stage ${name}`),
    hlStage: (name) => hlPipeline?.stages.find((s) => s.name === name)?.id ?? expect.fail(`no HighLevel stage ${name}`),
    mapping,
    apiVersion,
    hlCloseDate(oppId) {
      const opp = sb.highlevel.store.opportunities.get(oppId);
      if (!opp) return expect.fail(`no opportunity ${oppId}`);
      if (!mapping.closeDateFieldId) return opp.forecast?.expectedCloseDate ?? null;
      const value = opp.customFields.find((f) => f.id === mapping.closeDateFieldId)?.value;
      return typeof value === "string" || typeof value === "number" ? normaliseDate(value) : null;
    },
    setHlCloseDate(oppId, date) {
      if (!mapping.closeDateFieldId) sb.highlevel.service.updateOpportunity(oppId, { forecastExpectedCloseDate: date });
      else
        sb.highlevel.service.updateOpportunity(oppId, {
          customFields: [{ id: mapping.closeDateFieldId, field_value: date ?? "" }],
        });
    },
    queue,
    deps,
    handled,
    settle,
    drain,
    writes: () => ({
      highlevel: calls.filter((c) => c.url.includes("/highlevel/")).length,
      fourdegrees: calls.filter((c) => c.url.includes("/4degrees/")).length,
    }),
    resetCounts: () => {
      calls.length = 0;
    },
    ctx,
    patchAccount: (patch) => updateAccount(env.DB, ACCOUNT, patch),
    linkOf: (side, id) => findLink(env.DB, ACCOUNT, side, id),
  };
}

/** Turns a sandbox webhook delivery into the queue message the ingress would enqueue. */
async function receiveWebhook(request: Request, queue: Queued[]): Promise<Response> {
  const url = new URL(request.url);
  const raw = await request.text();
  const body: unknown = JSON.parse(raw);
  if (!body || typeof body !== "object" || Array.isArray(body)) return new Response("bad", { status: 400 });
  const record: Record<string, unknown> = Object.fromEntries(Object.entries(body));
  const str = (v: unknown) => (typeof v === "string" ? v : "");
  if (url.pathname === "/webhooks/highlevel") {
    queue.push({
      body: {
        v: 1,
        kind: "highlevel.webhook",
        webhookId: str(record["webhookId"]) || crypto.randomUUID(),
        locationId: str(record["locationId"]) || null,
        type: str(record["type"]),
        receivedAt: Date.now(),
        body: record,
      },
      attempts: 0,
    });
  } else if (url.pathname === "/webhooks/4degrees") {
    queue.push({
      body: {
        v: 1,
        kind: "fourdegrees.webhook",
        webhookId: request.headers.get("webhook-id") ?? crypto.randomUUID(),
        workspaceId: str(record["workspace_id"]),
        type: str(record["type"]),
        receivedAt: Date.now(),
        body: record,
      },
      attempts: 0,
    });
  } else return new Response("not found", { status: 404 });
  return new Response(null, { status: 200 });
}
