/**
 * Notification rules: the admin input schema (per-trigger parameters, target URL checks) and the
 * pure matcher deciding whether a rule fires for an event.
 */
import * as z from "zod";
import { fromMinor, minorDigits } from "../domain/money.ts";
import type { RuleParams, Trigger } from "../store/notifications.ts";
import type { DealState, NotifyEvent } from "./events.ts";

/** Human names of the triggers (console, messages). */
export const TRIGGER_LABELS: Record<Trigger, string> = {
  deal_won: "Deal won",
  deal_lost: "Deal lost",
  stage_entered: "Deal entered a stage",
  value_changed: "Deal value changed by more than a threshold",
  sync_failure: "Sync failure",
  needs_reconnect: "HighLevel connection needs reconnect",
  quota_low: "HighLevel daily quota below a threshold",
  unusual_activity: "Unusual activity (a spike against the 7-day baseline, or webhooks going silent)",
  deletes_held: "Deletes put on hold by the mass-delete guard",
};

/**
 * Target URLs: the shape only. Where a target may point (https, Slack's host for Slack, no
 * internal address, not this Worker) depends on the deployment and is checked by `targetProblem`
 * (src/notify/targets.ts) when a rule is created or changed and before each delivery.
 */
const TargetUrl = z.url({ protocol: /^https?$/, error: "must be an https:// URL" }).max(2048);

export const TargetSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("slack"), url: TargetUrl }),
  z.object({ kind: z.literal("webhook"), url: TargetUrl }),
]);
export type Target = z.infer<typeof TargetSchema>;

const common = {
  accountId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "an account id (1–64 characters of A–Z, a–z, 0–9, _ and -)"),
  name: z.string().trim().min(1, "give the rule a name").max(120),
  target: TargetSchema,
  enabled: z.boolean().default(true),
};
const noParams = z.object({}).strict().default({});
const stageParams = z.object({ stage: z.string().trim().min(1, "name or id of the stage") }).strict();
const thresholdParams = z
  .object({
    threshold: z.number({ error: "threshold must be a number (in the deal's currency)" }).nonnegative().max(1e12),
  })
  .strict();
const remainingParams = z
  .object({
    remaining: z
      .number({ error: "remaining must be a whole number of calls" })
      .int()
      .positive()
      .max(200_000, "HighLevel's daily limit is 200,000"),
  })
  .strict();

/** The parameter schema of each trigger. */
export const PARAMS_SCHEMAS = {
  deal_won: noParams,
  deal_lost: noParams,
  stage_entered: stageParams,
  value_changed: thresholdParams,
  sync_failure: noParams,
  needs_reconnect: noParams,
  quota_low: remainingParams,
  unusual_activity: noParams,
  deletes_held: noParams,
} as const satisfies Record<Trigger, z.ZodType>;

/** `POST /api/notifications` body: a discriminated union on `trigger` with its parameters. */
export const NewRuleSchema = z.discriminatedUnion("trigger", [
  z.object({ ...common, trigger: z.literal("deal_won"), params: PARAMS_SCHEMAS.deal_won }),
  z.object({ ...common, trigger: z.literal("deal_lost"), params: PARAMS_SCHEMAS.deal_lost }),
  z.object({ ...common, trigger: z.literal("stage_entered"), params: PARAMS_SCHEMAS.stage_entered }),
  z.object({ ...common, trigger: z.literal("value_changed"), params: PARAMS_SCHEMAS.value_changed }),
  z.object({ ...common, trigger: z.literal("sync_failure"), params: PARAMS_SCHEMAS.sync_failure }),
  z.object({ ...common, trigger: z.literal("needs_reconnect"), params: PARAMS_SCHEMAS.needs_reconnect }),
  z.object({ ...common, trigger: z.literal("quota_low"), params: PARAMS_SCHEMAS.quota_low }),
  z.object({ ...common, trigger: z.literal("unusual_activity"), params: PARAMS_SCHEMAS.unusual_activity }),
  z.object({ ...common, trigger: z.literal("deletes_held"), params: PARAMS_SCHEMAS.deletes_held }),
]);
export type NewRule = z.infer<typeof NewRuleSchema>;

/** `PATCH /api/notifications/{id}` body: any of name, enabled, target, params (same trigger). */
export const RulePatchSchema = z
  .object({
    name: common.name.optional(),
    enabled: z.boolean().optional(),
    target: TargetSchema.optional(),
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

function sameStage(state: DealState | null, stage: string): boolean {
  if (!state) return false;
  const want = stage.trim().toLowerCase();
  return state.stageId?.toLowerCase() === want || state.stageName?.trim().toLowerCase() === want;
}

/** |after − before| in major units when both sides are comparable (same currency or one absent). */
export function valueDelta(before: DealState | null, after: DealState): number | null {
  const b = before?.value ?? null;
  const a = after.value;
  if (!a && !b) return null;
  if (a && b && a.currency !== b.currency) return null;
  const currency = (a ?? b)?.currency ?? "USD";
  return Math.abs(fromMinor((a?.amountMinor ?? 0) - (b?.amountMinor ?? 0), currency));
}

/** Whether a rule with `trigger` and `params` fires for `event`. Pure. */
export function ruleMatches(trigger: Trigger, params: RuleParams, event: NotifyEvent): boolean {
  switch (trigger) {
    case "deal_won":
    case "deal_lost": {
      if (event.kind !== "deal_changed") return false;
      const status = trigger === "deal_won" ? "won" : "lost";
      return event.after.status === status && event.before?.status !== status;
    }
    case "stage_entered":
      return (
        event.kind === "deal_changed" &&
        params.stage !== undefined &&
        sameStage(event.after, params.stage) &&
        !sameStage(event.before, params.stage)
      );
    case "value_changed": {
      if (event.kind !== "deal_changed" || params.threshold === undefined) return false;
      const delta = valueDelta(event.before, event.after);
      // Compare in minor units so 0.1 + 0.2 style float noise cannot flip the answer.
      const currency = event.after.value?.currency ?? event.before?.value?.currency ?? "USD";
      return (
        delta !== null &&
        Math.round(delta * 10 ** minorDigits(currency)) > Math.round(params.threshold * 10 ** minorDigits(currency))
      );
    }
    case "sync_failure":
      return event.kind === "sync_failure";
    case "needs_reconnect":
      return event.kind === "needs_reconnect";
    case "quota_low":
      return event.kind === "quota_low" && params.remaining !== undefined && event.remaining < params.remaining;
    case "unusual_activity":
      return event.kind === "unusual_activity";
    case "deletes_held":
      return event.kind === "deletes_held";
  }
}

function money(state: DealState | null): string {
  const v = state?.value;
  if (!v) return "no value";
  return new Intl.NumberFormat("en-US", { style: "currency", currency: v.currency }).format(
    fromMinor(v.amountMinor, v.currency),
  );
}

/** One line a person reads (Slack text, webhook `summary`). */
export function describe(trigger: Trigger, event: NotifyEvent): string {
  switch (event.kind) {
    case "deal_changed": {
      const where = event.after.stageName ?? event.after.stageId ?? "unknown stage";
      if (trigger === "deal_won") return `Deal won: ${event.dealName} (${money(event.after)})`;
      if (trigger === "deal_lost") return `Deal lost: ${event.dealName} (${money(event.after)})`;
      if (trigger === "stage_entered") return `${event.dealName} entered ${where} (${money(event.after)})`;
      return `${event.dealName}: value changed from ${money(event.before)} to ${money(event.after)}`;
    }
    case "sync_failure":
      return `Sync failure on account ${event.accountId}: ${event.reason}`;
    case "needs_reconnect":
      return `HighLevel location ${event.locationId} needs to be reconnected${event.reason ? ` (${event.reason})` : ""}`;
    case "quota_low":
      return `HighLevel location ${event.locationId}: ${event.remaining.toLocaleString("en-US")} of ${event.limit.toLocaleString("en-US")} API calls left today`;
    case "unusual_activity":
      return describeActivity(event);
    case "deletes_held":
      return `Account ${event.accountId}: ${event.count} delete(s) on hold for approval (mass-delete guard); nothing was deleted on the other side — approve or discard them on Problems`;
  }
}

const METRIC_LABELS = {
  failures: "sync failures",
  rate_limited: "HighLevel 429 answers",
  deletes: "deletes",
  changes: "synced changes",
} as const;

function describeActivity(e: Extract<NotifyEvent, { kind: "unusual_activity" }>): string {
  if (e.metric === "webhook_silence")
    return `HighLevel is dropping webhooks: location ${e.locationId ?? "?"} sent none while reconcile found ${e.count} changed records (alert at ${e.threshold})`;
  return `Unusual activity on account ${e.accountId}: ${e.count} ${METRIC_LABELS[e.metric]} this hour (the 7-day baseline allows ${e.threshold})`;
}

/** The dotted event type a generic webhook receives (`deal.won`, `sync.failure`, …). */
export function eventType(trigger: Trigger): string {
  return trigger.replace("_", ".");
}
