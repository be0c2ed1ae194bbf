/**
 * Backfill: on connect and on demand, page both sides and link or create what is missing.
 *
 * The checkpoint (phase, pipeline, cursor, counters) is saved in D1 after every page, so a crash, a
 * deploy or a rate limit resumes exactly where it stopped. One queue message (on the bulk queue,
 * src/queue/queues.ts) runs pages one after another for up to `BACKFILL_MESSAGE_BUDGET_MS` or
 * `BACKFILL_MESSAGE_MAX_CALLS` provider calls, then hands over to a new message, so no invocation
 * runs long or nears the subrequest limit, and the hand-over gap (a queue round trip, about a
 * second locally) is paid once per message, not once per page. Calls go through the gate's
 * `backfill` lane, below live changes and reconcile.
 *
 * Phase 1 pages 4Degrees deals per mapped pipeline: linked → re-synced; else matched (ledger,
 * `externalRefs`, the HighLevel external-id field, then exact name + contact email; several
 * candidates → review, never merged silently) or created in HighLevel. Phase 2 pages HighLevel
 * opportunities: any still unlinked (and not on the review list) is created in 4Degrees.
 */
import { notifyChange } from "../../notify/notify.ts";
import { getAccount } from "../../store/accounts.ts";
import { getBackfill, saveBackfill, startBackfill, type BackfillRun } from "../../store/backfill-runs.ts";
import { recordFailure } from "../../store/failures.ts";
import { findLink, hasTombstone } from "../../store/links.ts";
import { isInReview, recordEvent } from "../../store/sync-events.ts";
import type { HandlerContext, Outcome } from "../../queue/consumer.ts";
import { SyncEngine } from "../engine/engine.ts";
import type { EngineDeps, JobResult } from "../engine/types.ts";
import { countCalls, outcomeForError, type JobDeps } from "./deps.ts";
import { enqueueBackfillAttachments } from "./attachment-triggers.ts";
import type { QueueMessage } from "../../queue/messages.ts";
import { pool } from "../../lib/pool.ts";

/** Records per page (the unit of the checkpoint). */
export const BACKFILL_PAGE_SIZE = 50;

/** Wall time one backfill message keeps starting pages before it hands over to the next message. */
export const BACKFILL_MESSAGE_BUDGET_MS = 20_000;

/**
 * Provider calls after which a message starts no further page. Each call is about three
 * subrequests (gate permit, the fetch, gate report); a page is at most ~300 calls (6 per record),
 * so a message stays near 5,000 subrequests, half of a Workers Paid invocation's 10,000.
 */
export const BACKFILL_MESSAGE_MAX_CALLS = 1_200;

/**
 * Records of a page in flight at once. One at a time, a page spent most of its time between
 * HighLevel calls (round trips, D1) below what the gate's backfill lane allows; a few at once let
 * the gate — which paces the lane and keeps the live reserve — be the only limit.
 */
export const BACKFILL_CONCURRENCY = 5;

/** The match key of a record in a backfill page: its name, as matching compares it. */
function matchKey(name: string | null | undefined): string {
  return (name ?? "").trim().toLowerCase().replace(/\s+/g, " ");
}

/** Starts (or restarts) an account's backfill and enqueues its first page. */
export async function beginBackfill(
  db: D1Database,
  deps: Pick<JobDeps, "enqueue" | "now">,
  accountId: string,
): Promise<BackfillRun> {
  const runId = crypto.randomUUID();
  const run = await startBackfill(db, accountId, runId, deps.now());
  await deps.enqueue({ v: 1, kind: "sync.backfill", accountId, runId });
  await recordEvent(db, {
    accountId,
    kind: "backfill",
    direction: "both",
    fdId: null,
    hlId: null,
    outcome: "started",
    detail: { runId },
  });
  return run;
}

/** Re-enqueues the current page of a stopped or failed run (resume from the checkpoint). */
export async function resumeBackfill(
  db: D1Database,
  deps: Pick<JobDeps, "enqueue">,
  accountId: string,
): Promise<BackfillRun | null> {
  const run = await getBackfill(db, accountId);
  if (!run || run.state === "done") return run;
  if (run.state === "failed") await saveBackfill(db, { ...run, state: "running", error: null });
  await deps.enqueue({ v: 1, kind: "sync.backfill", accountId, runId: run.runId });
  return getBackfill(db, accountId);
}

/** A record the filter or an operator's unlink keeps out: its reason in the activity trail (live jobs record theirs). */
async function recordKeptOut(db: D1Database, accountId: string, r: JobResult): Promise<void> {
  if (r.outcome !== "skipped" || !(r.detail?.["filter"] || r.detail?.["unlinked"])) return;
  await recordEvent(db, {
    accountId,
    kind: "sync",
    direction: "none",
    fdId: r.fdId,
    hlId: r.hlId,
    outcome: "skipped",
    detail: { trigger: "backfill", ...(r.reason ? { reason: r.reason } : {}), ...r.detail },
  });
}

function tally(run: BackfillRun, r: JobResult): void {
  run.done++;
  if (r.outcome === "review") run.reviewed++;
  else if (r.writes.some((w) => w.op === "create")) run.created++;
  else if (r.outcome !== "skipped") run.matched++;
}

/**
 * Processes pages of a backfill run — one after another while the message's budget lasts — and
 * enqueues the continuation.
 */
export async function runBackfillPage(
  msg: Extract<QueueMessage, { kind: "sync.backfill" }>,
  ctx: HandlerContext,
  deps: JobDeps,
): Promise<Outcome> {
  const started = deps.now();
  let calls = 0;
  for (;;) {
    const page = await runOnePage(msg, ctx, deps);
    calls += page.calls;
    if (page.outcome) return page.outcome;
    if (deps.now() - started >= BACKFILL_MESSAGE_BUDGET_MS || calls >= BACKFILL_MESSAGE_MAX_CALLS) break;
  }
  await deps.enqueue({ v: 1, kind: "sync.backfill", accountId: msg.accountId, runId: msg.runId });
  return { kind: "ack" };
}

/**
 * One page: `outcome` set = the message ends with it (run finished, stale, paused, retry);
 * unset = the page is done and checkpointed, and there is more to do.
 */
async function runOnePage(
  msg: Extract<QueueMessage, { kind: "sync.backfill" }>,
  ctx: HandlerContext,
  deps: JobDeps,
): Promise<{ outcome: Outcome | null; calls: number }> {
  const ack = (calls = 0) => ({ outcome: { kind: "ack" } as const, calls });
  const db = ctx.env.DB;
  const account = await getAccount(db, msg.accountId);
  const run = await getBackfill(db, msg.accountId);
  // A superseded or finished run: this message is stale.
  if (!account || !run || run.runId !== msg.runId || run.state !== "running") return ack();
  if (account.status === "paused") return ack(); // resume re-enqueues the checkpoint
  const mapping = account.mapping;
  if (!mapping) {
    await saveBackfill(db, { ...run, state: "failed", error: "the account has no mapping" }, deps.now());
    return ack();
  }
  const started = deps.now();
  let calls = 0;
  const connectors = await deps.connectors(account, "backfill");
  const engineDeps: EngineDeps = {
    db,
    fourdegrees: countCalls(connectors.fourdegrees, () => calls++),
    highlevel: (loc) => countCalls(connectors.highlevel(loc), () => calls++),
    ourActor: connectors.ourActor,
    log: ctx.log,
    now: deps.now,
    ...(deps.hooks ? { hooks: deps.hooks } : {}),
  };
  const engine = new SyncEngine(engineDeps, account, mapping);
  const next: BackfillRun = { ...run };
  const pair = mapping.pipelines[run.pipelineIdx];

  if (run.phase === "fourdegrees" && pair) {
    const page = await engineDeps.fourdegrees.pageDeals({
      pipelineId: pair.fourdegreesPipelineId,
      cursor: run.cursor,
      limit: BACKFILL_PAGE_SIZE,
    });
    // Deals of one page are distinct records: a few at a time through the gate's backfill lane.
    // The page is the unit of the checkpoint: a retry re-runs it, and what was done is found again
    // (links, ledger), never written twice.
    const results = await pool(
      page.items,
      BACKFILL_CONCURRENCY,
      (deal) => matchKey(deal.name) || `id:${deal.id ?? ""}`,
      async (deal): Promise<JobResult | null> => {
        if (!deal.id || deal.archivedAt || (await hasTombstone(db, account.id, "fourdegrees", deal.id))) return null;
        const linked = await findLink(db, account.id, "fourdegrees", deal.id);
        return linked
          ? engine.syncDeal("fourdegrees", deal.id)
          : engine.fromFourDegrees(deal, pair.highlevelLocationId, { backfill: true });
      },
      (r) => r?.outcome === "retry",
    );
    const retry = results.find((r) => r?.outcome === "retry");
    if (retry)
      return {
        outcome: { kind: "retry", reason: retry.reason ?? "retry", delaySeconds: retry.retryAfterSeconds ?? 5 },
        calls,
      };
    for (const r of results) {
      if (r) tally(next, r);
      else next.done++;
      if (r) await recordKeptOut(db, account.id, r);
    }
    await enqueueBackfillAttachments(deps, account, results);
    next.total = Math.max(next.total, next.done + (page.nextCursor ? BACKFILL_PAGE_SIZE : 0));
    if (page.nextCursor) next.cursor = page.nextCursor;
    else {
      next.cursor = null;
      next.pipelineIdx++;
    }
  } else if (run.phase === "fourdegrees") {
    next.phase = "highlevel";
    next.pipelineIdx = 0;
    next.cursor = null;
  } else if (run.phase === "highlevel" && pair) {
    const hl = engineDeps.highlevel(pair.highlevelLocationId);
    const page = await hl.searchOpportunities({
      pipelineId: pair.highlevelPipelineId,
      cursor: run.cursor,
      limit: BACKFILL_PAGE_SIZE,
    });
    const results = await pool(
      page.items,
      BACKFILL_CONCURRENCY,
      (opp) => matchKey(opp.name) || `id:${opp.id}`,
      async (opp): Promise<JobResult | null> => {
        if (
          (await findLink(db, account.id, "highlevel", opp.id)) ||
          (await isInReview(db, account.id, "highlevel", opp.id)) ||
          (await hasTombstone(db, account.id, "highlevel", opp.id))
        )
          return null;
        return engine.fromHighLevel(opp, pair.highlevelLocationId);
      },
      (r) => r?.outcome === "retry",
    );
    const retry = results.find((r) => r?.outcome === "retry");
    if (retry)
      return {
        outcome: { kind: "retry", reason: retry.reason ?? "retry", delaySeconds: retry.retryAfterSeconds ?? 5 },
        calls,
      };
    for (const r of results) {
      if (!r) continue;
      tally(next, r);
      next.total++;
      await recordKeptOut(db, account.id, r);
    }
    await enqueueBackfillAttachments(deps, account, results);
    if (page.nextCursor) next.cursor = page.nextCursor;
    else {
      next.cursor = null;
      next.pipelineIdx++;
    }
  } else {
    next.phase = "done";
    next.state = "done";
    next.total = next.done;
  }
  await saveBackfill(db, next, deps.now());
  ctx.log.info({
    event: "sync.backfill",
    account: account.id,
    outcome: "ok",
    phase: run.phase,
    pipeline: run.pipelineIdx,
    done: next.done,
    total: next.total,
    calls,
    duration_ms: deps.now() - started,
  });
  if (next.state === "done") {
    await recordEvent(db, {
      accountId: account.id,
      kind: "backfill",
      direction: "both",
      fdId: null,
      hlId: null,
      outcome: "done",
      detail: {
        runId: run.runId,
        done: next.done,
        created: next.created,
        matched: next.matched,
        reviewed: next.reviewed,
      },
    });
    return ack(calls);
  }
  return { outcome: null, calls };
}

/** Runs one `sync.backfill` page; a permanent failure is recorded (to replay) and reported to the team. */
export async function runBackfillJob(
  msg: Extract<QueueMessage, { kind: "sync.backfill" }>,
  ctx: HandlerContext,
  deps: JobDeps,
): Promise<Outcome> {
  try {
    return await runBackfillPage(msg, ctx, deps);
  } catch (err) {
    const outcome = outcomeForError(err);
    if (outcome.permanent) {
      const failureId = `backfill:${msg.accountId}:${msg.runId}`;
      await recordFailure(ctx.env.DB, {
        id: failureId,
        accountId: msg.accountId,
        source: "permanent",
        message: msg,
        reason: outcome.reason,
      });
      await notifyChange(
        ctx.env,
        ctx.config,
        { kind: "sync_failure", accountId: msg.accountId, failureId, reason: outcome.reason },
        ctx.log,
      );
      return { kind: "permanent", reason: outcome.reason };
    }
    return {
      kind: "retry",
      reason: outcome.reason,
      ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}),
    };
  }
}
