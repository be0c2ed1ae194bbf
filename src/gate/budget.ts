/**
 * The rate budget of one account (a HighLevel location or a 4Degrees workspace), as pure logic:
 * no I/O, the clock passed in, so the Durable Object (src/gate/gate.ts) stays a thin shell and the
 * arithmetic is unit-testable.
 *
 * - Burst: a sliding window of granted permits. A sliding window is at least as strict as the
 *   provider's (fixed or sliding) window, and each grant counts for `intervalMs + SAFETY_MS`
 *   because a request reaches the provider a little after its permit was granted: without the
 *   margin, grants at t and t+interval could arrive inside one provider window.
 * - Daily: counted per UTC day, lowered to what the provider's `X-RateLimit-Daily-Remaining` says.
 * - Lanes: `live` may use the whole budget, `reconcile` and `backfill` only a share of it, so live
 *   changes always find headroom (priority without a queue); likewise for the daily budget.
 * - Concurrency: a cap on permits in flight; a permit is released by `report` (or expires).
 * - A 429 pauses the reporting lane and every lower lane for `Retry-After` (else the interval),
 *   and fills the burst window so higher lanes also wait for it to drain.
 */
import type { GateLimits, GateUsage, Lane, PermitResult, ReportedResult } from "./types.ts";

/** Extra time each grant stays in the window (request transit), see the module comment. */
export const SAFETY_MS = 500;
/** A permit never reported (caller crashed) frees its concurrency slot after this long. */
export const STALE_PERMIT_MS = 120_000;
/** Share of the burst window and of the concurrency cap each lane may use. */
export const LANE_SHARE: Readonly<Record<Lane, number>> = { live: 1, reconcile: 0.8, backfill: 0.5 };
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
  private grants: number[] = [];
  private readonly inflight = new Map<string, Permit>();
  private snapshotState: BudgetSnapshot;
  private lastLimits: GateLimits | undefined;

  constructor(snapshot?: BudgetSnapshot | null) {
    this.snapshotState = snapshot ?? { day: "", dailyUsed: 0, dailyLimit: null, dailyRemaining: null, pausedUntil: {}, hourly: [] };
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
    const horizon = now - intervalMs - SAFETY_MS;
    let drop = 0;
    while (drop < this.grants.length && (this.grants[drop] ?? 0) <= horizon) drop++;
    if (drop) this.grants = this.grants.slice(drop);
    for (const [id, permit] of this.inflight) if (now - permit.grantedAt > STALE_PERMIT_MS) this.inflight.delete(id);
  }

  /** Asks for one request permit in `lane`. Synchronous so the DO hands permits out atomically. */
  acquire(lane: Lane, limits: GateLimits, now: number, newId: () => string = () => crypto.randomUUID()): PermitResult {
    this.lastLimits = limits;
    this.rollDay(now);
    const { max, intervalMs } = limits.burst;
    this.prune(now, intervalMs);
    const share = LANE_SHARE[lane];

    const paused = this.snapshotState.pausedUntil[lane];
    if (paused !== undefined && paused > now) return { ok: false, retryAfterMs: paused - now, reason: `lane ${lane} paused after a 429` };

    const burstCap = Math.max(1, Math.floor(max * share));
    if (this.grants.length >= burstCap) {
      // The grant whose expiry brings the window below the cap.
      const oldest = this.grants[this.grants.length - burstCap] ?? now;
      return { ok: false, retryAfterMs: Math.max(1, oldest + intervalMs + SAFETY_MS - now), reason: `burst budget for lane ${lane} spent (${this.grants.length}/${max} per ${intervalMs} ms)` };
    }

    if (limits.daily !== undefined) {
      const remaining = this.dailyRemaining(limits.daily);
      const reserve = Math.floor(limits.daily * (1 - DAILY_SHARE[lane]));
      if (remaining <= reserve) return { ok: false, retryAfterMs: msToNextUtcDay(now), reason: `daily budget for lane ${lane} spent (${remaining} left, ${reserve} reserved for higher lanes)` };
    }

    const concurrencyCap = Math.max(1, Math.floor(limits.concurrency * share));
    if (this.inflight.size >= concurrencyCap) return { ok: false, retryAfterMs: CONCURRENCY_RETRY_MS, reason: `concurrency cap for lane ${lane} reached (${this.inflight.size} in flight)` };

    const permitId = newId();
    this.grants.push(now);
    this.inflight.set(permitId, { lane, grantedAt: now, intervalMs });
    this.snapshotState.dailyUsed++;
    if (this.snapshotState.dailyRemaining !== null) this.snapshotState.dailyRemaining = Math.max(0, this.snapshotState.dailyRemaining - 1);
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
      while (this.grants.length < used) this.grants.push(now);
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
      while (this.grants.length < fill) this.grants.push(now);
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
    const hourly = this.snapshotState.hourly.filter((h) => h.hour > now - KEEP_HOURS * HOUR_MS).sort((a, b) => a.hour - b.hour);
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
