import { describe, expect, it } from "vitest";
import { RateBudget, SAFETY_MS, parseRetryAfter } from "../../../src/gate/budget.ts";
import { HIGHLEVEL_LIMITS } from "../../../src/gate/client.ts";
import type { GateLimits } from "../../../src/gate/types.ts";

const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);
let n = 0;
const id = () => `p${++n}`;
const wide: GateLimits = { ...HIGHLEVEL_LIMITS, concurrency: 1000 };

function grantMany(b: RateBudget, count: number, lane: "live" | "reconcile" | "backfill", now: number, limits = wide) {
  const permits: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = b.acquire(lane, limits, now, id);
    if (!r.ok) break;
    permits.push(r.permitId);
  }
  return permits;
}

describe("RateBudget", () => {
  it("happy: live gets the full burst of 100 per 10 s, then a wait that ends when the window drains", () => {
    const b = new RateBudget();
    expect(grantMany(b, 150, "live", T0)).toHaveLength(100);
    const denied = b.acquire("live", wide, T0 + 1000, id);
    expect(denied.ok).toBe(false);
    if (!denied.ok) expect(denied.retryAfterMs).toBe(10_000 + SAFETY_MS - 1000);
    expect(b.acquire("live", wide, T0 + 10_000 + SAFETY_MS + 1, id).ok).toBe(true);
  });

  it("happy: lower lanes leave headroom for live", () => {
    const b = new RateBudget();
    expect(grantMany(b, 100, "backfill", T0)).toHaveLength(50);
    expect(grantMany(b, 100, "reconcile", T0)).toHaveLength(30);
    expect(grantMany(b, 100, "live", T0)).toHaveLength(20);
  });

  it("happy: the concurrency cap frees a slot when a permit is reported", () => {
    const b = new RateBudget();
    const limits: GateLimits = { burst: { max: 100, intervalMs: 10_000 }, concurrency: 2 };
    const [a] = grantMany(b, 5, "live", T0, limits);
    expect(b.acquire("live", limits, T0, id)).toMatchObject({ ok: false, reason: expect.stringContaining("concurrency") });
    b.report(a!, { status: 200, headers: {} }, T0 + 5);
    expect(b.acquire("live", limits, T0 + 6, id).ok).toBe(true);
  });

  it("error: a 429 pauses its lane and lower lanes for Retry-After, and fills the window", () => {
    const b = new RateBudget();
    const [p] = grantMany(b, 1, "reconcile", T0);
    b.report(p!, { status: 429, headers: { "Retry-After": "30" } }, T0 + 10);
    expect(b.acquire("reconcile", wide, T0 + 20, id)).toMatchObject({ ok: false, retryAfterMs: 29_990 });
    expect(b.acquire("backfill", wide, T0 + 20, id).ok).toBe(false);
    // live is not paused, but the window is full until it drains
    expect(b.acquire("live", wide, T0 + 20, id).ok).toBe(false);
    expect(b.acquire("live", wide, T0 + 10 + 10_000 + SAFETY_MS + 1, id).ok).toBe(true);
    const usage = b.usage(T0 + 100);
    expect(usage.rateLimited24h).toBe(1);
    expect(usage.pausedUntil.reconcile).toBe(T0 + 30_010);
  });

  it("happy: X-RateLimit-Remaining lower than ours slows us down to match", () => {
    const b = new RateBudget();
    const [p] = grantMany(b, 1, "live", T0);
    b.report(p!, { status: 200, headers: { "x-ratelimit-max": "100", "x-ratelimit-remaining": "5", "x-ratelimit-interval-milliseconds": "10000" } }, T0 + 1);
    expect(grantMany(b, 100, "live", T0 + 2)).toHaveLength(5);
  });

  it("happy: daily remaining from headers stops backfill first and is charted", () => {
    const b = new RateBudget();
    const [p] = grantMany(b, 1, "live", T0);
    b.report(p!, { status: 200, headers: { "x-ratelimit-daily-remaining": "30000", "x-ratelimit-limit-daily": "200000" } }, T0 + 1);
    expect(b.acquire("backfill", wide, T0 + 2, id)).toMatchObject({ ok: false, reason: expect.stringContaining("daily") });
    expect(b.acquire("reconcile", wide, T0 + 2, id).ok).toBe(true);
    const usage = b.usage(T0 + 3);
    expect(usage.daily.remaining).toBe(29_999);
    expect(usage.hourly).toEqual([{ hour: Date.UTC(2026, 10, 29, 12), calls: 1, rateLimited: 0 }]);
  });

  it("happy: the snapshot round-trips the durable state", () => {
    const b = new RateBudget();
    const [p] = grantMany(b, 1, "live", T0);
    b.report(p!, { status: 429, headers: {} }, T0);
    const copy = new RateBudget(b.snapshot());
    expect(copy.acquire("live", wide, T0 + 1, id).ok).toBe(false);
    expect(copy.usage(T0 + 1).rateLimited24h).toBe(1);
  });

  it("happy: Retry-After accepts seconds and HTTP dates", () => {
    expect(parseRetryAfter("2", T0)).toBe(2000);
    expect(parseRetryAfter(new Date(T0 + 5000).toUTCString(), T0)).toBe(5000);
    expect(parseRetryAfter("soon", T0)).toBeUndefined();
  });
});
