/**
 * Fixed-window rate counters per key (HighLevel: per app per location; 4Degrees: per API key),
 * with a burst window and an optional daily window. Time comes from the sandbox clock, so a
 * benchmark can shrink `intervalMs` (time-scaled limits) and tests can roll windows by hand.
 */
import type { Clock } from "./clock.ts";

export interface RateLimitSettings {
  /** Requests allowed per burst window. */
  max: number;
  /** Burst window length. */
  intervalMs: number;
  /** Requests allowed per day (UTC day in sandbox time); `null` for none. */
  daily: number | null;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  intervalMs: number;
  /** Milliseconds until the burst window resets. */
  resetInMs: number;
  dailyLimit: number | null;
  dailyRemaining: number | null;
}

interface Counter {
  windowStart: number;
  count: number;
  day: number;
  dayCount: number;
}

const DAY_MS = 86_400_000;

export class RateLimiter {
  #counters = new Map<string, Counter>();
  settings: RateLimitSettings;
  readonly #clock: Clock;

  constructor(clock: Clock, settings: RateLimitSettings) {
    this.#clock = clock;
    this.settings = settings;
  }

  /** Counts one request for `key` and says whether it is within the limits. */
  take(key: string): RateDecision {
    const now = this.#clock.now();
    const { max, intervalMs, daily } = this.settings;
    const day = Math.floor(now / DAY_MS);
    let c = this.#counters.get(key);
    if (!c) {
      c = { windowStart: now, count: 0, day, dayCount: 0 };
      this.#counters.set(key, c);
    }
    if (now - c.windowStart >= intervalMs) {
      c.windowStart = now - ((now - c.windowStart) % intervalMs);
      c.count = 0;
    }
    if (c.day !== day) {
      c.day = day;
      c.dayCount = 0;
    }
    const overBurst = c.count >= max;
    const overDaily = daily !== null && c.dayCount >= daily;
    const allowed = !overBurst && !overDaily;
    if (allowed) {
      c.count++;
      c.dayCount++;
    }
    return {
      allowed,
      limit: max,
      remaining: Math.max(0, max - c.count),
      intervalMs,
      resetInMs: Math.max(0, c.windowStart + intervalMs - now),
      dailyLimit: daily,
      dailyRemaining: daily === null ? null : Math.max(0, daily - c.dayCount),
    };
  }

  reset(): void {
    this.#counters.clear();
  }
}
