/**
 * Automation rules (`automation_rules`), their runs — one per (rule, trigger occurrence), the
 * exactly-once claim (`automation_runs`) — and the origins of rule-made writes (`automation_origins`),
 * which let the evaluator tell a rule's own change from a user's. Rules: src/domain/automation-rule.ts.
 */
import * as z from "zod";
import { RuleBodySchema, type RuleBody } from "../domain/automation-rule.ts";
import { forgetConfig } from "./config-cache.ts";

/** A stored rule. */
export interface AutomationRule extends RuleBody {
  id: string;
  accountId: string;
  name: string;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

const RuleRow = z.object({
  id: z.string(),
  account_id: z.string(),
  name: z.string(),
  enabled: z.number(),
  rule_json: z.string(),
  created_at: z.number(),
  updated_at: z.number(),
});

/** A rule from its `automation_rules` row (also src/store/account-config.ts). */
export function automationRuleFromRow(raw: unknown): AutomationRule {
  const r = RuleRow.parse(raw);
  const body = RuleBodySchema.parse(JSON.parse(r.rule_json));
  return {
    id: r.id,
    accountId: r.account_id,
    name: r.name,
    enabled: r.enabled === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...body,
  };
}

const bodyJson = (r: RuleBody) =>
  JSON.stringify({ v: 1, trigger: r.trigger, conditions: r.conditions, actions: r.actions } satisfies RuleBody);

/** Inserts a rule. */
export async function insertAutomation(db: D1Database, r: AutomationRule): Promise<void> {
  forgetConfig();
  await db
    .prepare(
      "INSERT INTO automation_rules (id, account_id, name, enabled, rule_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.id, r.accountId, r.name, r.enabled ? 1 : 0, bodyJson(r), r.createdAt, r.updatedAt)
    .run();
}

/** Replaces a rule's name, state and body. Resolves false when it no longer exists. */
export async function updateAutomation(db: D1Database, r: AutomationRule): Promise<boolean> {
  forgetConfig();
  const res = await db
    .prepare("UPDATE automation_rules SET name = ?, enabled = ?, rule_json = ?, updated_at = ? WHERE id = ?")
    .bind(r.name, r.enabled ? 1 : 0, bodyJson(r), r.updatedAt, r.id)
    .run();
  return res.meta.changes > 0;
}

/** One rule of an account, or null. */
export async function getAutomation(db: D1Database, accountId: string, id: string): Promise<AutomationRule | null> {
  const row = await db
    .prepare("SELECT * FROM automation_rules WHERE id = ? AND account_id = ?")
    .bind(id, accountId)
    .first();
  return row ? automationRuleFromRow(row) : null;
}

/** The rules of an account, oldest first (`enabledOnly` for the evaluator). */
export async function listAutomations(
  db: D1Database,
  accountId: string,
  options: { enabledOnly?: boolean } = {},
): Promise<AutomationRule[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM automation_rules WHERE account_id = ? AND (? = 0 OR enabled = 1) ORDER BY created_at, id LIMIT 200",
    )
    .bind(accountId, options.enabledOnly ? 1 : 0)
    .all();
  return results.map(automationRuleFromRow);
}

/** The ids of the accounts with at least one enabled rule of a cron trigger kind (the scan's work list). */
export async function accountsWithAutomations(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT DISTINCT account_id FROM automation_rules WHERE enabled = 1 ORDER BY account_id LIMIT 500")
    .all();
  return z
    .array(z.object({ account_id: z.string() }))
    .parse(results)
    .map((r) => r.account_id);
}

/** Deletes a rule (its runs go with it). */
export async function deleteAutomation(db: D1Database, accountId: string, id: string): Promise<boolean> {
  forgetConfig();
  const res = await db
    .prepare("DELETE FROM automation_rules WHERE id = ? AND account_id = ?")
    .bind(id, accountId)
    .run();
  return res.meta.changes > 0;
}

// ---------- runs ----------

export type RunState = "queued" | "done" | "skipped" | "failed" | "test_mode";

/** One (rule, occurrence) run. `context` is the trigger context (src/automations/context.ts). */
export interface AutomationRun {
  ruleId: string;
  occurrence: string;
  accountId: string;
  state: RunState;
  depth: number;
  context: unknown;
  result: unknown;
  createdAt: number;
  updatedAt: number;
}

const RunRow = z.object({
  rule_id: z.string(),
  occurrence: z.string(),
  account_id: z.string(),
  state: z.enum(["queued", "done", "skipped", "failed", "test_mode"]),
  depth: z.number(),
  context_json: z.string(),
  result_json: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});

function toRun(raw: unknown): AutomationRun {
  const r = RunRow.parse(raw);
  return {
    ruleId: r.rule_id,
    occurrence: r.occurrence,
    accountId: r.account_id,
    state: r.state,
    depth: r.depth,
    context: JSON.parse(r.context_json),
    result: r.result_json === null ? null : JSON.parse(r.result_json),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * Claims a (rule, occurrence): inserts a `queued` run, or returns the existing one. `fresh` is
 * true for the first claim only, so the same occurrence reported again never runs twice.
 */
export async function claimRun(
  db: D1Database,
  run: { ruleId: string; occurrence: string; accountId: string; depth: number; context: unknown },
  now: number,
): Promise<{ fresh: boolean; run: AutomationRun }> {
  const res = await db
    .prepare(
      "INSERT INTO automation_runs (rule_id, occurrence, account_id, state, depth, context_json, created_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(run.ruleId, run.occurrence, run.accountId, run.depth, JSON.stringify(run.context), now, now)
    .run();
  const stored = await getRun(db, run.ruleId, run.occurrence);
  if (!stored) throw new Error(`automation run ${run.ruleId}/${run.occurrence} vanished after its claim`);
  return { fresh: res.meta.changes > 0, run: stored };
}

/** One run, or null. */
export async function getRun(db: D1Database, ruleId: string, occurrence: string): Promise<AutomationRun | null> {
  const row = await db
    .prepare("SELECT * FROM automation_runs WHERE rule_id = ? AND occurrence = ?")
    .bind(ruleId, occurrence)
    .first();
  return row ? toRun(row) : null;
}

/** Records how a run ended (or `queued` again for a replay). */
export async function finishRun(
  db: D1Database,
  ruleId: string,
  occurrence: string,
  state: RunState,
  result: unknown,
  now: number,
): Promise<void> {
  await db
    .prepare(
      "UPDATE automation_runs SET state = ?, result_json = ?, updated_at = ? WHERE rule_id = ? AND occurrence = ?",
    )
    .bind(state, JSON.stringify(result), now, ruleId, occurrence)
    .run();
}

/** The latest runs of an account (or of one rule), newest first. */
export async function listRuns(
  db: D1Database,
  accountId: string,
  options: { ruleId?: string; limit?: number } = {},
): Promise<AutomationRun[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM automation_runs WHERE account_id = ? AND (? IS NULL OR rule_id = ?) ORDER BY created_at DESC LIMIT ?",
    )
    .bind(accountId, options.ruleId ?? null, options.ruleId ?? null, options.limit ?? 50)
    .all();
  return results.map(toRun);
}

// ---------- origins of rule-made writes ----------

/** A write a rule made to one side, waiting for the pair change it causes. */
export interface AutomationOrigin {
  side: "fourdegrees" | "highlevel";
  recordId: string;
  ruleId: string;
  depth: number;
  /** The flat keys and values the rule wrote. */
  patch: Record<string, unknown>;
  createdAt: number;
}

/** Remembers a rule-made write (one per record and rule; the newest wins). */
export async function recordOrigin(db: D1Database, accountId: string, o: AutomationOrigin): Promise<void> {
  await db
    .prepare(
      `INSERT INTO automation_origins (account_id, side, record_id, rule_id, depth, patch_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET depth = excluded.depth, patch_json = excluded.patch_json, created_at = excluded.created_at`,
    )
    .bind(accountId, o.side, o.recordId, o.ruleId, o.depth, JSON.stringify(o.patch), o.createdAt)
    .run();
}

/** The pending rule-made writes of one record (newest first). */
export async function originsOf(
  db: D1Database,
  accountId: string,
  side: "fourdegrees" | "highlevel",
  recordId: string,
): Promise<AutomationOrigin[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM automation_origins WHERE account_id = ? AND side = ? AND record_id = ? ORDER BY created_at DESC",
    )
    .bind(accountId, side, recordId)
    .all();
  const Row = z.object({
    side: z.enum(["fourdegrees", "highlevel"]),
    record_id: z.string(),
    rule_id: z.string(),
    depth: z.number(),
    patch_json: z.string(),
    created_at: z.number(),
  });
  return results.map((raw) => {
    const r = Row.parse(raw);
    const patch = z.record(z.string(), z.unknown()).parse(JSON.parse(r.patch_json));
    return { side: r.side, recordId: r.record_id, ruleId: r.rule_id, depth: r.depth, patch, createdAt: r.created_at };
  });
}

/** Forgets a rule-made write once its change was attributed. */
export async function clearOrigin(
  db: D1Database,
  accountId: string,
  side: "fourdegrees" | "highlevel",
  recordId: string,
  ruleId: string,
): Promise<void> {
  await db
    .prepare("DELETE FROM automation_origins WHERE account_id = ? AND side = ? AND record_id = ? AND rule_id = ?")
    .bind(accountId, side, recordId, ruleId)
    .run();
}

// ---------- stage entries (days in stage) ----------

/** Records that a pair entered `stageId` at `at` (kept when the pair is already in that stage). */
export async function noteStageEntry(
  db: D1Database,
  accountId: string,
  fdDealId: string,
  stageId: string,
  at: number,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO automation_stage_entries (account_id, fd_deal_id, stage_id, entered_at) VALUES (?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET stage_id = excluded.stage_id, entered_at = excluded.entered_at
       WHERE automation_stage_entries.stage_id <> excluded.stage_id`,
    )
    .bind(accountId, fdDealId, stageId, at)
    .run();
}

/** When each of the given pairs entered its recorded stage. */
export async function stageEntries(
  db: D1Database,
  accountId: string,
  fdDealIds: readonly string[],
): Promise<Map<string, { stageId: string; enteredAt: number }>> {
  const out = new Map<string, { stageId: string; enteredAt: number }>();
  if (fdDealIds.length === 0) return out;
  const { results } = await db
    .prepare(
      `SELECT fd_deal_id, stage_id, entered_at FROM automation_stage_entries WHERE account_id = ? AND fd_deal_id IN (SELECT value FROM json_each(?))`,
    )
    .bind(accountId, JSON.stringify(fdDealIds))
    .all();
  const Row = z.object({ fd_deal_id: z.string(), stage_id: z.string(), entered_at: z.number() });
  for (const raw of results) {
    const r = Row.parse(raw);
    out.set(r.fd_deal_id, { stageId: r.stage_id, enteredAt: r.entered_at });
  }
  return out;
}

/** Runs still `queued` well after their claim (their message was lost): the scan sends them again. */
export async function staleQueuedRuns(db: D1Database, olderThan: number, limit = 50): Promise<AutomationRun[]> {
  const { results } = await db
    .prepare("SELECT * FROM automation_runs WHERE state = 'queued' AND updated_at < ? ORDER BY updated_at LIMIT ?")
    .bind(olderThan, limit)
    .all();
  return results.map(toRun);
}

/** Marks a run as just re-sent (so the next scan waits again before re-sending it). */
export async function touchRun(db: D1Database, ruleId: string, occurrence: string, now: number): Promise<void> {
  await db
    .prepare("UPDATE automation_runs SET updated_at = ? WHERE rule_id = ? AND occurrence = ? AND state = 'queued'")
    .bind(now, ruleId, occurrence)
    .run();
}
