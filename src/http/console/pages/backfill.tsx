/**
 * Backfill: start a first full sync of an account, watch its progress (done / total, rate, time
 * left) and resume it from its checkpoint after a failure. The engine does the work
 * (src/sync/jobs/backfill.ts); this page reads its checkpoint row.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context.ts";
import { getBackfill, type BackfillRun } from "../../../store/backfill-runs.ts";
import { beginBackfill, resumeBackfill } from "../../../sync/jobs/backfill.ts";
import { sendMessage } from "../../../queue/queues.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { Empty, fmtDuration, fmtInt, fmtTime, Layout, NoAccount } from "../ui.tsx";

/** Progress figures of a run: records per second so far and the time left at that rate. */
export function progressOf(
  run: BackfillRun,
  now: number = Date.now(),
): { pct: number; perSecond: number; leftMs: number | null } {
  const elapsed = Math.max(1, (run.state === "running" ? now : run.updatedAt) - run.startedAt) / 1000;
  const perSecond = run.done / elapsed;
  const left = Math.max(0, run.total - run.done);
  return {
    pct: run.total > 0 ? Math.min(100, Math.round((run.done / run.total) * 100)) : run.state === "done" ? 100 : 0,
    perSecond,
    leftMs: run.state === "running" && perSecond > 0 ? (left / perSecond) * 1000 : null,
  };
}

export const backfillPage = new Hono<AppEnv>()
  .get("/backfill", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Backfill" page="backfill" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    const run = await getBackfill(c.env.DB, account.id);
    const p = run ? progressOf(run) : null;
    return c.html(
      <Layout title="Backfill" page="backfill" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        <p>
          A backfill links and syncs every existing deal and opportunity of the mapped pipelines, page by page, in the
          gate's lowest-priority lane (live changes go first).
        </p>
        {!account.mapping && (
          <p class="flash error">Save a mapping first: the backfill only covers mapped pipelines.</p>
        )}
        {run && p ? (
          <div class="card" id="backfill-run">
            <p>
              Run <code>{run.runId}</code>: <strong class={`status-${run.state}`}>{run.state}</strong>, phase{" "}
              {run.phase}, started {fmtTime(run.startedAt)}, last progress {fmtTime(run.updatedAt)}
            </p>
            <progress max={Math.max(run.total, run.done, 1)} value={run.done} aria-label="backfill progress">
              {p.pct}%
            </progress>
            <p id="backfill-figures">
              {fmtInt(run.done)} of {fmtInt(run.total)} records ({p.pct}%) · {p.perSecond.toFixed(2)} records/s · time
              left {p.leftMs === null ? "—" : fmtDuration(p.leftMs)}
            </p>
            <p>
              created {fmtInt(run.created)} · matched {fmtInt(run.matched)} · sent to review {fmtInt(run.reviewed)}
            </p>
            {run.error && <p class="flash error">Stopped: {run.error}</p>}
          </div>
        ) : (
          <Empty>No backfill has run for this account yet.</Empty>
        )}
        <form method="post" action="/console/backfill/start" class="inline">
          <input type="hidden" name="account" value={account.id} />
          <button type="submit" id="backfill-start" disabled={!account.mapping || run?.state === "running"}>
            {run ? "Start a new backfill" : "Start backfill"}
          </button>
        </form>{" "}
        {run && run.state !== "done" && (
          <form method="post" action="/console/backfill/resume" class="inline">
            <input type="hidden" name="account" value={account.id} />
            <button type="submit" class="secondary" id="backfill-resume">
              Resume from checkpoint
            </button>
          </form>
        )}
      </Layout>,
    );
  })
  .post("/backfill/start", async (c) => {
    const account = await formAccount(c, await c.req.parseBody());
    if (!account) return redirectWith(c, "backfill", null, { error: "account: choose an existing account" });
    if (!account.mapping)
      return redirectWith(c, "backfill", account.id, { error: "Save a mapping before starting a backfill." });
    const current = await getBackfill(c.env.DB, account.id);
    if (current?.state === "running")
      return redirectWith(c, "backfill", account.id, {
        error: "A backfill is already running; resume it or wait for it to finish.",
      });
    const run = await beginBackfill(
      c.env.DB,
      { enqueue: (m, delaySeconds) => sendMessage(c.env, m, delaySeconds), now: () => Date.now() },
      account.id,
    );
    c.var.log.info({ event: "console.backfill_started", account: account.id, run: run.runId, outcome: "ok" });
    return redirectWith(c, "backfill", account.id, { ok: "Backfill started." });
  })
  .post("/backfill/resume", async (c) => {
    const account = await formAccount(c, await c.req.parseBody());
    if (!account) return redirectWith(c, "backfill", null, { error: "account: choose an existing account" });
    const run = await resumeBackfill(
      c.env.DB,
      { enqueue: (m, delaySeconds) => sendMessage(c.env, m, delaySeconds) },
      account.id,
    );
    if (!run) return redirectWith(c, "backfill", account.id, { error: "There is no backfill to resume." });
    c.var.log.info({ event: "console.backfill_resumed", account: account.id, run: run.runId, outcome: "ok" });
    return redirectWith(c, "backfill", account.id, {
      ok: run.state === "done" ? "That backfill already finished." : "Backfill resumed from its checkpoint.",
    });
  });
