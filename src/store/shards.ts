/**
 * Which D1 database holds an account's data: the routing seam of "a database per tenant group"
 * (docs/scaling.md). One D1 database runs its statements one at a time, so past its ceiling the
 * accounts are spread over several databases, each bound to the Worker as `DB_SHARD_<NAME>` next to
 * the main `DB`. The routing table `account_shards` lives in the main database (the directory):
 * an account without a row lives in the main database. With no `DB_SHARD_*` binding (today's
 * deployment) every lookup answers the main database without a query.
 *
 * A shard holds the full schema (every migration applied to it). An account is placed before its
 * data exists; moving an account whose data is already in another database is refused (409): the
 * copy is not built yet (docs/scaling.md "Plan").
 */
import { AppError } from "../lib/errors.ts";

/** The shard name of the main database (the `DB` binding). */
export const MAIN_SHARD = "main";
const BINDING_PREFIX = "DB_SHARD_";
const SHARD_NAME = /^[a-z0-9_]{1,32}$/;
/** How long an isolate trusts a routing row it read (a placement is written before the account has data). */
export const ROUTE_CACHE_MS = 60_000;
const ROUTE_CACHE_MAX = 10_000;

/** The binding a shard's database is reached through: `DB` for main, else `DB_SHARD_<NAME>`. */
export function shardBinding(shard: string): string {
  if (shard === MAIN_SHARD) return "DB";
  if (!SHARD_NAME.test(shard))
    throw new AppError("bad_request", `a shard name is 1–32 of a-z, 0-9 and _ (got ${JSON.stringify(shard)})`);
  return `${BINDING_PREFIX}${shard.toUpperCase()}`;
}

function isDatabase(value: unknown): value is D1Database {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof Reflect.get(value, "prepare") === "function" &&
    typeof Reflect.get(value, "batch") === "function"
  );
}

/** The database of `shard`, or null when the Worker has no such binding. */
export function shardDatabase(env: Env, shard: string): D1Database | null {
  if (shard === MAIN_SHARD) return env.DB;
  const value: unknown = Reflect.get(env, shardBinding(shard));
  return isDatabase(value) ? value : null;
}

/** Every shard this Worker can reach: main first, then each `DB_SHARD_*` binding's name. */
export function configuredShards(env: Env): string[] {
  const names = Object.keys(env)
    .filter((key) => key.startsWith(BINDING_PREFIX) && isDatabase(Reflect.get(env, key)))
    .map((key) => key.slice(BINDING_PREFIX.length).toLowerCase())
    .filter((name) => SHARD_NAME.test(name) && name !== MAIN_SHARD)
    .sort();
  return [MAIN_SHARD, ...names];
}

const routes = new Map<string, { shard: string; until: number }>();

/** Forgets this isolate's routing rows (tests; a placement made through `assignShard` forgets its own). */
export function forgetRoutes(): void {
  routes.clear();
}

/** The shard an account is routed to (main without a row), read from the directory `db`. */
export async function shardOf(db: D1Database, accountId: string): Promise<string> {
  const row = await db
    .prepare("SELECT shard FROM account_shards WHERE account_id = ?")
    .bind(accountId)
    .first<{ shard: string }>();
  return row?.shard ?? MAIN_SHARD;
}

/**
 * The database that holds `accountId`'s data. Answers `env.DB` at once when no shard is bound;
 * otherwise reads the routing row (cached `ROUTE_CACHE_MS` per isolate). A row naming a shard whose
 * binding is gone is a deployment error: it throws rather than read the wrong database.
 */
export async function accountDatabase(env: Env, accountId: string): Promise<D1Database> {
  if (configuredShards(env).length === 1) return env.DB;
  const now = Date.now();
  let hit = routes.get(accountId);
  if (!hit || hit.until <= now) {
    hit = { shard: await shardOf(env.DB, accountId), until: now + ROUTE_CACHE_MS };
    if (routes.size >= ROUTE_CACHE_MAX) routes.clear();
    routes.set(accountId, hit);
  }
  const db = shardDatabase(env, hit.shard);
  if (!db)
    throw new AppError(
      "internal",
      `account ${accountId} is routed to shard "${hit.shard}" but the Worker has no ${shardBinding(hit.shard)} binding`,
    );
  return db;
}

/**
 * How many accounts each configured shard holds: a shard's routing rows; for main also every
 * account of the main database without a row (the accounts that were never placed).
 */
export async function shardLoads(env: Env): Promise<Map<string, number>> {
  const loads = new Map(configuredShards(env).map((s) => [s, 0]));
  const [routed, main] = await env.DB.batch<{ shard: string; n: number }>([
    env.DB.prepare("SELECT shard, COUNT(*) AS n FROM account_shards WHERE shard <> ? GROUP BY shard").bind(MAIN_SHARD),
    env.DB.prepare(
      `SELECT ? AS shard, COUNT(*) AS n FROM (
         SELECT a.id FROM accounts a LEFT JOIN account_shards s ON s.account_id = a.id
         WHERE s.shard IS NULL OR s.shard = ?
         UNION SELECT account_id FROM account_shards WHERE shard = ?)`,
    ).bind(MAIN_SHARD, MAIN_SHARD, MAIN_SHARD),
  ]);
  for (const r of [...(routed?.results ?? []), ...(main?.results ?? [])])
    if (loads.has(r.shard)) loads.set(r.shard, r.n);
  return loads;
}

/**
 * Routes `accountId` to `shard`. 400 for a shard the Worker has no binding for; 409 when the
 * account's data already lives in another database (moving it would hide that data).
 */
export async function assignShard(env: Env, accountId: string, shard: string): Promise<void> {
  const target = shardDatabase(env, shard);
  if (!target)
    throw new AppError("bad_request", `no shard "${shard}": the Worker has no ${shardBinding(shard)} D1 binding`, {
      details: { configured: configuredShards(env) },
    });
  const current = await shardOf(env.DB, accountId);
  if (current !== shard) {
    const from = shardDatabase(env, current);
    const has = from ? await from.prepare("SELECT 1 AS x FROM accounts WHERE id = ?").bind(accountId).first() : null;
    if (has)
      throw new AppError(
        "conflict",
        `account ${accountId}'s data is in shard "${current}": moving it to "${shard}" is not supported yet`,
      );
  }
  await env.DB.prepare(
    `INSERT INTO account_shards (account_id, shard, assigned_at) VALUES (?, ?, ?)
     ON CONFLICT (account_id) DO UPDATE SET shard = excluded.shard, assigned_at = excluded.assigned_at`,
  )
    .bind(accountId, shard, Date.now())
    .run();
  routes.delete(accountId);
}

/**
 * Places a new account on the configured shard with the fewest accounts (ties: the first in
 * `configuredShards` order, main first) and answers it; an account already routed keeps its shard.
 * With no shard bound it writes nothing and answers main.
 */
export async function placeAccount(env: Env, accountId: string): Promise<string> {
  const shards = configuredShards(env);
  if (shards.length === 1) return MAIN_SHARD;
  const existing = await env.DB.prepare("SELECT shard FROM account_shards WHERE account_id = ?")
    .bind(accountId)
    .first<{ shard: string }>();
  if (existing) return existing.shard;
  const loads = await shardLoads(env);
  let best = MAIN_SHARD;
  for (const s of shards) if ((loads.get(s) ?? 0) < (loads.get(best) ?? 0)) best = s;
  await assignShard(env, accountId, best);
  return best;
}
