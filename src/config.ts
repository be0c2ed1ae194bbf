/**
 * Configuration: one zod parse of vars and secrets per entry point (fetch, queue, scheduled).
 * Handlers receive a typed `Config`, never raw strings. A missing or malformed secret throws a
 * `ConfigError` that names it, answered as a 500 `config_invalid` by the fetch entry point and
 * logged loudly by the others.
 */
import * as z from "zod";
import { AppError } from "./lib/errors.ts";
import type { LogLevel } from "./lib/log.ts";

declare global {
  namespace Cloudflare {
    /** Optional secrets/vars: not in `[secrets] required`, so `wrangler types` does not list them. */
    interface Env {
      /** PEM of the Ed25519 key behind `x-ghl-signature`; defaults to HighLevel's published key. */
      HIGHLEVEL_WEBHOOK_PUBLIC_KEY?: string;
      /** PEM of the RSA key behind the legacy `x-wh-signature`; defaults to HighLevel's published key. */
      HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY?: string;
      /** A 4Degrees workspace API key for a single-account deployment (else set per account via the admin API). */
      FOURDEGREES_API_KEY?: string;
      /** 4Degrees rate budget per workspace: requests per second (default 10, the assumed contract's example). */
      FOURDEGREES_RATE_PER_SECOND?: string;
      /** 4Degrees calls in flight per workspace (default 5). */
      FOURDEGREES_CONCURRENCY?: string;
      /** Cloudflare Access: team domain (`https://<team>.cloudflareaccess.com`) and application audience tag. */
      CF_ACCESS_TEAM_DOMAIN?: string;
      CF_ACCESS_AUD?: string;
      /**
       * Time scale of the gate's HighLevel limits (default 1 = the real 100 per 10 s): 10 paces
       * calls as 100 per 1 s. Only for a sandbox whose limits are time-scaled the same way
       * (`npm run bench`); never set it against the real HighLevel.
       */
      HIGHLEVEL_RATE_SCALE?: string;
      /** Seconds an isolate keeps account configuration for the sync path (src/store/config-cache.ts); "0" = off. */
      CONFIG_CACHE_SECONDS?: string;
      /** "true" adds up D1's rows read/written (src/store/d1-meter.ts) for `npm run bench`; default off. */
      D1_METER?: string;
      /** Local dev only: `host[:port]` list notification rules may target over http (src/notify/targets.ts). */
      NOTIFY_DEV_TARGET_HOSTS?: string;
      /** The Marketplace app's Shared Secret (Custom Page SSO); without it `/embed` is off. */
      HIGHLEVEL_SSO_KEY?: string;
      /** Extra origins allowed to frame `/embed` and embedded sessions (white-label HighLevel domains). */
      HIGHLEVEL_FRAME_ANCESTORS?: string;
      /** Retention in days per table (src/store/retention.ts; defaults in `ConfigSchema`). */
      RETENTION_ACTIVITY_DAYS?: string;
      RETENTION_NOTIFICATION_DAYS?: string;
      RETENTION_FAILURE_DAYS?: string;
      RETENTION_TOMBSTONE_DAYS?: string;
      RETENTION_IMPORT_DAYS?: string;
      RETENTION_LEDGER_DAYS?: string;
      /** Most DELETE statements one cron run spends on retention (default 40, at least 10; each up to 1,000 rows). */
      RETENTION_MAX_STATEMENTS?: string;
    }
  }
}

/** A retention in whole days, at least `min` (a shorter one would drop rows still needed), at most ten years. */
const days = (name: string, fallback: number, min: number) =>
  z.coerce
    .number({ error: `${name} must be a number of days` })
    .int(`${name} must be a whole number of days`)
    .min(min, `${name} must be at least ${min} days`)
    .max(3650, `${name} must be at most 3650 days`)
    .default(fallback);

const url = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ""));
const secret = (name: string, min = 1) =>
  z
    .string({ error: `secret ${name} is not set (wrangler secret put ${name}, or .dev.vars locally)` })
    .min(min, `secret ${name} must be at least ${min} characters`);

/** `kid:base64(32 bytes)` entries, comma separated; the first is the active key, the rest decrypt only. */
const encryptionKeys = z
  .string({
    error: "secret TOKEN_ENCRYPTION_KEY is not set (wrangler secret put TOKEN_ENCRYPTION_KEY, or .dev.vars locally)",
  })
  .transform((raw, ctx) => {
    const keys: Array<{ id: string; secret: string }> = [];
    for (const part of raw
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean)) {
      const match = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/]{43}=)$/.exec(part);
      if (!match) {
        ctx.addIssue({
          code: "custom",
          message:
            "TOKEN_ENCRYPTION_KEY entries must look like kid:<base64 of 32 random bytes> (generate with `openssl rand -base64 32`)",
        });
        return z.NEVER;
      }
      keys.push({ id: match[1]!, secret: match[2]! });
    }
    if (keys.length === 0) {
      ctx.addIssue({ code: "custom", message: "TOKEN_ENCRYPTION_KEY is empty" });
      return z.NEVER;
    }
    return keys;
  });

/** A PEM public key; `\\n` escapes (how .dev.vars and dashboards carry one line) become newlines. */
const optionalPem = z
  .string()
  .transform((pem) => pem.replace(/\\n/g, "\n").trim())
  .pipe(
    z
      .string()
      .startsWith("-----BEGIN PUBLIC KEY-----", "must be a PEM public key (-----BEGIN PUBLIC KEY-----)")
      .or(z.literal("")),
  )
  .transform((pem) => pem || undefined)
  .optional();

/** The ADMIN_TOKEN of .dev.vars.example: public, so it is refused outside local dev. */
export const EXAMPLE_ADMIN_TOKEN = "dev-admin-token-change-me";

/**
 * Local dev is a PUBLIC_URL on a loopback host (`npm start`, `wrangler dev`): a deployed Worker
 * cannot have one, since HighLevel's OAuth redirect and the webhooks must reach it.
 */
export function isLocalPublicUrl(publicUrl: string): boolean {
  const host = new URL(publicUrl).hostname;
  return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}

const ConfigObject = z.object({
  HIGHLEVEL_API_BASE: url,
  HIGHLEVEL_MARKETPLACE_BASE: url,
  FOURDEGREES_API_BASE: url,
  PUBLIC_URL: url,
  SYNC_MODE: z.enum(["two-way", "read-only"]),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  HIGHLEVEL_CLIENT_ID: secret("HIGHLEVEL_CLIENT_ID"),
  HIGHLEVEL_CLIENT_SECRET: secret("HIGHLEVEL_CLIENT_SECRET"),
  TOKEN_ENCRYPTION_KEY: encryptionKeys,
  ADMIN_TOKEN: secret("ADMIN_TOKEN", 16),
  FOURDEGREES_WEBHOOK_SECRET: secret("FOURDEGREES_WEBHOOK_SECRET", 8),
  /**
   * This Marketplace app's id (`appId` in its webhooks). HighLevel signs every app's webhooks with
   * one platform key, so only this id tells our INSTALL/UNINSTALL from another app's.
   */
  HIGHLEVEL_APP_ID: z
    .string({
      error: "var HIGHLEVEL_APP_ID is not set (the Marketplace app's id, its webhooks' appId; wrangler.toml [vars])",
    })
    .min(1, { error: "var HIGHLEVEL_APP_ID is empty: set it to the Marketplace app's id (wrangler.toml)", abort: true })
    .regex(/^[A-Za-z0-9_-]{8,64}$/, "var HIGHLEVEL_APP_ID must be an app id (8-64 of A-Z, a-z, 0-9, _, -)"),
  /**
   * Accept the legacy RSA `x-wh-signature` when `x-ghl-signature` is absent; "true" | "false".
   * HighLevel stopped sending it in July 2026, so a delivery signed only that way is refused by default.
   */
  HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE: z
    .enum(["true", "false"], { error: 'HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  /** Accept OAuth callbacks without `state` (Marketplace listing installs); "true" | "false". */
  HIGHLEVEL_ALLOW_STATELESS_INSTALL: z
    .enum(["true", "false"], { error: 'HIGHLEVEL_ALLOW_STATELESS_INSTALL must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  HIGHLEVEL_WEBHOOK_PUBLIC_KEY: optionalPem,
  HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY: optionalPem,
  FOURDEGREES_API_KEY: z
    .string()
    .min(1)
    .optional()
    .or(z.literal("").transform(() => undefined)),
  FOURDEGREES_RATE_PER_SECOND: z.coerce.number().positive().max(1_000).default(10),
  FOURDEGREES_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  /** Largest attachment copied between the two sides (bytes); a larger one crosses as a link (docs/sync.md). */
  ATTACHMENT_MAX_BYTES: z.coerce
    .number({ error: "ATTACHMENT_MAX_BYTES must be a number of bytes" })
    .int("ATTACHMENT_MAX_BYTES must be a whole number of bytes")
    .min(1, "ATTACHMENT_MAX_BYTES must be at least 1")
    .max(50 * 1024 * 1024, "ATTACHMENT_MAX_BYTES may be at most 52428800 (HighLevel's custom-field file limit)")
    .default(25 * 1024 * 1024),
  CF_ACCESS_TEAM_DOMAIN: url.optional().or(z.literal("").transform(() => undefined)),
  CF_ACCESS_AUD: z
    .string()
    .min(1)
    .optional()
    .or(z.literal("").transform(() => undefined)),
  HIGHLEVEL_RATE_SCALE: z.coerce.number().min(1).max(1_000).default(1),
  /**
   * The `Version` of HighLevel's opportunity and pipeline calls (docs/sync.md "HighLevel API v3"):
   * `v3` carries the forecast close date and probability natively. Contacts, users and custom
   * fields stay on `2021-07-28`, the only version their files document.
   */
  HIGHLEVEL_API_VERSION: z
    .enum(["2021-07-28", "v3"], { error: 'HIGHLEVEL_API_VERSION must be "2021-07-28" or "v3"' })
    .default("2021-07-28"),
  /** How long an isolate keeps account configuration for the sync path (src/store/config-cache.ts); 0 = off. */
  CONFIG_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).default(60),
  D1_METER: z
    .enum(["true", "false"], { error: 'D1_METER must be "true" or "false"' })
    .default("false")
    .transform((v) => v === "true"),
  NOTIFY_DEV_TARGET_HOSTS: z.string().optional(),
  /** HighLevel's Shared Secret for Custom Page user contexts (src/highlevel/sso.ts); absent: `/embed` is off. */
  HIGHLEVEL_SSO_KEY: z
    .string()
    .min(8, "secret HIGHLEVEL_SSO_KEY must be at least 8 characters (the app's Shared Secret)")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  /**
   * Origins, besides HighLevel's own (src/http/embed-framing.ts), allowed to frame the embedded pages:
   * space- or comma-separated `https://host` or `https://*.domain` (white-label app domains).
   */
  HIGHLEVEL_FRAME_ANCESTORS: z
    .string()
    .default("")
    .transform((raw) => raw.split(/[\s,]+/).filter(Boolean))
    .pipe(
      z.array(
        z
          .string()
          .regex(
            /^https?:\/\/(\*\.)?[a-z0-9.-]+(:\d{1,5})?$/i,
            "HIGHLEVEL_FRAME_ANCESTORS entries must be origins like https://app.example.com or https://*.example.com",
          ),
      ),
    ),
  /** sync_events (the activity trail). */
  RETENTION_ACTIVITY_DAYS: days("RETENTION_ACTIVITY_DAYS", 30, 1),
  /** Delivered or failed notification deliveries (queued ones are never pruned). */
  RETENTION_NOTIFICATION_DAYS: days("RETENTION_NOTIFICATION_DAYS", 30, 1),
  /** Replayed failures, from their replay (open ones are never pruned). */
  RETENTION_FAILURE_DAYS: days("RETENTION_FAILURE_DAYS", 30, 1),
  /** Tombstones: well past every retry window (HighLevel ~1 h, 4Degrees' backoff, our dead-letter day). */
  RETENTION_TOMBSTONE_DAYS: days("RETENTION_TOMBSTONE_DAYS", 90, 7),
  /** CSV import reports and the per-row hashes that make a re-import a no-op. */
  RETENTION_IMPORT_DAYS: days("RETENTION_IMPORT_DAYS", 90, 1),
  /** Settled write-ledger rows: longer than 4Degrees' 24 h Idempotency-Key window. */
  RETENTION_LEDGER_DAYS: days("RETENTION_LEDGER_DAYS", 30, 2),
  RETENTION_MAX_STATEMENTS: z.coerce
    .number()
    .int()
    .min(10, "RETENTION_MAX_STATEMENTS must be at least 10")
    .max(500)
    .default(40),
});

export const ConfigSchema = ConfigObject.superRefine((config, ctx) => {
  if (config.ADMIN_TOKEN === EXAMPLE_ADMIN_TOKEN && !isLocalPublicUrl(config.PUBLIC_URL))
    ctx.addIssue({
      code: "custom",
      path: ["ADMIN_TOKEN"],
      message:
        "secret ADMIN_TOKEN is the example value from .dev.vars.example, accepted only for local dev " +
        "(PUBLIC_URL on localhost or 127.0.0.1); set your own: wrangler secret put ADMIN_TOKEN",
    });
});

export type Config = z.output<typeof ConfigSchema> & { LOG_LEVEL: LogLevel };

/** Thrown when vars/secrets do not parse; the message names every offending setting. */
export class ConfigError extends AppError {
  readonly settings: string[];

  constructor(message: string, settings: string[]) {
    super("config_invalid", message, { details: { settings } });
    this.name = "ConfigError";
    this.settings = settings;
  }
}

const cache = new WeakMap<object, Config>();

/**
 * Parses `env` once per env object (each entry point calls this first). Throws `ConfigError`
 * naming each missing or malformed setting.
 */
export function loadConfig(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const settings = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? "?")))];
    const detail = parsed.error.issues.map((i) => `${String(i.path[0] ?? "?")}: ${i.message}`).join("; ");
    throw new ConfigError(`Configuration invalid — ${detail}`, settings);
  }
  cache.set(env, parsed.data);
  return parsed.data;
}
