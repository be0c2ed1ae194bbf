/**
 * The account routing seam (src/store/shards.ts) against two real local D1 databases: the main
 * `DB` and a shard bound as `DB_SHARD_TEST`. Without a shard binding everything is the main
 * database and nothing is queried; a placed account's queue messages run their handlers on the
 * shard's database (found through the directory for webhooks); bad shards answer 400, moving an
 * account whose data exists elsewhere answers 409.
 */
import { applyD1Migrations, createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { AppError } from "../../../src/lib/errors.ts";
import { consumeBatch, type Handlers } from "../../../src/queue/consumer.ts";
import { createAccount } from "../../../src/store/accounts.ts";
import { d1MeterTotals, meterDatabase } from "../../../src/store/d1-meter.ts";
import {
  accountDatabase,
  assignShard,
  configuredShards,
  forgetRoutes,
  MAIN_SHARD,
  placeAccount,
  shardBinding,
  shardLoads,
  shardOf,
} from "../../../src/store/shards.ts";

const sharded = (): Env => ({ ...env, DB_SHARD_TEST: env.SHARD_TEST_DB }) as Env;
const uid = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "none";
  } catch (err) {
    return err instanceof AppError ? err.code : String(err);
  }
}

beforeAll(async () => {
  await applyD1Migrations(env.SHARD_TEST_DB, env.TEST_MIGRATIONS);
  for (const db of [env.DB, env.SHARD_TEST_DB])
    await db.exec("CREATE TABLE IF NOT EXISTS shard_probe (account_id TEXT NOT NULL, message TEXT NOT NULL)");
});
beforeEach(() => forgetRoutes());

describe("account shards: the routing table", () => {
  it("happy: without a shard binding every account is the main database, and nothing is queried", async () => {
    const metered = meterDatabase(env.DB);
    const plain = { ...env, DB: metered } as Env;
    const before = d1MeterTotals().queries;
    expect(configuredShards(plain)).toEqual([MAIN_SHARD]);
    expect(await accountDatabase(plain, "anyone")).toBe(metered);
    expect(await placeAccount(plain, "anyone")).toBe(MAIN_SHARD);
    expect(d1MeterTotals().queries).toBe(before);
  });

  it("happy: an account placed on a shard resolves to that database; others stay on main", async () => {
    const e = sharded();
    expect(configuredShards(e)).toEqual([MAIN_SHARD, "test"]);
    expect(shardBinding("test")).toBe("DB_SHARD_TEST");
    const routed = uid("routed");
    await assignShard(e, routed, "test");
    expect(await shardOf(env.DB, routed)).toBe("test");
    expect(await accountDatabase(e, routed)).toBe(env.SHARD_TEST_DB);
    expect(await accountDatabase(e, uid("unrouted"))).toBe(env.DB);
  });

  it("happy: placement picks the shard with the fewest accounts, counting main's unplaced accounts", async () => {
    const e = sharded();
    // Accounts that were never placed live on main and count there.
    const before = await shardLoads(e);
    await createAccount(env.DB, { id: uid("unplaced"), name: "Unplaced", locations: [uid("loc")] });
    expect((await shardLoads(e)).get(MAIN_SHARD)).toBe((before.get(MAIN_SHARD) ?? 0) + 1);

    const fill = async (shard: string, until: (l: Map<string, number>) => boolean) => {
      while (!until(await shardLoads(e))) await assignShard(e, uid(`fill-${shard}`), shard);
    };
    const load = (l: Map<string, number>, s: string) => l.get(s) ?? 0;
    await fill(MAIN_SHARD, (l) => load(l, MAIN_SHARD) > load(l, "test"));
    const a = uid("placed");
    expect(await placeAccount(e, a)).toBe("test");
    expect(await placeAccount(e, a)).toBe("test");
    expect(await shardOf(env.DB, a)).toBe("test");
    await fill("test", (l) => load(l, "test") > load(l, MAIN_SHARD));
    expect(await placeAccount(e, uid("placed"))).toBe(MAIN_SHARD);
    expect(await placeAccount(e, a)).toBe("test");
  });

  it("unhappy: an unknown or malformed shard is 400; moving an account whose data is elsewhere is 409", async () => {
    const e = sharded();
    expect(await code(assignShard(e, uid("x"), "nowhere"))).toBe("bad_request");
    expect(await code(assignShard(e, uid("x"), "Bad-Name"))).toBe("bad_request");
    const lives = uid("lives-on-main");
    await createAccount(env.DB, { id: lives, name: "Lives on main", locations: [uid("loc")] });
    expect(await code(assignShard(e, lives, "test"))).toBe("conflict");
    expect(await shardOf(env.DB, lives)).toBe(MAIN_SHARD);
    // Routed to a shard whose binding is gone: a deployment error, never a silent read of main.
    const orphan = uid("orphan");
    await assignShard(e, orphan, "test");
    forgetRoutes();
    const without = { ...env } as Env;
    const twoShardsButOther = { ...env, DB_SHARD_OTHER: env.SHARD_TEST_DB } as Env;
    expect(await accountDatabase(without, orphan)).toBe(env.DB); // no shard bound at all: main, unread
    expect(await code(accountDatabase(twoShardsButOther, orphan))).toBe("internal");
  });
});

describe("account shards: the queue consumer runs a routed account's handlers on its database", () => {
  it("happy: record jobs and webhooks of a routed account write to the shard, the others to main", async () => {
    const e = sharded();
    const routed = uid("acct-routed");
    const plain = uid("acct-main");
    const routedLocation = uid("loc-routed");
    // The directory (main) knows both accounts' locations; the routed one is placed on the shard.
    await assignShard(e, routed, "test");
    await createAccount(env.DB, { id: routed, name: "Routed", locations: [routedLocation] });
    await createAccount(env.DB, { id: plain, name: "Main", locations: [uid("loc-main")] });

    const write = async (db: D1Database, accountId: string, message: string) =>
      db.prepare("INSERT INTO shard_probe (account_id, message) VALUES (?, ?)").bind(accountId, message).run();
    const handlers: Handlers = {
      "sync.record": async (msg, ctx) => {
        await write(ctx.env.DB, msg.accountId, `record:${msg.recordId}`);
        return { kind: "ack" };
      },
      "highlevel.webhook": async (msg, ctx) => {
        await write(ctx.env.DB, String(msg.locationId), `webhook:${msg.webhookId}`);
        return { kind: "ack" };
      },
    };
    const job = (accountId: string, recordId: string) => ({
      v: 1,
      kind: "sync.record",
      accountId,
      side: "fourdegrees",
      record: "deal",
      recordId,
    });
    const webhookId = uid("wh");
    const bodies = [
      job(routed, "d-1"),
      job(plain, "d-2"),
      {
        v: 1,
        kind: "highlevel.webhook",
        webhookId,
        locationId: routedLocation,
        type: "OpportunityUpdate",
        receivedAt: Date.now(),
        body: { type: "OpportunityUpdate", locationId: routedLocation, id: "opp-1", webhookId },
      },
    ];
    const batch = createMessageBatch<unknown>(
      "sync-events",
      bodies.map((body) => ({ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body })),
    );
    await consumeBatch(batch, e, loadConfig(env), handlers);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toHaveLength(3);

    const rows = async (db: D1Database, accountId: string) =>
      (
        await db.prepare("SELECT message FROM shard_probe WHERE account_id = ? ORDER BY message").bind(accountId).all<{
          message: string;
        }>()
      ).results.map((r) => r.message);
    expect(await rows(env.SHARD_TEST_DB, routed)).toEqual(["record:d-1"]);
    expect(await rows(env.DB, routed)).toEqual([]);
    expect(await rows(env.DB, plain)).toEqual(["record:d-2"]);
    expect(await rows(env.SHARD_TEST_DB, plain)).toEqual([]);
    expect(await rows(env.SHARD_TEST_DB, routedLocation)).toEqual([`webhook:${webhookId}`]);
    expect(await rows(env.DB, routedLocation)).toEqual([]);
  });
});
