/**
 * The activity trail (`sync_events`: one row per job and per notable decision — what changed,
 * which side won, which calls were made) and the review list (`review_items`: records the engine
 * will not guess about, each with a clear reason).
 */
import * as z from "zod";
import type { SideName } from "./links.ts";

export interface SyncEvent {
  id: number;
  accountId: string;
  at: number;
  kind: string;
  direction: string | null;
  fdId: string | null;
  hlId: string | null;
  outcome: string;
  detail: Record<string, unknown>;
}

export type NewSyncEvent = Omit<SyncEvent, "id" | "at"> & { at?: number };

const EventRow = z.object({
  id: z.number(),
  account_id: z.string(),
  at: z.number(),
  kind: z.string(),
  direction: z.string().nullable(),
  fd_id: z.string().nullable(),
  hl_id: z.string().nullable(),
  outcome: z.string(),
  detail_json: z.string(),
});
const Detail = z.record(z.string(), z.unknown());

/** Row mapper of `sync_events` (shared with the console's read queries). */
export function toEvent(raw: unknown): SyncEvent {
  const r = EventRow.parse(raw);
  return {
    id: r.id,
    accountId: r.account_id,
    at: r.at,
    kind: r.kind,
    direction: r.direction,
    fdId: r.fd_id,
    hlId: r.hl_id,
    outcome: r.outcome,
    detail: Detail.parse(JSON.parse(r.detail_json)),
  };
}

export async function recordEvent(db: D1Database, e: NewSyncEvent): Promise<void> {
  await db
    .prepare(
      "INSERT INTO sync_events (account_id, at, kind, direction, fd_id, hl_id, outcome, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.accountId, e.at ?? Date.now(), e.kind, e.direction, e.fdId, e.hlId, e.outcome, JSON.stringify(e.detail))
    .run();
}

/** Newest first. */
export async function listEvents(
  db: D1Database,
  accountId: string,
  options: { kind?: string; limit?: number; beforeId?: number } = {},
): Promise<SyncEvent[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM sync_events WHERE account_id = ? AND (? IS NULL OR kind = ?) AND id < ? ORDER BY id DESC LIMIT ?",
    )
    .bind(
      accountId,
      options.kind ?? null,
      options.kind ?? null,
      options.beforeId ?? Number.MAX_SAFE_INTEGER,
      Math.min(options.limit ?? 100, 500),
    )
    .all();
  return results.map(toEvent);
}

export interface ReviewItem {
  accountId: string;
  side: SideName;
  recordId: string;
  reason: string;
  detail: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

const ReviewRow = z.object({
  account_id: z.string(),
  side: z.enum(["fourdegrees", "highlevel"]),
  record_id: z.string(),
  reason: z.string(),
  detail_json: z.string(),
  created_at: z.number(),
  updated_at: z.number(),
});

function toReview(raw: unknown): ReviewItem {
  const r = ReviewRow.parse(raw);
  return {
    accountId: r.account_id,
    side: r.side,
    recordId: r.record_id,
    reason: r.reason,
    detail: Detail.parse(JSON.parse(r.detail_json)),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Puts a record on the review list (or refreshes its reason). Returns true when it is new there. */
export async function addReview(
  db: D1Database,
  item: Omit<ReviewItem, "createdAt" | "updatedAt">,
  now = Date.now(),
): Promise<boolean> {
  const existing = await db
    .prepare("SELECT 1 AS x FROM review_items WHERE account_id = ? AND side = ? AND record_id = ?")
    .bind(item.accountId, item.side, item.recordId)
    .first();
  await db
    .prepare(
      `INSERT INTO review_items (account_id, side, record_id, reason, detail_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, side, record_id) DO UPDATE SET reason = excluded.reason, detail_json = excluded.detail_json, updated_at = excluded.updated_at`,
    )
    .bind(item.accountId, item.side, item.recordId, item.reason, JSON.stringify(item.detail), now, now)
    .run();
  return existing === null;
}

/** Removes a record from the review list (it synced, or a person resolved it). */
export async function resolveReview(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
): Promise<boolean> {
  const res = await db
    .prepare("DELETE FROM review_items WHERE account_id = ? AND side = ? AND record_id = ?")
    .bind(accountId, side, recordId)
    .run();
  return res.meta.changes > 0;
}

export async function listReview(db: D1Database, accountId: string, limit = 200): Promise<ReviewItem[]> {
  const { results } = await db
    .prepare("SELECT * FROM review_items WHERE account_id = ? ORDER BY updated_at DESC LIMIT ?")
    .bind(accountId, limit)
    .all();
  return results.map(toReview);
}

/** True when the record is on the review list. */
export async function isInReview(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
): Promise<boolean> {
  return (
    (await db
      .prepare("SELECT 1 AS x FROM review_items WHERE account_id = ? AND side = ? AND record_id = ?")
      .bind(accountId, side, recordId)
      .first()) !== null
  );
}
