/**
 * One run of one rule for one occurrence (the `automation.run` job's body, without the queue): the
 * late checks (rule still enabled, the account's pause and test mode, a lost trigger's reason), then
 * the actions in order, each once through the write ledger. `dryRun` answers what would happen.
 */
import type { Action } from "../domain/automation-rule.ts";
import type { AutomationRule } from "../store/automations.ts";
import { planAction, runAction, type ActionDeps, type ActionResult, type RunRef } from "./actions.ts";
import type { RunContext, Structure } from "./context.ts";
import { conditionsHold, triggerMatches } from "./evaluate.ts";
import { mayFire } from "./fire.ts";

/** How a run ended. */
export type RunOutcome =
  | { state: "done"; actions: ActionResult[] }
  | { state: "test_mode"; actions: ActionResult[] }
  | { state: "skipped"; reason: string };

/** The lost reason's name of the pair's HighLevel opportunity, or null when it has none. */
async function lostReasonOf(ctx: RunContext, d: ActionDeps): Promise<string | null> {
  if (!ctx.hlId || !ctx.locationId) return null;
  const hl = d.ports.highlevel(ctx.locationId);
  const opp = await hl.getOpportunity(ctx.hlId);
  const id = opp && typeof opp["lostReasonId"] === "string" ? opp["lostReasonId"] : null;
  if (!id) return null;
  return (await hl.listLostReasons()).find((r) => r.id === id)?.name ?? null;
}

/** Checks that need a provider read (today: a `lost` trigger's reason); null = go on. */
async function lateCheck(rule: AutomationRule, ctx: RunContext, d: ActionDeps): Promise<string | null> {
  if (rule.trigger.kind === "lost" && rule.trigger.reason !== null) {
    const reason = await lostReasonOf(ctx, d);
    if (!reason || !reason.toLowerCase().includes(rule.trigger.reason.toLowerCase()))
      return `the lost reason is ${reason ? `"${reason}"` : "not set"}, not "${rule.trigger.reason}"`;
  }
  return null;
}

const planned = (actions: readonly Action[], run: RunRef, s: Structure): ActionResult[] =>
  actions.map((a, index) => ({
    index,
    kind: a.kind,
    status: "planned",
    summary: planAction(a, run, s),
    targetId: null,
  }));

/**
 * Runs a claimed run. Throws what an action threw (the job classifies it); actions done before the
 * failing one stay done in the ledger, so a retry or a replay continues after them.
 */
export async function executeRun(
  rule: AutomationRule,
  run: RunRef,
  account: { testMode: boolean; status: "active" | "paused" },
  d: ActionDeps,
): Promise<RunOutcome> {
  if (!rule.enabled) return { state: "skipped", reason: "the rule is paused" };
  if (account.status === "paused") return { state: "skipped", reason: "the account is paused" };
  const late = await lateCheck(rule, run.context, d);
  if (late) return { state: "skipped", reason: late };
  if (account.testMode) return { state: "test_mode", actions: planned(rule.actions, run, d.structure) };
  const results: ActionResult[] = [];
  for (const [index, action] of rule.actions.entries()) results.push(await runAction(action, index, run, d));
  return { state: "done", actions: results };
}

/** What a dry run answers: whether the rule would fire on the record now, and what it would do. */
export interface DryRun {
  wouldFire: boolean;
  reason: string | null;
  actions: ActionResult[];
}

/**
 * A dry run against a record's current state: the trigger (as if the record had just been created,
 * for change triggers, or the cron finding), the loop guard, the conditions, the late checks, and
 * the actions planned — nothing is written.
 */
export async function dryRun(rule: AutomationRule, run: RunRef, d: ActionDeps, cronFinding: boolean): Promise<DryRun> {
  const ctx = run.context;
  const plan = planned(rule.actions, run, d.structure);
  const trigger = cronFinding || triggerMatches(rule.trigger, ctx, d.structure);
  if (!trigger) return { wouldFire: false, reason: `the ${rule.trigger.kind} trigger does not match`, actions: plan };
  const guard = mayFire(rule, ctx);
  if (guard) return { wouldFire: false, reason: guard, actions: plan };
  const cond = conditionsHold(rule.conditions, ctx, d.structure);
  if (!cond.ok) return { wouldFire: false, reason: `condition ${cond.failed.kind} does not hold`, actions: plan };
  const late = await lateCheck(rule, ctx, d);
  if (late) return { wouldFire: false, reason: late, actions: plan };
  return { wouldFire: true, reason: null, actions: plan };
}
