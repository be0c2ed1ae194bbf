/**
 * Triage of webhook messages, before anything is marked dirty: find the account, drop what is
 * provably an echo of a state already synced, check a stage the event names, and mark the record
 * dirty (one delayed `sync.record` job per clean → dirty transition).
 */
import type { ChangeEvent } from "../../domain/port.ts";
import { stageNamedBy } from "../../highlevel/stages.ts";
import { hasNativeForecast } from "../../highlevel/version.ts";
import { onceInBatch, type BatchScope, type HandlerContext, type Outcome } from "../../queue/consumer.ts";
import type { QueueMessage } from "../../queue/messages.ts";
import type { Account } from "../../store/accounts.ts";
import { recordFailure } from "../../store/failures.ts";
import { accountForWorkspace } from "../../store/fourdegrees-accounts.ts";
import { findLink, noteLinkForHighLevelNote, noteLinksForDeal } from "../../store/links.ts";
import type { PendingKind } from "../../store/pending.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { stripOrigin } from "../engine/notes.ts";
import { sha256 } from "../../lib/hash.ts";
import { recogniseHighLevelEcho, type EchoPartner, type HighLevelEchoVerdict } from "../engine/echo.ts";
import { dirtyKey, markAndEnqueue, type JobDeps } from "./deps.ts";
import { enqueueAttachments, isAttachmentEcho, touchesAttachments } from "./attachment-triggers.ts";
import { cachedAccount, cachedAccountIdOfLocation, cachedAccountIdOfWorkspace } from "../../store/account-config.ts";

const OPPORTUNITY_EVENTS = new Set([
  "OpportunityCreate",
  "OpportunityUpdate",
  "OpportunityDelete",
  "OpportunityStatusUpdate",
  "OpportunityStageUpdate",
  "OpportunityMonetaryValueUpdate",
  "OpportunityAssignedToUpdate",
]);
const NOTE_EVENTS = new Set(["NoteCreate", "NoteUpdate", "NoteDelete"]);

/**
 * Which record a HighLevel event is about. Beyond ids, a payload is only ever used to prove an
 * event needs no job (src/sync/engine/echo.ts), never to apply a change.
 */
export function highLevelTarget(
  type: string,
  body: Record<string, unknown>,
): { kind: PendingKind; recordId: string } | null {
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

/** The account of a HighLevel location (once per batch: every message of a burst names the same few). */
async function resolveAccountForLocation(
  db: D1Database,
  locationId: string | null,
  batch?: BatchScope,
): Promise<Account | null> {
  if (!locationId) return null;
  return onceInBatch(batch, `account-of-location:${locationId}`, async () => {
    const id = await cachedAccountIdOfLocation(db, locationId);
    return id ? cachedAccount(db, id) : null;
  });
}

/** `checkNamedStage` for the stage a webhook body names, if any, once per batch per stage (it never throws). */
async function checkNamedStageOnce(
  ctx: HandlerContext,
  deps: JobDeps,
  account: Account,
  locationId: string,
  body: Record<string, unknown>,
  recordId: string,
): Promise<void> {
  const named = stageNamedBy(body);
  if (!named) return;
  await onceInBatch(ctx.batch, `stage:${account.id}:${locationId}:${named.pipelineId ?? ""}:${named.stageId}`, () =>
    checkNamedStage(ctx, deps, account, locationId, named, recordId),
  );
}

/**
 * Keeps the location's pipelines cache honest when a webhook names a stage (src/highlevel/stages.ts):
 * a stage HighLevel gained since the cache was filled (`refreshed`, reported once: the cache knows
 * it afterwards) that the mapping does not pair is written as an `alert` event (`new_stage`) so an
 * operator maps it; the record job puts an open opportunity in it on the review list. Advisory:
 * a failed check is logged and never fails the webhook.
 */
async function checkNamedStage(
  ctx: HandlerContext,
  deps: JobDeps,
  account: Account,
  locationId: string,
  named: NonNullable<ReturnType<typeof stageNamedBy>>,
  recordId: string,
): Promise<void> {
  try {
    const check = await (
      await deps.connectors(account, "live")
    )
      .highlevel(locationId)
      .ensureStageKnown(named.pipelineId, named.stageId);
    if (check.status !== "refreshed") return;
    const id = check.stage.id;
    const mapped = (account.mapping?.pipelines ?? []).some(
      (p) =>
        p.highlevelLocationId === locationId &&
        (p.stages.some((s) => s.highlevel === id) || p.highlevelWonStageId === id || p.highlevelLostStageId === id),
    );
    if (mapped) return;
    const reason = `HighLevel pipeline "${check.pipeline.name}" gained stage "${check.stage.name}" (${id}), which has no 4Degrees stage in the mapping: map it (PUT /api/accounts/${account.id}/mapping)`;
    await recordEvent(ctx.env.DB, {
      accountId: account.id,
      kind: "alert",
      direction: null,
      fdId: null,
      hlId: recordId,
      outcome: "new_stage",
      detail: { reason, locationId, pipelineId: check.pipeline.id, stageId: id, stageName: check.stage.name },
    });
    ctx.log.warn({
      event: "sync.new_stage",
      account: account.id,
      location: locationId,
      outcome: "alert",
      stage: id,
      reason,
    });
  } catch (err) {
    ctx.log.warn({
      event: "sync.new_stage",
      account: account.id,
      location: locationId,
      outcome: "failed",
      reason: err instanceof Error ? err.message : String(err),
    });
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
async function isSyncedNoteEcho(
  db: D1Database,
  accountId: string,
  type: string,
  body: Record<string, unknown>,
  contactId: string,
): Promise<boolean> {
  if (type !== "NoteCreate" && type !== "NoteUpdate") return false;
  const id = body["id"];
  const text = body["body"];
  if (typeof id !== "string" || typeof text !== "string") return false;
  // One read through the note's HighLevel id (the link of a pair on another contact never matches).
  const synced = await noteLinkForHighLevelNote(db, accountId, id);
  return (
    synced !== null && synced.hlContactId === contactId && synced.bodyHash === (await sha256(stripOrigin(text).text))
  );
}

/**
 * Claims the delivery now that triage found work for it (`HandlerContext.claim`); false = a
 * duplicate of a delivery another message claimed, to be acked without doing anything.
 */
async function claimed(ctx: HandlerContext, type: string): Promise<boolean> {
  if (!ctx.claim || (await ctx.claim())) return true;
  ctx.log.debug({ event: "webhook.duplicate", outcome: "skipped", type });
  return false;
}

/** The batch-scope key of a HighLevel delivery whose expected-echo slot was taken by an earlier delivery. */
function echoTakenKey(accountId: string, webhookId: string, type: string): string {
  return `echo-taken:${accountId}:${webhookId}:${type}`;
}

/** The verdict an earlier delivery of the batch left for this one when it took both slots (`echoTakenKey`). */
function takenBefore(batch: BatchScope | undefined, key: string): HighLevelEchoVerdict | null {
  const verdict = batch?.shared(key);
  return verdict === undefined ? null : (verdict as HighLevelEchoVerdict);
}

/**
 * The batch's later HighLevel deliveries for the same opportunity in the same location (other
 * delivery ids, no slot taken for them yet): the fan-out partners whose expected-echo slots may be
 * taken with this one's.
 */
function echoPartners(
  batch: BatchScope | undefined,
  accountId: string,
  msg: Extract<QueueMessage, { kind: "highlevel.webhook" }>,
  opportunityId: string,
  locationId: string | null,
): EchoPartner[] {
  const out: EchoPartner[] = [];
  for (const m of batch?.later() ?? []) {
    if (m.kind !== "highlevel.webhook" || m.webhookId === msg.webhookId) continue;
    const loc = m.locationId ?? (typeof m.body["locationId"] === "string" ? m.body["locationId"] : null);
    const target = highLevelTarget(m.type, m.body);
    if (loc !== locationId || target?.kind !== "deal" || target.recordId !== opportunityId) continue;
    if (takenBefore(batch, echoTakenKey(accountId, m.webhookId, m.type))) continue;
    out.push({ webhookId: m.webhookId, type: m.type, body: m.body, locationId: loc });
  }
  return out;
}

/** Triage of a HighLevel webhook: ack what needs no job (unknown location, echo), else mark the record dirty. */
export async function handleHighLevelWebhook(
  msg: Extract<QueueMessage, { kind: "highlevel.webhook" }>,
  ctx: HandlerContext,
  makeDeps: (ctx: HandlerContext) => JobDeps,
): Promise<Outcome> {
  const target = highLevelTarget(msg.type, msg.body);
  if (!target) return { kind: "ack" };
  const locationId = msg.locationId ?? (typeof msg.body["locationId"] === "string" ? msg.body["locationId"] : null);
  const account = await resolveAccountForLocation(ctx.env.DB, locationId, ctx.batch);
  if (!account) {
    // The ingress enqueues without a database read, so events of locations no account uses end
    // here: one warning per location per batch, not one line per delivery.
    if (ctx.batch?.first(`unknown-location:${locationId}`) ?? true)
      ctx.log.warn({
        event: "sync.webhook",
        direction: "inbound",
        location: locationId,
        outcome: "skipped",
        reason: "no account uses this location",
        type: msg.type,
      });
    return { kind: "ack" };
  }
  if (target.kind === "deal" && touchesAttachments(account, msg.type)) {
    if (!(await claimed(ctx, msg.type))) return { kind: "ack" };
    await enqueueAttachments(ctx, makeDeps(ctx), account.id, "highlevel", target.recordId, locationId, msg.type);
  }
  const dirty = { accountId: account.id, side: "highlevel" as const, kind: target.kind, recordId: target.recordId };
  if (ctx.batch?.isDone(dirtyKey(dirty))) {
    // An earlier message of this batch marked the record: its job reads after that mark, so it
    // sees this change too (BatchScope) — no echo check, no second mark. A stage this event names
    // is still checked (once per batch), so a stage HighLevel just gained is reported.
    if (locationId) await checkNamedStageOnce(ctx, makeDeps(ctx), account, locationId, msg.body, target.recordId);
    ctx.log.debug({
      event: "sync.webhook",
      account: account.id,
      outcome: "coalesced",
      reason: "record already marked by this batch",
      type: msg.type,
      highlevel_id: target.recordId,
    });
    return { kind: "ack" };
  }
  if (
    target.kind === "notes" &&
    (await isSyncedNoteEcho(ctx.env.DB, account.id, msg.type, msg.body, target.recordId))
  ) {
    ctx.log.debug({
      event: "sync.webhook",
      account: account.id,
      outcome: "echo",
      reason: "the note is as last synced",
      type: msg.type,
    });
    return { kind: "ack" };
  }
  const deps = makeDeps(ctx);
  // The echo of a state already synced is acked without a job (src/sync/engine/echo.ts); an
  // earlier delivery of this batch may have taken this one's expected-echo slot with its own.
  const takenKey = echoTakenKey(account.id, msg.webhookId, msg.type);
  const echo =
    target.kind === "deal"
      ? (takenBefore(ctx.batch, takenKey) ??
        (await recogniseHighLevelEcho(ctx.env, account, {
          type: msg.type,
          body: msg.body,
          opportunityId: target.recordId,
          locationId,
          nativeCloseDate: hasNativeForecast(ctx.config.HIGHLEVEL_API_VERSION),
          partners: echoPartners(ctx.batch, account.id, msg, target.recordId, locationId),
        })))
      : null;
  for (const { partner, verdict } of echo?.alsoTaken ?? [])
    ctx.batch?.share(echoTakenKey(account.id, partner.webhookId, partner.type), verdict);
  if (locationId && (echo?.checkStage ?? true))
    await checkNamedStageOnce(ctx, deps, account, locationId, msg.body, target.recordId);
  if (echo?.echo) {
    ctx.log.debug({
      event: "sync.webhook",
      account: account.id,
      outcome: "echo",
      reason: echo.reason,
      type: msg.type,
      highlevel_id: target.recordId,
    });
    return { kind: "ack" };
  }
  if (!(await claimed(ctx, msg.type))) return { kind: "ack" };
  await markAndEnqueue(ctx.env.DB, deps, { ...dirty, locationId }, ctx.batch);
  return { kind: "ack" };
}

/** Triage of a 4Degrees webhook: ack what needs no job (unknown workspace, echo), else mark the record dirty. */
export async function handleFourDegreesWebhook(
  msg: Extract<QueueMessage, { kind: "fourdegrees.webhook" }>,
  ctx: HandlerContext,
  makeDeps: (ctx: HandlerContext) => JobDeps,
): Promise<Outcome> {
  let event;
  try {
    event = makeDeps(ctx).fourdegreesWebhooks.parseWebhook(msg.body);
  } catch (err) {
    // An event this version cannot read is filed (replayable once it can), not only logged.
    const reason = `the 4Degrees event cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    const accountId = await accountForWorkspace(ctx.env.DB, msg.workspaceId);
    await recordFailure(ctx.env.DB, {
      id: `webhook:fourdegrees:${msg.webhookId}`,
      accountId,
      source: "permanent",
      message: msg,
      reason,
    });
    return { kind: "permanent", reason };
  }
  // The workspace's one owner: `fourdegrees_accounts`, written only by `pairFourDegreesAccount`.
  const accountId = await onceInBatch(ctx.batch, `account-of-workspace:${msg.workspaceId}`, () =>
    cachedAccountIdOfWorkspace(ctx.env.DB, msg.workspaceId),
  );
  if (!accountId) {
    if (ctx.batch?.first(`unknown-workspace:${msg.workspaceId}`) ?? true)
      ctx.log.warn({
        event: "sync.webhook",
        direction: "inbound",
        workspace: msg.workspaceId,
        outcome: "skipped",
        reason: "no account uses this workspace",
        type: msg.type,
      });
    return { kind: "ack" };
  }
  if (event.record.kind === "attachment") {
    if (await isAttachmentEcho(ctx.env.DB, accountId, event.type, event.record.id)) return { kind: "ack" };
    if (!(await claimed(ctx, msg.type))) return { kind: "ack" };
    await enqueueAttachments(ctx, makeDeps(ctx), accountId, "fourdegrees", event.record.dealId, null, event.type);
    return { kind: "ack" };
  }
  const target =
    event.record.kind === "deal"
      ? { kind: "deal" as const, recordId: event.record.id }
      : { kind: "notes" as const, recordId: event.record.dealId };
  const dirty = { accountId, side: "fourdegrees" as const, ...target };
  if (ctx.batch?.isDone(dirtyKey(dirty))) {
    ctx.log.debug({
      event: "sync.webhook",
      account: accountId,
      outcome: "coalesced",
      reason: "record already marked by this batch",
      type: msg.type,
      fourdegrees_id: target.recordId,
    });
    return { kind: "ack" };
  }
  if (await isSyncedFourDegreesEcho(ctx.env.DB, accountId, event)) {
    ctx.log.debug({
      event: "sync.webhook",
      account: accountId,
      outcome: "echo",
      reason: "the event's state is already synced",
      type: msg.type,
    });
    return { kind: "ack" };
  }
  if (!(await claimed(ctx, msg.type))) return { kind: "ack" };
  await markAndEnqueue(ctx.env.DB, makeDeps(ctx), dirty, ctx.batch);
  return { kind: "ack" };
}
