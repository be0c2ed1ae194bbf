/**
 * The dead-letter consumer (queue `sync-events-dlq`): every message that exhausted its retries on
 * `sync-events` or `sync-bulk` is recorded in `sync_failures` (replayable through the admin API and
 * the console's Problems page) and acked — under its account when the message names one directly
 * or through its location / workspace, else under the unassigned bucket (`account_id` NULL) that
 * the operator sees. A dead webhook gives up its receipt claim, so HighLevel's or 4Degrees' own
 * re-send of it (and a replay) is processed instead of being dropped as a duplicate. A dead
 * `sync.record` drops its dirty mark, so later changes to that record enqueue again.
 */
import type { Config } from "../../config.ts";
import { createLogger } from "../../lib/log.ts";
import { notifyChange } from "../../notify/notify.ts";
import { recordFailure } from "../../store/failures.ts";
import { dropPending } from "../../store/pending.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { releaseReceipt } from "../../store/webhook-receipts.ts";
import { backoffSeconds } from "../../queue/consumer.ts";
import { accountOfMessage, receiptKeyOf } from "../../queue/message-account.ts";
import { QueueMessageSchema } from "../../queue/messages.ts";

/**
 * `max_retries` of the `sync-events-dlq` consumer in wrangler.toml (a test keeps the two equal).
 * With `backoffSeconds` (capped at 15 minutes) this retries a dead letter for about a day, so a D1
 * outage delays its failure row instead of losing it.
 */
export const DLQ_MAX_RETRIES = 100;

/**
 * Records each dead letter; acks only after the row is written. When D1 fails the DLQ message is
 * retried with backoff (its own `max_retries`), never acked; the last attempt logs the body, the
 * only copy left.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env, config: Config): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, { queue: batch.queue });
  for (const message of batch.messages) {
    const failureId = `dlq:${message.id}`;
    try {
      const parsed = QueueMessageSchema.safeParse(message.body);
      const accountId = await accountOfMessage(env.DB, message.body);
      const kind = parsed.success ? parsed.data.kind : "invalid";
      const reason = parsed.success
        ? `retries exhausted (${kind}, ${message.attempts} attempt(s) on the dead-letter queue)`
        : `retries exhausted; the message does not match the queue schema (${parsed.error.issues
            .slice(0, 3)
            .map((i) => `${i.path.join(".") || "body"}: ${i.message}`)
            .join("; ")})`;
      await recordFailure(env.DB, { id: failureId, accountId, source: "dead_letter", message: message.body, reason });
      const receipt = parsed.success ? receiptKeyOf(parsed.data) : null;
      if (receipt) await releaseReceipt(env.DB, receipt.provider, receipt.webhookId);
      // A team notification (never throws); only a message with a known account can have rules.
      if (accountId) await notifyChange(env, config, { kind: "sync_failure", accountId, failureId, reason }, log);
      if (parsed.success && parsed.data.kind === "sync.record") {
        const m = parsed.data;
        await dropPending(env.DB, m.accountId, m.side, m.record, m.recordId);
      }
      if (accountId)
        await recordEvent(env.DB, {
          accountId,
          kind: "failure",
          direction: null,
          fdId: null,
          hlId: null,
          outcome: "dead_letter",
          detail: { kind, messageId: message.id },
        });
      log.error({
        event: "queue.dead_letter",
        account: accountId ?? "unassigned",
        kind,
        outcome: "failed",
        message_id: message.id,
      });
      message.ack();
    } catch (err) {
      const last = message.attempts > DLQ_MAX_RETRIES;
      const delaySeconds = backoffSeconds(message.attempts);
      log.error({
        event: last ? "queue.dead_letter_lost" : "queue.dead_letter_record_failed",
        error: err,
        outcome: last ? "failed" : "retry",
        delay_s: delaySeconds,
        attempts: message.attempts,
        message_id: message.id,
        ...(last ? { body: message.body } : {}),
      });
      message.retry({ delaySeconds });
    }
  }
}
