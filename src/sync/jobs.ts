/**
 * Queue handlers of the sync engine:
 * - `highlevel.webhook` / `fourdegrees.webhook`: mark the record dirty (pending table) and, only
 *   when it was clean, enqueue one delayed `sync.record` job — coalescing fan-out pairs and bursts;
 * - `sync.record`: run the engine for one record, clear the dirty mark only if no newer change
 *   arrived (else run once more), log one line and write one event row;
 * - `sync.backfill`: one page of a backfill run (src/sync/backfill.ts).
 * - `fourdegrees.import_row`: one row of a 4Degrees CSV import written to HighLevel
 *   (src/sync/import-rows.ts).
 *
 * Failure discipline (per message, never a blanket ack): rate limits retry after the gate's /
 * provider's delay; other transient errors retry with the consumer's capped exponential backoff;
 * permanent errors (validation, 4xx, contract drift) are recorded in `sync_failures` with the
 * message to replay and acked. One account's failure only ever touches its own messages.
 */
import type { Config } from "../config.ts";
import { changeEventFromRaw } from "../fourdegrees/translate.ts";
import { FourDegreesError } from "../fourdegrees/errors.ts";
import { RateLimitedError, type Lane } from "../gate/client.ts";
import { HighLevelError } from "../highlevel/errors.ts";
import { stageNamedBy } from "../highlevel/stages.ts";
import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { accountIdForLocation, getAccount, type Account } from "../store/accounts.ts";
import { accountForWorkspace } from "../store/fourdegrees-accounts.ts";
import { recordFailure } from "../store/failures.ts";
import { findLink, linksForContact, noteLinksForDeal, type SideName } from "../store/links.ts";
import { clearIfUnchanged, getPending, markDirty, type PendingKind } from "../store/pending.ts";
import { recordEvent } from "../store/sync-events.ts";
import { runBackfillPage } from "./backfill.ts";
import { runImportRow } from "./import-rows.ts";
import { sendMessage } from "./queues.ts";
import { recogniseHighLevelEcho } from "./highlevel-echo.ts";
import type { ConnectorFactory } from "./connectors.ts";
import { onceInBatch, type BatchScope, type Handler, type HandlerContext, type Handlers, type Outcome } from "./consumer.ts";
import { sha256, stripOrigin, SyncEngine, type EngineDeps, type JobResult, type PairChange } from "./engine.ts";
import { pairForDeal, type Flat } from "./mapping.ts";
import type { Mapping } from "./mapping-config.ts";
import type { ChangeEvent, Pipeline } from "./port.ts";
import { notifyChange } from "../notify/notify.ts";
import type { DealState } from "../notify/events.ts";
import type { QueueMessage, QueueMessageInput } from "./messages.ts";

/** What the handlers need besides the consumer's context; tests pass their own. */
export interface JobDeps {
  connectors: ConnectorFactory;
  /** Sends a message to the sync queue (`delaySeconds` for coalescing and continuations). */
  enqueue(message: QueueMessageInput, delaySeconds?: number): Promise<void>;
  now(): number;
  /** Seconds a `sync.record` job waits so a burst of events for one record becomes one job. */
  coalesceDelaySeconds: number;
  hooks?: EngineDeps["hooks"];
}

/** Production dependencies: the real connectors and the queues (live or bulk: src/sync/queues.ts). */
export function liveJobDeps(env: Env, connectors: ConnectorFactory): JobDeps {
  return {
    connectors,
    enqueue: (message, delaySeconds) => sendMessage(env, message, delaySeconds),
    now: () => Date.now(),
    coalesceDelaySeconds: 2,
  };
}

/**
 * Marks a record dirty and enqueues a job only on the clean → dirty transition. Returns whether a
 * job was enqueued (false = one is already due and will see this change).
 */
export async function markAndEnqueue(
  db: D1Database,
  deps: Pick<JobDeps, "enqueue" | "now" | "coalesceDelaySeconds">,
  target: { accountId: string; side: SideName; kind: PendingKind; recordId: string; locationId?: string | null; lane?: Lane },
  batch?: BatchScope,
): Promise<boolean> {
  const key = dirtyKey(target);
  // Marked by an earlier message of this batch: that mark already covers this change (BatchScope).
  if (batch?.isDone(key)) return false;
  const { newlyDirty } = await markDirty(db, target.accountId, target.side, target.kind, target.recordId, deps.now());
  if (newlyDirty) {
    await deps.enqueue(
      { v: 1, kind: "sync.record", accountId: target.accountId, side: target.side, record: target.kind, recordId: target.recordId, locationId: target.locationId ?? null, lane: target.lane ?? "live" },
      deps.coalesceDelaySeconds,
    );
  }
  // Only once the mark (and its job) are in place may later messages of the batch rely on them.
  batch?.markDone(key);
  return newlyDirty;
}

/** The batch-scope key of a record's dirty mark. */
function dirtyKey(target: { accountId: string; side: SideName; kind: PendingKind; recordId: string }): string {
  return `dirty:${target.accountId}:${target.side}:${target.kind}:${target.recordId}`;
}

const OPPORTUNITY_EVENTS = new Set(["OpportunityCreate", "OpportunityUpdate", "OpportunityDelete", "OpportunityStatusUpdate", "OpportunityStageUpdate", "OpportunityMonetaryValueUpdate", "OpportunityAssignedToUpdate"]);
const NOTE_EVENTS = new Set(["NoteCreate", "NoteUpdate", "NoteDelete"]);

/**
 * Which record a HighLevel event is about. Beyond ids, a payload is only ever used to prove an
 * event needs no job (src/sync/highlevel-echo.ts), never to apply a change.
 */
export function highLevelTarget(type: string, body: Record<string, unknown>): { kind: PendingKind; recordId: string } | null {
  const str = (k: string) => (typeof body[k] === "string" && body[k] !== "" ? String(body[k]) : null);
  if (OPPORTUNITY_EVENTS.has(type)) {
    const id = str("id");
    return id ? { kind: "deal", recordId: id } : null;
  }
  if (NOTE_EVENTS.has(type)) {
    const contactId = str("contactId");
    return contactId ? { kind: "notes", recordId: contactId } : null;
  }
  return null;
}

/** Classifies an error into a consumer outcome (rate limits keep the provider's / gate's delay). */
/** How a failed job should be treated. */
export interface ErrorOutcome {
  kind: "retry" | "permanent";
  permanent: boolean;
  reason: string;
  delaySeconds?: number;
}

export function outcomeForError(err: unknown): ErrorOutcome {
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof RateLimitedError) return { kind: "retry", delaySeconds: err.delaySeconds, reason, permanent: false };
  if (err instanceof HighLevelError) {
    if (err.category === "rate_limited") return { kind: "retry", delaySeconds: Math.max(1, Math.ceil((err.retryAfterMs ?? 10_000) / 1000)), reason, permanent: false };
    return err.retryable ? { kind: "retry", reason, permanent: false } : { kind: "permanent", reason, permanent: true };
  }
  if (err instanceof FourDegreesError) {
    if (err.upstreamStatus === 429 || err.code === "rate_limited") return { kind: "retry", delaySeconds: Math.max(1, Math.ceil((err.retryAfterMs ?? 1_000) / 1000)), reason, permanent: false };
    return err.retryable ? { kind: "retry", reason, permanent: false } : { kind: "permanent", reason, permanent: true };
  }
  if (err instanceof AppError) {
    const transient = err.code === "rate_limited" || err.code === "upstream_unavailable" || err.code === "internal";
    return transient ? { kind: "retry", reason, permanent: false } : { kind: "permanent", reason, permanent: true };
  }
  // Unknown errors are transient until proven otherwise (retries end in the dead-letter queue).
  return { kind: "retry", reason, permanent: false };
}

/** The stable failure id of a record job (one open failure per record; replay re-runs it). */
export function failureIdFor(msg: Extract<QueueMessage, { kind: "sync.record" }>): string {
  return `record:${msg.accountId}:${msg.side}:${msg.record}:${msg.recordId}`;
}

/** Runs one `sync.record` job. Exported for tests that drive the engine directly. */
export async function runRecordJob(msg: Extract<QueueMessage, { kind: "sync.record" }>, ctx: HandlerContext, deps: JobDeps): Promise<Outcome> {
  const db = ctx.env.DB;
  const started = deps.now();
  const log = ctx.log.child({ account: msg.accountId });
  const account = await getAccount(db, msg.accountId);
  if (!account) {
    log.warn({ event: "sync.record", outcome: "skipped", reason: "account no longer exists", record: msg.recordId });
    return { kind: "ack" };
  }
  if (account.status === "paused") {
    // The dirty mark stays: resuming the account re-enqueues every marked record.
    log.info({ event: "sync.record", outcome: "skipped", reason: "account paused", record: msg.recordId });
    return { kind: "ack" };
  }
  const pending = await getPending(db, account.id, msg.side, msg.record, msg.recordId);
  if (!pending && !msg.force) {
    // Already synced by an earlier job for the same burst: nothing to re-read.
    log.debug({ event: "sync.record", outcome: "noop", reason: "record already clean", record: msg.recordId });
    return { kind: "ack" };
  }
  if (!account.mapping) {
    await recordEvent(db, { accountId: account.id, kind: "sync", direction: "none", fdId: msg.side === "fourdegrees" ? msg.recordId : null, hlId: msg.side === "highlevel" ? msg.recordId : null, outcome: "skipped", detail: { reason: "the account has no mapping yet (PUT /api/accounts/{id}/mapping)" } });
    if (pending) await clearIfUnchanged(db, account.id, msg.side, msg.record, msg.recordId, pending.seq);
    return { kind: "ack" };
  }

  let calls = 0;
  let result: JobResult;
  let engine: SyncEngine | null = null;
  try {
    const connectors = await deps.connectors(account, msg.lane);
    const engineDeps: EngineDeps = {
      db,
      fourdegrees: countCalls(connectors.fourdegrees, () => calls++),
      highlevel: (loc) => countCalls(connectors.highlevel(loc), () => calls++),
      ourActor: connectors.ourActor,
      log,
      now: deps.now,
      ...(deps.hooks ? { hooks: deps.hooks } : {}),
    };
    engine = new SyncEngine(engineDeps, account, account.mapping);
    // Live jobs read the event's side first and stop there on an echo (SyncEngine.syncDeal).
    const sourceFirst = msg.lane === "live" && !msg.force;
    result = msg.record === "deal" ? await engine.syncDeal(msg.side, msg.recordId, msg.locationId, { sourceFirst }) : await engine.syncNotes(msg.side, msg.recordId);
  } catch (err) {
    const outcome = outcomeForError(err);
    const ms = deps.now() - started;
    if (outcome.permanent) {
      await recordFailure(db, { id: failureIdFor(msg), accountId: account.id, source: "permanent", message: msg, reason: outcome.reason });
      // The failure row remembers the record now; a clean mark lets later changes enqueue again.
      if (pending) await clearIfUnchanged(db, account.id, msg.side, msg.record, msg.recordId, pending.seq);
      await recordEvent(db, { accountId: account.id, kind: "failure", direction: null, fdId: msg.side === "fourdegrees" ? msg.recordId : null, hlId: msg.side === "highlevel" ? msg.recordId : null, outcome: "failed", detail: { reason: outcome.reason, calls } });
      await notifyChange(ctx.env, ctx.config, { kind: "sync_failure", accountId: account.id, failureId: failureIdFor(msg), reason: outcome.reason, fourdegreesId: msg.side === "fourdegrees" ? msg.recordId : null, highlevelId: msg.side === "highlevel" ? msg.recordId : null }, log);
    }
    log.warn({ event: "sync.record", record: msg.recordId, side: msg.side, kind: msg.record, outcome: outcome.permanent ? "failed" : "retry", reason: outcome.reason, calls, duration_ms: ms, attempts: ctx.attempts });
    return outcome.kind === "retry" ? { kind: "retry", reason: outcome.reason, ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}) } : { kind: "permanent", reason: outcome.reason };
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
  if (result.outcome === "retry") return { kind: "retry", reason: result.reason ?? "retry", ...(result.retryAfterSeconds ? { delaySeconds: result.retryAfterSeconds } : {}) };

  await recordEvent(db, {
    accountId: account.id,
    kind: result.outcome === "test_mode" ? "test_mode" : result.outcome === "echo" ? "echo" : msg.record === "notes" ? "note" : "sync",
    direction: result.direction,
    fdId: result.fdId,
    hlId: result.hlId,
    outcome: result.outcome,
    detail: { trigger: `${msg.side}:${msg.record}:${msg.recordId}`, writes: result.writes, conflicts: result.conflicts.length, calls, ms, ...(result.reason ? { reason: result.reason } : {}), ...(result.detail ?? {}) },
  });
  // Team notifications of the pair's change (never throws; a notifier problem never fails the job).
  if (result.change && engine && !account.testMode) await notifyDealChange(ctx, engine, account.mapping, account.id, result.change, log);
  // A pair just created: its existing notes follow.
  if (msg.record === "deal" && result.writes.some((w) => w.op === "create") && result.fdId) await markAndEnqueue(db, deps, { accountId: account.id, side: "fourdegrees", kind: "notes", recordId: result.fdId, lane: msg.lane });
  if (pending && !(await clearIfUnchanged(db, account.id, msg.side, msg.record, msg.recordId, pending.seq))) {
    // A newer change arrived while this job ran: run once more (as a new message, so a busy
    // record never exhausts this message's retries).
    await deps.enqueue({ v: 1, kind: "sync.record", accountId: account.id, side: msg.side, record: msg.record, recordId: msg.recordId, locationId: msg.locationId, lane: msg.lane }, deps.coalesceDelaySeconds);
  }
  return { kind: "ack" };
}

/** A canonical (flat) record as the notifier's deal state: the 4Degrees stage (id and name), status and value. */
export function dealStateOf(flat: Flat, mapping: Mapping, pipelines: readonly Pipeline[]): DealState {
  const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
  const status = flat["status"] === "won" || flat["status"] === "lost" ? flat["status"] : "open";
  const pair = pairForDeal(mapping, str(flat["pipeline"]));
  const stages = pipelines.find((p) => p.id === pair?.fourdegreesPipelineId)?.stages ?? [];
  // A closed record has no canonical stage: name the 4Degrees won/lost stage it sits in.
  const stageId = str(flat["stage"]) ?? (status === "won" ? pair?.wonStageId : status === "lost" ? pair?.lostStageId : null) ?? (status === "open" ? null : (stages.find((s) => s.kind === status)?.id ?? null));
  const amount = flat["value"];
  const currency = str(flat["currency"]) ?? mapping.currency;
  return { stageId, stageName: stages.find((s) => s.id === stageId)?.name ?? null, status, value: typeof amount === "number" ? { amountMinor: amount, currency } : null };
}

async function notifyDealChange(ctx: HandlerContext, engine: SyncEngine, mapping: Mapping, accountId: string, change: PairChange, log: Logger): Promise<void> {
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
    log.warn({ event: "notify.skipped", account: accountId, outcome: "failed", reason: err instanceof Error ? err.message : String(err) });
  }
}

/** Wraps a connector so every method call increments a counter (the "calls made" of a job). */
export function countCalls<T extends object>(target: T, onCall: () => void): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        onCall();
        return Reflect.apply(value, obj, args);
      };
    },
  });
}

/** The account of a HighLevel location (once per batch: every message of a burst names the same few). */
async function resolveAccountForLocation(db: D1Database, locationId: string | null, batch?: BatchScope): Promise<Account | null> {
  if (!locationId) return null;
  return onceInBatch(batch, `account-of-location:${locationId}`, async () => {
    const id = await accountIdForLocation(db, locationId);
    return id ? getAccount(db, id) : null;
  });
}

/** `checkNamedStage` for the stage a webhook body names, if any, once per batch per stage (it never throws). */
async function checkNamedStageOnce(ctx: HandlerContext, deps: JobDeps, account: Account, locationId: string, body: Record<string, unknown>, recordId: string): Promise<void> {
  const named = stageNamedBy(body);
  if (!named) return;
  await onceInBatch(ctx.batch, `stage:${account.id}:${locationId}:${named.pipelineId ?? ""}:${named.stageId}`, () => checkNamedStage(ctx, deps, account, locationId, named, recordId));
}

/**
 * Keeps the location's pipelines cache honest when a webhook names a stage (src/highlevel/stages.ts):
 * a stage HighLevel gained since the cache was filled (`refreshed`, reported once: the cache knows
 * it afterwards) that the mapping does not pair is written as an `alert` event (`new_stage`) so an
 * operator maps it; the record job puts an open opportunity in it on the review list. Advisory:
 * a failed check is logged and never fails the webhook.
 */
async function checkNamedStage(ctx: HandlerContext, deps: JobDeps, account: Account, locationId: string, named: NonNullable<ReturnType<typeof stageNamedBy>>, recordId: string): Promise<void> {
  try {
    const check = await (await deps.connectors(account, "live")).highlevel(locationId).ensureStageKnown(named.pipelineId, named.stageId);
    if (check.status !== "refreshed") return;
    const id = check.stage.id;
    const mapped = (account.mapping?.pipelines ?? []).some((p) => p.highlevelLocationId === locationId && (p.stages.some((s) => s.highlevel === id) || p.highlevelWonStageId === id || p.highlevelLostStageId === id));
    if (mapped) return;
    const reason = `HighLevel pipeline "${check.pipeline.name}" gained stage "${check.stage.name}" (${id}), which has no 4Degrees stage in the mapping: map it (PUT /api/accounts/${account.id}/mapping)`;
    await recordEvent(ctx.env.DB, { accountId: account.id, kind: "alert", direction: null, fdId: null, hlId: recordId, outcome: "new_stage", detail: { reason, locationId, pipelineId: check.pipeline.id, stageId: id, stageName: check.stage.name } });
    ctx.log.warn({ event: "sync.new_stage", account: account.id, location: locationId, outcome: "alert", stage: id, reason });
  } catch (err) {
    ctx.log.warn({ event: "sync.new_stage", account: account.id, location: locationId, outcome: "failed", reason: err instanceof Error ? err.message : String(err) });
  }
}

/**
 * Zero-read echo recognition at the webhook, before anything is marked dirty. An event is only
 * dropped when its payload proves it describes a state already synced — a 4Degrees deal whose
 * `version` is at most the link's (versions only grow: the webhook of our own write, or of a
 * change a job already merged), a note whose text equals its note link's synced text (the copy we
 * just made). Anything else — deletes, unlinked records, a payload without those facts, any
 * difference — goes to the record job, which re-reads (payloads are never trusted to *apply* a
 * change, only to skip one that is provably done). Reconcile still compares pages, as a net.
 */
async function isSyncedFourDegreesEcho(db: D1Database, accountId: string, event: ChangeEvent): Promise<boolean> {
  if (event.type === "deal.deleted" || event.type === "note.deleted") return false;
  if (event.record.kind === "note") {
    if (!event.note) return false;
    const noteId = event.record.id;
    const synced = (await noteLinksForDeal(db, accountId, event.record.dealId)).find((l) => l.fdNoteId === noteId);
    return synced !== undefined && synced.bodyHash === (await sha256(stripOrigin(event.note.body).text));
  }
  const deal = event.deal;
  if (!deal || deal.archivedAt || deal.version === null) return false;
  const link = await findLink(db, accountId, "fourdegrees", event.record.id);
  if (!link || link.state !== "active" || link.fdVersion === null) return false;
  const seen = Number(deal.version);
  const synced = Number(link.fdVersion);
  return Number.isFinite(seen) && Number.isFinite(synced) && seen <= synced;
}

/** A HighLevel `NoteCreate` / `NoteUpdate` whose text equals its note link's synced text (see above). */
async function isSyncedNoteEcho(db: D1Database, accountId: string, type: string, body: Record<string, unknown>, contactId: string): Promise<boolean> {
  if (type !== "NoteCreate" && type !== "NoteUpdate") return false;
  const id = body["id"];
  const text = body["body"];
  if (typeof id !== "string" || typeof text !== "string") return false;
  for (const link of await linksForContact(db, accountId, contactId)) {
    const synced = (await noteLinksForDeal(db, accountId, link.fdDealId)).find((l) => l.hlNoteId === id);
    if (synced) return synced.bodyHash === (await sha256(stripOrigin(text).text));
  }
  return false;
}

/** The queue handlers of the engine, bound to `makeDeps` (called once per message). */
export function syncHandlers(makeDeps: (ctx: HandlerContext) => JobDeps): Handlers {
  const hlWebhook: Handler<"highlevel.webhook"> = async (msg, ctx) => {
    const target = highLevelTarget(msg.type, msg.body);
    if (!target) return { kind: "ack" };
    const locationId = msg.locationId ?? (typeof msg.body["locationId"] === "string" ? msg.body["locationId"] : null);
    const account = await resolveAccountForLocation(ctx.env.DB, locationId, ctx.batch);
    if (!account) {
      // The ingress enqueues without a database read, so events of locations no account uses end
      // here: one warning per location per batch, not one line per delivery.
      if (ctx.batch?.first(`unknown-location:${locationId}`) ?? true) ctx.log.warn({ event: "sync.webhook", direction: "inbound", location: locationId, outcome: "skipped", reason: "no account uses this location", type: msg.type });
      return { kind: "ack" };
    }
    const dirty = { accountId: account.id, side: "highlevel" as const, kind: target.kind, recordId: target.recordId };
    if (ctx.batch?.isDone(dirtyKey(dirty))) {
      // An earlier message of this batch marked the record: its job reads after that mark, so it
      // sees this change too (BatchScope) — no echo check, no second mark. A stage this event names
      // is still checked (once per batch), so a stage HighLevel just gained is reported.
      if (locationId) await checkNamedStageOnce(ctx, makeDeps(ctx), account, locationId, msg.body, target.recordId);
      ctx.log.debug({ event: "sync.webhook", account: account.id, outcome: "coalesced", reason: "record already marked by this batch", type: msg.type, highlevel_id: target.recordId });
      return { kind: "ack" };
    }
    if (target.kind === "notes" && (await isSyncedNoteEcho(ctx.env.DB, account.id, msg.type, msg.body, target.recordId))) {
      ctx.log.debug({ event: "sync.webhook", account: account.id, outcome: "echo", reason: "the note is as last synced", type: msg.type });
      return { kind: "ack" };
    }
    const deps = makeDeps(ctx);
    // The echo of a state already synced is acked without a job (src/sync/highlevel-echo.ts).
    const echo = target.kind === "deal" ? await recogniseHighLevelEcho(ctx.env, account, { type: msg.type, body: msg.body, opportunityId: target.recordId, locationId }) : null;
    if (locationId && (echo?.checkStage ?? true)) await checkNamedStageOnce(ctx, deps, account, locationId, msg.body, target.recordId);
    if (echo?.echo) {
      ctx.log.debug({ event: "sync.webhook", account: account.id, outcome: "echo", reason: echo.reason, type: msg.type, highlevel_id: target.recordId });
      return { kind: "ack" };
    }
    await markAndEnqueue(ctx.env.DB, deps, { ...dirty, locationId }, ctx.batch);
    return { kind: "ack" };
  };

  const fdWebhook: Handler<"fourdegrees.webhook"> = async (msg, ctx) => {
    let event;
    try {
      event = changeEventFromRaw(msg.body);
    } catch (err) {
      // An event this version cannot read is filed (replayable once it can), not only logged.
      const reason = `the 4Degrees event cannot be read: ${err instanceof Error ? err.message : String(err)}`;
      const accountId = await accountForWorkspace(ctx.env.DB, msg.workspaceId);
      await recordFailure(ctx.env.DB, { id: `webhook:fourdegrees:${msg.webhookId}`, accountId, source: "permanent", message: msg, reason });
      return { kind: "permanent", reason };
    }
    // The workspace's one owner: `fourdegrees_accounts`, written only by `pairFourDegreesAccount`.
    const accountId = await onceInBatch(ctx.batch, `account-of-workspace:${msg.workspaceId}`, () => accountForWorkspace(ctx.env.DB, msg.workspaceId));
    if (!accountId) {
      if (ctx.batch?.first(`unknown-workspace:${msg.workspaceId}`) ?? true) ctx.log.warn({ event: "sync.webhook", direction: "inbound", workspace: msg.workspaceId, outcome: "skipped", reason: "no account uses this workspace", type: msg.type });
      return { kind: "ack" };
    }
    const target = event.record.kind === "deal" ? { kind: "deal" as const, recordId: event.record.id } : { kind: "notes" as const, recordId: event.record.dealId };
    const dirty = { accountId, side: "fourdegrees" as const, ...target };
    if (ctx.batch?.isDone(dirtyKey(dirty))) {
      ctx.log.debug({ event: "sync.webhook", account: accountId, outcome: "coalesced", reason: "record already marked by this batch", type: msg.type, fourdegrees_id: target.recordId });
      return { kind: "ack" };
    }
    if (await isSyncedFourDegreesEcho(ctx.env.DB, accountId, event)) {
      ctx.log.debug({ event: "sync.webhook", account: accountId, outcome: "echo", reason: "the event's state is already synced", type: msg.type });
      return { kind: "ack" };
    }
    await markAndEnqueue(ctx.env.DB, makeDeps(ctx), dirty, ctx.batch);
    return { kind: "ack" };
  };

  const record: Handler<"sync.record"> = (msg, ctx) => runRecordJob(msg, ctx, makeDeps(ctx));

  const backfill: Handler<"sync.backfill"> = async (msg, ctx) => {
    const deps = makeDeps(ctx);
    try {
      return await runBackfillPage(msg, ctx, deps);
    } catch (err) {
      const outcome = outcomeForError(err);
      if (outcome.permanent) {
        const failureId = `backfill:${msg.accountId}:${msg.runId}`;
        await recordFailure(ctx.env.DB, { id: failureId, accountId: msg.accountId, source: "permanent", message: msg, reason: outcome.reason });
        await notifyChange(ctx.env, ctx.config, { kind: "sync_failure", accountId: msg.accountId, failureId, reason: outcome.reason }, ctx.log);
        return { kind: "permanent", reason: outcome.reason };
      }
      return { kind: "retry", reason: outcome.reason, ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}) };
    }
  };

  const importRow: Handler<"fourdegrees.import_row"> = (msg, ctx) => runImportRow(msg, ctx, makeDeps(ctx));

  return { "highlevel.webhook": hlWebhook, "fourdegrees.webhook": fdWebhook, "sync.record": record, "sync.backfill": backfill, "fourdegrees.import_row": importRow };
}

/** A logger-bearing context for calling handlers outside the consumer (cron, tests). */
export function handlerContext(env: Env, config: Config, log: Logger, attempts = 1): HandlerContext {
  return { env, config, log, attempts };
}
