/** Short content hashes (ledger change hashes, note body hashes). */

/** SHA-256 hex of a string (ledger change hashes, note body hashes). */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("")
    .slice(0, 32);
}
