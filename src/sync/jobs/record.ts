/**
 * The `sync.record` job: run the engine for one record, clear the dirty mark only if no newer change
 * arrived (else run once more), log one line, write one event row and tell the notifier.
 */
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Flat, Pipeline } from "../../domain/port.ts";
import type { Logger } from "../../lib/log.ts";
import type { DealState } from "../../notify/events.ts";
import { notifyChange } from "../../notify/notify.ts";
import type { HandlerContext, Outcome } from "../../queue/consumer.ts";
import type { QueueMessage } from "../../queue/messages.ts";
import { recordFailure } from "../../store/failures.ts";
import { clearIfUnchanged, getPending } from "../../store/pending.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { SyncEngine } from "../engine/engine.ts";
import type { EngineDeps, JobResult, PairChange } from "../engine/types.ts";
import { pairForDeal } from "../engine/mapping.ts";
import type { AccountConnectors } from "../connectors.ts";
import { fireFromRecordJob } from "./automation.ts";
import { countCalls, markAndEnqueue, outcomeForError, type JobDeps } from "./deps.ts";
import { enqueueAttachments } from "./attachment-triggers.ts";
import { cachedAccount } from "../../store/account-config.ts";

/** The stable failure id of a record job (one open failure per record; replay re-runs it). */
export function failureIdFor(msg: Extract<QueueMessage, { kind: "sync.record" }>): string {
  return `record:${msg.accountId}:${msg.side}:${msg.record}:${msg.recordId}`;
}

/** Runs one `sync.record` job. Exported for tests that drive the engine directly. */
export async function runRecordJob(
  msg: Extract<QueueMessage, { kind: "sync.record" }>,
  ctx: HandlerContext,
  deps: JobDeps,
): Promise<Outcome> {
  const db = ctx.env.DB;
  const started = deps.now();
  const log = ctx.log.child({ account: msg.accountId });
  const account = await cachedAccount(db, msg.accountId);
  if (!account) {
    log.warn({ event: "sync.record", outcome: "skipped", reason: "account no longer exists", record: msg.recordId });
    return { kind: "ack" };
  }
  if (account.status === "paused") {
    // The dirty mark stays: resuming the account re-enqueues every marked record.
    log.info({ event: "sync.record", outcome: "skipped", reason: "account paused", record: msg.recordId });
    return { kind: "ack" };
  }
  // A job its own batch made due knows the mark it set (`markedSeq`); any other reads it.
  const pending =
    msg.markedSeq !== undefined && !msg.force
      ? { seq: msg.markedSeq }
      : await getPending(db, account.id, msg.side, msg.record, msg.recordId);
  if (!pending && !msg.force) {
    // Already synced by an earlier job for the same burst: nothing to re-read.
    log.debug({ event: "sync.record", outcome: "noop", reason: "record already clean", record: msg.recordId });
    return { kind: "ack" };
  }
  if (!account.mapping) {
    await recordEvent(db, {
      accountId: account.id,
      kind: "sync",
      direction: "none",
      fdId: msg.side === "fourdegrees" ? msg.recordId : null,
      hlId: msg.side === "highlevel" ? msg.recordId : null,
      outcome: "skipped",
      detail: { reason: "the account has no mapping yet (PUT /api/accounts/{id}/mapping)" },
    });
    if (pending) await clearIfUnchanged(db, account.id, msg.side, msg.record, msg.recordId, pending.seq);
    return { kind: "ack" };
  }

  let calls = 0;
  let result: JobResult;
  let engine: SyncEngine | null = null;
  let connectors: AccountConnectors | null = null;
  try {
    const built = await deps.connectors(account, msg.lane);
    connectors = built;
    const engineDeps: EngineDeps = {
      db,
      fourdegrees: countCalls(built.fourdegrees, () => calls++),
      highlevel: (loc) => countCalls(built.highlevel(loc), () => calls++),
      ourActor: built.ourActor,
      log,
      now: deps.now,
      ...(deps.hooks ? { hooks: deps.hooks } : {}),
    };
    engine = new SyncEngine(engineDeps, account, account.mapping);
    // Live jobs read the event's side first and stop there on an echo (SyncEngine.syncDeal).
    const sourceFirst = msg.lane === "live" && !msg.force;
    result =
      msg.record === "deal"
        ? await engine.syncDeal(msg.side, msg.recordId, msg.locationId, { sourceFirst })
        : await engine.syncNotes(msg.side, msg.recordId);
  } catch (err) {
    const outcome = outcomeForError(err);
    const ms = deps.now() - started;
    if (outcome.permanent) {
      await recordFailure(db, {
        id: failureIdFor(msg),
        accountId: account.id,
        source: "permanent",
        message: msg,
        reason: outcome.reason,
      });
      // The failure row remembers the record now; a clean mark lets later changes enqueue again.
      if (pending) await clearIfUnchanged(db, account.id, msg.side, msg.record, msg.recordId, pending.seq);
      await recordEvent(db, {
        accountId: account.id,
        kind: "failure",
        direction: null,
        fdId: msg.side === "fourdegrees" ? msg.recordId : null,
        hlId: msg.side === "highlevel" ? msg.recordId : null,
        outcome: "failed",
        detail: { reason: outcome.reason, calls },
      });
      await notifyChange(
        ctx.env,
        ctx.config,
        {
          kind: "sync_failure",
          accountId: account.id,
          failureId: failureIdFor(msg),
          reason: outcome.reason,
          fourdegreesId: msg.side === "fourdegrees" ? msg.recordId : null,
          highlevelId: msg.side === "highlevel" ? msg.recordId : null,
        },
        log,
      );
    }
    log.warn({
      event: "sync.record",
      record: msg.recordId,
      side: msg.side,
      kind: msg.record,
      outcome: outcome.permanent ? "failed" : "retry",
      reason: outcome.reason,
      calls,
      duration_ms: ms,
      attempts: ctx.attempts,
    });
    return outcome.kind === "retry"
      ? {
          kind: "retry",
          reason: outcome.reason,
          ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}),
        }
      : { kind: "permanent", reason: outcome.reason };
  }

  const ms = deps.now() - started;
  log.info({
    event: "sync.record",
    direction: result.direction,
    record: msg.recordId,
    side: msg.side,
    kind: msg.record,
    fourdegrees_id: result.fdId,
    highlevel_id: result.hlId,
    outcome: result.outcome,
    calls,
    writes: result.writes.length,
    duration_ms: ms,
    ...(result.reason ? { reason: result.reason } : {}),
  });
  if (result.outcome === "retry")
    return {
      kind: "retry",
      reason: result.reason ?? "retry",
      ...(result.retryAfterSeconds ? { delaySeconds: result.retryAfterSeconds } : {}),
    };

  // A job that found nothing to do leaves no event (its log line says so): the trail is of changes.
  if (!changedNothing(result))
    await recordEvent(db, {
      accountId: account.id,
      kind:
        result.outcome === "test_mode"
          ? "test_mode"
          : result.outcome === "echo"
            ? "echo"
            : msg.record === "notes"
              ? "note"
              : "sync",
      direction: result.direction,
      fdId: result.fdId,
      hlId: result.hlId,
      outcome: result.outcome,
      detail: {
        trigger: `${msg.side}:${msg.record}:${msg.recordId}`,
        writes: result.writes,
        conflicts: result.conflicts.length,
        calls,
        ms,
        ...(result.reason ? { reason: result.reason } : {}),
        ...result.detail,
      },
    });
  // Team notifications of the pair's change (never throws; a notifier problem never fails the job).
  if (result.change && engine && !account.testMode)
    await notifyDealChange(ctx, engine, account.mapping, account.id, result.change, log);
  // Automation rules (never throws; their actions run as their own `automation.run` jobs).
  if (connectors) await fireFromRecordJob(ctx, deps, account, connectors, result, log);
  // A pair just created: its existing notes follow.
  if (msg.record === "deal" && result.writes.some((w) => w.op === "create") && result.fdId)
    await markAndEnqueue(db, deps, {
      accountId: account.id,
      side: "fourdegrees",
      kind: "notes",
      recordId: result.fdId,
      lane: msg.lane,
    });
  // And its attachments (src/sync/jobs/attachments.ts), when the mapping names the file field.
  if (msg.record === "deal" && result.writes.some((w) => w.op === "create") && result.fdId)
    await enqueueAttachments(ctx, deps, account.id, "fourdegrees", result.fdId, null, "pair_created", account);
  if (pending && !(await clearIfUnchanged(db, account.id, msg.side, msg.record, msg.recordId, pending.seq))) {
    // A newer change arrived while this job ran: run once more (as a new message, so a busy
    // record never exhausts this message's retries).
    await deps.enqueue(
      {
        v: 1,
        kind: "sync.record",
        accountId: account.id,
        side: msg.side,
        record: msg.record,
        recordId: msg.recordId,
        locationId: msg.locationId,
        lane: msg.lane,
      },
      deps.coalesceDelaySeconds,
    );
  }
  return { kind: "ack" };
}

/**
 * A `noop` with nothing to say: no write, conflict, reason, skipped field or other detail, and no
 * field the merge wanted to change. Anything an operator could ask about keeps its event.
 */
function changedNothing(result: JobResult): boolean {
  if (result.outcome !== "noop" || result.writes.length > 0 || result.conflicts.length > 0 || result.reason)
    return false;
  const { changed, ...rest } = result.detail ?? {};
  const none =
    changed === undefined ||
    (typeof changed === "object" &&
      changed !== null &&
      Object.values(changed).every((v) => Array.isArray(v) && v.length === 0));
  return none && Object.keys(rest).length === 0;
}

/** A canonical (flat) record as the notifier's deal state: the 4Degrees stage (id and name), status and value. */
export function dealStateOf(flat: Flat, mapping: Mapping, pipelines: readonly Pipeline[]): DealState {
  const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
  const status = flat["status"] === "won" || flat["status"] === "lost" ? flat["status"] : "open";
  const pair = pairForDeal(mapping, str(flat["pipeline"]));
  const stages = pipelines.find((p) => p.id === pair?.fourdegreesPipelineId)?.stages ?? [];
  // A closed record has no canonical stage: name the 4Degrees won/lost stage it sits in.
  const stageId =
    str(flat["stage"]) ??
    (status === "won" ? pair?.wonStageId : status === "lost" ? pair?.lostStageId : null) ??
    (status === "open" ? null : (stages.find((s) => s.kind === status)?.id ?? null));
  const amount = flat["value"];
  const currency = str(flat["currency"]) ?? mapping.currency;
  return {
    stageId,
    stageName: stages.find((s) => s.id === stageId)?.name ?? null,
    status,
    value: typeof amount === "number" ? { amountMinor: amount, currency } : null,
  };
}

async function notifyDealChange(
  ctx: HandlerContext,
  engine: SyncEngine,
  mapping: Mapping,
  accountId: string,
  change: PairChange,
  log: Logger,
): Promise<void> {
  try {
    const { pipelines } = await engine.lookups.fourdegrees();
    await notifyChange(
      ctx.env,
      ctx.config,
      {
        kind: "deal_changed",
        accountId,
        changeId: change.changeId,
        dealName: change.name,
        fourdegreesId: change.fdId,
        highlevelId: change.hlId,
        source: change.source,
        before: change.before ? dealStateOf(change.before, mapping, pipelines) : null,
        after: dealStateOf(change.after, mapping, pipelines),
      },
      log,
    );
  } catch (err) {
    // The pipelines lookup is the only part that can throw (notifyChange never does): log, go on.
    log.warn({
      event: "notify.skipped",
      account: accountId,
      outcome: "failed",
      reason: err instanceof Error ? err.message : String(err),
    });
  }
}
