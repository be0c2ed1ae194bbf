/**
 * The sandbox's webhook signing keys (sandbox/keys/*.pem, committed on purpose: they protect nothing
 * real), embedded as text so the sandbox stays runtime-neutral (no fs) and imported with WebCrypto.
 * The Worker trusts the matching public keys in local dev and tests (.dev.vars.example, test/bindings.ts).
 */

import { fromBase64, toBase64 } from "../core/base64.ts";

export { fromBase64, toBase64 };

/** sandbox/keys/ed25519-private.pem — signs `x-ghl-signature`. */
export const ED25519_PRIVATE_PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFH7myq9HBBS9SXNqtcsEb3U3GftOWTFUYPA568j+ZvP
-----END PRIVATE KEY-----`;

/** sandbox/keys/ed25519-public.pem */
export const ED25519_PUBLIC_PEM = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAUS1WyjeFCJE8D/6gMllmTCU393CQrxPqDytyTtMQn/o=
-----END PUBLIC KEY-----`;

/** sandbox/keys/rsa-private.pem — signs the legacy `x-wh-signature`. */
export const RSA_PRIVATE_PEM = `-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCq4co01wN6LFaX
IVngtalvg8HXZ1G9zctQRokM/RpZ+jt8tYTrXFqy995f2PIednV+I8hsd32Z04W2
8qbeCAlLOPuWkjGYHSr0JDfoySU1j2S5xcoAjj+dpqJhCVBk3/l0HpTnsZW0ACzB
kke85INmhBALuoUY97w6LzKpYhcM43qGcHbnSJIDqhhsD9rPtJQ2KvNqLhYJKITe
e3fAvYruMR/LObCjG7Yvdy/ojuvF7EaVNxO6PxfXUQy6RFdDKW4HsbJKTX3XpZu8
1sXXQ5Kv9gLe2wk4M0U79nIynI/TLb3Msnw855SMhAvgETKdzmYadoCxrL2i+250
fZa33WYBAgMBAAECggEAJfVuE3rHvPXobj3sVyxDbRAZmR3MXJtAVJ62hvoaRm59
lGBGHHoxc5v3+9aXQgkSZGjSdrW8YtVH2LHiO2QRnHIWAQaMmbuw9PaurLkx2Mn3
mATFsIXov75qR5/oCeBu60p3zVf3Zzq6tm0mHmGshrNDVTejpT4yw8IEQPgXIrdw
YX0LOWbDYUIcVG+7CVvC5CkdgG9ONvQAHEnOy35EcRi9rG/5Vw1TbjK/Z4qRPEx+
Rin+Y3eCXdfJ5H5hZfmDDhcu8eefNZiIV6WoLvLqfCd8yxKFBYMb14M4j9YI8JBJ
KgFbjIWIjivxrcQ6LbYyunFPNPP+07bENP61sjIN2QKBgQDYFOTZyWny9aiZNq3H
6M1+T9zrSde3JrWBRh7/qc40PhndmRlOek1O6KMqbcZD6TaTctZfPYeq1mivO5Mo
MpbAbl9EVeqpFACa3l2lknuaJbg97aRF8FUdd4wDI4/PvvHtFfwFtUM7OIK1lePP
grJX2Fl9MGv0jS0waZxugNgCkwKBgQDKc0dfPtLlZMdDYBP4pXAaKBJs0zI0biOw
D+eCyyAnv15trhISw2+B1pBBplwJwl9ZH6E7TU9BlJUWjX5ml2W/k93S6FkazQEU
I4vf3MPdr82PuH9Q8Y8j9T9rhfKtCq5eIDZrCBAE/xjMQP/p6YyFQtnqh6H/kW8l
HITBFOAtmwKBgAmXW9Ui8JX9O3+Zgrs15TEvIFI9U9roV/QmBag5hFKjUwiYDByE
pzvSbbOrbbqD9o0y8rsFgykdHUZx8YU+QZzHCWmCGslofuJg7m00BFKCTBxLmRgV
o+GL9eYJxQ9mnVx1tlsWgaZ2Sq7+uT7zwTDPBKHe7VvMjG3ysiPhijULAoGATdxa
Jbput8SzkikAZU+TNqwUsf/jviBh31OukTH38vF5qqsYzliVqRTRND58BVDZBNjS
VJFeGvW/BQZ0B5bQjgabeILdyh3v/UPShs1MExWK9GxbotDUYVrwAjVo6L5D43V2
GGHob1OAwQV6pwaogZP9ZWK2nijb2yUFtZCGy2MCgYB0A0YlU9DaQ0V+o/s13qxa
/T9zXD0k1babx42wpaMkJuSO6SQN11HGudj88fSvVyqaudnLNck6JSAsDnAIV48I
0a3tuteXdpNqAvOEMYw5rALYa88E2WXmMxF/8HS6Wa+j25QsBUMPOa0PYrjrQRSZ
3kqVbefRx5sRkzOoDFkl7A==
-----END PRIVATE KEY-----`;

/** sandbox/keys/rsa-public.pem */
export const RSA_PUBLIC_PEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAquHKNNcDeixWlyFZ4LWp
b4PB12dRvc3LUEaJDP0aWfo7fLWE61xasvfeX9jyHnZ1fiPIbHd9mdOFtvKm3ggJ
Szj7lpIxmB0q9CQ36MklNY9kucXKAI4/naaiYQlQZN/5dB6U57GVtAAswZJHvOSD
ZoQQC7qFGPe8Oi8yqWIXDON6hnB250iSA6oYbA/az7SUNirzai4WCSiE3nt3wL2K
7jEfyzmwoxu2L3cv6I7rxexGlTcTuj8X11EMukRXQyluB7GySk1916WbvNbF10OS
r/YC3tsJODNFO/ZyMpyP0y29zLJ8POeUjIQL4BEync5mGnaAsay9ovtudH2Wt91m
AQIDAQAB
-----END PUBLIC KEY-----`;

/** The DER bytes inside a PEM block. */
export function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  return fromBase64(pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, ""));
}

const RSA_ALGORITHM = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

/**
 * Signs webhook bodies as HighLevel does: `x-ghl-signature` = base64 Ed25519 over the raw body
 * bytes, legacy `x-wh-signature` = base64 RSASSA-PKCS1-v1_5/SHA-256 over the same bytes.
 * Keys are imported once (PKCS8) on first use.
 */
export class WebhookSigner {
  #keys: Promise<{ ed25519: CryptoKey; rsa: CryptoKey }> | null = null;
  /** Whether the legacy RSA header is sent too (HighLevel still sends both until July 2026). */
  legacy: boolean;

  constructor(options: { legacy?: boolean } = {}) {
    this.legacy = options.legacy ?? true;
  }

  #load(): Promise<{ ed25519: CryptoKey; rsa: CryptoKey }> {
    this.#keys ??= (async () => ({
      ed25519: await crypto.subtle.importKey("pkcs8", pemToDer(ED25519_PRIVATE_PEM), { name: "Ed25519" }, false, [
        "sign",
      ]),
      rsa: await crypto.subtle.importKey("pkcs8", pemToDer(RSA_PRIVATE_PEM), RSA_ALGORITHM, false, ["sign"]),
    }))();
    return this.#keys;
  }

  /** The signature headers for one raw body. */
  async sign(body: string): Promise<Record<string, string>> {
    const keys = await this.#load();
    const bytes = new TextEncoder().encode(body);
    const headers: Record<string, string> = {
      "x-ghl-signature": toBase64(await crypto.subtle.sign({ name: "Ed25519" }, keys.ed25519, bytes)),
    };
    if (this.legacy) headers["x-wh-signature"] = toBase64(await crypto.subtle.sign(RSA_ALGORITHM, keys.rsa, bytes));
    return headers;
  }
}

/** Verifies an `x-ghl-signature` with a public key PEM (tests and docs use this to show the scheme). */
export async function verifyGhlSignature(
  body: string,
  signatureB64: string,
  publicPem = ED25519_PUBLIC_PEM,
): Promise<boolean> {
  const key = await crypto.subtle.importKey("spki", pemToDer(publicPem), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(signatureB64), new TextEncoder().encode(body));
}

/** Verifies a legacy `x-wh-signature` with a public key PEM. */
export async function verifyWhSignature(
  body: string,
  signatureB64: string,
  publicPem = RSA_PUBLIC_PEM,
): Promise<boolean> {
  const key = await crypto.subtle.importKey("spki", pemToDer(publicPem), RSA_ALGORITHM, false, ["verify"]);
  return crypto.subtle.verify(RSA_ALGORITHM, key, fromBase64(signatureB64), new TextEncoder().encode(body));
}
