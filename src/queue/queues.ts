/**
 * Which queue a message goes to. Separate queues so that bulk work never sits ahead of a live change:
 * a queue delivers in roughly FIFO order and, locally, one batch at a time, so a backfill page
 * (tens of seconds of HighLevel calls) or the rows of a large CSV import in the same queue as the
 * webhooks would make a user's edit wait behind them.
 *
 * - `SYNC_QUEUE` (sync-events): webhooks, live record jobs, automation runs, replays.
 * - `BULK_QUEUE` (sync-bulk): backfill pages, CSV import rows, record jobs of the `backfill` and
 *   `reconcile` lanes.
 * - `NOTIFY_QUEUE` (sync-notify): notification deliveries, whose receivers may be slow or silent.
 *
 * The queues are consumed by the same handlers (src/index.ts), so a message that lands in another
 * queue (a replay, a message routed by another version) is still handled — except that a delivery
 * found on the live or bulk queue is forwarded to `NOTIFY_QUEUE`, never sent there.
 */
import type { QueueMessageInput } from "./messages.ts";

/** Whether a message is bulk work (backfill, import, reconcile) rather than a live change. */
export function isBulk(message: QueueMessageInput): boolean {
  switch (message.kind) {
    case "sync.backfill":
    case "fourdegrees.import_row":
      return true;
    case "sync.record":
    case "sync.attachments":
      return message.lane === "backfill" || message.lane === "reconcile";
    default:
      return false;
  }
}

/** The queues a message may go to. */
export type QueueBindings = Pick<Env, "SYNC_QUEUE" | "BULK_QUEUE" | "NOTIFY_QUEUE">;

/** The queue binding for `message`. */
export function queueFor(env: QueueBindings, message: QueueMessageInput): Queue {
  if (message.kind === "notify.deliver") return env.NOTIFY_QUEUE;
  return isBulk(message) ? env.BULK_QUEUE : env.SYNC_QUEUE;
}

/** Sends `message` to its queue (JSON), optionally delayed. */
export async function sendMessage(
  env: QueueBindings,
  message: QueueMessageInput,
  delaySeconds?: number,
): Promise<void> {
  await queueFor(env, message).send(message, { contentType: "json", ...(delaySeconds ? { delaySeconds } : {}) });
}
