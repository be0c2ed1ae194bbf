/**
 * The HighLevel sandbox: a local, faithful HighLevel (API v2 and the opportunities' v3, OAuth,
 * webhooks, rate limits, the media library) for `npm run sandbox` / `npm start` and for in-process
 * tests. Mounts:
 *
 *   /highlevel/*            stands in for https://services.leadconnectorhq.com (api.ts, routes/;
 *                           /highlevel/v3/* too, see docs/sandbox.md "API v3")
 *   /marketplace/*          stands in for https://marketplace.gohighlevel.com (marketplace.ts)
 *   /_sandbox/highlevel/*   control API (control.ts, docs/sandbox.md)
 *
 * Settings (env / .dev.vars names, all optional): HIGHLEVEL_CLIENT_ID, HIGHLEVEL_CLIENT_SECRET,
 * HIGHLEVEL_SSO_KEY, HIGHLEVEL_APP_ID, HIGHLEVEL_REDIRECT_URIS, HIGHLEVEL_WEBHOOK_URLS, HIGHLEVEL_TOKEN_LIFETIME_SECONDS,
 * HIGHLEVEL_RATE_LIMIT_MAX, HIGHLEVEL_RATE_LIMIT_INTERVAL_MS, HIGHLEVEL_RATE_LIMIT_DAILY,
 * HIGHLEVEL_RATE_LIMIT_RETRY_AFTER, HIGHLEVEL_WEBHOOK_RETRY_SCALE, HIGHLEVEL_WEBHOOK_LEGACY_SIGNATURE,
 * HIGHLEVEL_ALLOW_DUPLICATE_OPPORTUNITIES, HIGHLEVEL_OAUTH_ERROR_STYLE.
 */
import { Hono } from "hono";
import { FaultInjector } from "../core/faults.ts";
import type { ProviderContext, ProviderSandbox } from "../core/provider.ts";
import { SeededRandom } from "../core/random.ts";
import { RateLimiter } from "../core/ratelimit.ts";
import type { RateLimitSettings } from "../core/ratelimit.ts";
import { WebhookDispatcher } from "../core/webhooks.ts";
import type { WebhookDelivery } from "../core/webhooks.ts";
import { createHighLevelApi } from "./api.ts";
import { createControlApi } from "./control.ts";
import { WebhookSigner } from "./keys.ts";
import { createMarketplace } from "./marketplace.ts";
import { OAuthServer } from "./oauth.ts";
import type { AccessToken, Installation, TokenCounters, UserType } from "./oauth.ts";
import { renderOpportunity } from "./render.ts";
import { seedDemo } from "./seed.ts";
import { seedTenantLocation, type TenantLocation } from "./tenant-seed.ts";
import type { DemoData } from "./seed.ts";
import { HighLevelService } from "./service.ts";
import { HighLevelStore, IdSource } from "./store.ts";

export type { DemoData } from "./seed.ts";
export type { TenantLocation } from "./tenant-seed.ts";

/**
 * Which events a webhook subscriber receives. HighLevel sends a location's events only to apps
 * installed on that location; a subscriber without a scope receives every event (the sandbox's
 * default, which `npm start` and most tests use). Conditions combine (all must hold):
 * - `locationId`: events of that location only (an agency-level INSTALL / UNINSTALL, which carries no
 *   locationId, when it is for the location's agency);
 * - `companyId`: events of that agency's locations, and its agency-level INSTALL / UNINSTALL;
 * - `installed`: events of locations where the app is installed when the event happens (a location
 *   install, or an agency-wide install of its agency) — INSTALL and UNINSTALL always pass, being
 *   about the installation itself.
 */
export interface SubscriberScope {
  locationId?: string | undefined;
  companyId?: string | undefined;
  installed?: boolean | undefined;
}

/** A subscriber and its scope (none: every event). */
export interface Subscription extends SubscriberScope {
  url: string;
}
export type { AccessToken, TokenCounters } from "./oauth.ts";

/** HighLevel retries a webhook only after a 429: up to 6 more tries about 10 minutes apart. */
export const WEBHOOK_RETRY_DELAY_MS = 10 * 60_000;
export const WEBHOOK_MAX_RETRIES = 6;

/** The HighLevel provider handle: the ProviderSandbox parts plus domain accessors for tests. */
export interface HighLevelSandbox extends ProviderSandbox {
  store: HighLevelStore;
  /** Changes data as a HighLevel UI user would (emits webhooks). */
  service: HighLevelService;
  oauth: OAuthServer;
  limiter: RateLimiter;
  signer: WebhookSigner;
  /** Ids of the demo data, once seeded. */
  demo: DemoData | null;
  /** Whether a 429 carries `Retry-After` (default on). */
  retryAfter: boolean;
  /**
   * The app's Shared Secret, which encrypts the Custom Page user context (`HIGHLEVEL_SSO_KEY`, default
   * `sandbox-sso-key`); the Worker's `HIGHLEVEL_SSO_KEY` must equal it. Tests may change it.
   */
  ssoKey: string;
  seedDemo(): Promise<DemoData>;
  /** Seeds tenant location `n` (≥ 1) for many-account runs (sandbox/highlevel/tenant-seed.ts); idempotent. */
  seedTenant(n: number): TenantLocation;
  /** Creates a Location Private Integration Token (default: the demo location, all scopes). */
  createPit(options?: { locationId?: string; scopes?: string[]; name?: string }): string;
  /** A ready OAuth connection (approve + code exchange) without counting a token call. */
  connect(options?: {
    locationId?: string;
    companyId?: string;
    userType?: UserType;
    scopes?: string[];
  }): Record<string, unknown>;
  /** Token endpoint call counters. */
  tokenCalls(): TokenCounters;
  /** Sets the access token lifetime for tokens issued from now on. */
  setTokenLifetime(seconds: number): void;
  /** Sets the rate limit (per app per location) and resets the windows. */
  setRateLimit(settings: Partial<RateLimitSettings>): RateLimitSettings;
  /** Pauses (`false`) or re-activates a sub-account: refreshes then fail with "Location is not active". */
  setLocationActive(locationId: string, active: boolean): void;
  /** Uninstalls the app from a location: revokes its tokens, sends UNINSTALL. */
  uninstall(locationId: string): Installation | null;
  /** An opportunity as `GET /opportunities/{id}` renders it, or undefined. */
  opportunity(id: string): Record<string, unknown> | undefined;
  /**
   * Adds a webhook subscriber URL (the app's webhook URL), optionally scoped (see SubscriberScope);
   * subscribing a URL again replaces its scope. Throws a RangeError for an unknown location or agency.
   */
  subscribe(url: string, scope?: SubscriberScope): void;
  unsubscribe(url: string): void;
  /** Every subscriber with its scope, in subscription order. */
  subscriptions(): Subscription[];
  /** Whether a subscriber receives an event body (its scope applied now). */
  receives(url: string, body: Record<string, unknown>): boolean;
  /** Delivers due webhooks (manual mode); returns how many were attempted. */
  flush(): Promise<number>;
  /** The delivery log, with parsed bodies, optionally filtered by event type. */
  deliveries(type?: string): Array<WebhookDelivery & { payload: Record<string, unknown> }>;
}

function flag(value: string | undefined, dflt: boolean): boolean {
  if (value === undefined || value === "") return dflt;
  return !["0", "false", "no", "off"].includes(value.toLowerCase());
}

function num(value: string | undefined, dflt: number): number {
  const n = value === undefined || value === "" ? NaN : Number(value);
  return Number.isFinite(n) && n >= 0 ? n : dflt;
}

/** The default per-app-per-location limits HighLevel documents (oauth-docs/Authorization.md FAQ). */
export const DEFAULT_RATE_LIMIT: RateLimitSettings = { max: 100, intervalMs: 10_000, daily: 200_000 };

/** The Shared Secret the sandbox's app has when `HIGHLEVEL_SSO_KEY` is unset (local dev only). */
export const SANDBOX_DEFAULT_SSO_KEY = "sandbox-sso-key";

/** The app id the sandbox gives its app when `HIGHLEVEL_APP_ID` is unset and the client id has no id prefix. */
export const SANDBOX_DEFAULT_APP_ID = "6650f1e2a3b4c5d6e7f80912";

/**
 * The app id the sandbox puts in its webhooks (`appId`) for these settings: `HIGHLEVEL_APP_ID`, else
 * the 24-hex prefix of the client id (HighLevel's client ids start with the app id), else the default.
 * The Worker's `HIGHLEVEL_APP_ID` must equal it (scripts/lib/processes.ts passes it on).
 */
export function sandboxAppId(settings: Record<string, string | undefined>): string {
  const clientId = settings["HIGHLEVEL_CLIENT_ID"] || "sandbox-client-id";
  return settings["HIGHLEVEL_APP_ID"] || (/^[0-9a-f]{24}/.exec(clientId)?.[0] ?? SANDBOX_DEFAULT_APP_ID);
}

/** Creates the HighLevel provider for the sandbox host (`createSandbox()` registers it). */
export function createHighLevelSandbox(ctx: ProviderContext): HighLevelSandbox {
  const s = ctx.settings;
  const clientId = s["HIGHLEVEL_CLIENT_ID"] || "sandbox-client-id";
  const appId = sandboxAppId(s);
  const configuredSubscribers = (s["HIGHLEVEL_WEBHOOK_URLS"] ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  const clock = ctx.clock;

  const store = new HighLevelStore();
  let ids = new IdSource(ctx.seed);
  let webhookIds = new SeededRandom((ctx.seed ^ 0x5eed) >>> 0);
  const faults = new FaultInjector({ seed: ctx.seed });
  const signer = new WebhookSigner({ legacy: flag(s["HIGHLEVEL_WEBHOOK_LEGACY_SIGNATURE"], true) });
  const webhooks = new WebhookDispatcher({
    clock,
    faults,
    sign: (body) => signer.sign(body),
    retryDelayMs: (status, attempts) =>
      status === 429 && attempts <= WEBHOOK_MAX_RETRIES ? WEBHOOK_RETRY_DELAY_MS : null,
    mode: ctx.webhookMode,
    retryTimeScale: num(s["HIGHLEVEL_WEBHOOK_RETRY_SCALE"], 1),
    ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
  });
  for (const url of configuredSubscribers) webhooks.subscribers.add(url);
  /** Scopes of the subscribers that have one (a subscriber absent here receives every event). */
  const scopes = new Map<string, SubscriberScope>();

  /** Whether a subscriber with `scope` receives an event body (see SubscriberScope). */
  const inScope = (scope: SubscriberScope | undefined, body: Record<string, unknown>): boolean => {
    if (!scope) return true;
    const locationId = typeof body["locationId"] === "string" ? body["locationId"] : null;
    const companyId =
      typeof body["companyId"] === "string"
        ? body["companyId"]
        : locationId
          ? (store.locations.get(locationId)?.companyId ?? null)
          : null;
    if (scope.locationId !== undefined) {
      if (
        locationId !== null
          ? locationId !== scope.locationId
          : companyId === null || companyId !== store.locations.get(scope.locationId)?.companyId
      )
        return false;
    }
    if (scope.companyId !== undefined && companyId !== scope.companyId) return false;
    if (scope.installed && body["type"] !== "INSTALL" && body["type"] !== "UNINSTALL") {
      if (locationId === null) return false;
      const agency = store.locations.get(locationId)?.companyId;
      if (!oauth.installations.has(locationId) && !(agency && oauth.installations.has(`company:${agency}`)))
        return false;
    }
    return true;
  };

  /** Adds the envelope HighLevel puts on every webhook body and queues it for the subscribers in scope. */
  const emit = (type: string, body: Record<string, unknown>) => {
    webhooks.emit(
      type,
      {
        ...body,
        appId,
        versionId: appId,
        timestamp: new Date(clock.now()).toISOString(),
        webhookId: webhookIds.uuid(),
      },
      (url) => inScope(scopes.get(url), body),
    );
  };

  const service = new HighLevelService({
    store,
    ids,
    clock,
    emit,
    defaults: { allowDuplicateOpportunities: flag(s["HIGHLEVEL_ALLOW_DUPLICATE_OPPORTUNITIES"], false) },
  });

  const oauth = new OAuthServer({
    app: {
      clientId,
      clientSecret: s["HIGHLEVEL_CLIENT_SECRET"] || "sandbox-client-secret",
      appId,
      versionId: appId,
      redirectUris: s["HIGHLEVEL_REDIRECT_URIS"]
        ? s["HIGHLEVEL_REDIRECT_URIS"]
            .split(",")
            .map((u) => u.trim())
            .filter(Boolean)
        : null,
    },
    settings: {
      accessTokenLifetimeSec: num(s["HIGHLEVEL_TOKEN_LIFETIME_SECONDS"], 86_399),
      errorStyle: s["HIGHLEVEL_OAUTH_ERROR_STYLE"] === "oauth2" ? "oauth2" : "nest",
    },
    store,
    clock,
    ids,
    onInstall: (installation, userId) => {
      const company = store.companies.get(installation.companyId);
      emit("INSTALL", {
        type: "INSTALL",
        installType: installation.locationId ? "Location" : "Company",
        ...(installation.locationId ? { locationId: installation.locationId } : {}),
        companyId: installation.companyId,
        userId,
        companyName: company?.name ?? "",
        isWhitelabelCompany: false,
        whitelabelDetails: {},
      });
    },
  });

  const limiter = new RateLimiter(clock, {
    max: num(s["HIGHLEVEL_RATE_LIMIT_MAX"], DEFAULT_RATE_LIMIT.max),
    intervalMs: num(s["HIGHLEVEL_RATE_LIMIT_INTERVAL_MS"], DEFAULT_RATE_LIMIT.intervalMs),
    daily:
      s["HIGHLEVEL_RATE_LIMIT_DAILY"] === "none"
        ? null
        : num(s["HIGHLEVEL_RATE_LIMIT_DAILY"], DEFAULT_RATE_LIMIT.daily as number),
  });

  const api = new Hono().route(
    "/",
    createHighLevelApi({ service, oauth, limiter, faults, retryAfter: () => handle.retryAfter }),
  );
  const handle: HighLevelSandbox = {
    name: "highlevel",
    mounts: {
      "/highlevel": api,
      "/marketplace": createMarketplace({ oauth, store, ids: () => ids, now: () => clock.now() }),
    },
    control: createControlApi(() => handle, clock),
    faults,
    webhooks,
    store,
    service,
    oauth,
    limiter,
    signer,
    demo: null,
    retryAfter: flag(s["HIGHLEVEL_RATE_LIMIT_RETRY_AFTER"], true),
    ssoKey: s["HIGHLEVEL_SSO_KEY"] || SANDBOX_DEFAULT_SSO_KEY,

    reset() {
      store.clear();
      service.settings.clear();
      service.medias.resetSettings();
      ids = new IdSource(ctx.seed);
      webhookIds = new SeededRandom((ctx.seed ^ 0x5eed) >>> 0);
      service.setIds(ids);
      oauth.setIds(ids);
      oauth.reset();
      limiter.reset();
      faults.reset();
      faults.configure({ seed: ctx.seed });
      webhooks.reset();
      scopes.clear();
      for (const url of configuredSubscribers) webhooks.subscribers.add(url);
      handle.demo = null;
    },

    async seedDemo() {
      handle.demo ??= seedDemo(store, clock, (locationId, token) => {
        oauth.createPit({ locationId, token, name: "Sandbox demo integration" });
      });
      return handle.demo;
    },

    seedTenant(n) {
      return seedTenantLocation(store, clock, n, (locationId, token) => {
        oauth.createPit({ locationId, token, name: "Sandbox tenant integration" });
      });
    },

    createPit(options = {}) {
      const locationId = options.locationId ?? handle.demo?.locationId;
      if (!locationId) throw new Error("createPit: no locationId and no demo data (call seedDemo() first)");
      return oauth.createPit({
        locationId,
        ...(options.scopes ? { scopes: options.scopes } : {}),
        ...(options.name ? { name: options.name } : {}),
      }).token;
    },

    connect(options = {}) {
      const locationId = options.locationId ?? (options.companyId ? undefined : handle.demo?.locationId);
      return oauth.connect({ ...options, ...(locationId ? { locationId } : {}) });
    },

    tokenCalls: () => ({ ...oauth.counters }),

    setTokenLifetime(seconds) {
      if (!Number.isFinite(seconds) || seconds < 1) throw new RangeError("token lifetime must be at least 1 second");
      oauth.settings.accessTokenLifetimeSec = Math.floor(seconds);
    },

    setRateLimit(settings) {
      limiter.settings = { ...limiter.settings, ...settings };
      limiter.reset();
      return limiter.settings;
    },

    setLocationActive(locationId, active) {
      const l = store.locations.get(locationId);
      if (!l) throw new Error(`no location ${locationId}`);
      l.active = active;
    },

    uninstall(locationId) {
      const installation = oauth.uninstall({ locationId });
      if (installation) emit("UNINSTALL", { type: "UNINSTALL", locationId });
      return installation;
    },

    opportunity(id) {
      const o = store.opportunities.get(id);
      return o ? renderOpportunity(store, o) : undefined;
    },

    subscribe(url, scope = {}) {
      const clean: SubscriberScope = {
        ...(scope.locationId !== undefined ? { locationId: scope.locationId } : {}),
        ...(scope.companyId !== undefined ? { companyId: scope.companyId } : {}),
        ...(scope.installed ? { installed: true } : {}),
      };
      if (clean.locationId !== undefined && !store.locations.has(clean.locationId))
        throw new RangeError(`no location ${clean.locationId}`);
      if (clean.companyId !== undefined && !store.companies.has(clean.companyId))
        throw new RangeError(`no agency (company) ${clean.companyId}`);
      webhooks.subscribers.add(url);
      if (Object.keys(clean).length > 0) scopes.set(url, clean);
      else scopes.delete(url);
    },

    unsubscribe(url) {
      webhooks.subscribers.delete(url);
      scopes.delete(url);
    },

    subscriptions() {
      return [...webhooks.subscribers].map((url) => ({ url, ...scopes.get(url) }));
    },

    receives(url, body) {
      return webhooks.subscribers.has(url) && inScope(scopes.get(url), body);
    },

    flush: () => webhooks.flush(),

    deliveries(type) {
      return webhooks
        .log()
        .filter((d) => !type || d.eventType === type)
        .map((d) => ({ ...d, payload: JSON.parse(d.body) as Record<string, unknown> }));
    },
  };

  return handle;
}

/** Whether a provider is the HighLevel sandbox (typed accessor in sandbox/index.ts). */
export function isHighLevelSandbox(p: ProviderSandbox): p is HighLevelSandbox {
  return p.name === "highlevel" && "oauth" in p && "service" in p;
}

/** Finds the token record behind a raw token string (tests). */
export function tokenRecord(sb: HighLevelSandbox, token: string): AccessToken | undefined {
  return sb.oauth.accessTokens.get(token);
}
