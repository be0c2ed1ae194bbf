/**
 * Reconcile (cron): HighLevel drops any webhook it did not get a 429 for and has no changed-since
 * filter, so the only way to catch a lost event is to re-scan. Each tick scans one page per side
 * per account (checkpointed in `reconcile_cursors`, wrapping around), compares every record with
 * its stored snapshot (HighLevel `updatedAt`, 4Degrees `version`) and marks the differences dirty —
 * the normal `sync.record` job then syncs them, in the gate's `reconcile` lane (below live
 * changes, above backfill). An account whose HighLevel daily quota is low is skipped for the tick.
 * Every account runs in its own try: one account's failure or quota never stalls another.
 *
 * Notes have no version on the deal, and a note whose webhook was lost would otherwise never be
 * seen again: for every linked pair on the tick's 4Degrees page the tick also lists the notes of
 * both sides (one 4Degrees call, one HighLevel call per pair, in the reconcile lane) and compares
 * them with `note_links` (`SyncEngine.notesDiffer`, the notes job in plan-only mode); a pair whose
 * notes differ is marked dirty like a deal. This costs more than the deal scan, so it runs only
 * while every location keeps at least twice the quota floor, and at most `notesPerTick` pairs per
 * tick.
 *
 * Deletions leave nothing to scan: a deleted HighLevel opportunity (or a 4Degrees deal gone for
 * good) is simply absent from the pages, so a delete whose webhook was lost would leave its link
 * pointing at nothing. The tick therefore also verifies a few links (`verifyPerTick`, a rotating
 * cursor over the account's active links in `link_verify_cursors`): it re-reads both records of
 * each, in the reconcile lane, and a pair with a record gone (404 — HighLevel's 400 "Opportunity
 * not found" too — or archived) is marked dirty. The normal job then re-reads it once more (the
 * confirmation) and applies the account's delete policy with tombstones. Records the tick's own
 * pages just showed alive are not read again. Like the note scan, this needs twice the quota floor.
 *
 * Attachments have no version either, and a lost `attachment.created` webhook (or a HighLevel file
 * upload whose opportunity webhook was lost) would leave a file uncopied: for at most
 * `attachmentsPerTick` linked pairs a tick, when the mapping syncs attachments,
 * the tick lists the deal's attachments and reads the opportunity's file field (one call each, in
 * the reconcile lane) and compares them with `attachment_links` (`attachmentsDiffer`); a pair that
 * differs gets the same `sync.attachments` job a webhook enqueues, whose ledger and links copy each
 * file once. The pairs come from a rotating cursor over the active links (`attachment_scan_cursors`),
 * so every pair is compared once per rotation whatever the per-tick bound. A pair with an open
 * attachments failure is left to its replay. Like the note scan, this needs twice the quota floor.
 *
 * The tick also re-enqueues dirty marks older than ten minutes whose job was lost.
 */
import { gateFor } from "../../gate/client.ts";
import type { Logger } from "../../lib/log.ts";
import { listAccounts, type Account } from "../../store/accounts.ts";
import { attachmentLinksForDeal, getAttachmentScanCursor, saveAttachmentScanCursor } from "../../store/attachments.ts";
import { getFailure } from "../../store/failures.ts";
import { getReconcileCursor, saveReconcileCursor } from "../../store/backfill-runs.ts";
import {
  findLink,
  getLinkVerifyCursor,
  hasTombstone,
  listLinks,
  saveLinkVerifyCursor,
  type Link,
} from "../../store/links.ts";
import { listStalePending } from "../../store/pending.ts";
import { isInReview, recordEvent } from "../../store/sync-events.ts";
import type { AccountConnectors } from "../connectors.ts";
import { markAndEnqueue, type JobDeps } from "./deps.ts";
import { SyncEngine } from "../engine/engine.ts";
import { attachmentsDiffer } from "../engine/attachments.ts";
import { attachmentsFailureId } from "./attachments.ts";
import { keptOutUnlinked } from "../engine/filter.ts";

export interface ReconcileOptions {
  /** Records per side per tick. */
  pageSize?: number;
  /** Skip an account when less than this share of a location's daily HighLevel budget remains. */
  quotaFloor?: number;
  /** Linked pairs whose notes are compared per tick (default: `pageSize`); 0 turns the note scan off. */
  notesPerTick?: number;
  /**
   * Links whose two records are re-read per tick to find deletions whose webhook was lost
   * (default 20: at most 20 HighLevel and 20 4Degrees reads a tick); 0 turns verification off.
   */
  verifyPerTick?: number;
  /** Linked pairs whose files are compared with their links per tick (default 10); 0 turns the scan off. */
  attachmentsPerTick?: number;
}

export interface ReconcileReport {
  accountId: string;
  outcome: "ok" | "skipped_quota" | "failed";
  scanned: number;
  marked: number;
  /** Linked pairs whose notes were compared this tick (of them, the differing ones count in `marked`). */
  notesCompared?: number;
  /** Links whose records were re-read this tick (of them, the pairs with a record gone count in `marked`). */
  verified?: number;
  /** Linked pairs whose files were compared this tick, and how many got an attachments job. */
  attachmentsCompared?: number;
  attachmentsQueued?: number;
  reason?: string;
}

/** Runs one reconcile tick over every active, mapped account. */
export async function runReconcile(
  env: Env,
  deps: JobDeps,
  log: Logger,
  options: ReconcileOptions = {},
): Promise<ReconcileReport[]> {
  const reports: ReconcileReport[] = [];
  for (const account of await listAccounts(env.DB)) {
    if (account.status !== "active" || !account.mapping) continue;
    try {
      reports.push(await reconcileAccount(env, deps, account, options, log.child({ account: account.id })));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      reports.push({ accountId: account.id, outcome: "failed", scanned: 0, marked: 0, reason });
      await recordEvent(env.DB, {
        accountId: account.id,
        kind: "reconcile",
        direction: "none",
        fdId: null,
        hlId: null,
        outcome: "failed",
        detail: { reason },
      }).catch(() => undefined);
    }
  }
  await requeueStale(env.DB, deps);
  for (const r of reports)
    log.info({
      event: "sync.reconcile",
      account: r.accountId,
      outcome: r.outcome,
      scanned: r.scanned,
      marked: r.marked,
      ...(r.reason ? { reason: r.reason } : {}),
    });
  return reports;
}

async function reconcileAccount(
  env: Env,
  deps: JobDeps,
  account: Account,
  options: ReconcileOptions,
  log: Logger,
): Promise<ReconcileReport> {
  const mapping = account.mapping;
  if (!mapping || mapping.pipelines.length === 0)
    return { accountId: account.id, outcome: "ok", scanned: 0, marked: 0 };
  const floor = options.quotaFloor ?? 0.1;
  // The note scan and link verification are the costlier parts: they need twice the floor's headroom on every location.
  let notesAllowed = true;
  for (const loc of account.locations) {
    const usage = await gateFor(env, "hl", loc).usage();
    const { limit, remaining } = usage.daily;
    if (limit !== null && remaining !== null && remaining < limit * floor * 2) notesAllowed = false;
    if (limit !== null && remaining !== null && remaining < limit * floor) {
      const reason = `HighLevel daily quota low for location ${loc}: ${remaining} of ${limit} left`;
      await recordEvent(env.DB, {
        accountId: account.id,
        kind: "reconcile",
        direction: "none",
        fdId: null,
        hlId: null,
        outcome: "skipped_quota",
        detail: { reason },
      });
      return { accountId: account.id, outcome: "skipped_quota", scanned: 0, marked: 0, reason };
    }
  }
  const limit = options.pageSize ?? 100;
  const connectors = await deps.connectors(account, "reconcile");
  const db = env.DB;
  let scanned = 0;
  let marked = 0;
  // HighLevel records of this tick's location found changed: the webhook-silence alert's evidence (src/notify/activity.ts).
  let hlMarked = 0;
  let notesCompared = 0;
  // Records this tick's pages showed alive: verification does not read them again.
  const aliveHl = new Set<string>();
  const aliveFd = new Set<string>();

  // The notes job's own engine, in plan-only mode (no writes), on the reconcile lane's connectors;
  // it also judges whether an unlinked record is kept out (filter, unlinked by hand).
  const engine = new SyncEngine(
    {
      db,
      fourdegrees: connectors.fourdegrees,
      highlevel: connectors.highlevel,
      ourActor: connectors.ourActor,
      log,
      now: deps.now,
    },
    account,
    mapping,
  );

  // HighLevel: a page of the current pipeline; compare updatedAt with the snapshot.
  const hlCur = await getReconcileCursor(db, account.id, "highlevel");
  const hlIdx = hlCur.pipelineIdx % mapping.pipelines.length;
  const hlPair = mapping.pipelines[hlIdx];
  if (hlPair) {
    const page = await connectors
      .highlevel(hlPair.highlevelLocationId)
      .searchOpportunities({ pipelineId: hlPair.highlevelPipelineId, cursor: hlCur.cursor, limit });
    for (const opp of page.items) {
      scanned++;
      aliveHl.add(opp.id);
      const link = await findLink(db, account.id, "highlevel", opp.id);
      const differs = link
        ? link.state === "active" && (opp.updatedAt ?? null) !== link.hlUpdatedAt
        : !(await hasTombstone(db, account.id, "highlevel", opp.id)) &&
          !(await isInReview(db, account.id, "highlevel", opp.id)) &&
          !(await keptOutUnlinked(engine, { opp, locationId: hlPair.highlevelLocationId }));
      if (
        differs &&
        (await markAndEnqueue(db, deps, {
          accountId: account.id,
          side: "highlevel",
          kind: "deal",
          recordId: opp.id,
          locationId: hlPair.highlevelLocationId,
          lane: "reconcile",
        }))
      ) {
        marked++;
        hlMarked++;
      }
    }
    await saveReconcileCursor(
      db,
      account.id,
      "highlevel",
      page.nextCursor
        ? { pipelineIdx: hlIdx, cursor: page.nextCursor }
        : { pipelineIdx: (hlIdx + 1) % mapping.pipelines.length, cursor: null },
      deps.now(),
    );
  }

  // 4Degrees: a page of the current pipeline; compare the version with the snapshot.
  const fdCur = await getReconcileCursor(db, account.id, "fourdegrees");
  const fdIdx = fdCur.pipelineIdx % mapping.pipelines.length;
  const fdPair = mapping.pipelines[fdIdx];
  if (fdPair) {
    const page = await connectors.fourdegrees.pageDeals({
      pipelineId: fdPair.fourdegreesPipelineId,
      cursor: fdCur.cursor,
      limit,
    });
    let notesBudget = notesAllowed && mapping.notes !== "off" ? (options.notesPerTick ?? limit) : 0;

    for (const deal of page.items) {
      if (!deal.id) continue;
      scanned++;
      if (deal.archivedAt === null) aliveFd.add(deal.id);
      const link = await findLink(db, account.id, "fourdegrees", deal.id);
      const differs = link
        ? link.state === "active" && (deal.version !== link.fdVersion || deal.archivedAt !== null)
        : deal.archivedAt === null &&
          !(await hasTombstone(db, account.id, "fourdegrees", deal.id)) &&
          !(await isInReview(db, account.id, "fourdegrees", deal.id)) &&
          !(await keptOutUnlinked(engine, { deal }));
      if (
        differs &&
        (await markAndEnqueue(db, deps, {
          accountId: account.id,
          side: "fourdegrees",
          kind: "deal",
          recordId: deal.id,
          lane: "reconcile",
        }))
      )
        marked++;
      // A pair whose deal differs is re-synced anyway; its notes are compared on a later pass.
      if (!differs && link?.state === "active" && link.hlContactId && notesBudget > 0) {
        notesBudget--;
        notesCompared++;
        if (
          (await engine.notesDiffer(deal.id)) &&
          (await markAndEnqueue(db, deps, {
            accountId: account.id,
            side: "fourdegrees",
            kind: "notes",
            recordId: deal.id,
            lane: "reconcile",
          }))
        )
          marked++;
      }
    }
    await saveReconcileCursor(
      db,
      account.id,
      "fourdegrees",
      page.nextCursor
        ? { pipelineIdx: fdIdx, cursor: page.nextCursor }
        : { pipelineIdx: (fdIdx + 1) % mapping.pipelines.length, cursor: null },
      deps.now(),
    );
  }
  const verify = notesAllowed
    ? await verifyLinks(db, deps, account, connectors, { limit: options.verifyPerTick ?? 20, aliveHl, aliveFd }, log)
    : { verified: 0, marked: 0 };
  marked += verify.marked;
  const files =
    notesAllowed && mapping.attachmentsFieldId && mapping.attachments !== "off"
      ? await scanAttachments(db, deps, account, connectors, options.attachmentsPerTick ?? 10, log)
      : { compared: 0, queued: 0 };
  const attachmentsCompared = files.compared;
  const attachmentsQueued = files.queued;
  await recordEvent(db, {
    accountId: account.id,
    kind: "reconcile",
    direction: "none",
    fdId: null,
    hlId: null,
    outcome: "ok",
    detail: {
      scanned,
      marked,
      notesCompared,
      verified: verify.verified,
      attachmentsCompared,
      attachmentsQueued,
      hlLocation: hlPair?.highlevelLocationId ?? null,
      hlMarked,
    },
  });
  return {
    accountId: account.id,
    outcome: "ok",
    scanned,
    marked,
    notesCompared,
    verified: verify.verified,
    attachmentsCompared,
    attachmentsQueued,
  };
}

/**
 * Compares the files of the next `limit` active links (a cursor over the links table, wrapping
 * around) with their attachment links and enqueues the pairs that differ. A read that fails ends
 * the pass where it stood; the next tick resumes at the same link.
 */
async function scanAttachments(
  db: D1Database,
  deps: JobDeps,
  account: Account,
  connectors: AccountConnectors,
  limit: number,
  log: Logger,
): Promise<{ compared: number; queued: number }> {
  if (limit <= 0 || !connectors.fourdegreesAttachments) return { compared: 0, queued: 0 };
  const after = await getAttachmentScanCursor(db, account.id);
  const batch = await listLinks(db, account.id, { after, limit });
  let compared = 0;
  let queued = 0;
  let next = after;
  let interrupted = false;
  for (const link of batch) {
    try {
      if (await queueLostAttachments(db, deps, account, connectors, link)) queued++;
    } catch (err) {
      log.warn({
        event: "sync.reconcile.attachments",
        outcome: "interrupted",
        record: link.fdDealId,
        reason: err instanceof Error ? err.message : String(err),
      });
      interrupted = true;
      break;
    }
    compared++;
    next = link.fdDealId;
  }
  if (!interrupted && batch.length < limit) next = "";
  await saveAttachmentScanCursor(db, account.id, next, deps.now());
  return { compared, queued };
}

/**
 * Compares one linked pair's files with their links and, when they differ, enqueues the pair's
 * `sync.attachments` job (the webhook's path: ledger-guarded, one copy per file). Whether it did.
 */
async function queueLostAttachments(
  db: D1Database,
  deps: JobDeps,
  account: Account,
  connectors: AccountConnectors,
  link: Link,
): Promise<boolean> {
  const files = connectors.fourdegreesAttachments;
  const fieldId = account.mapping?.attachmentsFieldId;
  if (!files || !fieldId || !account.mapping) return false;
  const msg = {
    v: 1 as const,
    kind: "sync.attachments" as const,
    accountId: account.id,
    side: "fourdegrees" as const,
    recordId: link.fdDealId,
    locationId: link.hlLocationId,
    lane: "reconcile" as const,
    trigger: "reconcile",
  };
  // A file that cannot cross is a failure waiting for its replay, not something to retry every pass.
  const failureIds = [
    attachmentsFailureId(msg),
    attachmentsFailureId({ ...msg, side: "highlevel", recordId: link.hlOpportunityId }),
  ];
  for (const id of failureIds) if ((await getFailure(db, id))?.status === "open") return false;
  const [fdList, opp, links] = await Promise.all([
    files.listAttachments(link.fdDealId),
    connectors.highlevel(link.hlLocationId).getOpportunity(link.hlOpportunityId),
    attachmentLinksForDeal(db, account.id, link.fdDealId),
  ]);
  if (!opp) return false;
  const value = opp.customFields.find((f) => f.id === fieldId)?.value ?? null;
  if (!(await attachmentsDiffer(account.mapping, account, fdList, value, links))) return false;
  await deps.enqueue(msg);
  return true;
}

/**
 * Re-reads both records of the next `limit` active links (a cursor over the links table, wrapping
 * around) and marks a pair whose deal is gone or archived, or whose opportunity is gone, dirty: the
 * record job re-reads it and applies the account's delete policy. A read that fails (a transient
 * error, the gate's rate limit) ends the pass for this tick where it stood — an error is never
 * taken for a deletion, and the next tick resumes at the same link.
 */
async function verifyLinks(
  db: D1Database,
  deps: JobDeps,
  account: Account,
  connectors: AccountConnectors,
  options: { limit: number; aliveHl: ReadonlySet<string>; aliveFd: ReadonlySet<string> },
  log: Logger,
): Promise<{ verified: number; marked: number }> {
  if (options.limit <= 0) return { verified: 0, marked: 0 };
  const after = await getLinkVerifyCursor(db, account.id);
  const batch = await listLinks(db, account.id, { after, limit: options.limit });
  let verified = 0;
  let marked = 0;
  let next = after;
  let interrupted = false;
  for (const link of batch) {
    let gone: boolean;
    try {
      const [deal, opp] = await Promise.all([
        options.aliveFd.has(link.fdDealId) ? Promise.resolve(undefined) : connectors.fourdegrees.getDeal(link.fdDealId),
        options.aliveHl.has(link.hlOpportunityId)
          ? Promise.resolve(undefined)
          : connectors.highlevel(link.hlLocationId).getOpportunity(link.hlOpportunityId),
      ]);
      gone = deal === null || (deal !== undefined && deal.archivedAt !== null) || opp === null;
    } catch (err) {
      log.warn({
        event: "sync.reconcile.verify",
        outcome: "interrupted",
        record: link.fdDealId,
        reason: err instanceof Error ? err.message : String(err),
      });
      interrupted = true;
      break;
    }
    verified++;
    next = link.fdDealId;
    if (
      gone &&
      (await markAndEnqueue(db, deps, {
        accountId: account.id,
        side: "fourdegrees",
        kind: "deal",
        recordId: link.fdDealId,
        locationId: link.hlLocationId,
        lane: "reconcile",
      }))
    )
      marked++;
  }
  // A short batch, all verified, reached the last link: the next tick starts over.
  if (!interrupted && batch.length < options.limit) next = "";
  await saveLinkVerifyCursor(db, account.id, next, deps.now());
  return { verified, marked };
}

/** Re-enqueues dirty marks whose job may have been lost (older than ten minutes). */
async function requeueStale(db: D1Database, deps: JobDeps): Promise<number> {
  const stale = await listStalePending(db, deps.now() - 10 * 60_000);
  for (const p of stale)
    await deps.enqueue({
      v: 1,
      kind: "sync.record",
      accountId: p.accountId,
      side: p.side,
      record: p.kind,
      recordId: p.recordId,
      lane: "reconcile",
    });
  return stale.length;
}
