/**
 * Deletes confirmed by a re-read, applied per the account's delete policy: the other side is
 * deleted, archived or closed (or only unlinked) and the pair becomes a tombstone.
 */
import type { Account } from "../../store/accounts.ts";
import { beginWrite, completeWrite, ledgerIdempotencyKey, type LedgerKey } from "../../store/ledger.ts";
import { addTombstone, markLinkDeleted, type Link, type SideName } from "../../store/links.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { guardDelete, settleHeldDelete } from "./delete-guard.ts";
import { blank, directionOfWrites, type EngineDeps, type JobResult } from "./types.ts";

/** What applying a delete needs of the engine (the `SyncEngine` of the job). */
export interface DeleteHost {
  readonly deps: EngineDeps;
  readonly account: Account;
  readonly db: D1Database;
  highLevelWritable(locationId: string): Promise<boolean>;
}

/**
 * Applies a delete confirmed by a re-read (404, or a 4Degrees archive) per the account's policy:
 * `propagate` deletes (HighLevel) / archives (4Degrees) the other side, `archive` closes the
 * HighLevel opportunity as lost / archives the 4Degrees deal, `ignore` only unlinks. The pair
 * becomes a tombstone either way, so a stray update after the delete does not resurrect it.
 */
export async function applyDelete(engine: DeleteHost, link: Link, gone: SideName): Promise<JobResult> {
  const ids = { fdId: link.fdDealId, hlId: link.hlOpportunityId };
  const out: JobResult = { ...blank(ids.fdId, ids.hlId), outcome: "deleted" };
  const policy = engine.account.deletePolicy;
  const otherWritable = gone === "fourdegrees" ? await engine.highLevelWritable(link.hlLocationId) : true;
  const writes: JobResult["writes"] = [];
  if (policy !== "ignore" && otherWritable) {
    if (gone === "fourdegrees")
      writes.push(
        policy === "propagate"
          ? { side: "highlevel", op: "delete", id: link.hlOpportunityId }
          : { side: "highlevel", op: "close_lost", id: link.hlOpportunityId },
      );
    else writes.push({ side: "fourdegrees", op: "archive", id: link.fdDealId });
  }
  if (engine.account.testMode)
    return {
      ...out,
      outcome: "test_mode",
      writes,
      direction: directionOfWrites(writes),
      detail: { deleted: gone, policy },
    };
  // The mass-delete guard (delete-guard.ts) only matters when the other side would be written.
  const verdict =
    writes.length > 0 ? await guardDelete(engine.db, engine.account, link, gone, engine.deps.now()) : null;
  if (verdict?.action === "hold")
    return { ...out, outcome: "skipped", reason: verdict.reason, detail: { deleted: gone, policy, held: true } };
  if (verdict?.action === "discard") writes.length = 0;
  const judged = verdict?.action === "discard" ? { discarded: true } : verdict?.approved ? { approved: true } : {};
  for (const w of writes) {
    const key: LedgerKey = {
      accountId: engine.account.id,
      targetSide: w.side,
      sourceRecord: `${gone}:${gone === "fourdegrees" ? link.fdDealId : link.hlOpportunityId}`,
      changeHash: `delete:${w.op}`,
    };
    const begun = await beginWrite(engine.db, key, w.op, engine.deps.now());
    if (begun.entry.state === "done") continue;
    if (w.op === "delete") await engine.deps.highlevel(link.hlLocationId).deleteOpportunity(link.hlOpportunityId);
    else if (w.op === "close_lost")
      await engine.deps.highlevel(link.hlLocationId).updateOpportunity(link.hlOpportunityId, { status: "lost" });
    else await engine.deps.fourdegrees.archiveDeal(link.fdDealId, { idempotencyKey: ledgerIdempotencyKey(key) });
    await completeWrite(engine.db, key, w.id, engine.deps.now());
  }
  const now = engine.deps.now();
  await addTombstone(
    engine.db,
    engine.account.id,
    gone,
    gone === "fourdegrees" ? link.fdDealId : link.hlOpportunityId,
    now,
  );
  if (writes.some((w) => w.op === "delete" || w.op === "archive"))
    await addTombstone(
      engine.db,
      engine.account.id,
      gone === "fourdegrees" ? "highlevel" : "fourdegrees",
      gone === "fourdegrees" ? link.hlOpportunityId : link.fdDealId,
      now,
    );
  await markLinkDeleted(engine.db, engine.account.id, link.fdDealId, gone, now);
  await recordEvent(engine.db, {
    accountId: engine.account.id,
    kind: "delete",
    direction: directionOfWrites(writes),
    fdId: ids.fdId,
    hlId: ids.hlId,
    outcome: verdict?.action === "discard" ? "discarded" : policy,
    detail: { deleted: gone, policy, writes, ...judged },
  });
  if (verdict?.action === "discard" || verdict?.approved)
    await settleHeldDelete(engine.db, engine.account.id, link.fdDealId);
  return { ...out, writes, direction: directionOfWrites(writes), detail: { deleted: gone, policy, ...judged } };
}
