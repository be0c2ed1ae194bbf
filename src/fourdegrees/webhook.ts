/**
 * Standard Webhooks verification for 4Degrees deliveries (the ASSUMED contract; the scheme is
 * https://www.standardwebhooks.com/ — spec "Verifying webhooks").
 *
 * - Headers `webhook-id`, `webhook-timestamp` (unix seconds), `webhook-signature`:
 *   space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{raw body}")>` entries (several
 *   while a secret rotates; any one valid entry is enough; other versions are ignored).
 * - The secret is `whsec_<base64>`; the HMAC key is the base64-decoded part.
 * - Timestamps more than 5 minutes away from now (either way) are rejected (replay window).
 * - The RAW bytes are verified before anything parses them. The HMAC is computed once and each
 *   entry compared with it in constant time (`crypto.subtle.timingSafeEqual`); the header is capped
 *   (`MAX_SIGNATURE_HEADER_CHARS`, `MAX_SIGNATURE_ENTRIES`) so a long one costs no more work.
 * Why not the `standardwebhooks` package: README "Security" (it hashes in JavaScript, takes no
 * raw bytes without Buffer, and leaves the entry count open).
 */
import { AppError } from "../lib/errors.ts";
import { base64ToBytes, bytesToBase64 } from "../lib/crypto.ts";
import type { WebhookVerifier } from "../domain/port.ts";

/** Replay window of the Standard Webhooks spec: 5 minutes. */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

/** Most `webhook-signature` entries read: a rotation sends two or three (one per live secret). */
export const MAX_SIGNATURE_ENTRIES = 5;

/** Longest `webhook-signature` header accepted (5 entries of `v1,<44 base64>` are ~240 characters). */
export const MAX_SIGNATURE_HEADER_CHARS = 1024;

/** Longest `webhook-id` accepted; it is signed and becomes a receipt key. */
export const MAX_WEBHOOK_ID_CHARS = 256;

/** The HMAC key bytes of a `whsec_<base64>` secret (a secret without the prefix is taken as base64 too). */
export function webhookKeyBytes(secret: string): Uint8Array<ArrayBuffer> {
  const b64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = base64ToBytes(b64);
  } catch (cause) {
    throw new AppError("config_invalid", "FOURDEGREES_WEBHOOK_SECRET must be whsec_<base64> (as 4Degrees shows it)", {
      cause,
    });
  }
  if (bytes.length < 8)
    throw new AppError("config_invalid", "FOURDEGREES_WEBHOOK_SECRET decodes to fewer than 8 bytes");
  return bytes;
}

function importHmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", webhookKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

function signedContent(id: string, timestamp: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

const unauthorized = (message: string) => new AppError("unauthorized", message);

/** A `WebhookVerifier` for one signing secret. `now` (epoch ms) is injectable for tests. */
export function createWebhookVerifier(
  secret: string,
  options: { now?: () => number; toleranceSeconds?: number } = {},
): WebhookVerifier {
  const now = options.now ?? Date.now;
  const tolerance = options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  const key = importHmacKey(secret);
  return {
    async verify(headers: Headers, rawBody: Uint8Array): Promise<void> {
      const id = headers.get("webhook-id");
      const timestamp = headers.get("webhook-timestamp");
      const signatures = headers.get("webhook-signature");
      if (!id || !timestamp || !signatures)
        throw unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header");
      if (id.length > MAX_WEBHOOK_ID_CHARS) {
        throw unauthorized(`webhook-id is longer than ${MAX_WEBHOOK_ID_CHARS} characters`);
      }
      if (signatures.length > MAX_SIGNATURE_HEADER_CHARS) {
        throw unauthorized(`webhook-signature is longer than ${MAX_SIGNATURE_HEADER_CHARS} characters`);
      }
      const entries = signatures.split(" ").filter((e) => e !== "");
      if (entries.length > MAX_SIGNATURE_ENTRIES) {
        const most = `at most ${MAX_SIGNATURE_ENTRIES} are read`;
        throw unauthorized(`webhook-signature has ${entries.length} entries; ${most}`);
      }
      if (!/^\d{1,12}$/.test(timestamp)) throw unauthorized("webhook-timestamp is not unix seconds");
      const skew = Math.abs(now() / 1000 - Number(timestamp));
      if (skew > tolerance)
        throw unauthorized(`webhook-timestamp is ${Math.round(skew)} s away from now (tolerance ${tolerance} s)`);
      const content = signedContent(id, timestamp, rawBody);
      const expected = new Uint8Array(await crypto.subtle.sign("HMAC", await key, content));
      for (const entry of entries) {
        const comma = entry.indexOf(",");
        if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
        let signature: Uint8Array<ArrayBuffer>;
        try {
          signature = base64ToBytes(entry.slice(comma + 1));
        } catch {
          continue;
        }
        if (signature.length === expected.length && crypto.subtle.timingSafeEqual(signature, expected)) return;
      }
      throw unauthorized("no webhook-signature entry matches");
    },
  };
}

/**
 * Signs a delivery the way 4Degrees (and the sandbox) would: returns the three headers.
 * Used by tests and tools; the Worker itself only verifies.
 */
export async function signWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  rawBody: Uint8Array | string,
): Promise<Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string>> {
  const body = typeof rawBody === "string" ? new TextEncoder().encode(rawBody) : rawBody;
  const ts = String(Math.floor(timestampSeconds));
  const mac = await crypto.subtle.sign("HMAC", await importHmacKey(secret), signedContent(id, ts, body));
  return { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": `v1,${bytesToBase64(new Uint8Array(mac))}` };
}
