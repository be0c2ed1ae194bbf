/**
 * HighLevel's user context for Marketplace Custom Pages (SSO): the page in HighLevel's iframe posts
 * `{message: "REQUEST_USER_DATA"}` to its parent, the parent answers `REQUEST_USER_DATA_RESPONSE`
 * with `payload`, a string that HighLevel encrypted with `CryptoJS.AES.encrypt(json, sharedSecret)`.
 * That is CryptoJS's passphrase mode: OpenSSL's format (base64 of "Salted__" + 8-byte salt +
 * ciphertext), key and IV from EVP_BytesToKey (MD5, one iteration), AES-256-CBC with PKCS#7.
 * The app's Shared Secret is the Worker secret `HIGHLEVEL_SSO_KEY`. Sources and field notes:
 * docs/highlevel-sso.md.
 * https://marketplace.gohighlevel.com/docs/other/user-context-marketplace-apps
 */
import * as z from "zod";
import { AppError, zodIssues } from "../lib/errors.ts";
import type { ErrorCode } from "../lib/errors.ts";
import { md5 } from "../lib/md5.ts";

/** Longest payload accepted: a real context is a few hundred characters; this bounds the work done. */
export const SSO_MAX_PAYLOAD_CHARS = 16_384;

const SALTED = new TextEncoder().encode("Salted__");
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

const Common = {
  userId: z.string().min(1),
  /** The agency (company) the user belongs to. */
  companyId: z.string().min(1),
  /** "admin" or "user" in HighLevel's examples; the docs do not close the list, so any name passes. */
  role: z.string().min(1),
  userName: z.string(),
  email: z.string(),
  /** Absent in payloads from before HighLevel added it. */
  isAgencyOwner: z.boolean().optional(),
};

/** A sub-account (location) user: always inside its location. */
export const LocationUserContextSchema = z.object({
  ...Common,
  type: z.literal("location"),
  activeLocation: z.string().min(1),
});

/**
 * An agency user: `activeLocation` is present when the page was opened inside a sub-account and absent
 * at agency level (HighLevel's own "Location Context" example is an agency user with `activeLocation`).
 */
export const AgencyUserContextSchema = z.object({
  ...Common,
  type: z.literal("agency"),
  activeLocation: z.string().min(1).optional(),
});

/** The decrypted user context; unknown extra fields are dropped. */
export const UserContextSchema = z.discriminatedUnion("type", [LocationUserContextSchema, AgencyUserContextSchema]);

export type LocationUserContext = z.output<typeof LocationUserContextSchema>;
export type AgencyUserContext = z.output<typeof AgencyUserContextSchema>;
export type UserContext = z.output<typeof UserContextSchema>;

/** Why a payload was refused. */
export type SsoFailure = "malformed" | "undecryptable" | "not_json" | "invalid_context";

/** Base of every SSO refusal: an AppError (so it renders as a 4xx) with the `failure` that caused it. */
export class SsoError extends AppError {
  readonly failure: SsoFailure;

  constructor(
    failure: SsoFailure,
    code: ErrorCode,
    message: string,
    options: { details?: unknown; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = "SsoError";
    this.failure = failure;
  }
}

/** The payload is not a CryptoJS/OpenSSL passphrase ciphertext (not base64, no "Salted__", bad length). */
export class SsoPayloadMalformedError extends SsoError {
  constructor(message: string) {
    super("malformed", "bad_request", `SSO payload malformed: ${message}`);
    this.name = "SsoPayloadMalformedError";
  }
}

/** AES-CBC refused the padding: the payload was encrypted with another secret, or altered. */
export class SsoDecryptionError extends SsoError {
  constructor(cause: unknown) {
    const why = "SSO payload does not decrypt with HIGHLEVEL_SSO_KEY (wrong shared secret or altered payload)";
    super("undecryptable", "unauthorized", why, { cause });
    this.name = "SsoDecryptionError";
  }
}

/** It decrypted, but to something that is not UTF-8 JSON (a wrong secret that happened to pad validly, or altered). */
export class SsoPlaintextNotJsonError extends SsoError {
  // No cause: JSON.parse's message quotes the plaintext, which may hold an email address.
  constructor() {
    const why = "SSO payload decrypted to something that is not JSON (wrong shared secret or altered payload)";
    super("not_json", "unauthorized", why);
    this.name = "SsoPlaintextNotJsonError";
  }
}

/** It decrypted to JSON that is not a user context; `details` lists each field (values never echoed). */
export class SsoContextInvalidError extends SsoError {
  constructor(issues: Array<{ path: string; message: string }>) {
    const named = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    super("invalid_context", "unauthorized", `SSO user context invalid: ${named}`, { details: issues });
    this.name = "SsoContextInvalidError";
  }
}

/**
 * OpenSSL's EVP_BytesToKey with MD5 and one iteration (what CryptoJS's `OpenSSLKdf` does):
 * D1 = MD5(pass ‖ salt), Di = MD5(Di-1 ‖ pass ‖ salt), concatenated until `length` bytes.
 */
export function evpBytesToKey(passphrase: Uint8Array, salt: Uint8Array, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let filled = 0; filled < length;) {
    const input = new Uint8Array(previous.length + passphrase.length + salt.length);
    input.set(previous);
    input.set(passphrase, previous.length);
    input.set(salt, previous.length + passphrase.length);
    previous = md5(input);
    out.set(previous.subarray(0, Math.min(previous.length, length - filled)), filled);
    filled += previous.length;
  }
  return out;
}

function decodeBase64(payload: string): Uint8Array<ArrayBuffer> {
  if (payload.length % 4 !== 0 || !BASE64.test(payload)) throw new SsoPayloadMalformedError("not base64");
  const bin = atob(payload);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * Decrypts a `REQUEST_USER_DATA_RESPONSE` payload with the app's Shared Secret and validates it.
 * Throws an SsoError subclass for a malformed payload (400), a wrong secret or altered payload
 * (401: SsoDecryptionError, or SsoPlaintextNotJsonError when the padding happened to be valid), or
 * JSON that is not a user context (401, SsoContextInvalidError); an empty secret is a config error.
 */
export async function decryptUserContext(payload: string, sharedSecret: string): Promise<UserContext> {
  if (sharedSecret === "") throw new AppError("config_invalid", "HIGHLEVEL_SSO_KEY is empty");
  if (typeof payload !== "string" || payload.trim() === "") throw new SsoPayloadMalformedError("empty");
  if (payload.length > SSO_MAX_PAYLOAD_CHARS) {
    throw new SsoPayloadMalformedError(`longer than ${SSO_MAX_PAYLOAD_CHARS} characters`);
  }
  const bytes = decodeBase64(payload.trim());
  if (bytes.length < 32 || !SALTED.every((b, i) => bytes[i] === b)) {
    throw new SsoPayloadMalformedError('no OpenSSL "Salted__" header');
  }
  if ((bytes.length - 16) % 16 !== 0) throw new SsoPayloadMalformedError("ciphertext is not whole AES blocks");

  const derived = evpBytesToKey(new TextEncoder().encode(sharedSecret), bytes.subarray(8, 16), 48);
  const key = await crypto.subtle.importKey("raw", derived.subarray(0, 32), { name: "AES-CBC" }, false, ["decrypt"]);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-CBC", iv: derived.subarray(32, 48) }, key, bytes.subarray(16));
  } catch (err) {
    throw new SsoDecryptionError(err);
  }

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(plain));
  } catch {
    throw new SsoPlaintextNotJsonError();
  }
  const parsed = UserContextSchema.safeParse(json);
  if (!parsed.success) throw new SsoContextInvalidError(zodIssues(parsed.error));
  return parsed.data;
}

/** The location a context is scoped to (`activeLocation`), or null for an agency-level context. */
export function contextLocationId(context: UserContext): string | null {
  return context.activeLocation ?? null;
}
