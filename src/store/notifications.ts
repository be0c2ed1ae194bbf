/**
 * D1 `notification_rules` and `notification_deliveries` (migration 0005). Rules hold the target
 * URL and signing secret as ciphertexts only; `ruleSummary` is the credential-free view.
 * Deliveries are the dedupe key of "a rule fires exactly once per matching change":
 * `claimDelivery` inserts with ON CONFLICT DO NOTHING and reports whether this caller won.
 */
import * as z from "zod";
import { forgetConfig } from "./config-cache.ts";

/** What a rule listens for. */
export const TriggerSchema = z.enum([
  "deal_won",
  "deal_lost",
  "stage_entered",
  "value_changed",
  "sync_failure",
  "needs_reconnect",
  "quota_low",
  "unusual_activity",
  "deletes_held",
]);
export type Trigger = z.infer<typeof TriggerSchema>;

/** Where a rule delivers. */
export const TargetKindSchema = z.enum(["slack", "webhook"]);
export type TargetKind = z.infer<typeof TargetKindSchema>;

/** Per-trigger parameters (validated by src/notify/rules.ts before they are stored). */
export const RuleParamsSchema = z.object({
  stage: z.string().min(1).optional(),
  threshold: z.number().nonnegative().optional(),
  remaining: z.number().int().positive().optional(),
});
export type RuleParams = z.infer<typeof RuleParamsSchema>;

/** A stored rule (URL and secret still encrypted). */
export interface NotificationRule {
  id: string;
  accountId: string;
  name: string;
  trigger: Trigger;
  params: RuleParams;
  targetKind: TargetKind;
  targetUrlEnc: string;
  targetHint: string;
  signingSecretEnc: string | null;
  keyId: string;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

const RuleRow = z.object({
  id: z.string(),
  account_id: z.string(),
  name: z.string(),
  trigger: TriggerSchema,
  params_json: z.string(),
  target_kind: TargetKindSchema,
  target_url_enc: z.string(),
  target_hint: z.string(),
  signing_secret_enc: z.string().nullable(),
  key_id: z.string(),
  enabled: z.number(),
  created_at: z.number(),
  updated_at: z.number(),
});

/** A rule from its `notification_rules` row (also src/store/account-config.ts). */
export function notificationRuleFromRow(raw: unknown): NotificationRule {
  const r = RuleRow.parse(raw);
  return {
    id: r.id,
    accountId: r.account_id,
    name: r.name,
    trigger: r.trigger,
    params: RuleParamsSchema.parse(JSON.parse(r.params_json)),
    targetKind: r.target_kind,
    targetUrlEnc: r.target_url_enc,
    targetHint: r.target_hint,
    signingSecretEnc: r.signing_secret_enc,
    keyId: r.key_id,
    enabled: r.enabled === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The credential-free view of a rule (API answers, console, logs). */
export function ruleSummary(r: NotificationRule) {
  return {
    id: r.id,
    accountId: r.accountId,
    name: r.name,
    trigger: r.trigger,
    params: r.params,
    target: { kind: r.targetKind, host: r.targetHint, signed: r.signingSecretEnc !== null },
    enabled: r.enabled,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}
export type RuleSummary = ReturnType<typeof ruleSummary>;

/** Inserts a rule. */
export async function insertRule(db: D1Database, r: NotificationRule): Promise<void> {
  forgetConfig();
  await db
    .prepare(
      `INSERT INTO notification_rules (id, account_id, name, trigger, params_json, target_kind, target_url_enc, target_hint, signing_secret_enc, key_id, enabled, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      r.id,
      r.accountId,
      r.name,
      r.trigger,
      JSON.stringify(r.params),
      r.targetKind,
      r.targetUrlEnc,
      r.targetHint,
      r.signingSecretEnc,
      r.keyId,
      r.enabled ? 1 : 0,
      r.createdAt,
      r.updatedAt,
    )
    .run();
}

/** Replaces a rule's editable columns (everything but id, account and created_at). */
export async function updateRule(db: D1Database, r: NotificationRule): Promise<void> {
  forgetConfig();
  await db
    .prepare(
      `UPDATE notification_rules SET name = ?, trigger = ?, params_json = ?, target_kind = ?, target_url_enc = ?, target_hint = ?, signing_secret_enc = ?, key_id = ?, enabled = ?, updated_at = ? WHERE id = ?`,
    )
    .bind(
      r.name,
      r.trigger,
      JSON.stringify(r.params),
      r.targetKind,
      r.targetUrlEnc,
      r.targetHint,
      r.signingSecretEnc,
      r.keyId,
      r.enabled ? 1 : 0,
      r.updatedAt,
      r.id,
    )
    .run();
}

export async function getRule(db: D1Database, id: string): Promise<NotificationRule | null> {
  const raw = await db.prepare("SELECT * FROM notification_rules WHERE id = ?").bind(id).first();
  return raw === null ? null : notificationRuleFromRow(raw);
}

/** Rules of one account (or all), oldest first. */
export async function listRules(
  db: D1Database,
  filter: { accountId?: string; enabledOnly?: boolean } = {},
): Promise<NotificationRule[]> {
  // One account's rules through `notification_rules_account` (an `?1 IS NULL OR` filter scans the table).
  const statement =
    filter.accountId === undefined
      ? db
          .prepare("SELECT * FROM notification_rules WHERE (?1 = 0 OR enabled = 1) ORDER BY created_at, id")
          .bind(filter.enabledOnly ? 1 : 0)
      : db
          .prepare(
            "SELECT * FROM notification_rules WHERE account_id = ?1 AND (?2 = 0 OR enabled = 1) ORDER BY created_at, id",
          )
          .bind(filter.accountId, filter.enabledOnly ? 1 : 0);
  const { results } = await statement.all();
  return results.map(notificationRuleFromRow);
}

/** Deletes a rule (its deliveries go with it); false when there was none. */
export async function deleteRule(db: D1Database, id: string): Promise<boolean> {
  forgetConfig();
  const res = await db.prepare("DELETE FROM notification_rules WHERE id = ?").bind(id).run();
  return res.meta.changes > 0;
}

/** Delivery states. */
export type DeliveryState = "queued" | "delivered" | "failed";

/** One (rule, change) delivery. */
export interface Delivery {
  ruleId: string;
  changeKey: string;
  accountId: string;
  event: unknown;
  state: DeliveryState;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

const DeliveryRow = z.object({
  rule_id: z.string(),
  change_key: z.string(),
  account_id: z.string(),
  event_json: z.string(),
  state: z.enum(["queued", "delivered", "failed"]),
  attempts: z.number(),
  last_status: z.number().nullable(),
  last_error: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});

function toDelivery(raw: unknown): Delivery {
  const r = DeliveryRow.parse(raw);
  return {
    ruleId: r.rule_id,
    changeKey: r.change_key,
    accountId: r.account_id,
    event: JSON.parse(r.event_json),
    state: r.state,
    attempts: r.attempts,
    lastStatus: r.last_status,
    lastError: r.last_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * Claims (rule, change): true when this call inserted the row (the caller then enqueues), false
 * when the change was already claimed — the exactly-once gate, atomic in D1.
 */
export async function claimDelivery(
  db: D1Database,
  d: { ruleId: string; changeKey: string; accountId: string; event: unknown },
  now: number = Date.now(),
): Promise<boolean> {
  const res = await db
    .prepare(
      "INSERT INTO notification_deliveries (rule_id, change_key, account_id, event_json, state, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?) ON CONFLICT (rule_id, change_key) DO NOTHING",
    )
    .bind(d.ruleId, d.changeKey, d.accountId, JSON.stringify(d.event), now, now)
    .run();
  return res.meta.changes > 0;
}

/** Forgets a claim whose message could not be enqueued, so the same change can claim it again. */
export async function releaseDelivery(db: D1Database, ruleId: string, changeKey: string): Promise<void> {
  await db
    .prepare(
      "DELETE FROM notification_deliveries WHERE rule_id = ? AND change_key = ? AND state = 'queued' AND attempts = 0",
    )
    .bind(ruleId, changeKey)
    .run();
}

export async function getDelivery(db: D1Database, ruleId: string, changeKey: string): Promise<Delivery | null> {
  const raw = await db
    .prepare("SELECT * FROM notification_deliveries WHERE rule_id = ? AND change_key = ?")
    .bind(ruleId, changeKey)
    .first();
  return raw === null ? null : toDelivery(raw);
}

/**
 * Leases a queued delivery for one attempt until `now + leaseMs`: true for the one caller that got
 * it, false while another attempt holds it (or once it is no longer queued). Atomic in D1.
 */
export async function leaseAttempt(
  db: D1Database,
  ruleId: string,
  changeKey: string,
  leaseMs: number,
  now: number = Date.now(),
): Promise<boolean> {
  const res = await db
    .prepare(
      "UPDATE notification_deliveries SET lease_until = ? WHERE rule_id = ? AND change_key = ? AND state = 'queued' AND (lease_until IS NULL OR lease_until <= ?)",
    )
    .bind(now + leaseMs, ruleId, changeKey, now)
    .run();
  return res.meta.changes > 0;
}

/** Records one delivery attempt's outcome (and ends its lease). */
export async function recordAttempt(
  db: D1Database,
  ruleId: string,
  changeKey: string,
  outcome: { state: DeliveryState; status: number | null; error: string | null },
  now: number = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "UPDATE notification_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, updated_at = ?, lease_until = NULL WHERE rule_id = ? AND change_key = ?",
    )
    .bind(outcome.state, outcome.status, outcome.error, now, ruleId, changeKey)
    .run();
}

/** Recent deliveries, newest first (of one rule, or of one account). */
export async function listDeliveries(
  db: D1Database,
  filter: { ruleId?: string; accountId?: string },
  limit = 50,
): Promise<Delivery[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM notification_deliveries WHERE (?1 IS NULL OR rule_id = ?1) AND (?2 IS NULL OR account_id = ?2) ORDER BY created_at DESC LIMIT ?3",
    )
    .bind(filter.ruleId ?? null, filter.accountId ?? null, Math.min(limit, 500))
    .all();
  return results.map(toDelivery);
}
