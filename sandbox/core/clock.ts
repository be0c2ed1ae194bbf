/**
 * Sandbox time. Everything time-dependent in the sandbox (token expiry, rate windows, webhook
 * timestamps and retry delays) reads this clock, so tests can move time and benchmarks can
 * scale it.
 */
export interface Clock {
  /** Milliseconds since the epoch, in sandbox time. */
  now(): number;
}

/** A clock that can be advanced by hand (tests) on top of real time, or frozen. */
export class SandboxClock implements Clock {
  #offsetMs = 0;
  #frozenAt: number | null = null;

  now(): number {
    return (this.#frozenAt ?? Date.now()) + this.#offsetMs;
  }

  /** Moves sandbox time forward (tokens expire, rate windows roll, webhook ages grow). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError("advance(ms) needs a non-negative number");
    this.#offsetMs += ms;
  }

  /** Stops real time from flowing (only `advance` moves it) — or resumes it with `freeze(false)`. */
  freeze(frozen = true): void {
    if (frozen && this.#frozenAt === null) this.#frozenAt = Date.now();
    if (!frozen && this.#frozenAt !== null) {
      this.#offsetMs -= Date.now() - this.#frozenAt;
      this.#frozenAt = null;
    }
  }

  reset(): void {
    this.#offsetMs = 0;
    this.#frozenAt = null;
  }
}
