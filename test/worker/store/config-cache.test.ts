/**
 * The sync path's configuration cache (src/store/config-cache.ts): off at TTL 0, one D1 load per
 * key within the TTL, a fresh load after it, a failed load not kept, copies a caller cannot change,
 * an edit through the store seen at once in the isolate that made it, and nothing kept from a load
 * that raced a writer.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { createAccount, getAccount, updateAccount } from "../../../src/store/accounts.ts";
import { cachedConfig, forgetConfig, setConfigCacheTtl, WRITE_QUIET_MS } from "../../../src/store/config-cache.ts";

afterEach(() => setConfigCacheTtl(0));

describe("config cache", () => {
  it("happy: off at TTL 0 — every call loads", async () => {
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    await cachedConfig("k-off", load);
    await cachedConfig("k-off", load);
    expect(loads).toBe(2);
  });

  it("happy: one load per key within the TTL, a fresh one after it", async () => {
    setConfigCacheTtl(10_000);
    let loads = 0;
    const load = () => Promise.resolve({ n: ++loads });
    expect(await cachedConfig("k-ttl", load, 1_000)).toEqual({ n: 1 });
    expect(await cachedConfig("k-ttl", load, 10_999)).toEqual({ n: 1 });
    expect(await cachedConfig("k-other", load, 10_999)).toEqual({ n: 2 });
    expect(await cachedConfig("k-ttl", load, 11_000)).toEqual({ n: 3 });
  });

  it("error: a failed load is not kept — the next call loads again", async () => {
    setConfigCacheTtl(10_000);
    let loads = 0;
    const load = () => (++loads === 1 ? Promise.reject(new Error("D1 down")) : Promise.resolve(loads));
    await expect(cachedConfig("k-fail", load)).rejects.toThrow("D1 down");
    expect(await cachedConfig("k-fail", load)).toBe(2);
  });

  it("security: a caller changing its copy does not change what the next caller gets", async () => {
    setConfigCacheTtl(10_000);
    const first = await cachedConfig("k-copy", () => Promise.resolve({ status: "active", tags: ["a"] }));
    first.status = "paused";
    first.tags.push("b");
    expect(await cachedConfig("k-copy", () => Promise.resolve({ status: "x", tags: [] }))).toEqual({
      status: "active",
      tags: ["a"],
    });
  });

  it("happy: an edit through the store is seen at once (the writer forgets the cache)", async () => {
    setConfigCacheTtl(60_000);
    await createAccount(env.DB, { id: "cache-acc", name: "Cache Co", workspaceId: null, locations: [] });
    // Read past the writers' quiet window, where the cache keeps values.
    const read = () =>
      cachedConfig("account:cache-acc", () => getAccount(env.DB, "cache-acc"), Date.now() + WRITE_QUIET_MS + 1);
    expect((await read())?.status).toBe("active");
    await env.DB.prepare("UPDATE accounts SET name = 'edited behind the store' WHERE id = 'cache-acc'").run();
    expect((await read())?.name).toBe("Cache Co"); // a direct SQL edit waits for the TTL
    await updateAccount(env.DB, "cache-acc", { status: "paused" });
    const after = await read();
    expect(after?.status).toBe("paused");
    expect(after?.name).toBe("edited behind the store");
    forgetConfig();
  });

  it("happy: a load that read the rows between a writer's forget and its commit is not kept", async () => {
    setConfigCacheTtl(60_000);
    await createAccount(env.DB, { id: "cache-race", name: "Race Co", workspaceId: null, locations: [] });
    const read = (now: number) => cachedConfig("account:cache-race", () => getAccount(env.DB, "cache-race"), now);
    const t0 = Date.now();
    // The writer forgets first; a reader loads the old row before the write commits.
    forgetConfig(t0);
    expect((await read(t0 + 1))?.status).toBe("active");
    await env.DB.prepare("UPDATE accounts SET status = 'paused' WHERE id = 'cache-race'").run();
    // The old row was not kept: the next read, still in the writer's quiet window, sees the write.
    expect((await read(t0 + 2))?.status).toBe("paused");
    // After the window the cache keeps values again.
    const later = t0 + WRITE_QUIET_MS + 1;
    expect((await read(later))?.status).toBe("paused");
    await env.DB.prepare("UPDATE accounts SET status = 'active' WHERE id = 'cache-race'").run();
    expect((await read(later + 1))?.status).toBe("paused");
    forgetConfig();
  });
});
