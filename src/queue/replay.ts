/**
 * Replaying a recorded failure (admin API and console): the failed message is sent again — a
 * record job forced, since its dirty mark is gone — and a webhook's receipt claim is released
 * first, so the replay is processed rather than dropped as a duplicate of itself.
 */
import type { Failure } from "../store/failures.ts";
import { markReplayed } from "../store/failures.ts";
import { releaseReceipt } from "../store/webhook-receipts.ts";
import { receiptKeyOf } from "./message-account.ts";
import { QueueMessageSchema, type QueueMessage } from "./messages.ts";
import { sendMessage } from "./queues.ts";

/** The message a replay sends: the failed one, with a record job forced; null when this version cannot read it. */
export function replayMessage(failure: Failure): QueueMessage | null {
  const parsed = QueueMessageSchema.safeParse(failure.message);
  if (!parsed.success) return null;
  return parsed.data.kind === "sync.record" ? { ...parsed.data, force: true } : parsed.data;
}

/** Replays one failure and marks it replayed; resolves the message sent, or null (not replayable, left open). */
export async function replayFailure(
  env: Pick<Env, "DB" | "SYNC_QUEUE" | "BULK_QUEUE" | "NOTIFY_QUEUE">,
  failure: Failure,
): Promise<QueueMessage | null> {
  const message = replayMessage(failure);
  if (!message) return null;
  const receipt = receiptKeyOf(message);
  if (receipt) await releaseReceipt(env.DB, receipt.provider, receipt.webhookId);
  await sendMessage(env, message);
  await markReplayed(env.DB, failure.id);
  return message;
}
