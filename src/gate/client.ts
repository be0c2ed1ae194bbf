/**
 * The only module that touches the `GATE` Durable Object namespace. Callers get a `Gate` per
 * account (`gateFor(env, "hl", locationId)` / `gateFor(env, "4d", workspaceId)`) and usually go
 * through `gatedFetch`, which acquires a permit, makes the call, reports the answer and frees the
 * concurrency slot even when the call throws.
 *
 * Why callers are told "retry after N ms" instead of being held: a Worker invocation should not
 * sleep for seconds on a busy budget. Short waits (≤ `maxWaitMs`) happen in-process; longer ones
 * throw `RateLimitedError`, whose `retryAfterMs` a queue consumer turns into `retry({delaySeconds})`.
 */
import { AppError } from "../lib/errors.ts";
import type { AccountGate } from "./gate.ts";
import type { GateLimits, GateUsage, Lane, PermitResult, ReportedResult } from "./types.ts";

export type { GateLimits, GateUsage, Lane, PermitResult, ReportedResult } from "./types.ts";

/** Kinds of gate: a HighLevel location (`hl`), a 4Degrees workspace (`4d`), the health probe. */
export type GateKind = "hl" | "4d" | "health";

/**
 * HighLevel's published limits per Marketplace app per location: 100 requests / 10 s and
 * 200,000 / day (highlevel-api.md "Rate limits"). Concurrency is our own cap.
 */
export const HIGHLEVEL_LIMITS: GateLimits = {
  burst: { max: 100, intervalMs: 10_000 },
  daily: 200_000,
  concurrency: 20,
};

/**
 * Limits with time running `scale` times faster (the window shortened, the counts kept), for a
 * sandbox whose limits are time-scaled the same way. `scale` 1 returns `limits` unchanged.
 */
export function timeScaledLimits(limits: GateLimits, scale: number): GateLimits {
  if (scale === 1) return limits;
  return {
    ...limits,
    burst: { max: limits.burst.max, intervalMs: Math.max(1, Math.round(limits.burst.intervalMs / scale)) },
  };
}

/** Default 4Degrees budget: 10 requests per second (unpublished; override with `fourDegreesLimits`). */
export const FOURDEGREES_LIMITS: GateLimits = { burst: { max: 10, intervalMs: 1_000 }, concurrency: 5 };

/** 4Degrees limits for a configured requests-per-second figure. */
export function fourDegreesLimits(perSecond: number, concurrency = FOURDEGREES_LIMITS.concurrency): GateLimits {
  return { burst: { max: Math.max(1, Math.floor(perSecond)), intervalMs: 1_000 }, concurrency };
}

/** One account's gate, as the rest of the Worker sees it. */
export interface Gate {
  /** Asks for a permit: `{ok: true, permitId}` or `{ok: false, retryAfterMs, reason}`. */
  acquire(opts: { lane: Lane; limits: GateLimits }): Promise<PermitResult>;
  /** Reports a permitted call's answer (status 0 = network error); frees the permit's slot. */
  report(permitId: string, result: ReportedResult): Promise<void>;
  /** Calls and 429s per hour, the burst window and the day's remaining budget. */
  usage(): Promise<GateUsage>;
}

/** The Durable Object stub for one account (also used for the HighLevel token methods). */
export function gateStub(env: Pick<Env, "GATE">, kind: GateKind, id: string): DurableObjectStub<AccountGate> {
  return env.GATE.get(env.GATE.idFromName(`${kind}:${id}`));
}

/**
 * The gate that keeps a HighLevel connection's tokens: `location:{id}` lives in the location's
 * gate (`hl:{locationId}`, the same object as its rate budget), `company:{id}` in `hl:company:{id}`.
 */
export function tokenGate(env: Pick<Env, "GATE">, connectionId: string): DurableObjectStub<AccountGate> {
  const locationId = connectionId.startsWith("location:") ? connectionId.slice("location:".length) : null;
  return gateStub(env, "hl", locationId ?? connectionId);
}

/** The rate gate of one account: `hl` + HighLevel locationId, or `4d` + 4Degrees workspace id. */
export function gateFor(env: Env, kind: "hl" | "4d", id: string): Gate {
  const stub = gateStub(env, kind, id);
  return {
    acquire: async (opts) => stub.acquire(opts.lane, opts.limits),
    report: async (permitId, result) => stub.report(permitId, result),
    usage: async () => stub.usage(),
  };
}

/** Thrown when the gate says "not before `retryAfterMs`" and that is longer than the caller waits. */
export class RateLimitedError extends AppError {
  readonly retryAfterMs: number;
  readonly reason: string;

  constructor(retryAfterMs: number, reason: string) {
    super("rate_limited", `Rate budget exhausted, retry in ${retryAfterMs} ms: ${reason}`, {
      headers: { "Retry-After": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
      details: { retryAfterMs, reason },
    });
    this.name = "RateLimitedError";
    this.retryAfterMs = retryAfterMs;
    this.reason = reason;
  }

  /** Seconds for `message.retry({ delaySeconds })` (at least 1). */
  get delaySeconds(): number {
    return Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }
}

/** Options for `gatedFetch`. */
export interface GatedFetchOptions {
  /** Longest in-process wait for a permit; beyond it `RateLimitedError` is thrown. Default 2000. */
  maxWaitMs?: number;
  /** Sleep function (tests). */
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Response headers as a plain record (what `report` carries over RPC). */
export function headersRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/**
 * Acquires a permit (waiting in-process only while the total wait stays ≤ `maxWaitMs`), runs
 * `doFetch`, reports the answer (a throw is reported as status 0 and re-thrown) and returns the
 * response. Throws `RateLimitedError` when the budget frees up later than `maxWaitMs`.
 */
export async function gatedFetch(
  gate: Gate,
  lane: Lane,
  limits: GateLimits,
  doFetch: () => Promise<Response>,
  options: GatedFetchOptions = {},
): Promise<Response> {
  const maxWaitMs = options.maxWaitMs ?? 2_000;
  const sleep = options.sleep ?? defaultSleep;
  let waited = 0;
  let permitId: string;
  for (;;) {
    const permit = await gate.acquire({ lane, limits });
    if (permit.ok) {
      permitId = permit.permitId;
      break;
    }
    if (waited + permit.retryAfterMs > maxWaitMs) throw new RateLimitedError(permit.retryAfterMs, permit.reason);
    await sleep(permit.retryAfterMs);
    waited += permit.retryAfterMs;
  }
  let response: Response;
  try {
    response = await doFetch();
  } catch (err) {
    // The original error matters more than a failed report; the permit expires on its own.
    await gate.report(permitId, { status: 0, headers: {} }).catch(() => undefined);
    throw err;
  }
  await gate.report(permitId, { status: response.status, headers: headersRecord(response.headers) });
  return response;
}
