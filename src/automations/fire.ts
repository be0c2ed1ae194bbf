/**
 * From a trigger occurrence to claimed runs: attribute the change to the rule that made it (if a
 * rule did), pick the account's enabled rules whose trigger matches and whose conditions hold, and
 * claim each (rule, occurrence) once in D1. The caller enqueues one `automation.run` per fresh
 * claim, so a retried or duplicated report of the same change never runs a rule twice (a claim
 * whose message was lost is re-sent by the cron scan, src/automations/scan.ts).
 */
import { MAX_CHAIN_DEPTH } from "../domain/automation-rule.ts";
import type { Flat } from "../domain/port.ts";
import { claimRun, clearOrigin, listAutomations, originsOf, type AutomationRule } from "../store/automations.ts";
import type { RunContext, Structure } from "./context.ts";
import { conditionsHold, triggerMatches } from "./evaluate.ts";

/** A rule-made write older than this no longer explains a change (the change never came). */
const ORIGIN_TTL_MS = 3_600_000;

/** One claimed run the caller must enqueue. */
export interface Claimed {
  ruleId: string;
  occurrence: string;
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * Which rule (and chain depth) made a change from `source`: a pending origin of that record whose
 * every written key now holds the written value and did not before. Consumes the origin.
 */
export async function attributeChange(
  db: D1Database,
  accountId: string,
  source: "fourdegrees" | "highlevel",
  recordId: string | null,
  before: Flat | null,
  after: Flat,
  now: number,
): Promise<{ madeBy: string | null; depth: number }> {
  if (!recordId) return { madeBy: null, depth: 0 };
  for (const o of await originsOf(db, accountId, source, recordId)) {
    if (now - o.createdAt > ORIGIN_TTL_MS) {
      await clearOrigin(db, accountId, source, recordId, o.ruleId);
      continue;
    }
    const keys = Object.keys(o.patch);
    const applied = keys.every((k) => sameValue(after[k], o.patch[k]) && !sameValue(before?.[k], o.patch[k]));
    if (!applied) continue;
    await clearOrigin(db, accountId, source, recordId, o.ruleId);
    return { madeBy: o.ruleId, depth: o.depth };
  }
  return { madeBy: null, depth: 0 };
}

/** Whether `rule` may fire for the context at all (the loop guard and the chain limit). */
export function mayFire(rule: AutomationRule, ctx: RunContext): string | null {
  if (ctx.madeBy === rule.id) return "the change was made by this rule";
  if (ctx.depth >= MAX_CHAIN_DEPTH) return `a chain of ${MAX_CHAIN_DEPTH} rule-made changes stops here`;
  return null;
}

/**
 * The rules of `rules` that fire for `ctx` (trigger, loop guard, conditions). A cron finding is the
 * trigger itself (`ctx.event === "cron"`: the scan decided it), so only guard and conditions apply.
 */
export function matchingRules(rules: readonly AutomationRule[], ctx: RunContext, s: Structure): AutomationRule[] {
  return rules.filter(
    (r) =>
      (ctx.event === "cron" || triggerMatches(r.trigger, ctx, s)) &&
      mayFire(r, ctx) === null &&
      conditionsHold(r.conditions, ctx, s).ok,
  );
}

/** Claims the runs of every matching enabled rule of the account for one occurrence; answers the fresh claims. */
export async function claimRuns(
  db: D1Database,
  accountId: string,
  ctx: RunContext,
  occurrence: string,
  s: Structure,
  now: number,
  rules?: readonly AutomationRule[],
): Promise<Claimed[]> {
  const all = rules ?? (await listAutomations(db, accountId, { enabledOnly: true }));
  const out: Claimed[] = [];
  for (const rule of matchingRules(all, ctx, s)) {
    const { fresh } = await claimRun(
      db,
      { ruleId: rule.id, occurrence, accountId, depth: ctx.depth, context: ctx },
      now,
    );
    if (fresh) out.push({ ruleId: rule.id, occurrence });
  }
  return out;
}
