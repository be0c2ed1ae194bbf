/** Short content hashes (ledger change hashes, note body hashes). */

/** The full SHA-256 of a string, as 64 hex characters (session and flash ids, CSV row hashes). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of a string, its first 128 bits as hex (ledger change hashes, note body hashes). */
export async function sha256(text: string): Promise<string> {
  return (await sha256Hex(text)).slice(0, 32);
}
