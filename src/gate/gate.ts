/**
 * `AccountGate`: one Durable Object per HighLevel location (`hl:{locationId}`) and per 4Degrees
 * workspace (`4d:{workspaceId}`). A single-threaded home for the per-account rate budget and the
 * single-flight OAuth refresh. SQLite-backed, typed RPC.
 *
 * Why a Durable Object: permits must be handed out by one place per account, atomically. The
 * rate methods are synchronous (SQLite storage in a DO is synchronous too), so no two calls
 * interleave inside `acquire` — the DO's input gate plus a synchronous body is the lock.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { RateBudget, type BudgetSnapshot } from "./budget.ts";
import type { GateLimits, GateUsage, Lane, PermitResult, ReportedResult } from "./types.ts";

const SnapshotSchema = z.object({
  day: z.string(),
  dailyUsed: z.number(),
  dailyLimit: z.number().nullable(),
  dailyRemaining: z.number().nullable(),
  pausedUntil: z.object({ live: z.number().optional(), reconcile: z.number().optional(), backfill: z.number().optional() }),
  hourly: z.array(z.object({ hour: z.number(), calls: z.number(), rateLimited: z.number() })),
});

const LaneSchema = z.enum(["live", "reconcile", "backfill"]);
const LimitsSchema = z.object({
  burst: z.object({ max: z.number().int().positive(), intervalMs: z.number().int().positive() }),
  daily: z.number().int().positive().optional(),
  concurrency: z.number().int().positive(),
});

export class AccountGate extends DurableObject<Env> {
  private readonly budget: RateBudget;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS gate_state (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    this.budget = new RateBudget(this.loadSnapshot());
  }

  private loadSnapshot(): BudgetSnapshot | null {
    const row = this.ctx.storage.sql.exec<{ v: string }>("SELECT v FROM gate_state WHERE k = 'budget'").toArray()[0];
    if (!row) return null;
    const parsed = SnapshotSchema.safeParse(JSON.parse(row.v));
    return parsed.success ? parsed.data : null;
  }

  private saveSnapshot(): void {
    this.ctx.storage.sql.exec("INSERT INTO gate_state (k, v) VALUES ('budget', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", JSON.stringify(this.budget.snapshot()));
  }

  /** Liveness probe for `/healthz`: answers the object's clock. */
  async ping(): Promise<number> {
    return Date.now();
  }

  /** Hands out one request permit in `lane`, or says how long to wait. */
  acquire(lane: Lane, limits: GateLimits): PermitResult {
    const result = this.budget.acquire(LaneSchema.parse(lane), LimitsSchema.parse(limits), Date.now());
    return result;
  }

  /** Records a permitted call's answer and persists the budget. */
  report(permitId: string, result: ReportedResult): void {
    this.budget.report(permitId, { status: result.status, headers: result.headers }, Date.now());
    this.saveSnapshot();
  }

  /** Usage for the console. */
  usage(): GateUsage {
    return this.budget.usage(Date.now());
  }
}
