/**
 * Dirty records — the coalescing table. A webhook (or reconcile) marks `(account, side, kind,
 * record)` dirty by bumping `seq`; only the transition clean → dirty enqueues a `sync.record` job,
 * so a burst of N events (HighLevel's fan-out pairs, rapid edits) costs one job, one re-read and at
 * most one write. The job clears the mark only when `seq` is still the value it read: a change
 * that arrived while it ran keeps the row dirty and the job runs once more.
 */
import * as z from "zod";
import type { SideName } from "./links.ts";

export type PendingKind = "deal" | "notes";

export interface PendingRecord {
  accountId: string;
  side: SideName;
  kind: PendingKind;
  recordId: string;
  seq: number;
  firstDirtyAt: number;
  lastDirtyAt: number;
}

const Row = z.object({
  account_id: z.string(),
  side: z.enum(["fourdegrees", "highlevel"]),
  kind: z.enum(["deal", "notes"]),
  record_id: z.string(),
  seq: z.number(),
  first_dirty_at: z.number(),
  last_dirty_at: z.number(),
});

function toPending(raw: unknown): PendingRecord {
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    side: r.side,
    kind: r.kind,
    recordId: r.record_id,
    seq: r.seq,
    firstDirtyAt: r.first_dirty_at,
    lastDirtyAt: r.last_dirty_at,
  };
}

/**
 * Marks a record dirty. Returns `newlyDirty: true` when the record was clean before (the caller
 * enqueues one job), `false` when a job is already due for it.
 */
export async function markDirty(
  db: D1Database,
  accountId: string,
  side: SideName,
  kind: PendingKind,
  recordId: string,
  now = Date.now(),
): Promise<{ newlyDirty: boolean; seq: number }> {
  const row = await db
    .prepare(
      `INSERT INTO pending_records (account_id, side, kind, record_id, seq, first_dirty_at, last_dirty_at) VALUES (?, ?, ?, ?, 1, ?, ?)
       ON CONFLICT (account_id, side, kind, record_id) DO UPDATE SET seq = seq + 1, last_dirty_at = excluded.last_dirty_at
       RETURNING seq`,
    )
    .bind(accountId, side, kind, recordId, now, now)
    .first<{ seq: number }>();
  const seq = row?.seq ?? 1;
  return { newlyDirty: seq === 1, seq };
}

export async function getPending(
  db: D1Database,
  accountId: string,
  side: SideName,
  kind: PendingKind,
  recordId: string,
): Promise<PendingRecord | null> {
  const row = await db
    .prepare("SELECT * FROM pending_records WHERE account_id = ? AND side = ? AND kind = ? AND record_id = ?")
    .bind(accountId, side, kind, recordId)
    .first();
  return row ? toPending(row) : null;
}

/** Clears the mark if `seq` is unchanged; `false` = a newer change arrived (run again). */
export async function clearIfUnchanged(
  db: D1Database,
  accountId: string,
  side: SideName,
  kind: PendingKind,
  recordId: string,
  seq: number,
): Promise<boolean> {
  const res = await db
    .prepare("DELETE FROM pending_records WHERE account_id = ? AND side = ? AND kind = ? AND record_id = ? AND seq = ?")
    .bind(accountId, side, kind, recordId, seq)
    .run();
  return res.meta.changes > 0;
}

/** Dirty records of an account, oldest first (resume after a pause, the console). */
export async function listPending(db: D1Database, accountId: string, limit = 500): Promise<PendingRecord[]> {
  const { results } = await db
    .prepare("SELECT * FROM pending_records WHERE account_id = ? ORDER BY first_dirty_at LIMIT ?")
    .bind(accountId, limit)
    .all();
  return results.map(toPending);
}

/** Dirty records whose job may have been lost (older than `before`), across accounts. */
export async function listStalePending(db: D1Database, before: number, limit = 200): Promise<PendingRecord[]> {
  const { results } = await db
    .prepare("SELECT * FROM pending_records WHERE last_dirty_at < ? ORDER BY last_dirty_at LIMIT ?")
    .bind(before, limit)
    .all();
  return results.map(toPending);
}

/** Drops a dirty mark unconditionally (its job is dead: the failure row remembers the record). */
export async function dropPending(
  db: D1Database,
  accountId: string,
  side: SideName,
  kind: PendingKind,
  recordId: string,
): Promise<void> {
  await db
    .prepare("DELETE FROM pending_records WHERE account_id = ? AND side = ? AND kind = ? AND record_id = ?")
    .bind(accountId, side, kind, recordId)
    .run();
}
