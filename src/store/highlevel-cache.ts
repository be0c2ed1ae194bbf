/**
 * KV caches of HighLevel reference data per location: pipelines (with stages), users, custom
 * field definitions. Keys and TTLs come from src/store/kv-keys.ts. KV is eventually consistent, so
 * these are hints to save API calls, never the truth: a webhook naming a stage the cache does not
 * know triggers a reload (`src/highlevel/pipelines.ts`).
 */
import * as z from "zod";
import { KV_MIN_TTL_SECONDS } from "./kv-keys.ts";

/** Envelope stored in KV: the value and when it was fetched. */
const EnvelopeSchema = z.object({ fetchedAt: z.number(), value: z.unknown() });

/** Reads a cached value; a missing, expired or malformed entry reads as `null`. */
export async function readCache<S extends z.ZodType>(
  kv: KVNamespace,
  key: string,
  schema: S,
): Promise<{ fetchedAt: number; value: z.output<S> } | null> {
  const raw = await kv.get(key, "json");
  if (raw === null) return null;
  const outer = EnvelopeSchema.safeParse(raw);
  if (!outer.success) return null;
  const inner = schema.safeParse(outer.data.value);
  return inner.success ? { fetchedAt: outer.data.fetchedAt, value: inner.data } : null;
}

/** Writes a value with a TTL (raised to KV's 60 s minimum). */
export async function writeCache(
  kv: KVNamespace,
  key: string,
  value: unknown,
  ttlSeconds: number,
  now: number = Date.now(),
): Promise<void> {
  await kv.put(key, JSON.stringify({ fetchedAt: now, value }), {
    expirationTtl: Math.max(KV_MIN_TTL_SECONDS, ttlSeconds),
  });
}

/** Drops a cached value. */
export async function deleteCache(kv: KVNamespace, key: string): Promise<void> {
  await kv.delete(key);
}

/** Cache-aside: the cached value, else `load()` stored under `key` for `ttlSeconds`. */
export async function cached<S extends z.ZodType>(
  kv: KVNamespace,
  key: string,
  ttlSeconds: number,
  schema: S,
  load: () => Promise<z.input<S>>,
): Promise<z.output<S>> {
  const hit = await readCache(kv, key, schema);
  if (hit) return hit.value;
  const fresh = await load();
  await writeCache(kv, key, fresh, ttlSeconds);
  return schema.parse(fresh);
}
