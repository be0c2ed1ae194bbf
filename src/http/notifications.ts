/**
 * Admin API for notification rules (mounted under `/api`, behind `adminAuth`):
 *
 * - `GET    /api/notifications?account={id}`  rules (credential-free: the target's host only)
 * - `POST   /api/notifications`               create; a `webhook` rule's signing secret is answered once
 * - `GET    /api/notifications/{id}`          one rule and its last 50 deliveries
 * - `PATCH  /api/notifications/{id}`          name, enabled, target, params (validated for the rule's trigger)
 * - `DELETE /api/notifications/{id}`          remove (its deliveries go with it)
 */
import { Hono } from "hono";
import * as z from "zod";
import type { Config } from "../config.ts";
import { bytesToBase64, encryptSecret } from "../lib/crypto.ts";
import { AppError, zodIssues } from "../lib/errors.ts";
import { getAccount } from "../store/accounts.ts";
import {
  deleteRule,
  getRule,
  insertRule,
  listDeliveries,
  listRules,
  ruleSummary,
  updateRule,
  type NotificationRule,
} from "../store/notifications.ts";
import type { AppEnv } from "./context.ts";
import { ruleAad } from "../notify/deliver.ts";
import { NewRuleSchema, PARAMS_SCHEMAS, RulePatchSchema, type NewRule, type Target } from "../notify/rules.ts";
import { targetPolicy, targetProblem } from "../notify/targets.ts";

const RuleId = z.string().regex(/^ntf_[a-f0-9]{20}$/, "not a notification rule id");

function newRuleId(): string {
  return `ntf_${[...crypto.getRandomValues(new Uint8Array(10))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A fresh Standard Webhooks secret (`whsec_` + base64 of 32 random bytes). */
export function newSigningSecret(): string {
  return `whsec_${bytesToBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

async function sealTarget(config: Config, ruleId: string, target: Target, secret: string | null) {
  return {
    targetKind: target.kind,
    targetUrlEnc: await encryptSecret(config.TOKEN_ENCRYPTION_KEY, target.url, ruleAad(ruleId)),
    targetHint: new URL(target.url).host,
    signingSecretEnc:
      secret === null ? null : await encryptSecret(config.TOKEN_ENCRYPTION_KEY, secret, `${ruleAad(ruleId)}:secret`),
    keyId: config.TOKEN_ENCRYPTION_KEY[0]?.id ?? "",
  };
}

/** 400 naming `target.url` when the target may not be delivered to (src/notify/targets.ts). */
export function assertTargetAllowed(config: Config, target: Target): void {
  const problem = targetProblem(target.kind, target.url, targetPolicy(config));
  if (!problem) return;
  throw new AppError("bad_request", `target.url: ${problem}`, { details: [{ path: "target.url", message: problem }] });
}

/** Validates `body` as a new rule: 400 naming the field on failure. */
export function parseNewRule(body: unknown): NewRule {
  const parsed = NewRuleSchema.safeParse(body);
  if (!parsed.success)
    throw new AppError(
      "bad_request",
      `invalid rule: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ")}`,
      { details: zodIssues(parsed.error) },
    );
  return parsed.data;
}

/**
 * Creates a rule for an existing account. Returns the stored rule and, for a `webhook` target, the
 * signing secret (shown once; only its ciphertext is kept).
 */
export async function createRule(
  db: D1Database,
  config: Config,
  input: NewRule,
  now: number = Date.now(),
): Promise<{ rule: NotificationRule; signingSecret: string | null }> {
  assertTargetAllowed(config, input.target);
  if (!(await getAccount(db, input.accountId)))
    throw new AppError("bad_request", `accountId: no account ${input.accountId}`, {
      details: [{ path: "accountId", message: "no such account" }],
    });
  const id = newRuleId();
  const secret = input.target.kind === "webhook" ? newSigningSecret() : null;
  const rule: NotificationRule = {
    id,
    accountId: input.accountId,
    name: input.name,
    trigger: input.trigger,
    params: input.params,
    enabled: input.enabled,
    createdAt: now,
    updatedAt: now,
    ...(await sealTarget(config, id, input.target, secret)),
  };
  await insertRule(db, rule);
  return { rule, signingSecret: secret };
}

async function requireRule(db: D1Database, raw: string): Promise<NotificationRule> {
  const id = RuleId.safeParse(raw);
  if (!id.success) throw new AppError("not_found", `no notification rule ${raw}`);
  const rule = await getRule(db, id.data);
  if (!rule) throw new AppError("not_found", `no notification rule ${raw}`);
  return rule;
}

export const notificationsApi = new Hono<AppEnv>()
  .get("/notifications", async (c) => {
    const account = c.req.query("account");
    if (account !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(account))
      throw new AppError("bad_request", "account: not an account id", {
        details: [{ path: "account", message: "not an account id" }],
      });
    const rules = await listRules(c.env.DB, account === undefined ? {} : { accountId: account });
    return c.json({ rules: rules.map(ruleSummary) });
  })
  .post("/notifications", async (c) => {
    const input = parseNewRule(await c.req.json().catch(() => null));
    const { rule, signingSecret } = await createRule(c.env.DB, c.var.config, input);
    c.var.log.info({
      event: "notify.rule_created",
      account: rule.accountId,
      rule: rule.id,
      trigger: rule.trigger,
      outcome: "ok",
    });
    return c.json({ rule: ruleSummary(rule), ...(signingSecret ? { signingSecret } : {}) }, 201);
  })
  .get("/notifications/:id", async (c) => {
    const rule = await requireRule(c.env.DB, c.req.param("id"));
    const deliveries = await listDeliveries(c.env.DB, { ruleId: rule.id });
    return c.json({ rule: ruleSummary(rule), deliveries });
  })
  .patch("/notifications/:id", async (c) => {
    const rule = await requireRule(c.env.DB, c.req.param("id"));
    const patch = RulePatchSchema.safeParse(await c.req.json().catch(() => null));
    if (!patch.success)
      throw new AppError(
        "bad_request",
        `invalid patch: ${patch.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ")}`,
        { details: zodIssues(patch.error) },
      );
    // Params are checked against the rule's own trigger (a rule never changes trigger).
    let params = rule.params;
    if (patch.data.params !== undefined) {
      const parsed = PARAMS_SCHEMAS[rule.trigger].safeParse(patch.data.params);
      if (!parsed.success)
        throw new AppError(
          "bad_request",
          `invalid params for ${rule.trigger}: ${parsed.error.issues.map((i) => `params.${i.path.join(".")}: ${i.message}`).join("; ")}`,
          { details: zodIssues(parsed.error).map((d) => ({ ...d, path: `params.${d.path}` })) },
        );
      params = parsed.data;
    }
    let sealed = {
      targetKind: rule.targetKind,
      targetUrlEnc: rule.targetUrlEnc,
      targetHint: rule.targetHint,
      signingSecretEnc: rule.signingSecretEnc,
      keyId: rule.keyId,
    };
    let signingSecret: string | null = null;
    if (patch.data.target) {
      assertTargetAllowed(c.var.config, patch.data.target);
      // A new webhook target gets a new secret; a Slack target keeps none.
      signingSecret = patch.data.target.kind === "webhook" ? newSigningSecret() : null;
      sealed = await sealTarget(c.var.config, rule.id, patch.data.target, signingSecret);
    }
    const next: NotificationRule = {
      ...rule,
      ...sealed,
      name: patch.data.name ?? rule.name,
      enabled: patch.data.enabled ?? rule.enabled,
      params,
      updatedAt: Date.now(),
    };
    await updateRule(c.env.DB, next);
    c.var.log.info({ event: "notify.rule_updated", account: rule.accountId, rule: rule.id, outcome: "ok" });
    return c.json({ rule: ruleSummary(next), ...(signingSecret ? { signingSecret } : {}) });
  })
  .delete("/notifications/:id", async (c) => {
    const rule = await requireRule(c.env.DB, c.req.param("id"));
    await deleteRule(c.env.DB, rule.id);
    c.var.log.info({ event: "notify.rule_deleted", account: rule.accountId, rule: rule.id, outcome: "ok" });
    return c.body(null, 204);
  });
