/**
 * KV cache of the Cloudflare Access team's signing keys (the JWKS at
 * `{CF_ACCESS_TEAM_DOMAIN}/cdn-cgi/access/certs`). Read-mostly and safe to be briefly stale, so KV
 * fits: Access rotates keys every six weeks and publishes the next key before using it, and an
 * unknown `kid` makes the caller fetch afresh (src/http/access.ts).
 *
 * | key                                 | value                        | TTL  |
 * |-------------------------------------|------------------------------|------|
 * | `v1:access:certs:{teamDomain}`      | `{fetchedAt, keys: [JWK…]}`  | 1 h  |
 */
import * as z from "zod";

/** How long fetched keys are trusted before they are fetched again (seconds; ≥ KV's 60 s minimum). */
export const ACCESS_KEYS_TTL_SECONDS = 3600;

/** An RSA public key as Access publishes it. */
export const AccessJwkSchema = z.object({
  kid: z.string().min(1),
  kty: z.literal("RSA"),
  alg: z.literal("RS256").optional(),
  use: z.string().optional(),
  n: z.string().min(1),
  e: z.string().min(1),
});
export type AccessJwk = z.infer<typeof AccessJwkSchema>;

const CachedSchema = z.object({ fetchedAt: z.number(), keys: z.array(AccessJwkSchema) });

/** The KV key of one team's keys. */
export const accessKeysKey = (teamDomain: string) => `v1:access:certs:${teamDomain}`;

/** The cached keys of `teamDomain`, or null when absent or unreadable. */
export async function readAccessKeys(
  kv: KVNamespace,
  teamDomain: string,
): Promise<{ fetchedAt: number; keys: AccessJwk[] } | null> {
  const raw = await kv.get(accessKeysKey(teamDomain), "json");
  const parsed = CachedSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/** Caches `keys` for `teamDomain`. */
export async function writeAccessKeys(
  kv: KVNamespace,
  teamDomain: string,
  keys: AccessJwk[],
  now: number = Date.now(),
): Promise<void> {
  await kv.put(accessKeysKey(teamDomain), JSON.stringify({ fetchedAt: now, keys }), {
    expirationTtl: ACCESS_KEYS_TTL_SECONDS,
  });
}
