/**
 * How HighLevel encrypts the user context it hands a Custom Page (`REQUEST_USER_DATA_RESPONSE`):
 * `CryptoJS.AES.encrypt(JSON.stringify(context), sharedSecret).toString()` — CryptoJS's passphrase
 * mode, i.e. OpenSSL's `enc` format: base64("Salted__" ‖ 8 random salt bytes ‖ AES-256-CBC/PKCS#7
 * ciphertext), key and IV from EVP_BytesToKey(MD5, 1 iteration, passphrase UTF-8, salt).
 * WebCrypto only (runs in Node and workerd); WebCrypto has no MD5, hence the small one below.
 * Kept apart from the Worker's decryption (src/highlevel/sso.ts) so the two check each other.
 * https://marketplace.gohighlevel.com/docs/other/user-context-marketplace-apps
 */

/** The user context HighLevel encrypts (field list: docs/highlevel-sso.md). */
export interface SsoUserContext {
  userId: string;
  companyId: string;
  role: string;
  type: "agency" | "location";
  activeLocation?: string;
  userName: string;
  email: string;
  isAgencyOwner: boolean;
}

const S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

/** MD5 (RFC 1321) of `data`: only for EVP_BytesToKey, which HighLevel's format prescribes. */
function md5(data: Uint8Array): Uint8Array {
  const n = ((data.length + 8) >> 6) + 1;
  const words = new Uint32Array(n * 16);
  for (let i = 0; i < data.length; i++) words[i >> 2]! |= data[i]! << ((i % 4) * 8);
  words[data.length >> 2]! |= 0x80 << ((data.length % 4) * 8);
  words[n * 16 - 2] = (data.length * 8) >>> 0;
  words[n * 16 - 1] = Math.floor((data.length * 8) / 2 ** 32);
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  for (let block = 0; block < n; block++) {
    let [a, b, c, d] = h as [number, number, number, number];
    for (let i = 0; i < 64; i++) {
      const round = i >> 4;
      const f =
        round === 0 ? (b & c) | (~b & d) : round === 1 ? (b & d) | (c & ~d) : round === 2 ? b ^ c ^ d : c ^ (b | ~d);
      const g = round === 0 ? i : round === 1 ? (5 * i + 1) % 16 : round === 2 ? (3 * i + 5) % 16 : (7 * i) % 16;
      const x = (a + f + K[i]! + words[block * 16 + g]!) >>> 0;
      const s = S[round * 4 + (i % 4)]!;
      [a, d, c] = [d, c, b];
      b = (b + ((x << s) | (x >>> (32 - s)))) >>> 0;
    }
    h[0] = (h[0]! + a) >>> 0;
    h[1] = (h[1]! + b) >>> 0;
    h[2] = (h[2]! + c) >>> 0;
    h[3] = (h[3]! + d) >>> 0;
  }
  const out = new Uint8Array(16);
  h.forEach((word, i) => new DataView(out.buffer).setUint32(i * 4, word, true));
  return out;
}

function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Bytes = Uint8Array<ArrayBuffer>;

/** EVP_BytesToKey(MD5, count 1): 32 key bytes then 16 IV bytes, as OpenSSL and CryptoJS derive them. */
function deriveKeyAndIv(passphrase: string, salt: Uint8Array): { key: Bytes; iv: Bytes } {
  const pass = new TextEncoder().encode(passphrase);
  let block: Uint8Array = new Uint8Array(0);
  let material: Uint8Array = new Uint8Array(0);
  while (material.length < 48) {
    block = md5(concat(block, pass, salt));
    material = concat(material, block);
  }
  return { key: material.slice(0, 32), iv: material.slice(32, 48) };
}

/**
 * Encrypts `context` exactly as HighLevel does (a fresh random salt each call), for `sharedSecret`
 * (the app's Shared Secret; the Worker's `HIGHLEVEL_SSO_KEY`).
 */
export async function encryptUserContext(context: SsoUserContext, sharedSecret: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(8));
  const { key, iv } = deriveKeyAndIv(sharedSecret, salt);
  const aes = await crypto.subtle.importKey("raw", key, { name: "AES-CBC" }, false, ["encrypt"]);
  const plain = new TextEncoder().encode(JSON.stringify(context));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv }, aes, plain));
  const bytes = concat(new TextEncoder().encode("Salted__"), salt, sealed);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
