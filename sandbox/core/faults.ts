/**
 * Seeded fault injection shared by both sandboxes: API errors, spurious 429s, latency, timeouts,
 * and dropped / duplicated / reordered webhook deliveries, plus scripted "fail the next N calls"
 * rules for precise tests. Every random choice comes from the fault seed, so a run replays.
 */
import { z } from "zod";
import { SeededRandom } from "./random.ts";

export const FaultSettingsSchema = z
  .object({
    seed: z.number().int().nonnegative().default(1),
    /** Probability that an API request answers a 5xx. */
    errorRate: z.number().min(0).max(1).default(0),
    errorStatuses: z.array(z.number().int().min(500).max(599)).min(1).default([500, 502, 503]),
    /** Probability of a 429 even under the limit (as a provider under load does). */
    rateLimitRate: z.number().min(0).max(1).default(0),
    /** Extra latency added to every API request, uniformly in [min, max] ms. */
    latencyMs: z.tuple([z.number().int().min(0), z.number().int().min(0)]).default([0, 0]),
    /** Probability that a request hangs for `timeoutMs` and then fails with 504. */
    timeoutRate: z.number().min(0).max(1).default(0),
    timeoutMs: z.number().int().min(0).max(600_000).default(30_000),
    /** Webhook delivery faults. */
    webhookDropRate: z.number().min(0).max(1).default(0),
    webhookDuplicateRate: z.number().min(0).max(1).default(0),
    webhookReorderRate: z.number().min(0).max(1).default(0),
    /** How long a reordered delivery is held back (sandbox ms) so later ones overtake it. */
    webhookReorderDelayMs: z.number().int().min(0).default(250),
  })
  .strict();

export type FaultSettings = z.output<typeof FaultSettingsSchema>;

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

export const ScriptedFaultSchema = z
  .object({
    /** How many matching requests fail. */
    count: z.number().int().min(1).max(10_000).default(1),
    /** Status to answer (e.g. 500, 429, 401); `0` = timeout. */
    status: z.number().int().min(0).max(599),
    method: z.string().toUpperCase().optional(),
    /** A regular expression the request path must match. */
    path: z.string().refine(isRegExp, "path must be a valid regular expression").optional(),
    /** Seconds for a `Retry-After` header on the fault answer. */
    retryAfter: z.number().int().min(0).optional(),
  })
  .strict();

export type ScriptedFault = z.output<typeof ScriptedFaultSchema>;

export type RequestFault =
  | { kind: "none"; delayMs: number }
  | { kind: "error"; status: number; delayMs: number; retryAfter?: number }
  | { kind: "timeout"; delayMs: number };

export interface DeliveryFault {
  drop: boolean;
  duplicate: boolean;
  reorder: boolean;
}

export class FaultInjector {
  settings: FaultSettings;
  #random: SeededRandom;
  #scripted: Array<ScriptedFault & { remaining: number; pattern: RegExp | null }> = [];
  /** Faults injected so far, by kind (readable through the control API). */
  readonly counts = { errors: 0, rateLimited: 0, timeouts: 0, dropped: 0, duplicated: 0, reordered: 0, scripted: 0 };

  constructor(settings: Partial<FaultSettings> = {}) {
    this.settings = FaultSettingsSchema.parse(settings);
    this.#random = new SeededRandom(this.settings.seed);
  }

  /** Replaces the settings (validated) and restarts the fault stream from the seed. */
  configure(settings: Partial<FaultSettings>): FaultSettings {
    this.settings = FaultSettingsSchema.parse({ ...this.settings, ...settings });
    this.#random = new SeededRandom(this.settings.seed);
    return this.settings;
  }

  /** Adds a scripted rule: the next `count` requests matching it fail as told. */
  script(rule: ScriptedFault): void {
    const parsed = ScriptedFaultSchema.parse(rule);
    this.#scripted.push({ ...parsed, remaining: parsed.count, pattern: parsed.path ? new RegExp(parsed.path) : null });
  }

  reset(): void {
    this.#scripted = [];
    for (const k of Object.keys(this.counts) as Array<keyof typeof this.counts>) this.counts[k] = 0;
    this.configure(FaultSettingsSchema.parse({}));
  }

  /** Decides what happens to one API request. */
  forRequest(method: string, path: string): RequestFault {
    const [lo, hi] = this.settings.latencyMs;
    const delayMs = hi > 0 ? this.#random.int(lo, Math.max(lo, hi)) : 0;
    const rule = this.#scripted.find(
      (r) =>
        r.remaining > 0 && (!r.method || r.method === method.toUpperCase()) && (!r.pattern || r.pattern.test(path)),
    );
    if (rule) {
      rule.remaining--;
      this.counts.scripted++;
      if (rule.status === 0) return { kind: "timeout", delayMs: this.settings.timeoutMs };
      return rule.retryAfter === undefined
        ? { kind: "error", status: rule.status, delayMs }
        : { kind: "error", status: rule.status, delayMs, retryAfter: rule.retryAfter };
    }
    if (this.#random.chance(this.settings.timeoutRate)) {
      this.counts.timeouts++;
      return { kind: "timeout", delayMs: this.settings.timeoutMs };
    }
    if (this.#random.chance(this.settings.errorRate)) {
      this.counts.errors++;
      return { kind: "error", status: this.#random.pick(this.settings.errorStatuses), delayMs };
    }
    if (this.#random.chance(this.settings.rateLimitRate)) {
      this.counts.rateLimited++;
      return { kind: "error", status: 429, delayMs, retryAfter: 1 };
    }
    return { kind: "none", delayMs };
  }

  /** Decides what happens to one webhook delivery. */
  forDelivery(): DeliveryFault {
    const drop = this.#random.chance(this.settings.webhookDropRate);
    const duplicate = !drop && this.#random.chance(this.settings.webhookDuplicateRate);
    const reorder = !drop && this.#random.chance(this.settings.webhookReorderRate);
    if (drop) this.counts.dropped++;
    if (duplicate) this.counts.duplicated++;
    if (reorder) this.counts.reordered++;
    return { drop, duplicate, reorder };
  }

  /** A draw from the fault stream (for provider-specific choices that must replay). */
  random(): number {
    return this.#random.next();
  }
}

/** Resolves after `ms` real milliseconds. */
export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
