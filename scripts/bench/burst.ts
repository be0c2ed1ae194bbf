/**
 * The burst (issue 7): N signed HighLevel webhooks sent as fast as autocannon can to the local
 * Worker under `wrangler dev`, then watched until the Worker's queue consumer has processed each
 * one. Signals: every HTTP answer (200 "accepted", never "duplicate" — the ids are unique — and
 * never an error), and the consumer's own `queue.ack` log line per `highlevel.webhook` message
 * (LOG_LEVEL=debug), keyed by the queue message id: processed = distinct ids acked, applied twice
 * = an id acked more than once.
 */
import { burstWebhooks, webhookFactory } from "./load.ts";
import { startStack, waitFor } from "./stack.ts";

export interface BurstReport {
  events: number;
  acknowledged: number;
  byStatus: Record<string, number>;
  processed: number;
  appliedTwice: number;
  lost: number;
  p99AckMs: number;
  sendSeconds: number;
  /** From the last answer to the last message processed. */
  drainSeconds: number;
  /** From the first request to the last message processed. */
  totalSeconds: number;
}

/** Runs a burst of `events` webhooks on a fresh stack; `drainTimeoutMs` bounds the wait. */
export async function runBurst(events: number, options: { connections?: number; drainTimeoutMs?: number } = {}): Promise<BurstReport> {
  // Not subscribed: the only `highlevel.webhook` messages are the burst's own (the sync jobs it
  // triggers write to the sandbox, whose echo deliveries would otherwise be counted as processed).
  const stack = await startStack({ vars: { LOG_LEVEL: "debug" }, keepLogs: true, subscribe: false });
  try {
    // A handful of real demo opportunities: many events per record, as a busy location sends.
    const ids = stack.sb.highlevel.store.opportunitiesOf(stack.locationId).slice(0, 10).map((o) => o.id);
    const next = webhookFactory(stack.locationId, ids, `burst-${Date.now()}`);
    const started = Date.now();
    const result = await burstWebhooks(stack.worker.url, events, options.connections ?? 50, next);
    const sent = Date.now();
    // Acks per message id, read incrementally: rescanning the whole debug log every poll cost the
    // bench process seconds of the CPU the Worker drains with.
    const byId = new Map<string, number>();
    let scanned = 0;
    let lastAck = sent;
    const countAcks = () => {
      for (; scanned < stack.logs.length; scanned++) {
        const l = stack.logs[scanned];
        if (!l || l["event"] !== "queue.ack" || l["kind"] !== "highlevel.webhook") continue;
        byId.set(String(l["message_id"]), (byId.get(String(l["message_id"])) ?? 0) + 1);
        lastAck = Math.max(lastAck, Number(l["seenAt"] ?? 0));
      }
      return byId.size;
    };
    const acknowledged = result.byStatus["200 accepted"] ?? 0;
    await waitFor(() => countAcks() >= acknowledged, options.drainTimeoutMs ?? 300_000);
    countAcks();
    return {
      events,
      acknowledged,
      byStatus: result.byStatus,
      processed: byId.size,
      appliedTwice: [...byId.values()].filter((n) => n > 1).length,
      lost: Math.max(0, acknowledged - byId.size),
      p99AckMs: result.p99Ms,
      sendSeconds: (sent - started) / 1000,
      drainSeconds: (lastAck - sent) / 1000,
      totalSeconds: (lastAck - started) / 1000,
    };
  } finally {
    await stack.stop();
  }
}
