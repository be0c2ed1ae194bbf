/**
 * The mass-delete guard (docs/sync.md "Mass-delete guard"): asked by the engine before a confirmed
 * delete writes the other side. A burst of deletes from one side — more than the account's
 * `maxDeletes` in an hour, or more than `maxPercent` % of its pairs — puts every further delete of
 * the account on hold until a person approves or discards it on the Problems page; while held
 * nothing is written on the other side and the pair stays linked.
 */
import type { Account } from "../../store/accounts.ts";
import type { QueueMessageInput } from "../../queue/messages.ts";
import {
  clearHeldDelete,
  countRecentDeletes,
  decideHeldDeletes,
  getHeldDelete,
  heldSummary,
  holdDelete,
  pairsSince,
  type HeldDelete,
} from "../../store/held-deletes.ts";
import type { Link, SideName } from "../../store/links.ts";
import { recordEvent } from "../../store/sync-events.ts";

const HOUR_MS = 60 * 60 * 1000;

/**
 * The percentage rule never holds fewer than this many deletes an hour, so a small account (5 pairs,
 * 20 %) is not put on hold by its second delete; `maxDeletes` still applies below it.
 */
export const PERCENT_FLOOR = 5;

/** What the engine does with a confirmed delete. */
export type GuardVerdict =
  /** Apply the account's delete policy (`approved`: a person approved it, it counts apart). */
  | { action: "apply"; approved: boolean }
  /** A person discarded it: unlink the pair, write nothing on the other side. */
  | { action: "discard" }
  /** On hold: write nothing, keep the link. */
  | { action: "hold"; reason: string };

/** How many deletes an hour from one side the account allows before holding (the lower of both rules). */
export function deleteLimit(account: Pick<Account, "deleteGuard">, pairs: number): number {
  const byPercent = Math.max(PERCENT_FLOOR, Math.floor((pairs * account.deleteGuard.maxPercent) / 100));
  return Math.min(account.deleteGuard.maxDeletes, byPercent);
}

/**
 * Decides a confirmed delete of `link` (record gone on `gone`). A pair already held stays held until
 * decided; a decided pair is applied once (its row goes when the engine reports it applied, `settled`).
 */
export async function guardDelete(
  db: D1Database,
  account: Account,
  link: Link,
  gone: SideName,
  now: number,
): Promise<GuardVerdict> {
  const held = await getHeldDelete(db, account.id, link.fdDealId);
  if (held?.state === "approved") return { action: "apply", approved: true };
  if (held?.state === "discarded") return { action: "discard" };
  if (held) return { action: "hold", reason: "this delete is on hold for approval (Problems → Deletes on hold)" };

  const episode = await heldSummary(db, account.id);
  let reason: string | null = null;
  if (episode) reason = `${episode.count} delete(s) of this account are already on hold for approval`;
  else {
    const since = now - HOUR_MS;
    const recent = await countRecentDeletes(db, account.id, gone, since);
    const limit = deleteLimit(account, await pairsSince(db, account.id, since));
    if (recent >= limit)
      reason = `${recent} deletes from ${gone} within the hour reached the guard's limit of ${limit}`;
  }
  if (reason === null) return { action: "apply", approved: false };

  const fresh = await holdDelete(
    db,
    {
      accountId: account.id,
      fdDealId: link.fdDealId,
      hlOpportunityId: link.hlOpportunityId,
      hlLocationId: link.hlLocationId,
      goneSide: gone,
    },
    now,
  );
  if (fresh)
    await recordEvent(db, {
      accountId: account.id,
      at: now,
      kind: "delete_held",
      direction: "none",
      fdId: link.fdDealId,
      hlId: link.hlOpportunityId,
      outcome: "held",
      detail: { deleted: gone, reason },
    });
  return { action: "hold", reason: `delete on hold for approval: ${reason}` };
}

/** Forgets a decided pair's row once its decision was applied. */
export function settleHeldDelete(db: D1Database, accountId: string, fdDealId: string): Promise<void> {
  return clearHeldDelete(db, accountId, fdDealId);
}

/**
 * Decides one held delete (`fdDealId`) or all of the account's (null), then sends one forced record
 * job per decided pair, which applies the decision through the engine. A delete already decided is
 * not decided again, so a double click sends nothing twice. Returns the decided rows.
 */
export async function applyDecision(
  db: D1Database,
  send: (message: QueueMessageInput) => Promise<void>,
  accountId: string,
  fdDealId: string | null,
  decision: "approved" | "discarded",
): Promise<HeldDelete[]> {
  const decided = await decideHeldDeletes(db, accountId, fdDealId, decision);
  // The job starts from the surviving record: it finds the pair even when the link was never saved.
  for (const h of decided)
    await send({
      v: 1,
      kind: "sync.record",
      accountId,
      side: h.goneSide === "highlevel" ? "fourdegrees" : "highlevel",
      record: "deal",
      recordId: h.goneSide === "highlevel" ? h.fdDealId : h.hlOpportunityId,
      locationId: h.hlLocationId,
      lane: "live",
      force: true,
    });
  return decided;
}
