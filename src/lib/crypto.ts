/**
 * Secrets at rest (HighLevel tokens, 4Degrees API keys): AES-256-GCM via WebCrypto, with a key id
 * so the key can be rotated. `TOKEN_ENCRYPTION_KEY` holds `kid:base64` entries; the first encrypts,
 * all decrypt. Ciphertext format: `v1.<kid>.<base64 iv>.<base64 ciphertext+tag>`.
 * Additional authenticated data binds a ciphertext to its row (e.g. `connection:{locationId}`),
 * so a value copied into another row does not decrypt.
 */
import { AppError } from "./errors.ts";

export interface EncryptionKey {
  id: string;
  /** base64 of 32 bytes */
  secret: string;
}

const imported = new Map<string, Promise<CryptoKey>>();

function importKey(key: EncryptionKey): Promise<CryptoKey> {
  const cacheKey = `${key.id}:${key.secret}`;
  let pending = imported.get(cacheKey);
  if (!pending) {
    pending = crypto.subtle.importKey("raw", base64ToBytes(key.secret), { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    imported.set(cacheKey, pending);
  }
  return pending;
}

/** Encrypts `plaintext` with the active (first) key. `aad` must be given again to decrypt. */
export async function encryptSecret(keys: readonly EncryptionKey[], plaintext: string, aad: string): Promise<string> {
  const active = keys[0];
  if (!active) throw new AppError("config_invalid", "TOKEN_ENCRYPTION_KEY has no key");
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(aad) },
    await importKey(active),
    new TextEncoder().encode(plaintext),
  );
  return `v1.${active.id}.${bytesToBase64(iv)}.${bytesToBase64(new Uint8Array(sealed))}`;
}

/** Decrypts a value made by `encryptSecret`, with whichever configured key its id names. */
export async function decryptSecret(keys: readonly EncryptionKey[], sealed: string, aad: string): Promise<string> {
  const parts = sealed.split(".");
  if (parts.length !== 4 || parts[0] !== "v1") throw new AppError("internal", "encrypted value has an unknown format");
  const [, kid, ivB64, dataB64] = parts as [string, string, string, string];
  const key = keys.find((k) => k.id === kid);
  if (!key)
    throw new AppError(
      "config_invalid",
      `encrypted value uses key id "${kid}", which TOKEN_ENCRYPTION_KEY no longer lists`,
    );
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: base64ToBytes(ivB64), additionalData: new TextEncoder().encode(aad) },
      await importKey(key),
      base64ToBytes(dataB64),
    );
    return new TextDecoder().decode(plain);
  } catch (cause) {
    throw new AppError("internal", "encrypted value failed authentication (wrong key or row)", { cause });
  }
}

/** True when `sealed` was made with a key other than the active one (re-encrypt on next write). */
export function needsReencryption(keys: readonly EncryptionKey[], sealed: string): boolean {
  return sealed.split(".")[1] !== keys[0]?.id;
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Constant-time comparison of two strings (length leaks, content does not). */
export function timingSafeEqualStrings(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  let diff = ea.length ^ eb.length;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) diff |= (ea[i % (ea.length || 1)] ?? 0) ^ (eb[i % (eb.length || 1)] ?? 0);
  return diff === 0;
}
