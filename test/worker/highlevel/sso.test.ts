/**
 * HighLevel Custom Page SSO payloads (src/highlevel/sso.ts). The fixtures are CryptoJS passphrase-mode
 * ciphertexts made by OpenSSL, which writes the same format (see docs/highlevel-sso.md):
 *   printf '%s' "$JSON" | openssl enc -aes-256-cbc -md md5 -pass "pass:$SECRET" -base64 -A
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

const SECRET = "7c1f3e9a-52d4-4b8e-a6f0-d93b2c4e18a7";

const FIXTURES = {
  /** A sub-account user inside its location. */
  locationUser:
    "U2FsdGVkX18Ef4nbINCpMEcxYHeTUdwAQNgikyKkXkl+w4WbydU70PwR2tACO7SkGvPeDSWtEauvPGvqPU2b7q7qgQw4tSGPMIGRqEFq24bx97AHusxN/mVatwEVYvIyLrEjdbX00i1CRYphDvOUPY1PsVJYriCQzc7ogRWWcxUCA1jilx+UROwLIwhXf27EL9w6kMI4srzd32VV9bzUxKKJDV2uP0RvfBuOk0MOB0EknXOt3brPhKmgcWyj+gotq4OHPJNgv3qMie90QlJFZz2Ym9sxgaeggR7nsV0XAhBOnLTyPwo4glLr4A5wYnbcrNJS6fVWtmU/CEpEOOCF0g==",
  /** HighLevel's "Agency Context" example. */
  agencyUser:
    "U2FsdGVkX1/Aks44qeHiGGz4gZhzV35Ew71X9KL+RQz05gmdShazAcqvqTTnPSFMNPDlvlr3mScGJk6rPXr/WFwI6dli0no4YRAKs1pIdayBsj16EoGpgFxwUxrjB4o2WwrGAdvIEuWWywubuL5amLU+Xp2lUIaP4aKiG29gU+nMcEb0ofAJm3aunYuPNru4sctwxUisqJXibYg02XP8bzNi1Mm9eekD+PugvRyl5OLobZnjjizqBRWO9/DlFAvK",
  /** HighLevel's "Location Context" example: an agency user opened inside a sub-account. */
  agencyUserInLocation:
    "U2FsdGVkX18IiTPhEbCZ3Q/8+AS93ANd9t6O1lLSuJjgRMgigfex1KikTmMi1lny55/Fn4/EZtMDOqqXhpNh/5r7GTwjMkkN1w9e6pnTnkQq2FOOUcfIn2R4kp7ZVGe6S9mcmb9q+YLLm+xvLmYvuJjFDXigT2ZNjF3+aEEwqNVVfJ5daV8gpVKtVgQTrDSrwrqrKvD3lvmU0nGDaHjP6XhGhmFZFDYAZi/Xmr4qvbXet/upFBn6pF5NUKqBjjHa6N+jHwh459XTPiUMpOfV4TvDMrrhODheyvO30i48df4LKtR3EBO1pixKvtCsMp+L",
  /** "not json at all" */
  notJson: "U2FsdGVkX1+euMRmtna2qTcfwYyt05u99LQ/NTyCfVM=",
  /** `{"userId":…,"type":"location","userName":"x","email":"x"}`: companyId, role, activeLocation missing. */
  incomplete:
    "U2FsdGVkX1+MRVnl7e/5ISuYJMqF/C6sYoIDe5Q8/Fw1k6F+R2NLcq85fkcIAIQYGF0VmF5YKAVOn0Jcu4kSvNLSmpzTTA6c8IH/1dJYZegmy5cRSNoWXruG5Zwg2SIU",
  /** Non-ASCII plaintext under the non-ASCII secret "clé-secrète-ü" (both UTF-8, as CryptoJS encodes them). */
  unicode:
    "U2FsdGVkX18s3EUsQCyNW82JdrYLS0MQ+2/fqKfv/0wGwu2ekWeJGPjTv0pB8fkI/Fc8Fzf7YZpa3FCrypF1TDwhF7PdSLTZfrZf4KgxPwI49BbpZtZHbTv/DpLWqHmmTCHn8HY0f1NsjxuD+9Yxm2vMrK5NHCnmylNKfBacY/Y9YPuduKKntyIlqoG/UkxgEc8OtDP8uMBrOx2I9vWJjfw72n1NJiHyPdxNNH3u7DU=",
};

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
    expect(contextLocationId(ctx)).toBe("yLKVZpNppIdYpah4RjNE");
  });

  it("decrypts an agency user's context at agency level (no location)", async () => {
    const ctx = await decryptUserContext(FIXTURES.agencyUser, SECRET);
    expect(ctx).toEqual({ userId: "MKQJ7wOVVmNOMvrnKKKK", companyId: "GNb7aIv4rQFVb9iwNl5K", role: "admin", type: "agency", userName: "John Doe", email: "johndoe@gmail.com", isAgencyOwner: true });
    expect(contextLocationId(ctx)).toBeNull();
  });

  it("keeps the active location of an agency user inside a sub-account (HighLevel's own example)", async () => {
    const ctx = await decryptUserContext(FIXTURES.agencyUserInLocation, SECRET);
    expect(ctx).toMatchObject({ type: "agency", activeLocation: "yLKVZpNppIdYpah4RjNE", isAgencyOwner: false });
    expect(contextLocationId(ctx)).toBe("yLKVZpNppIdYpah4RjNE");
  });

  it("treats the secret and the plaintext as UTF-8, as CryptoJS does", async () => {
    const ctx = await decryptUserContext(FIXTURES.unicode, "clé-secrète-ü");
    expect(ctx).toMatchObject({ userName: "Zoë Ñúñez 🚀", activeLocation: "l1" });
  });

  it("accepts surrounding whitespace (a payload copied from a log line)", async () => {
    await expect(decryptUserContext(`  ${FIXTURES.locationUser}\n`, SECRET)).resolves.toMatchObject({ userId: "MKQJ7wOVVmNOMvrnKKKK" });
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
    await expect(decryptUserContext(flipped(FIXTURES.locationUser, -1), SECRET)).rejects.toBeInstanceOf(SsoDecryptionError);
  });

  it("refuses a payload altered in its first block (the plaintext garbles)", async () => {
    // Flipping ciphertext block 1 garbles plaintext block 1 and flips one byte of block 2: padding survives.
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
  it("derives OpenSSL's key and IV (`openssl enc -aes-256-cbc -md md5 -S 0102030405060708 -pass pass:secret -P`)", () => {
    const out = evpBytesToKey(new TextEncoder().encode("secret"), Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 48);
    const hex = [...out].map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
    expect(hex.slice(0, 64)).toBe("C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB");
    expect(hex.slice(64)).toBe("E24B32BBBC4EF02ECBCB6576523AD893");
  });
});
