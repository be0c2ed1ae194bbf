/**
 * The dead-letter consumer (queue `sync-events-dlq`): every message that exhausted its retries on
 * `sync-events` is recorded in `sync_failures` (replayable through the admin API) and acked. A
 * dead `sync.record` also drops its dirty mark, so later changes to that record enqueue again
 * instead of waiting behind a job that will never come.
 */
import type { Config } from "../../config.ts";
import { createLogger } from "../../lib/log.ts";
import { notifyChange } from "../../notify/notify.ts";
import { recordFailure } from "../../store/failures.ts";
import { dropPending } from "../../store/pending.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { QueueMessageSchema } from "../../queue/messages.ts";

/** The account a message concerns, when it names one directly. */
function accountOf(body: unknown): string | null {
  const parsed = QueueMessageSchema.safeParse(body);
  if (!parsed.success) return null;
  return "accountId" in parsed.data ? parsed.data.accountId : null;
}

/** Records each dead letter; acks only after the row is written (a D1 failure retries the DLQ message). */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env, config: Config): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, { queue: batch.queue });
  for (const message of batch.messages) {
    try {
      const accountId = accountOf(message.body);
      const parsed = QueueMessageSchema.safeParse(message.body);
      const kind = parsed.success ? parsed.data.kind : "invalid";
      const reason = `retries exhausted on sync-events (${kind}, ${message.attempts} attempt(s) on the dead-letter queue)`;
      await recordFailure(env.DB, { id: `dlq:${message.id}`, accountId, source: "dead_letter", message: message.body, reason });
      // A team notification (never throws); only a message that names its account can have rules.
      if (accountId) await notifyChange(env, config, { kind: "sync_failure", accountId, failureId: `dlq:${message.id}`, reason }, log);
      if (parsed.success && parsed.data.kind === "sync.record") {
        const m = parsed.data;
        await dropPending(env.DB, m.accountId, m.side, m.record, m.recordId);
      }
      if (accountId) await recordEvent(env.DB, { accountId, kind: "failure", direction: null, fdId: null, hlId: null, outcome: "dead_letter", detail: { kind, messageId: message.id } });
      log.error({ event: "queue.dead_letter", account: accountId, kind, outcome: "failed", message_id: message.id });
      message.ack();
    } catch (err) {
      log.error({ event: "queue.dead_letter_record_failed", error: err, outcome: "retry", message_id: message.id });
      message.retry({ delaySeconds: 30 });
    }
  }
}
