/**
 * Request rules of the JSON admin API (`/api/*`), in one middleware mounted before `adminAuth`:
 *
 * - **Origin (CSRF)**: where a cookie can authenticate — Cloudflare Access's `CF_Authorization`,
 *   or the console session — a state-changing request must carry an `Origin` equal to
 *   `PUBLIC_URL`'s origin or the request's own (without `Origin`, `Sec-Fetch-Site: same-origin`).
 *   Browsers attach those cookies to cross-site requests; a bearer token they never attach.
 * - **JSON only**: a state-changing request with a body or a `Content-Type` must say
 *   `application/json` (415 otherwise). `c.req.json()` parses any body, and `text/plain`, form and
 *   multipart bodies are what a cross-site form or a no-preflight `fetch` can send.
 * - **Body limit**: JSON bodies up to `maxJsonBytes` (413).
 *
 * Raw-upload routes (`rawBodyRoutes`, e.g. the CSV import) keep the Origin rule and set their own
 * media types and size limit.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import { AppError } from "../lib/errors.ts";
import type { AppEnv } from "./context.ts";

/** Default largest JSON body of `/api` (the biggest, a mapping, is a few KiB). */
export const MAX_JSON_BYTES = 1024 * 1024;

/** Cookies that authenticate a browser: Cloudflare Access's, the console and the embedded sessions. */
const AUTH_COOKIES = [
  "CF_Authorization",
  "console_session",
  "__Host-console_session",
  "embed_session",
  "__Host-embed_session",
];

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Options of `apiGuard`. */
export interface ApiGuardOptions {
  /** Largest JSON body in bytes (default `MAX_JSON_BYTES`). */
  maxJsonBytes?: number;
  /** `"METHOD /full/path"` of routes that take a raw upload instead of JSON. */
  rawBodyRoutes?: string[];
}

function mediaType(c: Context): string | null {
  const raw = c.req.header("content-type");
  return raw === undefined ? null : (raw.split(";")[0] ?? "").trim().toLowerCase();
}

/** True when `origin` is this site: PUBLIC_URL's origin, or the origin the request was sent to. */
export function isSiteOrigin(origin: string, requestUrl: string, publicUrl: string): boolean {
  return origin === new URL(publicUrl).origin || origin === new URL(requestUrl).origin;
}

function checkOrigin(c: Context<AppEnv>): void {
  const cookies = getCookie(c);
  if (!AUTH_COOKIES.some((name) => name in cookies)) return;
  const origin = c.req.header("origin");
  if (origin === undefined) {
    if (c.req.header("sec-fetch-site") === "same-origin") return;
    throw new AppError("forbidden", "a cookie-authenticated request must carry an Origin header of this site (CSRF)");
  }
  if (isSiteOrigin(origin, c.req.url, c.var.config.PUBLIC_URL)) return;
  const site = new URL(c.var.config.PUBLIC_URL).origin;
  const why = `Origin ${origin.slice(0, 100)} is not this site (${site})`;
  throw new AppError("forbidden", `${why}; cookie-authenticated requests must come from it (CSRF)`);
}

/** Middleware enforcing the Origin, media-type and size rules above on every `/api` request. */
export function apiGuard(options: ApiGuardOptions = {}): MiddlewareHandler<AppEnv> {
  const maxJsonBytes = options.maxJsonBytes ?? MAX_JSON_BYTES;
  const raw = new Set(options.rawBodyRoutes ?? []);
  const limit = bodyLimit({
    maxSize: maxJsonBytes,
    onError: () => {
      throw new AppError("payload_too_large", `JSON bodies of /api are limited to ${maxJsonBytes} bytes`);
    },
  });
  return async function apiGuardMiddleware(c, next) {
    if (SAFE_METHODS.has(c.req.method)) return next();
    checkOrigin(c);
    if (raw.has(`${c.req.method} ${c.req.path}`)) return next();
    const type = mediaType(c);
    const hasBody = c.req.raw.body !== null && c.req.header("content-length") !== "0";
    if ((type !== null || hasBody) && type !== "application/json") {
      const got = type === null ? "no Content-Type" : type.slice(0, 100);
      throw new AppError("unsupported_media_type", `send JSON with Content-Type: application/json (got ${got})`);
    }
    return limit(c, next);
  };
}
