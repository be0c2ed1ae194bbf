/**
 * An in-isolate, short-lived copy of per-account configuration that every synced change reads:
 * the account (settings and mapping), its location → account and workspace → account routes, its
 * 4Degrees key row, its automation and notification rules. D1 bills each row read, and a change
 * reads these several times (webhook triage, the record job, notifications, automations) though
 * they change only when an operator edits them.
 *
 * Why a TTL and not only invalidation: an edit made through another isolate is seen here within
 * the TTL (`CONFIG_CACHE_SECONDS`, set per invocation by src/index.ts; 0 turns the cache off, which
 * the tests' bindings do). Every writer of these tables in this isolate calls `forgetConfig()`, so
 * an edit is seen at once where it was made. A failed load is not kept. Writers forget before their
 * statements run, so for `WRITE_QUIET_MS` after a forget nothing is kept: a load that read the rows
 * between the forget and the write's commit would otherwise keep the old value for a whole TTL.
 *
 * `cachedConfigSet` keeps every entry one load returned (src/store/account-config.ts reads an
 * account's whole configuration in one statement); a forget during that load keeps none of them.
 */

let ttlMs = 0;
const MAX_ENTRIES = 2_000;
const entries = new Map<string, { until: number; value: Promise<unknown> }>();
/** How long after a forget loads go to D1 uncached: longer than any one writer's statements take. */
export const WRITE_QUIET_MS = 2_000;
let quietUntil = 0;
/** Bumped by every forget: a load that began before one must not keep what it read. */
let generation = 0;

/** Sets the TTL (ms) from the invocation's config; 0 switches the cache off and empties it. */
export function setConfigCacheTtl(ms: number): void {
  ttlMs = ms;
  if (ms <= 0) entries.clear();
}

/** `load()` at most once per `key` per TTL; copies are handed out so a caller cannot change the cached value. */
export async function cachedConfig<T>(key: string, load: () => Promise<T>, now = Date.now()): Promise<T> {
  if (ttlMs <= 0 || now < quietUntil) return load();
  const hit = entries.get(key);
  if (hit && hit.until > now) return structuredClone((await hit.value) as T);
  const value = load();
  keep(key, value, now);
  value.catch(() => {
    if (entries.get(key)?.value === value) entries.delete(key);
  });
  return structuredClone(await value);
}

function keep(key: string, value: Promise<unknown>, now: number): void {
  if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value ?? "");
  entries.set(key, { until: now + ttlMs, value });
}

/**
 * Like `cachedConfig`, for a `load()` that answers several keys at once (`key` among them, absent =
 * null): on a miss of `key` the others it returned are kept too, unless they are cached already
 * or a forget came while it loaded.
 */
export async function cachedConfigSet<T>(
  key: string,
  load: () => Promise<ReadonlyMap<string, unknown>>,
  now = Date.now(),
): Promise<T | null> {
  const pick = (all: ReadonlyMap<string, unknown>) => (all.get(key) ?? null) as T | null;
  if (ttlMs <= 0 || now < quietUntil) return pick(await load());
  const hit = entries.get(key);
  if (hit && hit.until > now) return structuredClone((await hit.value) as T | null);
  const started = generation;
  const all = load();
  const value = all.then(pick);
  keep(key, value, now);
  value.catch(() => {
    if (entries.get(key)?.value === value) entries.delete(key);
  });
  const loaded = await all;
  if (generation === started)
    for (const [other, v] of loaded) {
      const cached = entries.get(other);
      if (other !== key && !(cached && cached.until > now)) keep(other, Promise.resolve(v), now);
    }
  return structuredClone(await value);
}

/** Forgets every cached entry (a writer of the cached tables calls it: edits are rare, so all of it). */
export function forgetConfig(now = Date.now()): void {
  quietUntil = now + WRITE_QUIET_MS;
  generation++;
  entries.clear();
}

/** How many forgets this isolate has seen: a caller compares it before and after a request to tell whether it wrote configuration. */
export function configForgets(): number {
  return generation;
}
