/**
 * Cloudflare Access: verification of the `Cf-Access-Jwt-Assertion` JWT that Access adds to every
 * request it lets through to this Worker (https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/).
 *
 * Checks: RS256 only, signed by one of the team's keys (`{team}/cdn-cgi/access/certs`, cached in KV
 * by src/store/access-keys.ts), `iss` = the team domain, `aud` contains `CF_ACCESS_AUD`, `exp`,
 * `nbf` and `iat`. An unknown `kid` refetches the keys (Access rotated them), at most once a minute
 * per isolate, so a stream of forged tokens cannot turn this Worker into a fetch loop.
 */
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { verifyWithJwks } from "hono/jwt";
import * as z from "zod";
import type { Config } from "../config.ts";
import { AppError } from "../lib/errors.ts";
import { AccessJwkSchema, readAccessKeys, writeAccessKeys, type AccessJwk } from "../store/access-keys.ts";
import type { AppEnv } from "./context.ts";

/** The header Access sets on requests it forwards. */
export const ACCESS_JWT_HEADER = "Cf-Access-Jwt-Assertion";

/** Access settings, present only when both values are configured. */
export interface AccessSettings {
  teamDomain: string;
  aud: string;
}

/** The Access settings of `config`, or null when Access is not set up (ADMIN_TOKEN applies). */
export function accessSettings(config: Pick<Config, "CF_ACCESS_TEAM_DOMAIN" | "CF_ACCESS_AUD">): AccessSettings | null {
  return config.CF_ACCESS_TEAM_DOMAIN && config.CF_ACCESS_AUD
    ? { teamDomain: config.CF_ACCESS_TEAM_DOMAIN, aud: config.CF_ACCESS_AUD }
    : null;
}

/** Who Access says is calling (a person's email, or a service token's common name). */
export interface AccessIdentity {
  subject: string;
  email: string | null;
}

const JwksSchema = z.object({ keys: z.array(z.unknown()) });
const ClaimsSchema = z
  .object({ sub: z.string().optional(), email: z.string().optional(), common_name: z.string().optional() })
  .loose();

/** Minimum time between forced refetches of the keys (per isolate, per team). */
const FORCED_REFRESH_MS = 60_000;
const lastForced = new Map<string, number>();

/** Fetches the team's JWKS (RSA keys only; anything else in the set is ignored). */
async function fetchAccessKeys(teamDomain: string): Promise<AccessJwk[]> {
  // https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/#access-signing-keys
  const res = await fetch(`${teamDomain}/cdn-cgi/access/certs`, { headers: { accept: "application/json" } });
  if (!res.ok) throw new AppError("upstream_unavailable", `Cloudflare Access keys answered ${res.status}`);
  const body = JwksSchema.safeParse(await res.json().catch(() => null));
  if (!body.success) throw new AppError("upstream_unavailable", "Cloudflare Access keys are not a JWKS");
  return body.data.keys.flatMap((k) => {
    const parsed = AccessJwkSchema.safeParse(k);
    return parsed.success ? [parsed.data] : [];
  });
}

function kidOf(token: string): string | null {
  const head = token.split(".")[0];
  if (!head) return null;
  try {
    const json: unknown = JSON.parse(atob(head.replace(/-/g, "+").replace(/_/g, "/")));
    const parsed = z.object({ kid: z.string() }).safeParse(json);
    return parsed.success ? parsed.data.kid : null;
  } catch {
    return null;
  }
}

/** The team's keys, from KV when cached and containing `kid`, else fetched (and cached). */
async function keysFor(
  kv: KVNamespace,
  settings: AccessSettings,
  kid: string | null,
  now: number,
): Promise<AccessJwk[]> {
  const cached = await readAccessKeys(kv, settings.teamDomain);
  if (cached && (kid === null || cached.keys.some((k) => k.kid === kid))) return cached.keys;
  if (cached && now - (lastForced.get(settings.teamDomain) ?? 0) < FORCED_REFRESH_MS) return cached.keys;
  lastForced.set(settings.teamDomain, now);
  const keys = await fetchAccessKeys(settings.teamDomain);
  await writeAccessKeys(kv, settings.teamDomain, keys, now);
  return keys;
}

/**
 * Verifies an Access JWT. Resolves with the caller's identity; throws `unauthorized` (AppError)
 * naming what failed; an unreachable key endpoint is `upstream_unavailable` (503), never a pass.
 */
export async function verifyAccessJwt(
  kv: KVNamespace,
  settings: AccessSettings,
  token: string,
  now: number = Date.now(),
): Promise<AccessIdentity> {
  const keys = await keysFor(kv, settings, kidOf(token), now);
  let payload: unknown;
  try {
    payload = await verifyWithJwks(token, {
      keys,
      allowedAlgorithms: ["RS256"],
      verification: { iss: settings.teamDomain, aud: settings.aud },
    });
  } catch (cause) {
    throw new AppError(
      "unauthorized",
      `Cloudflare Access token rejected (${cause instanceof Error ? cause.name : "invalid"})`,
      { cause },
    );
  }
  const claims = ClaimsSchema.parse(payload);
  return { subject: claims.email ?? claims.common_name ?? claims.sub ?? "unknown", email: claims.email ?? null };
}

/**
 * Middleware requiring a valid Access JWT in `Cf-Access-Jwt-Assertion`. Only mount it where
 * `accessSettings(config)` is non-null (src/http/admin-auth.ts and the console decide).
 */
export function accessAuth(): MiddlewareHandler<AppEnv> {
  return async function accessAuthMiddleware(c, next) {
    const settings = accessSettings(c.var.config);
    if (!settings)
      throw new AppError(
        "config_invalid",
        "Cloudflare Access is not configured (CF_ACCESS_TEAM_DOMAIN, CF_ACCESS_AUD)",
      );
    const token = c.req.header(ACCESS_JWT_HEADER);
    if (!token)
      throw new HTTPException(401, {
        message: `missing ${ACCESS_JWT_HEADER} (this deployment is protected by Cloudflare Access)`,
      });
    const who = await verifyAccessJwt(c.env.CACHE, settings, token);
    c.var.log.debug({ event: "auth.access", outcome: "ok", subject: who.subject });
    await next();
  };
}
