/**
 * HighLevel Custom Page SSO payloads (src/highlevel/sso.ts). The fixtures
 * (test/fixtures/highlevel/sso-payloads.json, each with its plaintext) are CryptoJS passphrase-mode
 * ciphertexts made by OpenSSL, which writes the same format (see docs/highlevel-sso.md):
 *   printf '%s' "$PLAINTEXT" | openssl enc -aes-256-cbc -md md5 -pass "pass:$SECRET" -base64 -A
 */
import { describe, expect, it } from "vitest";
import {
  SsoContextInvalidError,
  SsoDecryptionError,
  SsoError,
  SsoPayloadMalformedError,
  SsoPlaintextNotJsonError,
  contextLocationId,
  decryptUserContext,
  evpBytesToKey,
} from "../../../src/highlevel/sso.ts";
import { AppError } from "../../../src/lib/errors.ts";
import fixtures from "../../fixtures/highlevel/sso-payloads.json";

const SECRET = fixtures.secret;
const FIXTURES = {
  locationUser: fixtures.payloads.locationUser.payload,
  agencyUser: fixtures.payloads.agencyUser.payload,
  agencyUserInLocation: fixtures.payloads.agencyUserInLocation.payload,
  notJson: fixtures.payloads.notJson.payload,
  incomplete: fixtures.payloads.incomplete.payload,
  unicode: fixtures.payloads.unicode.payload,
};
/** What a fixture was made from. */
const plaintextOf = (name: "locationUser" | "agencyUser" | "agencyUserInLocation") =>
  JSON.parse(fixtures.payloads[name].plaintext) as Record<string, unknown>;

const bytesOf = (b64: string) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
const b64Of = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
/** The payload with one byte of its decoded form XOR-ed. */
function flipped(b64: string, index: number): string {
  const bytes = bytesOf(b64);
  const i = index < 0 ? bytes.length + index : index;
  bytes[i] = bytes[i]! ^ 0x01;
  return b64Of(bytes);
}

describe("decryptUserContext: happy", () => {
  it("decrypts a location user's context", async () => {
    const ctx = await decryptUserContext(FIXTURES.locationUser, SECRET);
    expect(ctx).toEqual({
      userId: "MKQJ7wOVVmNOMvrnKKKK",
      companyId: "GNb7aIv4rQFVb9iwNl5K",
      role: "user",
      type: "location",
      activeLocation: "yLKVZpNppIdYpah4RjNE",
      userName: "Priya Shah",
      email: "priya.shah@acmecapital.example",
      isAgencyOwner: false,
    });
    expect(ctx).toEqual(plaintextOf("locationUser"));
    expect(contextLocationId(ctx)).toBe("yLKVZpNppIdYpah4RjNE");
  });

  it("decrypts an agency user's context at agency level (no location)", async () => {
    const ctx = await decryptUserContext(FIXTURES.agencyUser, SECRET);
    expect(ctx).toEqual(plaintextOf("agencyUser"));
    expect(ctx).toEqual({
      userId: "MKQJ7wOVVmNOMvrnKKKK",
      companyId: "GNb7aIv4rQFVb9iwNl5K",
      role: "admin",
      type: "agency",
      userName: "John Doe",
      email: "johndoe@gmail.com",
      isAgencyOwner: true,
    });
    expect(contextLocationId(ctx)).toBeNull();
  });

  it("keeps the active location of an agency user inside a sub-account (HighLevel's own example)", async () => {
    const ctx = await decryptUserContext(FIXTURES.agencyUserInLocation, SECRET);
    expect(ctx).toEqual(plaintextOf("agencyUserInLocation"));
    expect(ctx).toMatchObject({ type: "agency", activeLocation: "yLKVZpNppIdYpah4RjNE", isAgencyOwner: false });
    expect(contextLocationId(ctx)).toBe("yLKVZpNppIdYpah4RjNE");
  });

  it("treats the secret and the plaintext as UTF-8, as CryptoJS does", async () => {
    const ctx = await decryptUserContext(FIXTURES.unicode, fixtures.payloads.unicode.secret);
    expect(ctx).toMatchObject({ userName: "Zoë Ñúñez 🚀", activeLocation: "l1" });
  });

  it("accepts surrounding whitespace (a payload copied from a log line)", async () => {
    const padded = `  ${FIXTURES.locationUser}\n`;
    await expect(decryptUserContext(padded, SECRET)).resolves.toMatchObject({ userId: "MKQJ7wOVVmNOMvrnKKKK" });
  });
});

describe("decryptUserContext: refused", () => {
  it("refuses the wrong secret as undecryptable (401), naming the secret but never its value", async () => {
    const err = await decryptUserContext(FIXTURES.locationUser, "another-secret").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsoDecryptionError);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ failure: "undecryptable", code: "unauthorized", status: 401 });
    expect((err as Error).message).toContain("HIGHLEVEL_SSO_KEY");
    expect((err as Error).message).not.toContain(SECRET);
  });

  it("refuses a payload altered in its last block (the padding breaks)", async () => {
    const altered = flipped(FIXTURES.locationUser, -1);
    await expect(decryptUserContext(altered, SECRET)).rejects.toBeInstanceOf(SsoDecryptionError);
  });

  it("refuses a payload altered in its first block (the plaintext garbles)", async () => {
    // Flipping ciphertext block 1 garbles plaintext block 1 and flips one byte of block 2: the
    // padding survives.
    const err = await decryptUserContext(flipped(FIXTURES.locationUser, 16), SECRET).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsoPlaintextNotJsonError);
    expect(err).toMatchObject({ failure: "not_json", status: 401 });
    expect((err as Error).message).not.toContain("priya");
  });

  it("refuses an altered salt (another key is derived)", async () => {
    await expect(decryptUserContext(flipped(FIXTURES.locationUser, 8), SECRET)).rejects.toBeInstanceOf(SsoError);
  });

  it("refuses a plaintext that is not JSON", async () => {
    await expect(decryptUserContext(FIXTURES.notJson, SECRET)).rejects.toBeInstanceOf(SsoPlaintextNotJsonError);
  });

  it("refuses JSON that is not a user context, naming each missing field", async () => {
    const err = await decryptUserContext(FIXTURES.incomplete, SECRET).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsoContextInvalidError);
    expect(err).toMatchObject({ failure: "invalid_context", status: 401 });
    const paths = (err as SsoContextInvalidError).details as Array<{ path: string }>;
    expect(paths.map((p) => p.path).sort()).toEqual(["activeLocation", "companyId", "role"]);
  });

  it.each([
    ["empty", ""],
    ["blank", "   "],
    ["not base64", "this is not base64!"],
    ["base64 without the Salted__ header", btoa("0123456789abcdef0123456789abcdef")],
    ["only the header and salt", btoa("Salted__12345678")],
    ["a partial AES block", b64Of(bytesOf(FIXTURES.locationUser).subarray(0, 40))],
    ["too long", "A".repeat(20_000)],
  ])("refuses a malformed payload (%s) with a 400", async (_what, payload) => {
    const err = await decryptUserContext(payload, SECRET).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsoPayloadMalformedError);
    expect(err).toMatchObject({ failure: "malformed", code: "bad_request", status: 400 });
  });

  it("refuses to run without a secret (a configuration error, not the caller's)", async () => {
    await expect(decryptUserContext(FIXTURES.locationUser, "")).rejects.toMatchObject({ code: "config_invalid" });
  });
});

describe("evpBytesToKey", () => {
  // Reference: `openssl enc -aes-256-cbc -md md5 -S 0102030405060708 -pass pass:secret -P`.
  it("derives OpenSSL's key and IV", () => {
    const out = evpBytesToKey(new TextEncoder().encode("secret"), Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 48);
    const hex = [...out]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("")
      .toUpperCase();
    expect(hex.slice(0, 64)).toBe("C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB");
    expect(hex.slice(64)).toBe("E24B32BBBC4EF02ECBCB6576523AD893");
  });
});
