/**
 * Console login sessions. The cookie holds `v2.<expiry seconds>.<session id>.<mac>`: a random
 * 256-bit id, and mac = HMAC-SHA256 over `console-session.v2.<expiry>.<id>` with a key derived
 * from ADMIN_TOKEN. A request is signed in only when the MAC holds, the expiry is ahead, and the
 * id is still recorded in D1 (src/store/console-auth.ts): logout deletes that row, so a copy of
 * the cookie stops working too; rotating ADMIN_TOKEN still ends every session at once.
 *
 * The cookie is HttpOnly, SameSite=Strict, Path=/ and Secure — except when the console is served
 * over plain http from 127.0.0.1/localhost (wrangler dev), where browsers would drop a Secure
 * cookie. With Secure it also carries the `__Host-` prefix (no Domain, Path=/).
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { bytesToBase64, timingSafeEqualStrings } from "../../lib/crypto.ts";
import { consoleSessionActive, deleteConsoleSession, insertConsoleSession } from "../../store/console-auth.ts";

/** How long a console login lasts. */
export const SESSION_TTL_SECONDS = 8 * 60 * 60;

/** Cookie name; over https Hono's `prefix: "host"` turns it into `__Host-console_session`. */
const NAME = "console_session";

const base64url = (bytes: Uint8Array) =>
  bytesToBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

const keys = new Map<string, Promise<CryptoKey>>();
function sessionKey(adminToken: string): Promise<CryptoKey> {
  let key = keys.get(adminToken);
  if (!key) {
    key = (async () => {
      // Derive a dedicated key so the cookie's MAC is never usable as (or with) the token itself.
      const base = await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(adminToken),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      const derived = await crypto.subtle.sign(
        "HMAC",
        base,
        new TextEncoder().encode("fourdegrees-ghl-sync console session key v1"),
      );
      return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    })();
    keys.set(adminToken, key);
  }
  return key;
}

async function mac(adminToken: string, expiry: number, sessionId: string): Promise<string> {
  const data = new TextEncoder().encode(`console-session.v2.${expiry}.${sessionId}`);
  const sig = await crypto.subtle.sign("HMAC", await sessionKey(adminToken), data);
  return base64url(new Uint8Array(sig));
}

/**
 * The MAC that makes a flash message in a console URL ours: a link someone else wrote cannot make a
 * page show their text as the console's own message.
 */
export async function flashMac(adminToken: string, kind: "ok" | "error", text: string): Promise<string> {
  const data = new TextEncoder().encode(`console-flash.v1.${kind}.${text}`);
  const sig = await crypto.subtle.sign("HMAC", await sessionKey(adminToken), data);
  return base64url(new Uint8Array(sig));
}

/** A fresh random session id (256 bits, URL-safe). */
export function newSessionId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The cookie value of session `sessionId`, valid until `now + SESSION_TTL_SECONDS`. */
export async function createSessionValue(adminToken: string, sessionId: string, now = Date.now()): Promise<string> {
  const expiry = Math.floor(now / 1000) + SESSION_TTL_SECONDS;
  return `v2.${expiry}.${sessionId}.${await mac(adminToken, expiry, sessionId)}`;
}

/**
 * The session id in `value` when it was made with this ADMIN_TOKEN and has not expired, else
 * null. Says nothing about revocation: `sessionActive` also asks D1.
 */
export async function sessionIdOf(adminToken: string, value?: string, now = Date.now()): Promise<string | null> {
  if (!value) return null;
  const match = /^v2\.(\d{1,12})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!match) return null;
  const expiry = Number(match[1]);
  const sessionId = match[2] ?? "";
  if (expiry * 1000 <= now) return null;
  return timingSafeEqualStrings(match[3] ?? "", await mac(adminToken, expiry, sessionId)) ? sessionId : null;
}

/** Whether this request may use a non-Secure cookie: plain http on a loopback host only. */
export function isLocalPlainHttp(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" && (u.hostname === "127.0.0.1" || u.hostname === "localhost" || u.hostname === "[::1]");
}

/** The session cookie's value, if any. */
export function readSession(c: Context): string | undefined {
  return isLocalPlainHttp(c.req.url) ? getCookie(c, NAME) : getCookie(c, NAME, "host");
}

/** True when the request carries a valid session that is still recorded server-side. */
export async function sessionActive(c: Context, db: D1Database, adminToken: string): Promise<boolean> {
  const sessionId = await sessionIdOf(adminToken, readSession(c));
  return sessionId !== null && (await consoleSessionActive(db, sessionId));
}

/** Records a new session in D1 and sets its cookie on the response. */
export async function startSession(c: Context, db: D1Database, adminToken: string, now = Date.now()): Promise<void> {
  const sessionId = newSessionId();
  await insertConsoleSession(db, sessionId, now + SESSION_TTL_SECONDS * 1000, now);
  const secure = !isLocalPlainHttp(c.req.url);
  setCookie(c, NAME, await createSessionValue(adminToken, sessionId, now), {
    path: "/",
    httpOnly: true,
    secure,
    sameSite: "Strict",
    maxAge: SESSION_TTL_SECONDS,
    ...(secure ? { prefix: "host" as const } : {}),
  });
}

/** Revokes the request's session server-side (when it has one) and clears the cookie. */
export async function endSession(c: Context, db: D1Database, adminToken: string): Promise<void> {
  const sessionId = await sessionIdOf(adminToken, readSession(c));
  if (sessionId !== null) await deleteConsoleSession(db, sessionId);
  const secure = !isLocalPlainHttp(c.req.url);
  deleteCookie(c, NAME, {
    path: "/",
    secure,
    httpOnly: true,
    sameSite: "Strict",
    ...(secure ? { prefix: "host" as const } : {}),
  });
}
