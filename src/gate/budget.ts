/**
 * The rate budget of one account (a HighLevel location or a 4Degrees workspace), as pure logic:
 * no I/O, the clock passed in, so the Durable Object (src/gate/gate.ts) stays a thin shell and the
 * arithmetic is unit-testable.
 *
 * - Burst: a sliding window of granted permits. A sliding window is at least as strict as the
 *   provider's (fixed or sliding) window. A request reaches the provider after its permit was
 *   granted, so a grant's slot restarts when its answer is reported (`report`): the provider saw
 *   the call before the answer, so every provider window that counts it ends inside the slot, however
 *   long the call was delayed on its way. That makes the window exact for every reported call; the
 *   small transit margin (`TRANSIT_MARGIN` of the interval, 100 ms at HighLevel's real 10 s) only
 *   covers calls whose answer is never reported (a caller that crashed), until the provider's
 *   `X-RateLimit-Remaining` on the next answer pads the window. The margin is kept small: every point
 *   of it is a point of the allowed rate the backfill cannot use.
 * - Daily: counted per UTC day, lowered to what the provider's `X-RateLimit-Daily-Remaining` says.
 * - Lanes are priorities, not shares: `live` may use the whole budget; `reconcile` and `backfill`
 *   may take a permit while the window has more than a small reserve (`LANE_RESERVE`) left, so a
 *   backfill uses nearly the whole budget when nothing else needs it and live changes still find
 *   headroom at once. Lower lanes are also paced (`PACE_SLICES`): at most their cap / PACE_SLICES
 *   permits per slice of the window, so a backfill spreads its calls instead of spending the window
 *   in one burst and then waiting seconds (its callers only wait in-process for short gaps).
 * - Concurrency: a cap on permits in flight; a permit is released by `report` (or expires).
 * - A 429 pauses the reporting lane and every lower lane for `Retry-After` (else the interval),
 *   and fills the burst window so higher lanes also wait for it to drain.
 */
import type { GateLimits, GateUsage, Lane, PermitResult, ReportedResult } from "./types.ts";

/** Extra time each grant stays in the window (request transit), as a fraction of the interval. */
export const TRANSIT_MARGIN = 0.01;
/** The transit margin of a window of `intervalMs` (≥ 1 ms). */
export function transitMarginMs(intervalMs: number): number {
  return Math.max(1, Math.ceil(intervalMs * TRANSIT_MARGIN));
}
/** A permit never reported (caller crashed) frees its concurrency slot after this long. */
export const STALE_PERMIT_MS = 120_000;
/**
 * Fraction of the burst window and of the concurrency cap a lane must leave free for higher lanes
 * (at least one permit when the fraction is not 0): backfill stops at 98 of HighLevel's 100,
 * reconcile at 99, live uses all 100. Two permits a window are enough for a live change (one read
 * and one write of HighLevel); a third call of it waits only for the window's next expiry, which
 * the backfill, held below 98, cannot take first. Every permit reserved is 1% of the rate a
 * backfill cannot use.
 */
export const LANE_RESERVE: Readonly<Record<Lane, number>> = { live: 0, reconcile: 0.01, backfill: 0.02 };
/** Lower lanes take at most cap / PACE_SLICES permits per 1/PACE_SLICES of the window. */
export const PACE_SLICES = 10;
/** Share of the daily budget each lane may use (the last 5% / 20% are kept for higher lanes). */
export const DAILY_SHARE: Readonly<Record<Lane, number>> = { live: 1, reconcile: 0.95, backfill: 0.8 };
/** Lanes from highest to lowest priority. */
export const LANES: readonly Lane[] = ["live", "reconcile", "backfill"];
const HOUR_MS = 3_600_000;
/** Hourly usage kept for the console chart. */
const KEEP_HOURS = 48;
/** How long a caller blocked only by concurrency is told to wait before asking again. */
const CONCURRENCY_RETRY_MS = 25;

/** The durable part of a budget (the burst window is in memory only: it is 10 s long). */
export interface BudgetSnapshot {
  day: string;
  dailyUsed: number;
  dailyLimit: number | null;
  dailyRemaining: number | null;
  pausedUntil: Partial<Record<Lane, number>>;
  hourly: Array<{ hour: number; calls: number; rateLimited: number }>;
}

/** How many permits of `total` a lane may hold (window or concurrency): all but its reserve, at least 1. */
export function laneCap(total: number, lane: Lane): number {
  const reserve = LANE_RESERVE[lane];
  return Math.max(1, total - (reserve > 0 ? Math.ceil(total * reserve) : 0));
}

interface Grant {
  /** When the grant's window slot starts: the grant, then — once reported — the answer. */
  at: number;
  /** The lane that took it; `null` = padding from the provider's headers or a 429. */
  lane: Lane | null;
  /** The permit, until its answer is reported. */
  permitId?: string;
}

interface Permit {
  lane: Lane;
  grantedAt: number;
  intervalMs: number;
}

function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

function msToNextUtcDay(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) - now;
}

function header(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function intHeader(headers: Record<string, string>, name: string): number | undefined {
  const raw = header(headers, name);
  if (raw === undefined || raw.trim() === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent/garbled. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds * 1000));
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** The per-account budget. Not thread-safe by itself: the Durable Object serialises calls. */
export class RateBudget {
  private grants: Grant[] = [];
  private readonly inflight = new Map<string, Permit>();
  private snapshotState: BudgetSnapshot;
  private lastLimits: GateLimits | undefined;

  constructor(snapshot?: BudgetSnapshot | null) {
    this.snapshotState = snapshot ?? {
      day: "",
      dailyUsed: 0,
      dailyLimit: null,
      dailyRemaining: null,
      pausedUntil: {},
      hourly: [],
    };
  }

  /** The durable state, for the Durable Object to persist after each change. */
  snapshot(): BudgetSnapshot {
    return structuredClone(this.snapshotState);
  }

  private rollDay(now: number): void {
    const day = utcDay(now);
    if (this.snapshotState.day !== day) {
      this.snapshotState.day = day;
      this.snapshotState.dailyUsed = 0;
      this.snapshotState.dailyRemaining = null;
    }
  }

  private prune(now: number, intervalMs: number): void {
    const horizon = now - intervalMs - transitMarginMs(intervalMs);
    let drop = 0;
    while (drop < this.grants.length && (this.grants[drop]?.at ?? 0) <= horizon) drop++;
    if (drop) this.grants = this.grants.slice(drop);
    for (const [id, permit] of this.inflight) if (now - permit.grantedAt > STALE_PERMIT_MS) this.inflight.delete(id);
  }

  /** Asks for one request permit in `lane`. Synchronous so the DO hands permits out atomically. */
  acquire(lane: Lane, limits: GateLimits, now: number, newId: () => string = () => crypto.randomUUID()): PermitResult {
    this.lastLimits = limits;
    this.rollDay(now);
    const { max, intervalMs } = limits.burst;
    this.prune(now, intervalMs);
    const windowMs = intervalMs + transitMarginMs(intervalMs);

    const paused = this.snapshotState.pausedUntil[lane];
    if (paused !== undefined && paused > now)
      return { ok: false, retryAfterMs: paused - now, reason: `lane ${lane} paused after a 429` };

    const burstCap = laneCap(max, lane);
    if (this.grants.length >= burstCap) {
      // The grant whose expiry brings the window below the cap.
      const oldest = this.grants[this.grants.length - burstCap]?.at ?? now;
      return {
        ok: false,
        retryAfterMs: Math.max(1, oldest + windowMs - now),
        reason: `burst budget for lane ${lane} spent (${this.grants.length}/${max} per ${intervalMs} ms, ${max - burstCap} reserved for higher lanes)`,
      };
    }

    if (lane !== "live") {
      // Pacing: at most perSlice of this lane's grants in the last slice of the window.
      const sliceMs = Math.max(1, Math.floor(windowMs / PACE_SLICES));
      const perSlice = Math.max(1, Math.ceil(burstCap / PACE_SLICES));
      let inSlice = 0;
      let oldestInSlice = now;
      for (let i = this.grants.length - 1; i >= 0; i--) {
        const g = this.grants[i];
        if (!g || g.at <= now - sliceMs) break;
        if (g.lane !== lane) continue;
        inSlice++;
        oldestInSlice = g.at;
      }
      if (inSlice >= perSlice)
        return {
          ok: false,
          retryAfterMs: Math.max(1, oldestInSlice + sliceMs - now),
          reason: `lane ${lane} paced (${inSlice} permits in the last ${sliceMs} ms)`,
        };
    }

    if (limits.daily !== undefined) {
      const remaining = this.dailyRemaining(limits.daily);
      const reserve = Math.floor(limits.daily * (1 - DAILY_SHARE[lane]));
      if (remaining <= reserve)
        return {
          ok: false,
          retryAfterMs: msToNextUtcDay(now),
          reason: `daily budget for lane ${lane} spent (${remaining} left, ${reserve} reserved for higher lanes)`,
        };
    }

    const concurrencyCap = laneCap(limits.concurrency, lane);
    if (this.inflight.size >= concurrencyCap)
      return {
        ok: false,
        retryAfterMs: CONCURRENCY_RETRY_MS,
        reason: `concurrency cap for lane ${lane} reached (${this.inflight.size} in flight)`,
      };

    const permitId = newId();
    this.grants.push({ at: now, lane, permitId });
    this.inflight.set(permitId, { lane, grantedAt: now, intervalMs });
    this.snapshotState.dailyUsed++;
    if (this.snapshotState.dailyRemaining !== null)
      this.snapshotState.dailyRemaining = Math.max(0, this.snapshotState.dailyRemaining - 1);
    return { ok: true, permitId };
  }

  private dailyRemaining(limit: number): number {
    const ours = limit - this.snapshotState.dailyUsed;
    const theirs = this.snapshotState.dailyRemaining;
    return Math.max(0, theirs === null ? ours : Math.min(ours, theirs));
  }

  /**
   * Records the outcome of a permitted call: frees its concurrency slot, counts it per hour and
   * corrects the budget from the provider's `X-RateLimit-*` headers. `status` 0 = network failure.
   */
  report(permitId: string, result: ReportedResult, now: number): void {
    this.rollDay(now);
    const permit = this.inflight.get(permitId);
    this.inflight.delete(permitId);
    // The provider saw the call somewhere between the grant and this answer. Restarting the slot at
    // the answer keeps a call that was delayed on its way (event loop, network) from arriving
    // inside a provider window the gate already thought it had left: any window the provider
    // counts then holds at most `max` calls, whatever the delays, with only the small margin.
    const grant = this.grants.find((g) => g.permitId === permitId);
    if (grant) {
      delete grant.permitId;
      if (now > grant.at) {
        grant.at = now;
        this.grants.sort((a, b) => a.at - b.at);
      }
    }
    const lane = permit?.lane ?? "live";
    const intervalFromHeader = intHeader(result.headers, "x-ratelimit-interval-milliseconds");
    const intervalMs = intervalFromHeader ?? permit?.intervalMs ?? this.lastLimits?.burst.intervalMs ?? 10_000;
    const max = intHeader(result.headers, "x-ratelimit-max") ?? this.lastLimits?.burst.max;

    if (result.status !== 0) this.bumpHour(now, result.status === 429);

    // Keep the window honest: if the provider has seen more calls than we granted (another
    // process, a retry we did not see), pad the window so we slow down to match.
    const remaining = intHeader(result.headers, "x-ratelimit-remaining");
    if (remaining !== undefined && max !== undefined) {
      this.prune(now, intervalMs);
      const used = Math.max(0, max - remaining);
      while (this.grants.length < used) this.grants.push({ at: now, lane: null });
    }
    const dailyRemaining = intHeader(result.headers, "x-ratelimit-daily-remaining");
    if (dailyRemaining !== undefined) this.snapshotState.dailyRemaining = dailyRemaining;
    const dailyLimit = intHeader(result.headers, "x-ratelimit-limit-daily");
    if (dailyLimit !== undefined) this.snapshotState.dailyLimit = dailyLimit;

    if (result.status === 429) {
      const waitMs = parseRetryAfter(header(result.headers, "retry-after"), now) ?? intervalMs;
      const until = now + Math.max(waitMs, 1);
      for (const l of LANES.slice(LANES.indexOf(lane))) {
        this.snapshotState.pausedUntil[l] = Math.max(this.snapshotState.pausedUntil[l] ?? 0, until);
      }
      // Higher lanes are not paused outright, but the window is full until it drains.
      const fill = max ?? this.grants.length;
      while (this.grants.length < fill) this.grants.push({ at: now, lane: null });
    }
  }

  private bumpHour(now: number, rateLimited: boolean): void {
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    const hourly = this.snapshotState.hourly.filter((h) => h.hour > now - KEEP_HOURS * HOUR_MS);
    let bucket = hourly.find((h) => h.hour === hour);
    if (!bucket) {
      bucket = { hour, calls: 0, rateLimited: 0 };
      hourly.push(bucket);
    }
    bucket.calls++;
    if (rateLimited) bucket.rateLimited++;
    this.snapshotState.hourly = hourly;
  }

  /** What the console charts: calls and 429s per hour, the burst window, the day's budget. */
  usage(now: number): GateUsage {
    this.rollDay(now);
    const limits = this.lastLimits;
    if (limits) this.prune(now, limits.burst.intervalMs);
    const dailyLimit = this.snapshotState.dailyLimit ?? limits?.daily ?? null;
    const hourly = this.snapshotState.hourly
      .filter((h) => h.hour > now - KEEP_HOURS * HOUR_MS)
      .sort((a, b) => a.hour - b.hour);
    const pausedUntil: Partial<Record<Lane, number>> = {};
    for (const lane of LANES) {
      const until = this.snapshotState.pausedUntil[lane];
      if (until !== undefined && until > now) pausedUntil[lane] = until;
    }
    return {
      burst: { used: this.grants.length, max: limits?.burst.max ?? null, intervalMs: limits?.burst.intervalMs ?? null },
      daily: {
        day: this.snapshotState.day,
        used: this.snapshotState.dailyUsed,
        limit: dailyLimit,
        remaining: dailyLimit === null ? null : this.dailyRemaining(dailyLimit),
      },
      hourly,
      rateLimited24h: hourly.filter((h) => h.hour > now - 24 * HOUR_MS).reduce((n, h) => n + h.rateLimited, 0),
      inflight: this.inflight.size,
      pausedUntil,
    };
  }
}
