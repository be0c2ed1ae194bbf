/**
 * Runs captured queue message bodies through the real consumer (`consumeBatch`: parse, the batch's
 * one-round-trip webhook claim, then the handlers) as one MessageBatch built by the plugin's
 * `createMessageBatch`, and reports what it did with each message from `getQueueResult`. Message
 * ids default to fresh UUIDs (a redelivery of the same message keeps its id: pass `ids` to model that).
 */
import { createExecutionContext, createMessageBatch, getQueueResult, type QueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { loadConfig } from "../../../src/config.ts";
import { consumeBatch, type Handlers } from "../../../src/queue/consumer.ts";

export interface BatchRun {
  /** Ids of the messages acked (handled or dropped as duplicates), in batch order. */
  acked: string[];
  /** Ids of the messages retried, in batch order. */
  retried: string[];
  /** The message ids, in the order given. */
  ids: string[];
  /** The plugin's whole account of the batch (`ackAll`, `retryBatch`, retry delays). */
  result: QueueResult;
}

/** Consumes `bodies` as one batch of `options.queue` (default `sync-events`) and reports each message's fate. */
export async function runBatch(
  bodies: readonly unknown[],
  handlers: Handlers,
  options: { ids?: readonly string[]; db?: D1Database; queue?: string } = {},
): Promise<BatchRun> {
  const ids = bodies.map((_, i) => options.ids?.[i] ?? crypto.randomUUID());
  const batch = createMessageBatch<unknown>(
    options.queue ?? "sync-events",
    bodies.map((body, i) => ({ id: ids[i] ?? "", timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await consumeBatch(batch, options.db ? { ...env, DB: options.db } : env, loadConfig(env), handlers);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks, retried: result.retryMessages.map((m) => m.msgId), ids, result };
}

/** Handlers that only record which webhook deliveries reached them (after the consumer's dedupe). */
export function recordingHandlers(): { handlers: Handlers; reached: string[] } {
  const reached: string[] = [];
  return {
    reached,
    handlers: {
      "highlevel.webhook": async (msg) => {
        reached.push(msg.webhookId);
        return { kind: "ack" };
      },
      "fourdegrees.webhook": async (msg) => {
        reached.push(msg.webhookId);
        return { kind: "ack" };
      },
    },
  };
}
