/** Shared steps of the automation tests: rules stored as the API stores them, runs and tasks read back. */
import { env } from "cloudflare:workers";
import { NewAutomationSchema, type NewAutomationInput } from "../../../src/domain/automation-rule.ts";
import { insertAutomation, listRuns, type AutomationRule } from "../../../src/store/automations.ts";
import { ACCOUNT, type World } from "../sync/world.ts";

/** Stores a rule for the world's account (validated like the API does). */
export async function addRule(input: NewAutomationInput, accountId = ACCOUNT): Promise<AutomationRule> {
  const r = NewAutomationSchema.parse(input);
  const now = Date.now();
  const rule: AutomationRule = {
    id: `auto_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`,
    accountId,
    name: r.name,
    enabled: r.enabled,
    v: 1,
    trigger: r.trigger,
    conditions: r.conditions,
    actions: r.actions,
    createdAt: now,
    updatedAt: now,
  };
  await insertAutomation(env.DB, rule);
  return rule;
}

/** The runs of one rule. */
export const runsOf = (ruleId: string) => listRuns(env.DB, ACCOUNT, { ruleId });

/** Every HighLevel task of the world's location, as the sandbox's control API lists them. */
export async function tasksOf(
  w: World,
): Promise<Array<{ id: string; title: string; contactId: string; assignedTo: string | null; dueDate: string }>> {
  const res = await w.sb.fetch(new Request(`https://sandbox.test/_sandbox/highlevel/tasks?locationId=${w.locationId}`));
  const body: {
    tasks: Array<{ id: string; title: string; contactId: string; assignedTo: string | null; dueDate: string }>;
  } = await res.json();
  return body.tasks;
}

/** The HighLevel opportunity linked to a 4Degrees deal. */
export async function hlIdOf(w: World, fdId: string): Promise<string> {
  const link = await w.linkOf("fourdegrees", fdId);
  if (!link) throw new Error(`no link for ${fdId}`);
  return link.hlOpportunityId;
}

/** The 4Degrees reminders of one deal, from the sandbox's store, oldest first. */
export function remindersOf(w: World, dealId: string) {
  return [...w.sb.fourdegrees.store.reminders.values()]
    .filter((r) => r.deal_id === dealId)
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
}
