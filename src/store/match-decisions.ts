/**
 * What an operator decided about duplicates: pairs told apart (`match_rejections`, never suggested
 * or matched again) and records unlinked by hand (`unlinked_records`, no longer synced until linked
 * by hand). Link removal itself is `deleteLink` here too: the records on both sides are kept.
 */
import type { SideName } from "./links.ts";

/** Remembers that a deal and an opportunity are not the same record (idempotent). */
export async function rejectMatch(
  db: D1Database,
  accountId: string,
  fdDealId: string,
  hlOpportunityId: string,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "INSERT INTO match_rejections (account_id, fd_deal_id, hl_opportunity_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(accountId, fdDealId, hlOpportunityId, now)
    .run();
}

/** Forgets a rejection (an operator links the pair by hand after all). */
export async function clearRejection(
  db: D1Database,
  accountId: string,
  fdDealId: string,
  hlOpportunityId: string,
): Promise<void> {
  await db
    .prepare("DELETE FROM match_rejections WHERE account_id = ? AND fd_deal_id = ? AND hl_opportunity_id = ?")
    .bind(accountId, fdDealId, hlOpportunityId)
    .run();
}

/** True when the pair was told apart. */
export async function isRejected(
  db: D1Database,
  accountId: string,
  fdDealId: string,
  hlOpportunityId: string,
): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS x FROM match_rejections WHERE account_id = ? AND fd_deal_id = ? AND hl_opportunity_id = ?")
    .bind(accountId, fdDealId, hlOpportunityId)
    .first();
  return row !== null;
}

/** Marks a record as unlinked by hand: it no longer syncs (idempotent). */
export async function markUnlinked(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "INSERT INTO unlinked_records (account_id, side, record_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(accountId, side, recordId, now)
    .run();
}

/** Lets a record sync again (it was linked by hand). */
export async function clearUnlinked(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
): Promise<void> {
  await db
    .prepare("DELETE FROM unlinked_records WHERE account_id = ? AND side = ? AND record_id = ?")
    .bind(accountId, side, recordId)
    .run();
}

/** True when the record was unlinked by hand. */
export async function isUnlinked(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS x FROM unlinked_records WHERE account_id = ? AND side = ? AND record_id = ?")
    .bind(accountId, side, recordId)
    .first();
  return row !== null;
}

/** Removes a pair's link row (the records on both sides are untouched). True when there was one. */
export async function deleteLink(db: D1Database, accountId: string, fdDealId: string): Promise<boolean> {
  const res = await db
    .prepare("DELETE FROM links WHERE account_id = ? AND fd_deal_id = ?")
    .bind(accountId, fdDealId)
    .run();
  return res.meta.changes > 0;
}
