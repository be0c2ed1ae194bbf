/**
 * The automation rule shape (versioned, `v: 1`): one trigger, conditions that must all hold, and up
 * to ten actions run in order. Stored as JSON in D1 (src/store/automations.ts; here in domain/ because the store parses it) and accepted by the
 * API and the console form; docs/automations.md documents it with a curl example.
 */
import * as z from "zod";

const name = z.string().trim().min(1).max(200);
const days = z.number().int().min(0).max(3650);
const positiveDays = z.number().int().min(1).max(3650);
/** Integer minor units (cents), as the engine's money. */
const amount = z.number().int().min(0).max(1e15);

/** A custom field of the mapping, by its mapping key (`mapping.fields[].key`). */
const fieldKey = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, "a mapping field key (lowercase, digits, _)");

export const TriggerSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("deal_created") }),
  /** The pair entered the stage named `stage` (a 4Degrees or a HighLevel stage name, case-insensitive). */
  z.object({ kind: z.literal("stage_entered"), stage: name }),
  z.object({ kind: z.literal("won") }),
  /** `reason`: only when the HighLevel lost reason's name contains it (case-insensitive). */
  z.object({ kind: z.literal("lost"), reason: name.nullable().default(null) }),
  /** `by`: the value moved by more than this (either way); `threshold`: it crossed this (either way). */
  z
    .object({
      kind: z.literal("value_changed"),
      by: amount.nullable().default(null),
      threshold: amount.nullable().default(null),
    })
    .refine((t) => t.by !== null || t.threshold !== null, { message: "give by or threshold", path: ["by"] }),
  z.object({ kind: z.literal("owner_changed") }),
  z.object({ kind: z.literal("note_added") }),
  /** A mapped field was set to `equals` (any new value when null), or a number field crossed `crosses`. */
  z.object({
    kind: z.literal("field_set"),
    field: fieldKey,
    equals: z.string().max(500).nullable().default(null),
    crosses: z.number().nullable().default(null),
  }),
  // Cron-driven (src/automations/scan.ts): checked against the pairs' last-synced state.
  /** The close date is past (`withinDays: 0`) or at most `withinDays` away. */
  z.object({ kind: z.literal("close_date"), withinDays: days }),
  z.object({ kind: z.literal("no_activity"), days: positiveDays }),
  z.object({ kind: z.literal("days_in_stage"), days: positiveDays, stage: name.nullable().default(null) }),
]);
export type Trigger = z.infer<typeof TriggerSchema>;
export type TriggerKind = Trigger["kind"];

/** The trigger kinds the cron scan checks (the others fire from recorded pair changes). */
export const CRON_TRIGGERS: ReadonlySet<TriggerKind> = new Set(["close_date", "no_activity", "days_in_stage"]);

export const ConditionSchema = z.discriminatedUnion("kind", [
  /** The pair's pipeline, by 4Degrees or HighLevel name. */
  z.object({ kind: z.literal("pipeline"), name }),
  /** The pair's current stage, by 4Degrees or HighLevel name. */
  z.object({ kind: z.literal("stage"), name }),
  /** The owner's email (case-insensitive). */
  z.object({ kind: z.literal("owner"), email: z.string().trim().toLowerCase().min(3).max(320) }),
  z
    .object({ kind: z.literal("value"), min: amount.nullable().default(null), max: amount.nullable().default(null) })
    .refine((c) => c.min === null || c.max === null || c.min <= c.max, { message: "min is above max", path: ["min"] }),
  /** The side whose change fired the rule. */
  z.object({ kind: z.literal("side"), side: z.enum(["fourdegrees", "highlevel"]) }),
  z.object({
    kind: z.literal("field"),
    field: fieldKey,
    op: z.enum(["equals", "contains"]),
    value: z.string().max(500),
  }),
]);
export type Condition = z.infer<typeof ConditionSchema>;

export const ActionSchema = z.discriminatedUnion("kind", [
  /** A task on the HighLevel opportunity's contact, assigned to the deal owner's HighLevel user. */
  z.object({
    kind: z.literal("hl_task"),
    title: name,
    body: z.string().max(5000).default(""),
    dueInDays: days.default(1),
  }),
  /** A reminder on the 4Degrees deal (assumed contract, docs/fourdegrees.md#reminders), for the owner. */
  z.object({
    kind: z.literal("fd_reminder"),
    title: name,
    body: z.string().max(5000).default(""),
    dueInDays: days.default(1),
  }),
  z.object({ kind: z.literal("hl_tag"), op: z.enum(["add", "remove"]), tag: z.string().trim().min(1).max(100) }),
  /** Moves the deal to a stage (by name) on `side`; the sync carries it to the other side. */
  z.object({ kind: z.literal("move_stage"), side: z.enum(["fourdegrees", "highlevel"]), stage: name }),
  /** Sets a mapped field on `side`; the sync carries it to the other side. */
  z.object({
    kind: z.literal("set_field"),
    side: z.enum(["fourdegrees", "highlevel"]),
    field: fieldKey,
    value: z.union([z.string().max(500), z.number()]),
  }),
  /** Posts through an existing notification rule's target (Slack or signed webhook), by its id. */
  z.object({ kind: z.literal("notify"), notificationRuleId: z.string().min(1).max(100), text: name.optional() }),
]);
export type Action = z.infer<typeof ActionSchema>;

/** What a client sends to create a rule. */
export const NewAutomationSchema = z.object({
  v: z.literal(1).default(1),
  name,
  enabled: z.boolean().default(true),
  trigger: TriggerSchema,
  conditions: z.array(ConditionSchema).max(20).default([]),
  actions: z.array(ActionSchema).min(1, "add at least one action").max(10),
});
export type NewAutomation = z.infer<typeof NewAutomationSchema>;
export type NewAutomationInput = z.input<typeof NewAutomationSchema>;

/** A partial update: any top-level part, replaced whole. */
export const AutomationPatchSchema = z
  .object({
    name: name.optional(),
    enabled: z.boolean().optional(),
    trigger: TriggerSchema.optional(),
    conditions: z.array(ConditionSchema).max(20).optional(),
    actions: z.array(ActionSchema).min(1).max(10).optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: "nothing to change" });
export type AutomationPatch = z.infer<typeof AutomationPatchSchema>;

/** The stored body of a rule (what `rule_json` holds). */
export const RuleBodySchema = z.object({
  v: z.literal(1),
  trigger: TriggerSchema,
  conditions: z.array(ConditionSchema),
  actions: z.array(ActionSchema),
});
export type RuleBody = z.infer<typeof RuleBodySchema>;

/** The longest chain of rule-made changes that may fire further rules (a → b → c, then stop). */
export const MAX_CHAIN_DEPTH = 3;
