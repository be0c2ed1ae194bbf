import { describe, expect, it } from "vitest";
import { decryptSecret, encryptSecret, needsReencryption, timingSafeEqualStrings } from "../../src/lib/crypto.ts";

const k1 = { id: "k1", secret: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" };
const k2 = { id: "k2", secret: "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE=" };

describe("secrets at rest", () => {
  it("happy: round-trips and never stores the plaintext", async () => {
    const sealed = await encryptSecret([k1], "refresh-token-abc", "connection:loc1");
    expect(sealed).toMatch(/^v1\.k1\./);
    expect(sealed).not.toContain("refresh-token-abc");
    expect(await decryptSecret([k1], sealed, "connection:loc1")).toBe("refresh-token-abc");
  });

  it("happy: rotation — the old key still decrypts, new writes use the new key", async () => {
    const old = await encryptSecret([k1], "secret", "a");
    expect(await decryptSecret([k2, k1], old, "a")).toBe("secret");
    expect(needsReencryption([k2, k1], old)).toBe(true);
    expect(await encryptSecret([k2, k1], "secret", "a")).toMatch(/^v1\.k2\./);
  });

  it("security: a ciphertext moved to another row does not decrypt", async () => {
    const sealed = await encryptSecret([k1], "secret", "connection:loc1");
    await expect(decryptSecret([k1], sealed, "connection:loc2")).rejects.toThrow(/failed authentication/);
  });

  it("error: a retired key id is named", async () => {
    const sealed = await encryptSecret([k1], "secret", "a");
    await expect(decryptSecret([k2], sealed, "a")).rejects.toThrow(/"k1"/);
  });

  it("constant-time compare answers correctly", () => {
    expect(timingSafeEqualStrings("abc", "abc")).toBe(true);
    expect(timingSafeEqualStrings("abc", "abd")).toBe(false);
    expect(timingSafeEqualStrings("abc", "abcd")).toBe(false);
    expect(timingSafeEqualStrings("", "")).toBe(true);
  });
});
