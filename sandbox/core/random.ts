/**
 * Seeded randomness: every random choice the sandbox makes (ids, faults) comes from here, so a
 * failing run replays exactly from its printed seed.
 */
export class SeededRandom {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed || 0x9e3779b9;
  }

  /** mulberry32: a float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick() from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A string of `length` characters from `alphabet`. */
  string(length: number, alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"): string {
    let out = "";
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.next() * alphabet.length)];
    return out;
  }

  /** A v4-shaped UUID (HighLevel stage ids are UUIDs). */
  uuid(): string {
    const hex = this.string(32, "0123456789abcdef");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${"89ab"[this.int(0, 3)]}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }
}

/** Parses a seed given as text (env var, query string); falls back to a time-based one. */
export function parseSeed(raw: string | null | undefined): number {
  const n = raw == null || raw === "" ? NaN : Number(raw);
  return Number.isInteger(n) ? n >>> 0 : Date.now() >>> 0;
}
