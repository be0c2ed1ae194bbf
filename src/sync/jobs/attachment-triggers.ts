/**
 * What enqueues a `sync.attachments` job: a 4Degrees `attachment.*` webhook, a HighLevel opportunity
 * change (HighLevel's webhook does not carry custom fields, so any `OpportunityCreate` /
 * `OpportunityUpdate` of a linked pair may have touched the file field: the job reads and compares),
 * a newly created pair, and each pair a backfill page synced (bulk lane). Duplicates are harmless (ledger + links) and folded once per batch.
 */
import type { HandlerContext } from "../../queue/consumer.ts";
import type { Account } from "../../store/accounts.ts";
import { attachmentLinkByFourDegreesId } from "../../store/attachments.ts";
import { findLink, type SideName } from "../../store/links.ts";
import type { JobDeps } from "./deps.ts";

/** HighLevel events after which the opportunity's file field may differ. */
const FIELD_EVENTS = new Set(["OpportunityCreate", "OpportunityUpdate"]);

/** Whether a HighLevel event of this type may have changed the account's attachments field. */
export function touchesAttachments(account: Account, type: string): boolean {
  return FIELD_EVENTS.has(type) && !!account.mapping?.attachmentsFieldId && account.mapping.attachments !== "off";
}

/**
 * `attachment.created` of a file already linked (the webhook of our own upload, or a redelivery):
 * nothing to do. A delete, or an unlinked file, goes to the job.
 */
export async function isAttachmentEcho(
  db: D1Database,
  accountId: string,
  type: string,
  attachmentId: string,
): Promise<boolean> {
  if (type !== "attachment.created") return false;
  return (await attachmentLinkByFourDegreesId(db, accountId, attachmentId)) !== null;
}

/** Enqueues one attachments job for a linked pair (once per batch per record; none without a link). */
export async function enqueueAttachments(
  ctx: HandlerContext,
  deps: Pick<JobDeps, "enqueue" | "coalesceDelaySeconds">,
  accountId: string,
  side: SideName,
  recordId: string,
  locationId: string | null,
  trigger: string,
  account?: Account,
): Promise<void> {
  if (account && !account.mapping?.attachmentsFieldId) return;
  const key = `attachments:${accountId}:${side}:${recordId}`;
  if (ctx.batch?.isDone(key)) return;
  const link = await findLink(ctx.env.DB, accountId, side, recordId);
  if (!link || link.state !== "active") return;
  await deps.enqueue(
    { v: 1, kind: "sync.attachments", accountId, side, recordId, locationId, trigger: trigger.slice(0, 100) },
    deps.coalesceDelaySeconds,
  );
  ctx.batch?.markDone(key);
}

/**
 * One attachments job per pair a backfill page synced or created (on the bulk queue, `backfill`
 * lane), when the mapping syncs attachments: what copies the files of pairs that existed before.
 */
export async function enqueueBackfillAttachments(
  deps: Pick<JobDeps, "enqueue">,
  account: Account,
  results: ReadonlyArray<{ fdId: string | null; hlId: string | null } | null>,
): Promise<void> {
  if (!account.mapping?.attachmentsFieldId || account.mapping.attachments === "off") return;
  for (const r of results) {
    if (!r?.fdId || !r.hlId) continue;
    await deps.enqueue({
      v: 1,
      kind: "sync.attachments",
      accountId: account.id,
      side: "fourdegrees",
      recordId: r.fdId,
      lane: "backfill",
      trigger: "backfill",
    });
  }
}
