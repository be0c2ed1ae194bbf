/**
 * The sync path's configuration cache (src/store/config-cache.ts): off at TTL 0, one D1 load per
 * key within the TTL, a fresh load after it, a failed load not kept, copies a caller cannot change,
 * and an edit through the store seen at once in the isolate that made it.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { createAccount, getAccount, updateAccount } from "../../../src/store/accounts.ts";
import { cachedConfig, forgetConfig, setConfigCacheTtl } from "../../../src/store/config-cache.ts";

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
    const read = () => cachedConfig("account:cache-acc", () => getAccount(env.DB, "cache-acc"));
    expect((await read())?.status).toBe("active");
    await env.DB.prepare("UPDATE accounts SET name = 'edited behind the store' WHERE id = 'cache-acc'").run();
    expect((await read())?.name).toBe("Cache Co"); // a direct SQL edit waits for the TTL
    await updateAccount(env.DB, "cache-acc", { status: "paused" });
    const after = await read();
    expect(after?.status).toBe("paused");
    expect(after?.name).toBe("edited behind the store");
    forgetConfig();
  });
});
