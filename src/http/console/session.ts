/**
 * Console login sessions without a session table: the cookie holds `v1.<expiry seconds>.<mac>`,
 * where mac = HMAC-SHA256 over `console-session.v1.<expiry>` with a key derived from ADMIN_TOKEN.
 * Rotating ADMIN_TOKEN therefore ends every session at once; a session cannot be extended or
 * moved to another deployment without the token.
 *
 * The cookie is HttpOnly, SameSite=Strict, Path=/ and Secure — except when the console is served
 * over plain http from 127.0.0.1/localhost (wrangler dev), where browsers would drop a Secure
 * cookie. With Secure it also carries the `__Host-` prefix (no Domain, Path=/).
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { bytesToBase64, timingSafeEqualStrings } from "../../lib/crypto.ts";

/** How long a console login lasts. */
export const SESSION_TTL_SECONDS = 8 * 60 * 60;

/** Cookie name; over https Hono's `prefix: "host"` turns it into `__Host-console_session`. */
const NAME = "console_session";

const keys = new Map<string, Promise<CryptoKey>>();
function sessionKey(adminToken: string): Promise<CryptoKey> {
  let key = keys.get(adminToken);
  if (!key) {
    key = (async () => {
      // Derive a dedicated key so the cookie's MAC is never usable as (or with) the token itself.
      const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(adminToken), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      const derived = await crypto.subtle.sign("HMAC", base, new TextEncoder().encode("fourdegrees-ghl-sync console session key v1"));
      return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    })();
    keys.set(adminToken, key);
  }
  return key;
}

async function mac(adminToken: string, expiry: number): Promise<string> {
  const sig = await crypto.subtle.sign("HMAC", await sessionKey(adminToken), new TextEncoder().encode(`console-session.v1.${expiry}`));
  return bytesToBase64(new Uint8Array(sig)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A session value valid until `now + SESSION_TTL_SECONDS`. */
export async function createSessionValue(adminToken: string, now: number = Date.now()): Promise<string> {
  const expiry = Math.floor(now / 1000) + SESSION_TTL_SECONDS;
  return `v1.${expiry}.${await mac(adminToken, expiry)}`;
}

/** True when `value` was made with this ADMIN_TOKEN and has not expired. */
export async function verifySessionValue(adminToken: string, value: string | undefined, now: number = Date.now()): Promise<boolean> {
  if (!value) return false;
  const match = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!match) return false;
  const expiry = Number(match[1]);
  if (expiry * 1000 <= now) return false;
  return timingSafeEqualStrings(match[2] ?? "", await mac(adminToken, expiry));
}

/** Whether this request may use a non-Secure cookie: plain http on a loopback host only. */
export function isLocalPlainHttp(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" && (u.hostname === "127.0.0.1" || u.hostname === "localhost" || u.hostname === "[::1]");
}

/** Sets the session cookie on the response. */
export async function startSession(c: Context, adminToken: string): Promise<void> {
  const secure = !isLocalPlainHttp(c.req.url);
  setCookie(c, NAME, await createSessionValue(adminToken), {
    path: "/",
    httpOnly: true,
    secure,
    sameSite: "Strict",
    maxAge: SESSION_TTL_SECONDS,
    ...(secure ? { prefix: "host" as const } : {}),
  });
}

/** The session cookie's value, if any. */
export function readSession(c: Context): string | undefined {
  return isLocalPlainHttp(c.req.url) ? getCookie(c, NAME) : getCookie(c, NAME, "host");
}

/** Clears the session cookie. */
export function endSession(c: Context): void {
  const secure = !isLocalPlainHttp(c.req.url);
  deleteCookie(c, NAME, { path: "/", secure, httpOnly: true, sameSite: "Strict", ...(secure ? { prefix: "host" as const } : {}) });
}
