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
import * as z from "zod";
import { loadConfig } from "../config.ts";
import { createLogger } from "../lib/log.ts";
import { RateBudget, type BudgetSnapshot } from "./budget.ts";
import { tokenGate } from "./client.ts";
import { TokenKeeper, type InstallGrant, type TokenResult } from "./tokens.ts";
import type { GateLimits, GateUsage, Lane, PermitResult, ReportedResult } from "./types.ts";

const SnapshotSchema = z.object({
  day: z.string(),
  dailyUsed: z.number(),
  dailyLimit: z.number().nullable(),
  dailyRemaining: z.number().nullable(),
  pausedUntil: z.object({
    live: z.number().optional(),
    reconcile: z.number().optional(),
    backfill: z.number().optional(),
  }),
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
  private keeper: TokenKeeper | null = null;

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
    this.ctx.storage.sql.exec(
      "INSERT INTO gate_state (k, v) VALUES ('budget', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
      JSON.stringify(this.budget.snapshot()),
    );
  }

  /** Created on first use: config is parsed lazily so a rate-only (4Degrees) gate never needs it. */
  private tokens(): TokenKeeper {
    if (!this.keeper) {
      const config = loadConfig(this.env);
      this.keeper = new TokenKeeper({
        sql: this.ctx.storage.sql,
        db: this.env.DB,
        config,
        log: createLogger(config.LOG_LEVEL, { component: "gate" }),
        // An agency's tokens live in the agency's own gate (its own single-flight refresh).
        agencyToken: (companyConnection) => tokenGate(this.env, companyConnection).accessToken(companyConnection),
      });
    }
    return this.keeper;
  }

  /** Stores a newly installed grant for `grant.connectionId` (DO storage, then D1). */
  async installTokens(grant: InstallGrant): Promise<{ expiresAt: number; version: number }> {
    return this.tokens().install(grant);
  }

  /**
   * A usable access token for `connectionId`, refreshed single-flight when close to expiry, or
   * when `opts.rejected` is the current token (HighLevel answered 401 to it).
   */
  async accessToken(
    connectionId: string,
    opts: { rejected?: string; minValidityMs?: number } = {},
  ): Promise<TokenResult> {
    return this.tokens().accessToken(connectionId, opts);
  }

  /** Cron: refreshes when the access token expires within `withinMs`. */
  async refreshIfDue(connectionId: string, withinMs: number): Promise<"refreshed" | "fresh" | "failed"> {
    return this.tokens().refreshIfDue(connectionId, withinMs);
  }

  /** After UNINSTALL: the keeper refuses to hand out this connection's tokens. */
  async retireTokens(connectionId: string): Promise<void> {
    this.tokens().retire(connectionId);
  }

  /** Token-free status of a connection (console, tests). */
  async tokenStatus(connectionId: string): Promise<ReturnType<TokenKeeper["status"]>> {
    return this.tokens().status(connectionId);
  }

  /** Liveness probe for `/api/health`: answers the object's clock. */
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
