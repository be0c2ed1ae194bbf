/**
 * The 4Degrees sandbox: one workspace behind the ASSUMED partner API, its control API, webhooks
 * signed the Standard Webhooks way and retried with backoff on any non-2xx, seeded faults, and
 * per-key rate limits. `createFourDegreesSandbox(ctx)` builds it for the sandbox host.
 */
import type { Hono } from "hono";
import type { SandboxClock } from "../core/clock.ts";
import { FaultInjector } from "../core/faults.ts";
import type { ProviderContext, ProviderSandbox } from "../core/provider.ts";
import { SeededRandom } from "../core/random.ts";
import { RateLimiter, type RateLimitSettings } from "../core/ratelimit.ts";
import { WebhookDispatcher, type WebhookDelivery } from "../core/webhooks.ts";
import { API_BASE, createApi } from "./api.ts";
import {
  createFiles,
  DEFAULT_ATTACHMENT_MAX_BYTES,
  DEFAULT_DOWNLOAD_URL_TTL_SECONDS,
  FILES_BASE,
  signedDownloadUrl,
} from "./attachments.ts";
import { createControl } from "./control.ts";
import { seedDemo, type DemoSummary } from "./demo.ts";
import type { Actor, Attachment, Deal, DealCreate, DealPatch, Note, Reminder, WebhookEvent } from "./model.ts";
import { DEFAULT_RETRY_SCHEDULE_MS, secretKeyBytes, standardWebhookHeaders } from "./signing.ts";
import { FourDegreesStore } from "./store.ts";

/** Default workspace API key and webhook secret (the Worker's .dev.vars.example defaults). */
export const DEFAULT_API_KEY = "4d_sandbox_key_demo";
export const DEFAULT_WEBHOOK_SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA==";
/** 10 requests per second per API key, the contract's example. */
export const DEFAULT_RATE_LIMIT: RateLimitSettings = { max: 10, intervalMs: 1_000, daily: null };
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const REQUEST_LOG_LIMIT = 1_000;
const EVENT_LOG_LIMIT = 5_000;

/** `import` lets a key set a note's or attachment's `author_id` and `created_at` (historical imports). */
export type Scope = "read" | "write" | "import";

/** Attachment limits (control API `PUT /attachments/settings`). */
export interface AttachmentSettings {
  maxBytes: number;
  downloadUrlTtlSeconds: number;
}

/** A workspace API key: the secret is the map key; `id` is the actor id its writes carry. */
export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: Scope[];
}

/** One API request as the sandbox saw it (the request log of the control API). */
export interface RequestRecord {
  at: string;
  method: string;
  /** The route pattern, e.g. `/deals/:id`. */
  route: string;
  path: string;
  status: number;
  requestId: string;
  idempotencyKey: string | null;
  ifMatch: string | null;
  replayed: boolean;
}

interface IdempotencyEntry {
  fingerprint: string;
  at: number;
  state: "in_flight" | "done";
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** `Idempotency-Key` records per API key: only 2xx answers are kept, for 24 h of sandbox time. */
export class IdempotencyStore {
  readonly #entries = new Map<string, IdempotencyEntry>();
  readonly #clock: SandboxClock;

  constructor(clock: SandboxClock) {
    this.#clock = clock;
  }

  lookup(slot: string): IdempotencyEntry | undefined {
    const entry = this.#entries.get(slot);
    if (entry && this.#clock.now() - entry.at > IDEMPOTENCY_TTL_MS) {
      this.#entries.delete(slot);
      return undefined;
    }
    return entry;
  }

  begin(slot: string, fingerprint: string): void {
    this.#entries.set(slot, {
      fingerprint,
      at: this.#clock.now(),
      state: "in_flight",
      status: 0,
      body: "",
      headers: {},
    });
  }

  complete(slot: string, answer: { status: number; body: string; headers: Record<string, string> }): void {
    const entry = this.#entries.get(slot);
    if (entry) Object.assign(entry, answer, { state: "done" });
  }

  abandon(slot: string): void {
    this.#entries.delete(slot);
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** A stable, non-secret id for an API key (FNV-1a of the key), so actor ids survive restarts. */
export function apiKeyId(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `key_${h.toString(16).padStart(8, "0")}`;
}

/** The 4Degrees provider sandbox with typed accessors for in-process tests. */
export class FourDegreesSandbox implements ProviderSandbox {
  readonly name = "4degrees";
  readonly mounts: Record<string, Hono>;
  readonly control: Hono;
  readonly faults: FaultInjector;
  readonly webhooks: WebhookDispatcher;
  readonly store: FourDegreesStore;
  readonly limiter: RateLimiter;
  readonly idempotency: IdempotencyStore;
  readonly clock: SandboxClock;
  /** API key secret → record. */
  readonly apiKeys = new Map<string, ApiKeyRecord>();
  /** The workspace's main API key (from FOURDEGREES_API_KEY). */
  readonly apiKey: string;
  /** Active webhook signing secrets; the first is current, the others still sign during rotation. */
  webhookSecrets: string[];
  /** Delay before each retry of a failed delivery (sandbox ms); its length is the retry count. */
  retrySchedule: number[] = [...DEFAULT_RETRY_SCHEDULE_MS];
  /** Counters and a recent log of API requests. */
  readonly requests = {
    total: 0,
    byRoute: {} as Record<string, number>,
    byStatus: {} as Record<string, number>,
    log: [] as RequestRecord[],
  };
  /** The file size cap and the download URL lifetime. */
  attachmentSettings: AttachmentSettings;
  /** The key download URLs are signed with (from the seed; never leaves the sandbox). */
  readonly fileSigningKey: string;
  /** What the last `seedDemo()` made (null before seeding or after a reset). */
  demo: DemoSummary | null = null;
  /** Events emitted (newest last, capped), including those no subscriber received. */
  readonly events: WebhookEvent[] = [];
  readonly #seed: number;
  readonly #defaultSecret: string;
  readonly #defaultAttachmentSettings: AttachmentSettings;
  #requestRandom: SeededRandom;

  constructor(ctx: ProviderContext) {
    this.clock = ctx.clock;
    this.#seed = ctx.seed;
    this.apiKey = ctx.settings["FOURDEGREES_API_KEY"] || DEFAULT_API_KEY;
    this.#defaultSecret = ctx.settings["FOURDEGREES_WEBHOOK_SECRET"] || DEFAULT_WEBHOOK_SECRET;
    secretKeyBytes(this.#defaultSecret);
    this.webhookSecrets = [this.#defaultSecret];
    this.#requestRandom = new SeededRandom(ctx.seed ^ 0x4d4d);
    this.fileSigningKey = new SeededRandom(ctx.seed ^ 0xf11e).string(32);
    this.#defaultAttachmentSettings = {
      maxBytes: Math.floor(
        positiveNumber(ctx.settings["FOURDEGREES_ATTACHMENT_MAX_BYTES"]) ?? DEFAULT_ATTACHMENT_MAX_BYTES,
      ),
      downloadUrlTtlSeconds: Math.floor(
        positiveNumber(ctx.settings["FOURDEGREES_DOWNLOAD_URL_TTL_SECONDS"]) ?? DEFAULT_DOWNLOAD_URL_TTL_SECONDS,
      ),
    };
    this.attachmentSettings = { ...this.#defaultAttachmentSettings };
    this.faults = new FaultInjector({ seed: ctx.seed });
    this.limiter = new RateLimiter(ctx.clock, { ...DEFAULT_RATE_LIMIT, ...rateLimitFromSettings(ctx.settings) });
    this.idempotency = new IdempotencyStore(ctx.clock);
    this.webhooks = new WebhookDispatcher({
      clock: ctx.clock,
      faults: this.faults,
      mode: ctx.webhookMode,
      ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
      retryTimeScale: positiveNumber(ctx.settings["FOURDEGREES_WEBHOOK_RETRY_SCALE"]) ?? 1,
      sign: (body) => {
        const id = eventIdOf(body);
        return standardWebhookHeaders(this.webhookSecrets, id, Math.floor(this.clock.now() / 1000), body);
      },
      retryDelayMs: (_status, attemptsSoFar) => this.retrySchedule[attemptsSoFar - 1] ?? null,
    });
    this.store = new FourDegreesStore({
      clock: ctx.clock,
      random: new SeededRandom(ctx.seed),
      workspace: {
        id: ctx.settings["FOURDEGREES_WORKSPACE_ID"] || "ws_4dsandbox",
        name: ctx.settings["FOURDEGREES_WORKSPACE_NAME"] || "Acme Capital Partners",
        currency: "USD",
      },
      emit: (event) => this.#publish(event),
    });
    this.#addDefaultKey();
    this.mounts = { [API_BASE]: createApi(this), [FILES_BASE]: createFiles(this) };
    this.control = createControl(this);
  }

  /** Clears all data, faults, subscribers, keys, idempotency records and counters. */
  reset(): void {
    this.store.clear(new SeededRandom(this.#seed));
    this.faults.reset();
    this.faults.configure({ seed: this.#seed });
    this.webhooks.reset();
    this.limiter.reset();
    this.idempotency.clear();
    this.apiKeys.clear();
    this.#addDefaultKey();
    this.webhookSecrets = [this.#defaultSecret];
    this.retrySchedule = [...DEFAULT_RETRY_SCHEDULE_MS];
    this.attachmentSettings = { ...this.#defaultAttachmentSettings };
    this.events.length = 0;
    this.demo = null;
    this.resetRequests();
    this.#requestRandom = new SeededRandom(this.#seed ^ 0x4d4d);
  }

  /** Loads the demo workspace (a "Deal Flow" pipeline, users, contacts, deals, notes); idempotent. */
  async seedDemo(): Promise<DemoSummary> {
    this.demo = seedDemo(this);
    return this.demo;
  }

  // ── Typed accessors for in-process tests ───────────────────────────────────────────────────────

  /** The actor the main API key's writes carry. */
  get apiActor(): Actor {
    return { type: "api_key", id: apiKeyId(this.apiKey) };
  }

  /** The actor of a change made "in the 4Degrees UI" by a user (default: the first user). */
  userActor(userId?: string): Actor {
    const id = userId ?? this.store.users.keys().next().value;
    if (id === undefined || !this.store.users.has(id))
      throw new Error(`no 4Degrees sandbox user ${userId ?? "(none seeded)"}`);
    return { type: "user", id };
  }

  /** Adds a webhook subscriber URL (e.g. the Worker's `/webhooks/4degrees`). */
  subscribe(url: string): void {
    this.webhooks.subscribers.add(new URL(url).toString());
  }

  unsubscribe(url: string): void {
    this.webhooks.subscribers.delete(url);
    this.webhooks.subscribers.delete(new URL(url).toString());
  }

  /** Manual mode: delivers every due delivery now (sandbox time). */
  flush(): Promise<number> {
    return this.webhooks.flush();
  }

  /** The delivery log (newest last), optionally of one event type, with each body parsed as `payload`. */
  deliveries(type?: string): Array<WebhookDelivery & { payload: WebhookEvent }> {
    return this.webhooks
      .log()
      .filter((d) => type === undefined || d.eventType === type)
      .map((d) => Object.assign(d, { payload: parseEvent(d.body) }));
  }

  deals(): Deal[] {
    return [...this.store.deals.values()].map((d) => structuredClone(d));
  }

  deal(id: string): Deal {
    return this.store.getDeal(id);
  }

  notes(dealId: string): Note[] {
    return this.store.notesOf(dealId);
  }

  /** Creates a deal as a user in the 4Degrees UI would (emits webhooks with that actor). */
  createDealAsUser(input: DealCreate, userId?: string): Deal {
    return this.store.createDeal(input, this.userActor(userId), { allowUiOnlyFields: true });
  }

  /** Changes a deal as a user in the 4Degrees UI would. */
  updateDealAsUser(id: string, patch: DealPatch, userId?: string): Deal {
    return this.store.updateDeal(id, patch, this.userActor(userId), { allowUiOnlyFields: true });
  }

  archiveDealAsUser(id: string, userId?: string): Deal {
    return this.store.archiveDeal(id, this.userActor(userId));
  }

  addNoteAsUser(dealId: string, body: string, userId?: string): Note {
    return this.store.createNote(dealId, { body }, this.userActor(userId));
  }

  /**
   * Attaches a file to a deal as a user in the 4Degrees UI would (emits `attachment.created` with a
   * download URL on `origin`, default the in-process host `http://sandbox.test`).
   */
  async addAttachmentAsUser(
    dealId: string,
    file: { file_name: string; content_type: string; bytes: Uint8Array },
    options: { userId?: string; origin?: string } = {},
  ): Promise<Attachment> {
    const actor = this.userActor(options.userId);
    this.store.getDeal(dealId);
    const id = this.store.newId("att");
    const url = await signedDownloadUrl(this, options.origin ?? "http://sandbox.test", id);
    return this.store.createAttachment(dealId, id, { ...file, bytes: file.bytes.slice() }, actor, url);
  }

  deleteAttachmentAsUser(id: string, userId?: string): Attachment {
    return this.store.deleteAttachment(id, this.userActor(userId));
  }

  /** Every reminder (what `GET /_sandbox/4degrees/reminders` lists), in the order they were made. */
  reminders(): Reminder[] {
    return [...this.store.reminders.values()].map((r) => structuredClone(r));
  }

  /** A new request id (`req_…`, seeded). */
  newRequestId(): string {
    return `req_${this.#requestRandom.string(20)}`;
  }

  recordRequest(entry: Omit<RequestRecord, "at">): void {
    this.requests.total++;
    const route = `${entry.method} ${entry.route}`;
    this.requests.byRoute[route] = (this.requests.byRoute[route] ?? 0) + 1;
    this.requests.byStatus[String(entry.status)] = (this.requests.byStatus[String(entry.status)] ?? 0) + 1;
    this.requests.log.push({ at: new Date(this.clock.now()).toISOString(), ...entry });
    if (this.requests.log.length > REQUEST_LOG_LIMIT)
      this.requests.log.splice(0, this.requests.log.length - REQUEST_LOG_LIMIT);
  }

  resetRequests(): void {
    this.requests.total = 0;
    for (const k of Object.keys(this.requests.byRoute)) delete this.requests.byRoute[k];
    for (const k of Object.keys(this.requests.byStatus)) delete this.requests.byStatus[k];
    this.requests.log.length = 0;
  }

  /** Adds (or replaces) an API key; read-only keys get 403 on writes. */
  addApiKey(key: string, options: { name?: string; scopes?: Scope[] } = {}): ApiKeyRecord {
    const record: ApiKeyRecord = {
      id: apiKeyId(key),
      name: options.name ?? "API key",
      scopes: options.scopes ?? ["read", "write"],
    };
    this.apiKeys.set(key, record);
    return { ...record, scopes: [...record.scopes] };
  }

  #addDefaultKey(): void {
    // The Worker's key: it imports notes and files with their original author and time.
    this.addApiKey(this.apiKey, { name: "Workspace API key", scopes: ["read", "write", "import"] });
  }

  #publish(event: WebhookEvent): void {
    this.events.push(event);
    if (this.events.length > EVENT_LOG_LIMIT) this.events.splice(0, this.events.length - EVENT_LOG_LIMIT);
    this.webhooks.emit(event.type, event);
  }
}

/** Builds the 4Degrees sandbox for the sandbox host. */
export function createFourDegreesSandbox(ctx: ProviderContext): FourDegreesSandbox {
  return new FourDegreesSandbox(ctx);
}

function eventIdOf(body: string): string {
  return parseEvent(body).id;
}

/** A delivery body is always the JSON of a `WebhookEvent` this sandbox built. */
function parseEvent(body: string): WebhookEvent {
  const parsed: unknown = JSON.parse(body);
  if (parsed && typeof parsed === "object" && "id" in parsed && typeof parsed.id === "string" && "type" in parsed)
    return parsed as WebhookEvent;
  throw new Error("4degrees webhook body is not an event");
}

function positiveNumber(raw: string | undefined): number | undefined {
  const n = raw === undefined || raw === "" ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** `FOURDEGREES_RATE_LIMIT` (requests per window) and `FOURDEGREES_RATE_WINDOW_MS` from settings. */
function rateLimitFromSettings(settings: Record<string, string | undefined>): Partial<RateLimitSettings> {
  const max = positiveNumber(settings["FOURDEGREES_RATE_LIMIT"]);
  const intervalMs = positiveNumber(settings["FOURDEGREES_RATE_WINDOW_MS"]);
  return {
    ...(max !== undefined ? { max: Math.floor(max) } : {}),
    ...(intervalMs !== undefined ? { intervalMs } : {}),
  };
}
