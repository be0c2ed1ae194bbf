/**
 * The mass-delete guard's D1 side (migration 0118): `held_deletes` — pairs whose record was deleted
 * on one side while the guard was tripped, waiting for a person — and the counts the guard decides
 * with (the hour's deletes from one side, the account's pairs). See docs/sync.md "Mass-delete guard".
 */
import * as z from "zod";
import type { SideName } from "./links.ts";

/** What a person decided about a held delete (`held` = not yet). */
export type HeldState = "held" | "approved" | "discarded";

/** One delete on hold. */
export interface HeldDelete {
  accountId: string;
  fdDealId: string;
  hlOpportunityId: string;
  hlLocationId: string;
  goneSide: SideName;
  state: HeldState;
  heldAt: number;
  decidedAt: number | null;
}

const Row = z.object({
  account_id: z.string(),
  fd_deal_id: z.string(),
  hl_opportunity_id: z.string(),
  hl_location_id: z.string(),
  gone_side: z.enum(["fourdegrees", "highlevel"]),
  state: z.enum(["held", "approved", "discarded"]),
  held_at: z.number(),
  decided_at: z.number().nullable(),
});

function toHeld(raw: unknown): HeldDelete {
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    fdDealId: r.fd_deal_id,
    hlOpportunityId: r.hl_opportunity_id,
    hlLocationId: r.hl_location_id,
    goneSide: r.gone_side,
    state: r.state,
    heldAt: r.held_at,
    decidedAt: r.decided_at,
  };
}

/** Puts a pair's delete on hold; a pair already held (or decided) keeps its row. True when new. */
export async function holdDelete(
  db: D1Database,
  h: Pick<HeldDelete, "accountId" | "fdDealId" | "hlOpportunityId" | "hlLocationId" | "goneSide">,
  now = Date.now(),
): Promise<boolean> {
  const res = await db
    .prepare(
      `INSERT INTO held_deletes (account_id, fd_deal_id, hl_opportunity_id, hl_location_id, gone_side, state, held_at)
       VALUES (?, ?, ?, ?, ?, 'held', ?) ON CONFLICT (account_id, fd_deal_id) DO NOTHING`,
    )
    .bind(h.accountId, h.fdDealId, h.hlOpportunityId, h.hlLocationId, h.goneSide, now)
    .run();
  return res.meta.changes > 0;
}

/** The held (or decided, not yet applied) delete of a pair. */
export async function getHeldDelete(db: D1Database, accountId: string, fdDealId: string): Promise<HeldDelete | null> {
  const raw = await db
    .prepare("SELECT * FROM held_deletes WHERE account_id = ? AND fd_deal_id = ?")
    .bind(accountId, fdDealId)
    .first();
  return raw === null ? null : toHeld(raw);
}

/** An account's deletes in one state (default: waiting for a decision), oldest first. */
export async function listHeldDeletes(
  db: D1Database,
  accountId: string,
  state: HeldState = "held",
  limit = 500,
): Promise<HeldDelete[]> {
  const { results } = await db
    .prepare("SELECT * FROM held_deletes WHERE account_id = ? AND state = ? ORDER BY held_at, fd_deal_id LIMIT ?")
    .bind(accountId, state, Math.min(limit, 1000))
    .all();
  return results.map(toHeld);
}

/** The hold episode of an account: how many wait, and since when (null when none waits). */
export async function heldSummary(db: D1Database, accountId: string): Promise<{ count: number; since: number } | null> {
  const row = await db
    .prepare("SELECT COUNT(*) AS n, MIN(held_at) AS since FROM held_deletes WHERE account_id = ? AND state = 'held'")
    .bind(accountId)
    .first<{ n: number; since: number | null }>();
  return row && row.n > 0 && row.since !== null ? { count: row.n, since: row.since } : null;
}

/** Accounts with at least one delete waiting (the cron's `deletes_held` scan). */
export async function accountsWithHeldDeletes(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT DISTINCT account_id FROM held_deletes WHERE state = 'held'")
    .all<{ account_id: string }>();
  return results.map((r) => r.account_id);
}

/**
 * Decides held deletes: the named pair, or every held one of the account when `fdDealId` is null.
 * Only `held` rows move, so a second click changes nothing. Returns the rows it decided.
 */
export async function decideHeldDeletes(
  db: D1Database,
  accountId: string,
  fdDealId: string | null,
  decision: "approved" | "discarded",
  now = Date.now(),
): Promise<HeldDelete[]> {
  const { results } = await db
    .prepare(
      `UPDATE held_deletes SET state = ?1, decided_at = ?2
       WHERE account_id = ?3 AND state = 'held' AND (?4 IS NULL OR fd_deal_id = ?4) RETURNING *`,
    )
    .bind(decision, now, accountId, fdDealId)
    .all();
  return results.map(toHeld);
}

/** Forgets a pair's row once its decision was applied (the pair is a tombstone by then). */
export async function clearHeldDelete(db: D1Database, accountId: string, fdDealId: string): Promise<void> {
  await db.prepare("DELETE FROM held_deletes WHERE account_id = ? AND fd_deal_id = ?").bind(accountId, fdDealId).run();
}

/**
 * Deletes applied from `gone` side since `since` that count against the guard: the `delete` events
 * of the activity trail, without the ones a person approved (they were already judged).
 */
export async function countRecentDeletes(
  db: D1Database,
  accountId: string,
  gone: SideName,
  since: number,
): Promise<number> {
  const row = await db
    .prepare(
      `SELECT COUNT(*) AS n FROM sync_events WHERE account_id = ? AND at >= ? AND kind = 'delete'
       AND json_extract(detail_json, '$.deleted') = ? AND json_extract(detail_json, '$.approved') IS NULL`,
    )
    .bind(accountId, since, gone)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** The account's pairs at the start of the window: active ones plus those deleted since `since`. */
export async function pairsSince(db: D1Database, accountId: string, since: number): Promise<number> {
  const row = await db
    .prepare(
      "SELECT SUM(state = 'active') + SUM(state = 'deleted' AND synced_at >= ?) AS n FROM links WHERE account_id = ?",
    )
    .bind(since, accountId)
    .first<{ n: number | null }>();
  return row?.n ?? 0;
}
