/**
 * HighLevel webhook verification and event shapes. Security-relevant code, reviewable alone:
 * signatures are checked over the RAW body bytes (re-serialised JSON would not match), before
 * any parsing. No timestamp or id is signed by HighLevel, so the body's `timestamp` (freshness)
 * and `webhookId` (dedupe, in D1) are the replay defence.
 */
import * as z from "zod";
import type { Config } from "../config.ts";
import { base64ToBytes } from "../lib/crypto.ts";
import { HIGHLEVEL_ED25519_PUBLIC_KEY, HIGHLEVEL_RSA_PUBLIC_KEY } from "./webhook-keys.ts";

/** Events older than this (by their `timestamp`) are rejected; also the tolerated clock skew ahead. */
export const WEBHOOK_MAX_AGE_MS = 5 * 60 * 1000;

const keyCache = new Map<string, Promise<CryptoKey>>();

function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return base64ToBytes(b64);
}

function importKey(pem: string, scheme: "ed25519" | "rsa"): Promise<CryptoKey> {
  const cacheKey = `${scheme}:${pem}`;
  let pending = keyCache.get(cacheKey);
  if (!pending) {
    const algorithm = scheme === "ed25519" ? { name: "Ed25519" } : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    pending = crypto.subtle.importKey("spki", pemToDer(pem), algorithm, false, ["verify"]);
    // A bad PEM must not poison the cache for a corrected config.
    pending.catch(() => keyCache.delete(cacheKey));
    keyCache.set(cacheKey, pending);
  }
  return pending;
}

/** The result of checking a delivery's signature. */
export type SignatureCheck =
  | { ok: true; scheme: "ed25519" | "rsa" }
  | { ok: false; reason: "missing" | "malformed" | "invalid" | "legacy_disabled" };

/**
 * Verifies `x-ghl-signature` (Ed25519) or, when only it is present and
 * `HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE` allows it, the legacy `x-wh-signature` (RSA-SHA256), over
 * `raw`. Keys from config, else HighLevel's published ones.
 */
export async function verifyHighLevelSignature(
  raw: Uint8Array<ArrayBuffer>,
  headers: Headers,
  config: Pick<
    Config,
    "HIGHLEVEL_WEBHOOK_PUBLIC_KEY" | "HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY" | "HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE"
  >,
): Promise<SignatureCheck> {
  const ed = headers.get("x-ghl-signature");
  const rsa = headers.get("x-wh-signature");
  if (!ed && rsa && !config.HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE) return { ok: false, reason: "legacy_disabled" };
  const [scheme, signature, pem] = ed
    ? (["ed25519", ed, config.HIGHLEVEL_WEBHOOK_PUBLIC_KEY ?? HIGHLEVEL_ED25519_PUBLIC_KEY] as const)
    : rsa
      ? (["rsa", rsa, config.HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY ?? HIGHLEVEL_RSA_PUBLIC_KEY] as const)
      : ([null, null, null] as const);
  if (!scheme) return { ok: false, reason: "missing" };
  let sig: Uint8Array<ArrayBuffer>;
  try {
    sig = base64ToBytes(signature.trim());
  } catch {
    return { ok: false, reason: "malformed" };
  }
  const key = await importKey(pem, scheme);
  const algorithm = scheme === "ed25519" ? { name: "Ed25519" } : { name: "RSASSA-PKCS1-v1_5" };
  let valid = false;
  try {
    valid = await crypto.subtle.verify(algorithm, key, sig, raw);
  } catch {
    // Wrong signature length etc.: a bad signature, not a server error.
    valid = false;
  }
  return valid ? { ok: true, scheme } : { ok: false, reason: "invalid" };
}

/** Envelope fields every event may carry; the rest passes through for the consumer. */
export const WebhookEnvelopeSchema = z
  .object({
    type: z.string().min(1),
    locationId: z.string().min(1).nullish(),
    companyId: z.string().min(1).nullish(),
    webhookId: z.string().min(1).nullish(),
    /** ISO-8601 (observed) or epoch ms. */
    timestamp: z.union([z.string(), z.number()]).nullish(),
    appId: z.string().nullish(),
    id: z.string().nullish(),
  })
  .loose();
export type WebhookEnvelope = z.output<typeof WebhookEnvelopeSchema>;

/** `INSTALL` / `UNINSTALL` app events. */
export const AppEventSchema = z
  .object({
    type: z.enum(["INSTALL", "UNINSTALL"]),
    appId: z.string().nullish(),
    companyId: z.string().nullish(),
    locationId: z.string().nullish(),
    userId: z.string().nullish(),
    installType: z.string().nullish(),
  })
  .loose();

/** Event time in epoch ms, or null when the body has no (parseable) `timestamp`. */
export function eventTime(envelope: WebhookEnvelope): number | null {
  const t = envelope.timestamp;
  if (t === undefined || t === null) return null;
  const ms = typeof t === "number" ? t : /^\d+$/.test(t) ? Number(t) : Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

/** A stable id for a delivery without `webhookId` (the documented examples have none): the body's SHA-256. */
export async function bodyDigest(raw: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
