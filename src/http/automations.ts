/**
 * Admin API for an account's automation rules (mounted under `/api`, behind `adminAuth`); the rule
 * shape is src/domain/automation-rule.ts, documented in docs/automations.md:
 *
 * - `GET    /api/accounts/{id}/automations`                 rules
 * - `POST   /api/accounts/{id}/automations`                 create (409 when the name is taken)
 * - `GET    /api/accounts/{id}/automations/{ruleId}`        one rule and its latest runs
 * - `PATCH  /api/accounts/{id}/automations/{ruleId}`        name, enabled, trigger, conditions, actions
 * - `DELETE /api/accounts/{id}/automations/{ruleId}`        remove (its runs go with it)
 * - `POST   /api/accounts/{id}/automations/{ruleId}/test`   dry run against a paired record, named by
 *   `{"fourdegreesDealId": "…"}` or `{"highlevelOpportunityId": "…"}`: what it would do, nothing done
 */
import { Hono } from "hono";
import * as z from "zod";
import type { Config } from "../config.ts";
import {
  AutomationPatchSchema,
  CRON_TRIGGERS,
  NewAutomationSchema,
  type Action,
  type NewAutomation,
} from "../domain/automation-rule.ts";
import { AppError, zodIssues } from "../lib/errors.ts";
import { getAccount, type Account } from "../store/accounts.ts";
import {
  deleteAutomation,
  getAutomation,
  insertAutomation,
  listAutomations,
  listRuns,
  updateAutomation,
  type AutomationRule,
} from "../store/automations.ts";
import { findLink } from "../store/links.ts";
import { getRule as getNotificationRule } from "../store/notifications.ts";
import type { AutomationPorts } from "../automations/actions.ts";
import type { RunContext } from "../automations/context.ts";
import { dryRun, type DryRun } from "../automations/run.ts";
import { liveConnectors, type ConnectorFactory } from "../sync/connectors.ts";
import { structureFor } from "../sync/jobs/automation.ts";
import type { AppEnv } from "./context.ts";

const AccountId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "not an account id");
const RuleId = z.string().regex(/^auto_[a-f0-9]{20}$/, "not an automation rule id");

const TestBody = z.union([
  z.object({ fourdegreesDealId: z.string().min(1).max(200) }).strict(),
  z.object({ highlevelOpportunityId: z.string().min(1).max(200) }).strict(),
]);

function newRuleId(): string {
  return `auto_${[...crypto.getRandomValues(new Uint8Array(10))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function invalid(what: string, error: z.ZodError): AppError {
  const text = error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
  return new AppError("bad_request", `invalid ${what}: ${text}`, { details: zodIssues(error) });
}

const badField = (path: string, message: string) =>
  new AppError("bad_request", `${path}: ${message}`, { details: [{ path, message }] });

/** Validates `body` as a new rule: 400 naming the field. */
export function parseNewAutomation(body: unknown): NewAutomation {
  const parsed = NewAutomationSchema.safeParse(body);
  if (!parsed.success) throw invalid("rule", parsed.error);
  return parsed.data;
}

/** The account, or 404. */
async function requireAccount(db: D1Database, raw: string): Promise<Account> {
  const id = AccountId.safeParse(raw);
  if (!id.success) throw badField("id", "not an account id");
  const account = await getAccount(db, id.data);
  if (!account) throw new AppError("not_found", `no account ${id.data}`);
  return account;
}

async function requireRule(db: D1Database, accountId: string, raw: string): Promise<AutomationRule> {
  const id = RuleId.safeParse(raw);
  const rule = id.success ? await getAutomation(db, accountId, id.data) : null;
  if (!rule) throw new AppError("not_found", `no automation rule ${raw} in account ${accountId}`);
  return rule;
}

/**
 * What the store's schema cannot check: field keys the account's mapping has, notification rules
 * of the same account, a mapping at all. 400 naming the part.
 */
async function checkAgainstAccount(
  db: D1Database,
  account: Account,
  rule: Pick<NewAutomation, "trigger" | "conditions" | "actions">,
): Promise<void> {
  const keys = new Set((account.mapping?.fields ?? []).map((f) => f.key));
  const known = (key: string, path: string) => {
    if (!keys.has(key)) throw badField(path, `the account's mapping has no field "${key}"`);
  };
  if (rule.trigger.kind === "field_set") known(rule.trigger.field, "trigger.field");
  rule.conditions.forEach((c, i) => c.kind === "field" && known(c.field, `conditions.${i}.field`));
  for (const [i, a] of rule.actions.entries()) {
    if (a.kind === "set_field") known(a.field, `actions.${i}.field`);
    if (a.kind === "notify") {
      const target = await getNotificationRule(db, a.notificationRuleId);
      if (!target || target.accountId !== account.id)
        throw badField(`actions.${i}.notificationRuleId`, "no such notification rule in this account");
    }
  }
}

/** 409 when another rule of the account already has `name`. */
async function checkNameFree(db: D1Database, accountId: string, name: string, except?: string): Promise<void> {
  const clash = (await listAutomations(db, accountId)).find(
    (r) => r.id !== except && r.name.toLowerCase() === name.toLowerCase(),
  );
  if (clash) throw new AppError("conflict", `a rule named "${name}" already exists (${clash.id})`);
}

/** Creates a rule for an existing account (400 / 404 / 409 with reasons). */
export async function createAutomation(
  db: D1Database,
  accountId: string,
  input: NewAutomation,
  now: number = Date.now(),
): Promise<AutomationRule> {
  const account = await requireAccount(db, accountId);
  await checkAgainstAccount(db, account, input);
  await checkNameFree(db, account.id, input.name);
  const rule: AutomationRule = {
    id: newRuleId(),
    accountId: account.id,
    name: input.name,
    enabled: input.enabled,
    v: 1,
    trigger: input.trigger,
    conditions: input.conditions,
    actions: input.actions,
    createdAt: now,
    updatedAt: now,
  };
  await insertAutomation(db, rule);
  return rule;
}

/** Applies a validated patch to a rule (400 / 404 / 409). */
export async function patchAutomation(
  db: D1Database,
  accountId: string,
  ruleId: string,
  body: unknown,
): Promise<AutomationRule> {
  const account = await requireAccount(db, accountId);
  const rule = await requireRule(db, account.id, ruleId);
  const patch = AutomationPatchSchema.safeParse(body);
  if (!patch.success) throw invalid("patch", patch.error);
  const next: AutomationRule = { ...rule, ...patch.data, updatedAt: Date.now() };
  await checkAgainstAccount(db, account, next);
  if (patch.data.name !== undefined) await checkNameFree(db, account.id, patch.data.name, rule.id);
  if (!(await updateAutomation(db, next))) throw new AppError("not_found", `no automation rule ${ruleId}`);
  return next;
}

/** Removes a rule (404 when it is not the account's). */
export async function removeAutomation(db: D1Database, accountId: string, ruleId: string): Promise<void> {
  const account = await requireAccount(db, accountId);
  const rule = await requireRule(db, account.id, ruleId);
  await deleteAutomation(db, account.id, rule.id);
}

/**
 * Dry run of a rule against a paired record: the pair's last-synced state as if it had just reached
 * it (a change trigger sees no earlier state; a time trigger is evaluated as the cron scan would).
 * 404 when the record is unknown, 409 when it is not paired (nothing to act on yet).
 */
export async function testAutomation(
  env: Env,
  config: Config,
  accountId: string,
  ruleId: string,
  body: unknown,
  connectors: ConnectorFactory = liveConnectors(env, config),
  now: number = Date.now(),
): Promise<DryRun & { record: { fourdegreesDealId: string; highlevelOpportunityId: string } }> {
  const account = await requireAccount(env.DB, accountId);
  const rule = await requireRule(env.DB, account.id, ruleId);
  const named = TestBody.safeParse(body);
  if (!named.success) throw invalid("test request (give fourdegreesDealId or highlevelOpportunityId)", named.error);
  if (!account.mapping) throw new AppError("conflict", "the account has no mapping yet: nothing can be paired");
  const [side, id] =
    "fourdegreesDealId" in named.data
      ? (["fourdegrees", named.data.fourdegreesDealId] as const)
      : (["highlevel", named.data.highlevelOpportunityId] as const);
  const link = await findLink(env.DB, account.id, side, id);
  const built = await connectors(account, "live");
  const ports: AutomationPorts = { fourdegrees: built.fourdegrees, highlevel: (loc) => built.highlevel(loc) };
  if (!link || link.state !== "active") {
    const exists =
      side === "fourdegrees"
        ? (await ports.fourdegrees.getDeal(id)) !== null
        : (
            await Promise.all(
              account.locations.map((loc) =>
                ports
                  .highlevel(loc)
                  .getOpportunity(id)
                  .catch(() => null),
              ),
            )
          ).some((o) => o !== null);
    if (!exists)
      throw new AppError("not_found", `no ${side === "fourdegrees" ? "4Degrees deal" : "HighLevel opportunity"} ${id}`);
    throw new AppError("conflict", `${id} is not paired yet (it syncs first; then rules act on the pair)`);
  }
  const s = await structureFor(ports, account.mapping, link.hlLocationId);
  const context: RunContext = {
    event: CRON_TRIGGERS.has(rule.trigger.kind) ? "cron" : "change",
    source: side,
    fdId: link.fdDealId,
    hlId: link.hlOpportunityId,
    locationId: link.hlLocationId,
    name: typeof link.base["name"] === "string" ? link.base["name"] : link.fdDealId,
    before: null,
    after: link.base,
    depth: 0,
    madeBy: null,
  };
  const result = await dryRun(
    rule,
    { accountId: account.id, ruleId: rule.id, ruleName: rule.name, occurrence: "dry-run", claimedAt: now, context },
    {
      db: env.DB,
      ports,
      structure: s,
      sendNotify: () => Promise.reject(new Error("a dry run sends nothing")),
      now: () => now,
    },
    context.event === "cron",
  );
  return { ...result, record: { fourdegreesDealId: link.fdDealId, highlevelOpportunityId: link.hlOpportunityId } };
}

/** A rule as the API answers it. */
export function automationJson(r: AutomationRule) {
  return {
    id: r.id,
    accountId: r.accountId,
    name: r.name,
    enabled: r.enabled,
    v: r.v,
    trigger: r.trigger,
    conditions: r.conditions,
    actions: r.actions satisfies Action[],
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

const readJson = (c: { req: { json(): Promise<unknown> } }) => c.req.json().catch(() => null);

export const automationsApi = new Hono<AppEnv>()
  .get("/accounts/:id/automations", async (c) => {
    const account = await requireAccount(c.env.DB, c.req.param("id"));
    return c.json({ rules: (await listAutomations(c.env.DB, account.id)).map(automationJson) });
  })
  .post("/accounts/:id/automations", async (c) => {
    const input = parseNewAutomation(await readJson(c));
    const rule = await createAutomation(c.env.DB, c.req.param("id"), input);
    c.var.log.info({ event: "automation.rule_created", account: rule.accountId, rule: rule.id, outcome: "ok" });
    return c.json({ rule: automationJson(rule) }, 201);
  })
  .get("/accounts/:id/automations/:ruleId", async (c) => {
    const account = await requireAccount(c.env.DB, c.req.param("id"));
    const rule = await requireRule(c.env.DB, account.id, c.req.param("ruleId"));
    const runs = await listRuns(c.env.DB, account.id, { ruleId: rule.id, limit: 50 });
    return c.json({ rule: automationJson(rule), runs });
  })
  .patch("/accounts/:id/automations/:ruleId", async (c) => {
    const rule = await patchAutomation(c.env.DB, c.req.param("id"), c.req.param("ruleId"), await readJson(c));
    c.var.log.info({ event: "automation.rule_updated", account: rule.accountId, rule: rule.id, outcome: "ok" });
    return c.json({ rule: automationJson(rule) });
  })
  .delete("/accounts/:id/automations/:ruleId", async (c) => {
    await removeAutomation(c.env.DB, c.req.param("id"), c.req.param("ruleId"));
    return c.body(null, 204);
  })
  .post("/accounts/:id/automations/:ruleId/test", async (c) => {
    const result = await testAutomation(
      c.env,
      c.var.config,
      c.req.param("id"),
      c.req.param("ruleId"),
      await readJson(c),
    );
    return c.json(result);
  });
