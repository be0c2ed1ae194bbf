/** MD5 against the RFC 1321 appendix A.5 test suite, plus the padding edges (55/56/64-byte inputs). */
import { describe, expect, it } from "vitest";
import { md5 } from "../../../src/lib/md5.ts";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const digest = (text: string) => hex(md5(new TextEncoder().encode(text)));

describe("md5", () => {
  it("matches the RFC 1321 test suite", () => {
    expect(digest("")).toBe("d41d8cd98f00b204e9800998ecf8427e");
    expect(digest("a")).toBe("0cc175b9c0f1b6a831c399e269772661");
    expect(digest("abc")).toBe("900150983cd24fb0d6963f7d28e17f72");
    expect(digest("message digest")).toBe("f96b697d7cb7938d525a2f31aaf161d0");
    expect(digest("abcdefghijklmnopqrstuvwxyz")).toBe("c3fcd3d76192e4007dfb496cca67e13b");
    const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    expect(digest(alnum)).toBe("d174ab98d277d9f5a5611c2c9f419d9f");
    expect(digest("1234567890".repeat(8))).toBe("57edf4a22be3c955ac49da2e2107b67a");
  });

  it("pads correctly at the block edges and over many blocks", () => {
    // Reference values from `printf '%s' … | openssl md5`.
    expect(digest("a".repeat(55))).toBe("ef1772b6dff9a122358552954ad0df65");
    expect(digest("a".repeat(56))).toBe("3b0c8ac703f828b04c6c197006d17218");
    expect(digest("a".repeat(64))).toBe("014842d480b571495a4a0363793f7367");
    expect(digest("a".repeat(1000))).toBe("cabe45dcc9ae5b66ba86600cca6b8ba8");
  });

  it("hashes bytes that are not text", () => {
    expect(hex(md5(Uint8Array.from({ length: 256 }, (_, i) => i)))).toBe("e2c865db4162bed963bfaa9ef6ac18f0");
  });
});
