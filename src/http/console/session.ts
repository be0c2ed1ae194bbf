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
 *
 * Sessions made inside HighLevel's iframe (src/http/embed.tsx) use a second cookie, `embed_session`,
 * in the same format: `SameSite=None; Secure; Partitioned` (CHIPS: a third-party cookie keyed to the
 * HighLevel page that frames us), shorter-lived (`EMBED_SESSION_TTL_SECONDS`), and scoped server-side.
 * Over local plain http it is `SameSite=Lax` without Secure: the sandbox's app shell and the Worker are
 * then both on 127.0.0.1, the same site, and browsers refuse `SameSite=None` without Secure.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { bytesToBase64, timingSafeEqualStrings } from "../../lib/crypto.ts";
import {
  consoleSessionScope,
  deleteConsoleSession,
  insertConsoleSession,
  type SessionScope,
} from "../../store/console-auth.ts";

/** How long a console login lasts. */
export const SESSION_TTL_SECONDS = 8 * 60 * 60;

/**
 * How long a session made from HighLevel's user context lasts: the context carries no timestamp, so
 * a short session bounds what one decrypted payload grants (docs/highlevel-sso.md, "Replay").
 */
export const EMBED_SESSION_TTL_SECONDS = 30 * 60;

/** Cookie name; over https Hono's `prefix: "host"` turns it into `__Host-console_session`. */
const NAME = "console_session";
/** The embedded (SSO) session's cookie: `__Host-embed_session` over https. */
const EMBED_NAME = "embed_session";

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
export async function createSessionValue(
  adminToken: string,
  sessionId: string,
  now = Date.now(),
  ttlSeconds = SESSION_TTL_SECONDS,
): Promise<string> {
  const expiry = Math.floor(now / 1000) + ttlSeconds;
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

/** The embedded session cookie's value, if any. */
export function readEmbedSession(c: Context): string | undefined {
  return isLocalPlainHttp(c.req.url) ? getCookie(c, EMBED_NAME) : getCookie(c, EMBED_NAME, "host");
}

/** The scope of the request's operator-login session when it is valid and still recorded, else null. */
export async function sessionScope(c: Context, db: D1Database, adminToken: string): Promise<SessionScope | null> {
  const sessionId = await sessionIdOf(adminToken, readSession(c));
  return sessionId === null ? null : consoleSessionScope(db, sessionId);
}

/** The scope of the request's embedded (SSO) session when it is valid and still recorded, else null. */
export async function embedSessionScope(c: Context, db: D1Database, adminToken: string): Promise<SessionScope | null> {
  const sessionId = await sessionIdOf(adminToken, readEmbedSession(c));
  return sessionId === null ? null : consoleSessionScope(db, sessionId);
}

/** True when the request carries a valid session that is still recorded server-side. */
export async function sessionActive(c: Context, db: D1Database, adminToken: string): Promise<boolean> {
  return (await sessionScope(c, db, adminToken)) !== null;
}

/**
 * Records a scoped session made from HighLevel's user context and sets the embedded cookie
 * (`SameSite=None; Secure; Partitioned`, or `SameSite=Lax` over local plain http).
 */
export async function startEmbedSession(
  c: Context,
  db: D1Database,
  adminToken: string,
  scope: SessionScope,
  now = Date.now(),
): Promise<void> {
  const sessionId = newSessionId();
  await insertConsoleSession(db, sessionId, now + EMBED_SESSION_TTL_SECONDS * 1000, now, scope);
  const value = await createSessionValue(adminToken, sessionId, now, EMBED_SESSION_TTL_SECONDS);
  const base = { path: "/", httpOnly: true, maxAge: EMBED_SESSION_TTL_SECONDS };
  if (isLocalPlainHttp(c.req.url)) setCookie(c, EMBED_NAME, value, { ...base, sameSite: "Lax" });
  else setCookie(c, EMBED_NAME, value, { ...base, secure: true, sameSite: "None", partitioned: true, prefix: "host" });
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

/** Revokes the request's sessions server-side (operator and embedded, when present) and clears the cookies. */
export async function endSession(c: Context, db: D1Database, adminToken: string): Promise<void> {
  const sessionId = await sessionIdOf(adminToken, readSession(c));
  if (sessionId !== null) await deleteConsoleSession(db, sessionId);
  const embedId = await sessionIdOf(adminToken, readEmbedSession(c));
  if (embedId !== null) {
    await deleteConsoleSession(db, embedId);
    if (isLocalPlainHttp(c.req.url)) deleteCookie(c, EMBED_NAME, { path: "/", httpOnly: true, sameSite: "Lax" });
    else
      deleteCookie(c, EMBED_NAME, {
        path: "/",
        httpOnly: true,
        secure: true,
        sameSite: "None",
        partitioned: true,
        prefix: "host",
      });
  }
  const secure = !isLocalPlainHttp(c.req.url);
  deleteCookie(c, NAME, {
    path: "/",
    secure,
    httpOnly: true,
    sameSite: "Strict",
    ...(secure ? { prefix: "host" as const } : {}),
  });
}
