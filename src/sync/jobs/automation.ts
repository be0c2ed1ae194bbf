/**
 * The automations' queue side: the record job reports each recorded pair change and each copied
 * note here (`fireForChange`, `fireForNotes`: claim the matching rules' runs and enqueue one
 * `automation.run` each, off the record job's critical path); `runAutomationJob` runs one claimed
 * run; `scanAutomations` (cron) fires the time-driven triggers in bounded batches and re-sends
 * runs whose message was lost. A failing action is a replayable failure on Problems; it never
 * touches the sync of the record.
 */
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Account } from "../../store/accounts.ts";
import { getAccount } from "../../store/accounts.ts";
import {
  accountsWithAutomations,
  finishRun,
  getAutomation,
  getRun,
  listAutomations,
  noteStageEntry,
  stageEntries,
  staleQueuedRuns,
  touchRun,
} from "../../store/automations.ts";
import { recordFailure } from "../../store/failures.ts";
import { findLink, listLinks } from "../../store/links.ts";
import { recordEvent } from "../../store/sync-events.ts";
import type { Logger } from "../../lib/log.ts";
import type { HandlerContext, Outcome } from "../../queue/consumer.ts";
import type { QueueMessage } from "../../queue/messages.ts";
import type { ActionDeps, AutomationPorts } from "../../automations/actions.ts";
import { RunContextSchema, stageIdOf, type RunContext, type Structure } from "../../automations/context.ts";
import { attributeChange, claimRuns, type Claimed } from "../../automations/fire.ts";
import { executeRun } from "../../automations/run.ts";
import { cronOccurrence } from "../../automations/scan.ts";
import { CRON_TRIGGERS } from "../../domain/automation-rule.ts";
import type { JobResult, PairChange } from "../engine/types.ts";
import { outcomeForError, type JobDeps } from "./deps.ts";
import { cachedAutomationRules } from "../../store/account-config.ts";
import type { AutomationRule } from "../../store/automations.ts";

type RunMessage = Extract<QueueMessage, { kind: "automation.run" }>;

/** The failure id of a run (one open failure per run; replay re-sends the run). */
export const automationFailureId = (m: { ruleId: string; occurrence: string }) =>
  `automation:${m.ruleId}:${m.occurrence}`.slice(0, 500);

/** The account's structure for names: 4Degrees pipelines and the location's HighLevel pipelines (both cached). */
/** The account's enabled rules, through the sync path's configuration cache (read per record job). */
function enabledRules(db: D1Database, accountId: string): Promise<AutomationRule[]> {
  return cachedAutomationRules(db, accountId);
}

export async function structureFor(
  ports: AutomationPorts,
  mapping: Mapping,
  locationId: string | null,
): Promise<Structure> {
  const [fourdegrees, highlevel] = await Promise.all([
    ports.fourdegrees.listPipelines(),
    locationId ? ports.highlevel(locationId).listPipelines() : Promise.resolve([]),
  ]);
  return {
    mapping,
    fourdegrees,
    highlevel: highlevel.map((p) => ({
      id: p.id,
      name: p.name,
      stages: p.stages.map((s) => ({ id: s.id, name: s.name })),
    })),
  };
}

const runMessage = (accountId: string, c: Claimed): RunMessage => ({ v: 1, kind: "automation.run", accountId, ...c });

/** A pair's HighLevel location from its link or the mapping's first location. */
function locationOf(mapping: Mapping, linkLocation: string | null): string | null {
  return linkLocation ?? mapping.pipelines[0]?.highlevelLocationId ?? null;
}

/**
 * Reports a recorded pair change to the automations: keeps the stage-entry time, attributes a
 * rule-made change to its rule, claims the matching rules' runs and enqueues them. Never throws
 * (an automation problem must not fail the sync job); returns the claims for tests.
 */
export async function fireForChange(
  ctx: HandlerContext,
  deps: JobDeps,
  account: Account,
  ports: AutomationPorts,
  change: PairChange,
  locationId: string | null,
  log: Logger,
): Promise<Claimed[]> {
  const db = ctx.env.DB;
  const mapping = account.mapping;
  if (!mapping) return [];
  try {
    const rules = await enabledRules(db, account.id);
    // Stage entries are kept from the account's first rule on (no rules, no work per change).
    if (rules.length === 0) return [];
    const loc = locationOf(mapping, locationId);
    const s = await structureFor(ports, mapping, loc);
    const now = deps.now();
    const stage = stageIdOf(change.after, s);
    if (change.fdId && stage && (!change.before || stageIdOf(change.before, s) !== stage) && !account.testMode)
      await noteStageEntry(db, account.id, change.fdId, stage, now);
    const recordId = change.source === "fourdegrees" ? change.fdId : change.hlId;
    const origin = await attributeChange(db, account.id, change.source, recordId, change.before, change.after, now);
    const runCtx: RunContext = {
      event: "change",
      source: change.source,
      fdId: change.fdId,
      hlId: change.hlId,
      locationId: loc,
      name: change.name,
      before: change.before,
      after: change.after,
      depth: origin.depth,
      madeBy: origin.madeBy,
    };
    const occurrence = `change:${change.fdId ?? "-"}:${change.hlId ?? "-"}:${change.changeId}`;
    const claimed = await claimRuns(db, account.id, runCtx, occurrence, s, now, rules);
    for (const c of claimed) await deps.enqueue(runMessage(account.id, c));
    return claimed;
  } catch (err) {
    log.warn({ event: "automation.fire", outcome: "failed", account: account.id, error: err });
    return [];
  }
}

/**
 * Reports the notes a notes job copied across (each `create_note` write names its source note):
 * a `note_added` occurrence per source note. Never throws.
 */
export async function fireForNotes(
  ctx: HandlerContext,
  deps: JobDeps,
  account: Account,
  ports: AutomationPorts,
  pair: {
    fdId: string | null;
    hlId: string | null;
    locationId: string | null;
    name: string;
    base: Record<string, unknown>;
  },
  sourceNotes: ReadonlyArray<{ side: "fourdegrees" | "highlevel"; noteId: string }>,
  log: Logger,
): Promise<Claimed[]> {
  const mapping = account.mapping;
  if (!mapping || sourceNotes.length === 0) return [];
  try {
    const rules = await enabledRules(ctx.env.DB, account.id);
    if (!rules.some((r) => r.trigger.kind === "note_added")) return [];
    const loc = locationOf(mapping, pair.locationId);
    const s = await structureFor(ports, mapping, loc);
    const out: Claimed[] = [];
    for (const note of sourceNotes) {
      const runCtx: RunContext = {
        event: "note",
        source: note.side,
        fdId: pair.fdId,
        hlId: pair.hlId,
        locationId: loc,
        name: pair.name,
        before: pair.base,
        after: pair.base,
        depth: 0,
        madeBy: null,
      };
      const claimed = await claimRuns(
        ctx.env.DB,
        account.id,
        runCtx,
        `note:${note.side}:${note.noteId}`,
        s,
        deps.now(),
        rules,
      );
      for (const c of claimed) await deps.enqueue(runMessage(account.id, c));
      out.push(...claimed);
    }
    return out;
  } catch (err) {
    log.warn({ event: "automation.fire_notes", outcome: "failed", account: account.id, error: err });
    return [];
  }
}

/**
 * The record job's report: its recorded pair change, and the notes it copied across (each
 * `create_note` write names its source note). Never throws.
 */
export async function fireFromRecordJob(
  ctx: HandlerContext,
  deps: JobDeps,
  account: Account,
  ports: AutomationPorts,
  result: JobResult,
  log: Logger,
): Promise<void> {
  const notes = result.writes.flatMap((w) => {
    const [side, noteId] = w.op === "create_note" && w.from ? w.from.split(":", 2) : [];
    return (side === "fourdegrees" || side === "highlevel") && noteId ? [{ side, noteId } as const] : [];
  });
  if (!result.change && notes.length === 0) return;
  try {
    if ((await enabledRules(ctx.env.DB, account.id)).length === 0) return;
    const link = result.fdId
      ? await findLink(ctx.env.DB, account.id, "fourdegrees", result.fdId)
      : result.hlId
        ? await findLink(ctx.env.DB, account.id, "highlevel", result.hlId)
        : null;
    if (result.change) await fireForChange(ctx, deps, account, ports, result.change, link?.hlLocationId ?? null, log);
    if (notes.length > 0 && link) {
      const name = typeof link.base["name"] === "string" ? link.base["name"] : link.fdDealId;
      const pair = {
        fdId: link.fdDealId,
        hlId: link.hlOpportunityId,
        locationId: link.hlLocationId,
        name,
        base: link.base,
      };
      await fireForNotes(ctx, deps, account, ports, pair, notes, log);
    }
  } catch (err) {
    log.warn({ event: "automation.fire", outcome: "failed", account: account.id, error: err });
  }
}

/** Action dependencies over an account's connectors (notifications go to the notify queue). */
export function actionDeps(ctx: HandlerContext, deps: JobDeps, ports: AutomationPorts, s: Structure): ActionDeps {
  return {
    db: ctx.env.DB,
    ports,
    structure: s,
    sendNotify: async (message) => {
      await ctx.env.NOTIFY_QUEUE.send(message, { contentType: "json" });
    },
    now: () => deps.now(),
  };
}

/** Runs one `automation.run` job. */
export async function runAutomationJob(msg: RunMessage, ctx: HandlerContext, deps: JobDeps): Promise<Outcome> {
  const db = ctx.env.DB;
  const log = ctx.log.child({ account: msg.accountId, rule: msg.ruleId });
  const [account, rule, run] = await Promise.all([
    getAccount(db, msg.accountId),
    getAutomation(db, msg.accountId, msg.ruleId),
    getRun(db, msg.ruleId, msg.occurrence),
  ]);
  if (!account || !rule || !run) {
    log.info({ event: "automation.run", outcome: "skipped", reason: "the rule or its run no longer exists" });
    return { kind: "ack" };
  }
  // Done, skipped or test-mode runs are final; a failed one runs again only on replay (this message).
  if (run.state !== "queued" && run.state !== "failed") return { kind: "ack" };
  const parsed = RunContextSchema.safeParse(run.context);
  if (!parsed.success || !account.mapping) {
    await finishRun(db, rule.id, run.occurrence, "skipped", { reason: "unreadable run context" }, deps.now());
    return { kind: "ack" };
  }
  const runCtx = parsed.data;
  try {
    const connectors = await deps.connectors(account, "live");
    const ports: AutomationPorts = {
      fourdegrees: connectors.fourdegrees,
      highlevel: (loc) => connectors.highlevel(loc),
    };
    const s = await structureFor(ports, account.mapping, runCtx.locationId);
    const outcome = await executeRun(
      rule,
      {
        accountId: account.id,
        ruleId: rule.id,
        ruleName: rule.name,
        occurrence: run.occurrence,
        claimedAt: run.createdAt,
        context: runCtx,
      },
      account,
      actionDeps(ctx, deps, ports, s),
    );
    await finishRun(db, rule.id, run.occurrence, outcome.state, outcome, deps.now());
    await recordEvent(db, {
      accountId: account.id,
      kind: outcome.state === "test_mode" ? "test_mode" : "sync",
      direction: "none",
      fdId: runCtx.fdId,
      hlId: runCtx.hlId,
      outcome: outcome.state === "done" ? "ok" : outcome.state,
      detail: { automation: rule.id, name: rule.name, occurrence: run.occurrence, ...outcome },
    });
    log.info({ event: "automation.run", outcome: outcome.state, occurrence: run.occurrence });
    return { kind: "ack" };
  } catch (err) {
    const outcome = outcomeForError(err);
    log.warn({ event: "automation.run", outcome: outcome.permanent ? "failed" : "retry", reason: outcome.reason });
    if (!outcome.permanent)
      return {
        kind: "retry",
        reason: outcome.reason,
        ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}),
      };
    await finishRun(db, rule.id, run.occurrence, "failed", { reason: outcome.reason }, deps.now());
    await recordFailure(db, {
      id: automationFailureId(msg),
      accountId: account.id,
      source: "permanent",
      message: msg,
      reason: `automation "${rule.name}": ${outcome.reason}`,
    });
    return { kind: "permanent", reason: outcome.reason };
  }
}

/** Pairs the scan looks at per account per tick (the next tick starts over; findings are idempotent). */
export const SCAN_PAIRS_PER_ACCOUNT = 500;
const STALE_RUN_MS = 10 * 60_000;

/**
 * The cron pass: for each account with enabled time-driven rules, its pairs' last-synced state
 * (bounded), each finding claimed once; then runs left `queued` by a lost message are re-sent.
 * Never throws; one account's problem does not stop the others.
 */
export async function scanAutomations(
  env: Env,
  deps: JobDeps,
  log: Logger,
): Promise<{ claimed: number; resent: number }> {
  const db = env.DB;
  let claimed = 0;
  for (const accountId of await accountsWithAutomations(db).catch(() => [])) {
    try {
      const account = await getAccount(db, accountId);
      if (!account?.mapping || account.status === "paused") continue;
      const rules = (await listAutomations(db, accountId, { enabledOnly: true })).filter((r) =>
        CRON_TRIGGERS.has(r.trigger.kind),
      );
      if (rules.length === 0) continue;
      const connectors = await deps.connectors(account, "reconcile");
      const ports: AutomationPorts = {
        fourdegrees: connectors.fourdegrees,
        highlevel: (loc) => connectors.highlevel(loc),
      };
      const s = await structureFor(ports, account.mapping, locationOf(account.mapping, null));
      const now = deps.now();
      let after = "";
      for (let seen = 0; seen < SCAN_PAIRS_PER_ACCOUNT;) {
        const links = await listLinks(db, accountId, { after, limit: 100 });
        if (links.length === 0) break;
        seen += links.length;
        after = links[links.length - 1]?.fdDealId ?? after;
        const entries = await stageEntries(
          db,
          accountId,
          links.map((l) => l.fdDealId),
        );
        for (const link of links) {
          const times = [link.fdUpdatedAt, link.hlUpdatedAt].map((t) => (t ? Date.parse(t) : 0));
          const facts = {
            fdId: link.fdDealId,
            base: link.base,
            lastActivityAt: Math.max(...times.filter(Number.isFinite), 0) || link.syncedAt,
            stageEntry: entries.get(link.fdDealId) ?? null,
          };
          for (const rule of rules) {
            const occurrence = cronOccurrence(rule.trigger, facts, s, now);
            if (!occurrence) continue;
            const runCtx: RunContext = {
              event: "cron",
              source: null,
              fdId: link.fdDealId,
              hlId: link.hlOpportunityId,
              locationId: link.hlLocationId,
              name: typeof link.base["name"] === "string" ? link.base["name"] : link.fdDealId,
              before: link.base,
              after: link.base,
              depth: 0,
              madeBy: null,
            };
            const fresh = await claimRuns(db, accountId, runCtx, occurrence, s, now, [rule]);
            for (const c of fresh) await deps.enqueue(runMessage(accountId, c));
            claimed += fresh.length;
          }
        }
        if (links.length < 100) break;
      }
    } catch (err) {
      log.warn({ event: "automation.scan", outcome: "failed", account: accountId, error: err });
    }
  }
  let resent = 0;
  try {
    const now = deps.now();
    for (const run of await staleQueuedRuns(db, now - STALE_RUN_MS)) {
      await touchRun(db, run.ruleId, run.occurrence, now);
      await deps.enqueue(runMessage(run.accountId, { ruleId: run.ruleId, occurrence: run.occurrence }));
      resent++;
    }
  } catch (err) {
    log.warn({ event: "automation.scan_resend", outcome: "failed", error: err });
  }
  log.info({ event: "automation.scan", outcome: "ok", claimed, resent });
  return { claimed, resent };
}
