/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/) as the ASSUMED 4Degrees contract
 * has it: headers `webhook-id`, `webhook-timestamp` (seconds), and
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{raw body}")>`, several
 * space-separated signatures while secrets rotate. The key is the base64-decoded part after
 * `whsec_`. WebCrypto only, so it runs in workerd and Node alike.
 */
import { fromBase64, toBase64 } from "../core/base64.ts";

/** Decodes a `whsec_<base64>` secret to its HMAC key bytes (a secret without the prefix is used as base64 too). */
export function secretKeyBytes(secret: string): Uint8Array<ArrayBuffer> {
  const b64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64(b64);
  } catch {
    throw new Error("a webhook secret must be whsec_ followed by base64");
  }
  if (bytes.length === 0) throw new Error("a webhook secret must not be empty");
  return bytes;
}

/** `v1,<base64 HMAC>` of `{id}.{timestamp}.{body}` under one secret. */
export async function signOne(secret: string, id: string, timestampSeconds: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secretKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`));
  return `v1,${toBase64(mac)}`;
}

/** The three Standard Webhooks headers for one delivery attempt, signed with every active secret. */
export async function standardWebhookHeaders(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Promise<Record<string, string>> {
  const signatures = await Promise.all(secrets.map((s) => signOne(s, id, timestampSeconds, body)));
  return { "webhook-id": id, "webhook-timestamp": String(timestampSeconds), "webhook-signature": signatures.join(" ") };
}

/**
 * Standard Webhooks' retry schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 10 h (then the delivery is marked failed). Sandbox time.
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];
