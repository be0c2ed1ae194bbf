import { describe, expect, it } from "vitest";
import {
  LANE_RESERVE,
  PACE_SLICES,
  RateBudget,
  laneCap,
  parseRetryAfter,
  transitMarginMs,
} from "../../../src/gate/budget.ts";
import { HIGHLEVEL_LIMITS, timeScaledLimits } from "../../../src/gate/client.ts";
import type { GateLimits } from "../../../src/gate/types.ts";

const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);
let n = 0;
const id = () => `p${++n}`;
const wide: GateLimits = { ...HIGHLEVEL_LIMITS, concurrency: 1000 };
/** The transit margin at HighLevel's real 10 s window. */
const SAFETY_MS = transitMarginMs(10_000);

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

  it("security: a call answered late holds its window slot from its answer, so a delayed call cannot land in a provider window with a full burst", () => {
    const b = new RateBudget();
    const permits = grantMany(b, 100, "live", T0);
    expect(permits).toHaveLength(100);
    // 99 answered at once; one was delayed on its way and answered 4 s later.
    for (const p of permits.slice(0, 99)) b.report(p, { status: 200, headers: {} }, T0);
    b.report(permits[99]!, { status: 200, headers: {} }, T0 + 4_000);
    // When the window of the first 99 has drained, the delayed call still counts: 99 more, not 100.
    const later = T0 + 10_000 + SAFETY_MS + 1;
    expect(grantMany(b, 150, "live", later)).toHaveLength(99);
    // …and its slot frees one interval (plus the margin) after its answer.
    expect(b.acquire("live", wide, T0 + 4_000 + 10_000 + SAFETY_MS + 1, id).ok).toBe(true);
  });

  it("happy: lanes are priorities with a small reserve: backfill fills all but 2, reconcile all but 1, live the rest", () => {
    const b = new RateBudget();
    const slice = Math.floor((10_000 + SAFETY_MS) / PACE_SLICES);
    // Backfill alone, asking again each slice (it is paced), stops at its cap within one window.
    let backfill = 0;
    for (let s = 0; s < PACE_SLICES; s++) backfill += grantMany(b, 100, "backfill", T0 + s * slice).length;
    expect(backfill).toBe(98);
    const at = T0 + PACE_SLICES * slice - 1;
    expect(b.acquire("backfill", wide, at, id)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("reserved for higher lanes"),
    });
    expect(grantMany(b, 100, "reconcile", at)).toHaveLength(1);
    expect(grantMany(b, 100, "live", at)).toHaveLength(1);
    expect(laneCap(100, "live")).toBe(100);
    expect(LANE_RESERVE.live).toBe(0);
  });

  it("happy: a lower lane is paced (no burst that then waits seconds); live is not", () => {
    const b = new RateBudget();
    const first = grantMany(b, 100, "backfill", T0);
    expect(first).toHaveLength(Math.ceil(98 / PACE_SLICES));
    const paced = b.acquire("backfill", wide, T0 + 1, id);
    expect(paced).toMatchObject({ ok: false, reason: expect.stringContaining("paced") });
    // The wait is one slice at most: well under a caller's in-process wait (2 s), never a requeue.
    if (!paced.ok) expect(paced.retryAfterMs).toBeLessThanOrEqual(Math.floor((10_000 + SAFETY_MS) / PACE_SLICES));
    expect(grantMany(b, 100, "live", T0 + 1)).toHaveLength(100 - first.length);
  });

  it("happy: the transit margin is a fraction of the interval, so it shrinks with time-scaled limits", () => {
    const scaled = { ...timeScaledLimits(HIGHLEVEL_LIMITS, 10), concurrency: 1000 };
    const margin = transitMarginMs(1_000);
    expect(margin).toBeLessThan(transitMarginMs(10_000));
    const b = new RateBudget();
    expect(grantMany(b, 150, "live", T0, scaled)).toHaveLength(100);
    expect(b.acquire("live", scaled, T0 + 1_000 + margin - 1, id)).toMatchObject({ ok: false, retryAfterMs: 1 });
    expect(b.acquire("live", scaled, T0 + 1_000 + margin + 1, id).ok).toBe(true);
  });

  it("happy: a sequential backfill sustains ≥ 0.95 of the allowed rate, no provider window ever over its limit, and a live call meanwhile never waits", () => {
    // Simulated time: HighLevel's fixed 10 s window (as the sandbox counts), requests arriving
    // up to `transit` ms after their permit; the backfill asks again after each refusal's wait.
    const b = new RateBudget();
    const transit = SAFETY_MS - 1;
    const perWindow = new Map<number, number>();
    const arrive = (t: number) =>
      perWindow.set(Math.floor(t / 10_000), (perWindow.get(Math.floor(t / 10_000)) ?? 0) + 1);
    let now = T0 + 123;
    const end = now + 120_000;
    let calls = 0;
    let liveWaits = 0;
    let nextLive = now + 5_000;
    for (let step = 0; step < 100_000 && now < end; step++) {
      if (now >= nextLive) {
        const live = b.acquire("live", wide, now, id);
        if (!live.ok) liveWaits++;
        else {
          b.report(live.permitId, { status: 200, headers: {} }, now + 5);
          arrive(now + (step % 2 ? transit : 0));
          calls++;
        }
        nextLive += 7_000;
      }
      const r = b.acquire("backfill", wide, now, id);
      if (!r.ok) {
        expect(r.retryAfterMs).toBeLessThanOrEqual(2_000);
        now += r.retryAfterMs;
        continue;
      }
      arrive(now + (step % 3 === 0 ? transit : 0));
      b.report(r.permitId, { status: 200, headers: {} }, now + 5);
      calls++;
      now += 5; // the caller's own work between calls
    }
    const allowed = (120_000 / 10_000) * 100;
    expect(calls / allowed).toBeGreaterThanOrEqual(0.95);
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(100);
    expect(liveWaits).toBe(0);
  });

  it("happy: the concurrency cap frees a slot when a permit is reported", () => {
    const b = new RateBudget();
    const limits: GateLimits = { burst: { max: 100, intervalMs: 10_000 }, concurrency: 2 };
    const [a] = grantMany(b, 5, "live", T0, limits);
    expect(b.acquire("live", limits, T0, id)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("concurrency"),
    });
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
    b.report(
      p!,
      {
        status: 200,
        headers: {
          "x-ratelimit-max": "100",
          "x-ratelimit-remaining": "5",
          "x-ratelimit-interval-milliseconds": "10000",
        },
      },
      T0 + 1,
    );
    expect(grantMany(b, 100, "live", T0 + 2)).toHaveLength(5);
  });

  it("happy: daily remaining from headers stops backfill first and is charted", () => {
    const b = new RateBudget();
    const [p] = grantMany(b, 1, "live", T0);
    b.report(
      p!,
      { status: 200, headers: { "x-ratelimit-daily-remaining": "30000", "x-ratelimit-limit-daily": "200000" } },
      T0 + 1,
    );
    expect(b.acquire("backfill", wide, T0 + 2, id)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("daily"),
    });
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
