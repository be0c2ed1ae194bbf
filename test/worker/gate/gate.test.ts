import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { gateFor, gatedFetch, HIGHLEVEL_LIMITS, RateLimitedError, type GateLimits } from "../../../src/gate/client.ts";

const small: GateLimits = { burst: { max: 3, intervalMs: 60_000 }, concurrency: 10 };

describe("AccountGate over RPC", () => {
  it("happy: gatedFetch runs the call, reports it, and usage counts it", async () => {
    const gate = gateFor(env, "hl", `loc-${crypto.randomUUID()}`);
    const res = await gatedFetch(
      gate,
      "live",
      HIGHLEVEL_LIMITS,
      async () => new Response("ok", { headers: { "X-RateLimit-Remaining": "99", "X-RateLimit-Max": "100" } }),
    );
    expect(await res.text()).toBe("ok");
    const usage = await gate.usage();
    expect(usage.hourly.reduce((n, h) => n + h.calls, 0)).toBe(1);
    expect(usage.inflight).toBe(0);
    expect(usage.burst.max).toBe(100);
  });

  it("error: a long wait throws RateLimitedError carrying retryAfterMs", async () => {
    const gate = gateFor(env, "4d", `ws-${crypto.randomUUID()}`);
    for (let i = 0; i < 3; i++) await gatedFetch(gate, "live", small, async () => new Response("ok"));
    const err = await gatedFetch(gate, "live", small, async () => new Response("never"), { maxWaitMs: 100 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RateLimitedError);
    if (err instanceof RateLimitedError) {
      expect(err.retryAfterMs).toBeGreaterThan(50_000);
      expect(err.delaySeconds).toBeGreaterThan(50);
      expect(err.code).toBe("rate_limited");
    }
  });

  it("error: a throwing call still frees its concurrency slot", async () => {
    const gate = gateFor(env, "hl", `loc-${crypto.randomUUID()}`);
    const one: GateLimits = { burst: { max: 100, intervalMs: 10_000 }, concurrency: 1 };
    await expect(
      gatedFetch(gate, "live", one, async () => {
        throw new TypeError("network down");
      }),
    ).rejects.toThrow("network down");
    expect((await gate.usage()).inflight).toBe(0);
    const res = await gatedFetch(gate, "live", one, async () => new Response("after"), { maxWaitMs: 0 });
    expect(res.status).toBe(200);
  });

  it("happy: a 429 answer pauses the lane in the Durable Object", async () => {
    const gate = gateFor(env, "hl", `loc-${crypto.randomUUID()}`);
    await gatedFetch(
      gate,
      "backfill",
      HIGHLEVEL_LIMITS,
      async () => new Response("slow down", { status: 429, headers: { "Retry-After": "120" } }),
    );
    const denied = await gate.acquire({ lane: "backfill", limits: HIGHLEVEL_LIMITS });
    expect(denied.ok).toBe(false);
    if (!denied.ok) expect(denied.retryAfterMs).toBeGreaterThan(100_000);
    expect((await gate.usage()).rateLimited24h).toBe(1);
  });

  it("happy: accounts do not share a budget", async () => {
    const a = gateFor(env, "4d", `ws-${crypto.randomUUID()}`);
    const b = gateFor(env, "4d", `ws-${crypto.randomUUID()}`);
    for (let i = 0; i < 3; i++) await gatedFetch(a, "live", small, async () => new Response("ok"));
    expect((await a.acquire({ lane: "live", limits: small })).ok).toBe(false);
    expect((await b.acquire({ lane: "live", limits: small })).ok).toBe(true);
  });
});
