/** Types shared by the gate's client side (src/gate/client.ts) and its Durable Object. */

/** Priority lanes, highest first: live changes, then reconciliation re-scans, then backfill. */
export type Lane = "live" | "reconcile" | "backfill";

/** The budget of one account: a burst window, an optional daily cap and a concurrency cap. */
export type GateLimits = {
  burst: { max: number; intervalMs: number };
  daily?: number;
  concurrency: number;
};

/** The answer to `acquire`: go now with this permit, or ask again after `retryAfterMs`. */
export type PermitResult = { ok: true; permitId: string } | { ok: false; retryAfterMs: number; reason: string };

/** What a caller reports after a permitted call (`status` 0 = no response: network failure). */
export type ReportedResult = { status: number; headers: Record<string, string> };

/** Usage of one account's budget, for the console. Times are epoch milliseconds. */
export type GateUsage = {
  burst: { used: number; max: number | null; intervalMs: number | null };
  daily: { day: string; used: number; limit: number | null; remaining: number | null };
  /** Calls and 429 answers per hour (hour = epoch ms of the hour's start), last 48 hours. */
  hourly: Array<{ hour: number; calls: number; rateLimited: number }>;
  rateLimited24h: number;
  inflight: number;
  pausedUntil: Partial<Record<Lane, number>>;
};
