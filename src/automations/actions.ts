/**
 * The actions of a rule: what each would do (`planAction`, for dry runs and test mode) and doing it
 * exactly once per (rule, occurrence, action) through the write ledger (`runAction`). A crash after
 * the provider call and before the ledger's completion is covered per kind: the 4Degrees reminder
 * and deal writes replay under the ledger key as their Idempotency-Key; a HighLevel task is found
 * before it is created again (same contact, title and due date); tags and field/stage writes are
 * idempotent by nature; a notification is claimed once in its own delivery table.
 */
import type { Action } from "../domain/automation-rule.ts";
import type { DealCrm } from "../domain/port.ts";
import type { HighLevelAdapter } from "../highlevel/adapter.ts";
import { AppError } from "../lib/errors.ts";
import { sha256 } from "../lib/hash.ts";
import { recordOrigin } from "../store/automations.ts";
import { beginWrite, completeWrite, ledgerIdempotencyKey, type LedgerKey } from "../store/ledger.ts";
import { claimDelivery, getDelivery, getRule as getNotificationRule } from "../store/notifications.ts";
import type { DealState } from "../notify/events.ts";
import { findStage, stageIdOf, type RunContext, type Structure } from "./context.ts";

/** The connectors actions write through (the job's, gated in the live lane). */
export interface AutomationPorts {
  fourdegrees: DealCrm;
  highlevel(locationId: string): HighLevelAdapter;
}

/** What one run needs besides its rule. */
export interface ActionDeps {
  db: D1Database;
  ports: AutomationPorts;
  structure: Structure;
  /** Sends a `notify.deliver` message to the notification queue. */
  sendNotify(message: { v: 1; kind: "notify.deliver"; ruleId: string; changeKey: string }): Promise<void>;
  now(): number;
}

/** The run an action belongs to. */
export interface RunRef {
  accountId: string;
  ruleId: string;
  ruleName: string;
  occurrence: string;
  /** When the run was claimed (epoch ms): due dates count from here, so a retry computes the same ones. */
  claimedAt: number;
  context: RunContext;
}

/** One action's outcome. */
export interface ActionResult {
  index: number;
  kind: Action["kind"];
  /** `done` now, `already` done by an earlier attempt, `planned` (dry run / test mode). */
  status: "done" | "already" | "planned";
  summary: string;
  targetId: string | null;
}

const DAY_MS = 86_400_000;
const dueAt = (run: RunRef, days: number) => new Date(run.claimedAt + days * DAY_MS).toISOString();
const sameInstant = (a: string, b: string) => Date.parse(a) === Date.parse(b);

/** A permanent problem with an action (a missing record or a name that matches nothing): no retry helps. */
function unusable(message: string): AppError {
  return new AppError("unprocessable", message);
}

const targetSideOf = (a: Action): LedgerKey["targetSide"] =>
  a.kind === "fd_reminder" || ((a.kind === "move_stage" || a.kind === "set_field") && a.side === "fourdegrees")
    ? "fourdegrees"
    : "highlevel";

/** The words for what an action does (dry run, test mode, the run's record). */
export function planAction(a: Action, run: RunRef, s: Structure): string {
  const ctx = run.context;
  switch (a.kind) {
    case "hl_task":
      return `create HighLevel task "${a.title}" on the contact of opportunity ${ctx.hlId ?? "(none)"}, due ${dueAt(run, a.dueInDays).slice(0, 10)}, for ${ownerOf(ctx) ?? "nobody"}`;
    case "fd_reminder":
      return `create 4Degrees reminder "${a.title}" on deal ${ctx.fdId ?? "(none)"}, due ${dueAt(run, a.dueInDays).slice(0, 10)}, for ${ownerOf(ctx) ?? "nobody"}`;
    case "hl_tag":
      return `${a.op} tag "${a.tag}" ${a.op === "add" ? "on" : "from"} the contact of opportunity ${ctx.hlId ?? "(none)"}`;
    case "move_stage": {
      const found = findStage(ctx.after, s, a.stage);
      return `move the ${a.side === "fourdegrees" ? "4Degrees deal" : "HighLevel opportunity"} to stage "${a.stage}"${found ? "" : " (no such stage in its pipeline)"}`;
    }
    case "set_field":
      return `set field ${a.field} to ${JSON.stringify(a.value)} on ${a.side === "fourdegrees" ? "4Degrees" : "HighLevel"}`;
    case "notify":
      return `post through notification rule ${a.notificationRuleId}${a.text ? `: "${a.text}"` : ""}`;
  }
}

const ownerOf = (ctx: RunContext): string | null =>
  typeof ctx.after["owner"] === "string" ? ctx.after["owner"] : null;

/** Runs action `index` of a rule once for the run's occurrence (skips it when the ledger says done). */
export async function runAction(a: Action, index: number, run: RunRef, d: ActionDeps): Promise<ActionResult> {
  const key: LedgerKey = {
    accountId: run.accountId,
    targetSide: targetSideOf(a),
    sourceRecord: `automation:${run.ruleId}:${index}`,
    changeHash: (await sha256(run.occurrence)).slice(0, 40),
  };
  const summary = planAction(a, run, d.structure);
  const begun = await beginWrite(d.db, key, `automation.${a.kind}`, d.now());
  if (begun.entry.state === "done")
    return { index, kind: a.kind, status: "already", summary, targetId: begun.entry.targetId };
  // `pending` on a retry: the earlier attempt may have written before it crashed.
  const retry = !begun.fresh;
  const targetId = await perform(a, run, d, key, retry);
  await completeWrite(d.db, key, targetId, d.now());
  return { index, kind: a.kind, status: "done", summary, targetId };
}

async function perform(a: Action, run: RunRef, d: ActionDeps, key: LedgerKey, retry: boolean): Promise<string | null> {
  const ctx = run.context;
  const owner = ownerOf(ctx);
  switch (a.kind) {
    case "hl_task": {
      const { hl, contactId } = await contactOf(run, d);
      const due = dueAt(run, a.dueInDays);
      if (retry) {
        const found = (await hl.listTasks(contactId)).find((t) => t.title === a.title && sameInstant(t.dueDate, due));
        if (found) return found.id;
      }
      const assignee = owner
        ? (await hl.listUsers()).find((u) => (u.email ?? "").toLowerCase() === owner.toLowerCase())
        : undefined;
      const task = await hl.createTask(contactId, {
        title: a.title,
        body: a.body,
        dueDate: due,
        completed: false,
        ...(assignee ? { assignedTo: assignee.id } : {}),
      });
      return task.id;
    }
    case "fd_reminder": {
      if (!ctx.fdId) throw unusable("the pair has no 4Degrees deal to add a reminder to");
      const users = owner ? await d.ports.fourdegrees.listUsers() : [];
      const assignee = users.find((u) => owner !== null && (u.email ?? "").toLowerCase() === owner.toLowerCase());
      const reminder = await d.ports.fourdegrees.createReminder(
        ctx.fdId,
        { title: a.title, body: a.body, dueAt: dueAt(run, a.dueInDays), assigneeId: assignee?.id ?? null },
        { idempotencyKey: ledgerIdempotencyKey(key) },
      );
      return reminder.id;
    }
    case "hl_tag": {
      const { hl, contactId } = await contactOf(run, d);
      if (a.op === "add") await hl.addTags(contactId, [a.tag]);
      else await hl.removeTags(contactId, [a.tag]);
      return contactId;
    }
    case "move_stage": {
      const found = findStage(ctx.after, d.structure, a.stage);
      if (!found) throw unusable(`no stage named "${a.stage}" in the deal's pipeline`);
      const fdStage = d.structure.fourdegrees.flatMap((p) => p.stages).find((st) => st.id === found.fdStageId);
      const patch: Record<string, unknown> =
        fdStage && fdStage.kind !== "open" ? { status: fdStage.kind } : { stage: found.fdStageId };
      if (stageIdOf(ctx.after, d.structure) === found.fdStageId) return found.fdStageId;
      if (a.side === "fourdegrees") {
        if (!ctx.fdId) throw unusable("the pair has no 4Degrees deal");
        await origin(d, run, "fourdegrees", ctx.fdId, patch);
        await d.ports.fourdegrees.updateDeal(
          ctx.fdId,
          { stage: { id: found.fdStageId, name: null } },
          { idempotencyKey: ledgerIdempotencyKey(key) },
        );
        return ctx.fdId;
      }
      if (!ctx.hlId || !ctx.locationId) throw unusable("the pair has no HighLevel opportunity");
      if (!found.hlStageId) throw unusable(`stage "${a.stage}" has no HighLevel stage in the mapping`);
      await origin(d, run, "highlevel", ctx.hlId, patch);
      await d.ports.highlevel(ctx.locationId).updateOpportunity(ctx.hlId, {
        pipelineStageId: found.hlStageId,
        ...(found.hlPipelineId ? { pipelineId: found.hlPipelineId } : {}),
      });
      return ctx.hlId;
    }
    case "set_field": {
      const field = d.structure.mapping.fields.find((f) => f.key === a.field);
      if (!field) throw unusable(`no mapped field "${a.field}"`);
      const patch = { [`field.${a.field}`]: a.value };
      if (a.side === "fourdegrees") {
        if (!ctx.fdId) throw unusable("the pair has no 4Degrees deal");
        await origin(d, run, "fourdegrees", ctx.fdId, patch);
        await d.ports.fourdegrees.updateDeal(
          ctx.fdId,
          { fields: { [field.fourdegreesFieldId]: a.value } },
          { idempotencyKey: ledgerIdempotencyKey(key) },
        );
        return ctx.fdId;
      }
      if (!ctx.hlId || !ctx.locationId) throw unusable("the pair has no HighLevel opportunity");
      await origin(d, run, "highlevel", ctx.hlId, patch);
      await d.ports.highlevel(ctx.locationId).updateOpportunity(ctx.hlId, {
        customFields: [{ id: field.highlevelFieldId, field_value: a.value }],
      });
      return ctx.hlId;
    }
    case "notify": {
      const target = await getNotificationRule(d.db, a.notificationRuleId);
      if (!target || target.accountId !== run.accountId)
        throw unusable(`notification rule ${a.notificationRuleId} does not exist`);
      const changeKey = `automation:${run.ruleId}:${run.occurrence}`;
      const event = {
        kind: "deal_changed" as const,
        accountId: run.accountId,
        changeId: `${run.ruleId}:${run.occurrence}`.slice(0, 500),
        dealName: a.text ? `${ctx.name} — ${a.text}` : `${ctx.name} — ${run.ruleName}`,
        fourdegreesId: ctx.fdId,
        highlevelId: ctx.hlId,
        source: ctx.source ?? "fourdegrees",
        before: ctx.before ? dealState(ctx.before, d.structure) : null,
        after: dealState(ctx.after, d.structure),
      };
      const claimed = await claimDelivery(
        d.db,
        { ruleId: target.id, changeKey, accountId: run.accountId, event },
        d.now(),
      );
      // Claimed earlier but not completed here: the earlier attempt may have died before sending.
      const queued = claimed || (await getDelivery(d.db, target.id, changeKey))?.state === "queued";
      if (queued) await d.sendNotify({ v: 1, kind: "notify.deliver", ruleId: target.id, changeKey });
      return target.id;
    }
  }
}

async function contactOf(run: RunRef, d: ActionDeps): Promise<{ hl: HighLevelAdapter; contactId: string }> {
  const { hlId, locationId } = run.context;
  if (!hlId || !locationId) throw unusable("the pair has no HighLevel opportunity");
  const hl = d.ports.highlevel(locationId);
  const opp = await hl.getOpportunity(hlId);
  if (!opp) throw unusable(`HighLevel opportunity ${hlId} is gone`);
  if (!opp.contactId) throw unusable(`HighLevel opportunity ${hlId} has no contact`);
  return { hl, contactId: opp.contactId };
}

async function origin(
  d: ActionDeps,
  run: RunRef,
  side: "fourdegrees" | "highlevel",
  recordId: string,
  patch: Record<string, unknown>,
): Promise<void> {
  // Recorded before the write: the change it causes may be synced before this call returns.
  await recordOrigin(d.db, run.accountId, {
    side,
    recordId,
    ruleId: run.ruleId,
    depth: run.context.depth + 1,
    patch,
    createdAt: d.now(),
  });
}

/** A flat record as the notifier's deal state (stage by its 4Degrees id and name). */
function dealState(flat: Record<string, unknown>, s: Structure): DealState {
  const stageId = stageIdOf(flat, s);
  const stageName = s.fourdegrees.flatMap((p) => p.stages).find((st) => st.id === stageId)?.name ?? null;
  const status = flat["status"] === "won" || flat["status"] === "lost" ? flat["status"] : "open";
  const amount = flat["value"];
  const currency = typeof flat["currency"] === "string" ? flat["currency"] : s.mapping.currency;
  return {
    stageId,
    stageName,
    status,
    value: typeof amount === "number" ? { amountMinor: amount, currency } : null,
  };
}
