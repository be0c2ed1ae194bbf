/**
 * The `sync.attachments` job: copy, link and delete the attachments of one linked pair
 * (src/sync/engine/attachments.ts). Per-message decisions like the record job: transient errors
 * retry; a file that cannot cross (refused type, wrong length, failed download) is a permanent,
 * replayable failure naming its reason, filed once per pair (`attachments:<account>:<side>:<id>`).
 */
import type { HandlerContext, Outcome } from "../../queue/consumer.ts";
import type { QueueMessage } from "../../queue/messages.ts";
import { getAccount } from "../../store/accounts.ts";
import { recordFailure } from "../../store/failures.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { syncAttachments, type AttachmentsHost } from "../engine/attachments.ts";
import { outcomeForError, type JobDeps } from "./deps.ts";

/** The stable failure id of an attachments job (one open failure per pair side; replay re-runs it). */
export function attachmentsFailureId(msg: Extract<QueueMessage, { kind: "sync.attachments" }>): string {
  return `attachments:${msg.accountId}:${msg.side}:${msg.recordId}`;
}

/** Runs one `sync.attachments` job. */
export async function runAttachmentsJob(
  msg: Extract<QueueMessage, { kind: "sync.attachments" }>,
  ctx: HandlerContext,
  deps: JobDeps,
): Promise<Outcome> {
  const db = ctx.env.DB;
  const log = ctx.log.child({ account: msg.accountId });
  const account = await getAccount(db, msg.accountId);
  if (!account || account.status === "paused" || !account.mapping) {
    log.info({
      event: "sync.attachments",
      outcome: "skipped",
      reason: "no active, mapped account",
      record: msg.recordId,
    });
    return { kind: "ack" };
  }
  try {
    const connectors = await deps.connectors(account, msg.lane);
    const files = connectors.fourdegreesAttachments;
    if (!files) {
      log.info({ event: "sync.attachments", outcome: "skipped", reason: "no 4Degrees API key", record: msg.recordId });
      return { kind: "ack" };
    }
    const host: AttachmentsHost = {
      db,
      account,
      mapping: account.mapping,
      fourdegrees: files,
      fourdegreesNotes: connectors.fourdegrees,
      highlevel: (loc) => connectors.highlevel(loc),
      maxBytes: ctx.config.ATTACHMENT_MAX_BYTES,
      now: () => deps.now(),
      afterUpload: async (side, id) => {
        await deps.hooks?.afterUpload?.(side, id);
      },
      afterFieldWrite: async (id) => {
        await deps.hooks?.afterFieldWrite?.(id);
      },
    };
    const result = await syncAttachments(host, msg.side, msg.recordId);
    log.info({
      event: "sync.attachments",
      record: msg.recordId,
      side: msg.side,
      trigger: msg.trigger,
      outcome: result.outcome,
      direction: result.direction,
      writes: result.writes.length,
      ...(result.reason ? { reason: result.reason } : {}),
    });
    return { kind: "ack" };
  } catch (err) {
    const outcome = outcomeForError(err);
    log.warn({
      event: "sync.attachments",
      record: msg.recordId,
      side: msg.side,
      outcome: outcome.permanent ? "failed" : "retry",
      reason: outcome.reason,
      attempts: ctx.attempts,
    });
    if (!outcome.permanent)
      return {
        kind: "retry",
        reason: outcome.reason,
        ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}),
      };
    await recordFailure(db, {
      id: attachmentsFailureId(msg),
      accountId: account.id,
      source: "permanent",
      message: msg,
      reason: outcome.reason,
    });
    await recordEvent(db, {
      accountId: account.id,
      kind: "failure",
      direction: null,
      fdId: msg.side === "fourdegrees" ? msg.recordId : null,
      hlId: msg.side === "highlevel" ? msg.recordId : null,
      outcome: "failed",
      detail: { reason: outcome.reason, job: "attachments" },
    });
    return { kind: "permanent", reason: outcome.reason };
  }
}
