/**
 * Runs captured queue message bodies through the real consumer (`consumeBatch`: parse, the batch's
 * one-round-trip webhook claim, then the handlers) as one MessageBatch, and reports what it did
 * with each message. Message ids default to fresh UUIDs (a redelivery of the same message keeps
 * its id: pass `ids` to model that).
 */
import { env } from "cloudflare:workers";
import { loadConfig } from "../../../src/config.ts";
import { consumeBatch, type Handlers } from "../../../src/queue/consumer.ts";

export interface BatchRun {
  /** Ids of the messages acked (handled or dropped as duplicates). */
  acked: string[];
  /** Ids of the messages retried. */
  retried: string[];
  /** The message ids, in the order given. */
  ids: string[];
}

export async function runBatch(bodies: readonly unknown[], handlers: Handlers, options: { ids?: readonly string[]; db?: D1Database; queue?: string } = {}): Promise<BatchRun> {
  const acked: string[] = [];
  const retried: string[] = [];
  const ids = bodies.map((_, i) => options.ids?.[i] ?? crypto.randomUUID());
  const messages = bodies.map((body, i) => ({
    id: ids[i] ?? "",
    timestamp: new Date(),
    body,
    attempts: 1,
    ack: () => void acked.push(ids[i] ?? ""),
    retry: () => void retried.push(ids[i] ?? ""),
  }));
  const batch = { queue: options.queue ?? "sync-events", messages, ackAll: () => undefined, retryAll: () => undefined, metadata: {} } as unknown as MessageBatch<unknown>;
  await consumeBatch(batch, options.db ? { ...env, DB: options.db } : env, loadConfig(env), handlers);
  return { acked, retried, ids };
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
