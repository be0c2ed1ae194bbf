/**
 * The pure part of the automations: does a rule's trigger match a trigger occurrence, and do its
 * conditions hold. No I/O: the record job and the cron scan build the context, the dry run reuses it.
 */
import type { Condition, Trigger } from "../domain/automation-rule.ts";
import type { Flat } from "../domain/port.ts";
import { pipelineNamesOf, stageIdOf, stageNamesOf, type RunContext, type Structure } from "./context.ts";

const num = (v: unknown): number | null => (typeof v === "number" ? v : null);
const scalar = (v: unknown): string =>
  typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v);
const text = (v: unknown): string | null =>
  v === null || v === undefined ? null : Array.isArray(v) ? v.map(scalar).join(", ") : scalar(v);
const lower = (s: string) => s.trim().toLowerCase();

/** Whether `a → b` crossed `t` (either way): one side below it, the other at or above. */
export function crossed(a: number | null, b: number | null, t: number): boolean {
  if (a === null || b === null) return false;
  return a < t !== b < t;
}

/**
 * Whether a change-driven trigger matches the occurrence. Cron triggers never match here (the
 * scan decides them), and a note only matches `note_added`.
 */
export function triggerMatches(trigger: Trigger, ctx: RunContext, s: Structure): boolean {
  if (ctx.event === "note") return trigger.kind === "note_added";
  if (ctx.event !== "change") return false;
  const { before, after } = ctx;
  switch (trigger.kind) {
    case "deal_created":
      return before === null;
    case "stage_entered": {
      const want = lower(trigger.stage);
      if (!stageNamesOf(after, s).includes(want)) return false;
      return (
        before === null || (stageIdOf(before, s) !== stageIdOf(after, s) && !stageNamesOf(before, s).includes(want))
      );
    }
    case "won":
    case "lost":
      return after["status"] === trigger.kind && before?.["status"] !== trigger.kind;
    case "value_changed": {
      if (!before) return false;
      const a = num(before["value"]);
      const b = num(after["value"]);
      if (a === b) return false;
      const by = trigger.by !== null && Math.abs((b ?? 0) - (a ?? 0)) > trigger.by;
      const over = trigger.threshold !== null && crossed(a ?? 0, b ?? 0, trigger.threshold);
      return by || over;
    }
    case "owner_changed":
      return before !== null && (before["owner"] ?? null) !== (after["owner"] ?? null);
    case "field_set": {
      const key = `field.${trigger.field}`;
      const was = before?.[key] ?? null;
      const now = after[key] ?? null;
      if (text(was) === text(now)) return false;
      if (trigger.crosses !== null) return crossed(num(was), num(now), trigger.crosses);
      if (trigger.equals !== null) return lower(text(now) ?? "") === lower(trigger.equals);
      return now !== null && now !== "";
    }
    case "note_added":
    case "close_date":
    case "no_activity":
    case "days_in_stage":
      return false;
  }
}

/** Whether one condition holds for the occurrence (on the record's state after the change). */
export function conditionHolds(c: Condition, ctx: RunContext, s: Structure): boolean {
  const after: Flat = ctx.after;
  switch (c.kind) {
    case "pipeline":
      return pipelineNamesOf(after, s).includes(lower(c.name));
    case "stage":
      return stageNamesOf(after, s).includes(lower(c.name));
    case "owner":
      return lower(text(after["owner"]) ?? "") === c.email;
    case "value": {
      const v = num(after["value"]);
      if (v === null) return false;
      return (c.min === null || v >= c.min) && (c.max === null || v <= c.max);
    }
    case "side":
      return ctx.source === c.side;
    case "field": {
      const v = lower(text(after[`field.${c.field}`]) ?? "");
      const want = lower(c.value);
      return c.op === "equals" ? v === want : v.includes(want);
    }
  }
}

/** Every condition holds (an empty list always does); the first one that fails is named. */
export function conditionsHold(
  conditions: readonly Condition[],
  ctx: RunContext,
  s: Structure,
): { ok: true } | { ok: false; failed: Condition } {
  for (const c of conditions) if (!conditionHolds(c, ctx, s)) return { ok: false, failed: c };
  return { ok: true };
}
