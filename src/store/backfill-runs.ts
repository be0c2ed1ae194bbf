/**
 * Backfill checkpoints (`backfill_runs`, one per account, saved after every page so a crashed run
 * resumes where it stopped) and reconcile cursors (`reconcile_cursors`, where the cron's re-scan
 * continues on its next tick).
 */
import * as z from "zod";
import type { SideName } from "./links.ts";

export interface BackfillRun {
  accountId: string;
  runId: string;
  state: "running" | "done" | "failed";
  phase: "fourdegrees" | "highlevel" | "done";
  pipelineIdx: number;
  cursor: string | null;
  done: number;
  total: number;
  created: number;
  matched: number;
  reviewed: number;
  error: string | null;
  startedAt: number;
  updatedAt: number;
}

const Row = z.object({
  account_id: z.string(),
  run_id: z.string(),
  state: z.enum(["running", "done", "failed"]),
  phase: z.enum(["fourdegrees", "highlevel", "done"]),
  pipeline_idx: z.number(),
  cursor: z.string().nullable(),
  done: z.number(),
  total: z.number(),
  created: z.number(),
  matched: z.number(),
  reviewed: z.number(),
  error: z.string().nullable(),
  started_at: z.number(),
  updated_at: z.number(),
});

function toRun(raw: unknown): BackfillRun {
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    runId: r.run_id,
    state: r.state,
    phase: r.phase,
    pipelineIdx: r.pipeline_idx,
    cursor: r.cursor,
    done: r.done,
    total: r.total,
    created: r.created,
    matched: r.matched,
    reviewed: r.reviewed,
    error: r.error,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
  };
}

export async function getBackfill(db: D1Database, accountId: string): Promise<BackfillRun | null> {
  const row = await db.prepare("SELECT * FROM backfill_runs WHERE account_id = ?").bind(accountId).first();
  return row ? toRun(row) : null;
}

/** Starts a new run (replacing a finished one); returns the run. */
export async function startBackfill(
  db: D1Database,
  accountId: string,
  runId: string,
  now = Date.now(),
): Promise<BackfillRun> {
  await db
    .prepare(
      `INSERT INTO backfill_runs (account_id, run_id, state, phase, pipeline_idx, cursor, done, total, created, matched, reviewed, error, started_at, updated_at)
       VALUES (?, ?, 'running', 'fourdegrees', 0, NULL, 0, 0, 0, 0, 0, NULL, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET run_id = excluded.run_id, state = 'running', phase = 'fourdegrees', pipeline_idx = 0, cursor = NULL,
         done = 0, total = 0, created = 0, matched = 0, reviewed = 0, error = NULL, started_at = excluded.started_at, updated_at = excluded.updated_at`,
    )
    .bind(accountId, runId, now, now)
    .run();
  const run = await getBackfill(db, accountId);
  if (!run) throw new Error("backfill run vanished after insert");
  return run;
}

/** Saves the checkpoint after a page (only for the run that owns it). */
export async function saveBackfill(db: D1Database, run: BackfillRun, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `UPDATE backfill_runs SET state = ?, phase = ?, pipeline_idx = ?, cursor = ?, done = ?, total = ?, created = ?, matched = ?, reviewed = ?, error = ?, updated_at = ?
       WHERE account_id = ? AND run_id = ?`,
    )
    .bind(
      run.state,
      run.phase,
      run.pipelineIdx,
      run.cursor,
      run.done,
      run.total,
      run.created,
      run.matched,
      run.reviewed,
      run.error,
      now,
      run.accountId,
      run.runId,
    )
    .run();
}

export interface ReconcileCursor {
  pipelineIdx: number;
  cursor: string | null;
}

export async function getReconcileCursor(db: D1Database, accountId: string, side: SideName): Promise<ReconcileCursor> {
  const row = await db
    .prepare("SELECT pipeline_idx, cursor FROM reconcile_cursors WHERE account_id = ? AND side = ?")
    .bind(accountId, side)
    .first();
  if (!row) return { pipelineIdx: 0, cursor: null };
  const r = z.object({ pipeline_idx: z.number(), cursor: z.string().nullable() }).parse(row);
  return { pipelineIdx: r.pipeline_idx, cursor: r.cursor };
}

export async function saveReconcileCursor(
  db: D1Database,
  accountId: string,
  side: SideName,
  c: ReconcileCursor,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO reconcile_cursors (account_id, side, pipeline_idx, cursor, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (account_id, side) DO UPDATE SET pipeline_idx = excluded.pipeline_idx, cursor = excluded.cursor, updated_at = excluded.updated_at`,
    )
    .bind(accountId, side, c.pipelineIdx, c.cursor, now)
    .run();
}
