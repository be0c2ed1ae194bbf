/**
 * `POST /webhooks/4degrees`: verify (Standard Webhooks, over the raw bytes), enqueue one
 * `fourdegrees.webhook` message, answer in milliseconds. No database on this path: redeliveries of
 * a `webhook-id` are dropped by the queue consumer, which claims a whole batch's deliveries in one
 * D1 round trip (src/queue/consumer.ts) — Queues deliver at least once, so the consumer had to be
 * idempotent anyway, and the ingress keeps taking events while D1 is slow or down.
 *
 * Answers: 200 accepted, 401 missing/bad/stale signature, 400 body that is not a 4Degrees event,
 * 413 body over `MAX_WEBHOOK_BYTES`, 503 when the queue cannot take it — 4Degrees retries any
 * non-2xx with backoff (assumed contract), so a 503 loses nothing.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { RawWebhookEnvelope } from "../fourdegrees/schemas.ts";
import { createWebhookVerifier } from "../fourdegrees/webhook.ts";
import { AppError } from "../lib/errors.ts";
import type { QueueMessage } from "../queue/messages.ts";
import type { WebhookVerifier } from "../domain/port.ts";
import type { AppEnv } from "./context.ts";

/**
 * Largest accepted body. Why 96 KiB: the event travels on in one queue message, and a Queues
 * message is at most 128 KB; a 4Degrees event (one deal or note) is a few KiB.
 */
export const MAX_WEBHOOK_BYTES = 96 * 1024;

const verifiers = new Map<string, WebhookVerifier>();
function verifierFor(secret: string): WebhookVerifier {
  let v = verifiers.get(secret);
  if (!v) {
    v = createWebhookVerifier(secret);
    verifiers.set(secret, v);
  }
  return v;
}

export const fourDegreesWebhooks = new Hono<AppEnv>().post(
  "/webhooks/4degrees",
  bodyLimit({
    maxSize: MAX_WEBHOOK_BYTES,
    onError: () => {
      throw new AppError("payload_too_large", `webhook body is larger than ${MAX_WEBHOOK_BYTES} bytes`);
    },
  }),
  async (c) => {
    const log = c.var.log.child({ direction: "inbound", provider: "fourdegrees" });
    const raw = new Uint8Array(await c.req.arrayBuffer());
    await verifierFor(c.var.config.FOURDEGREES_WEBHOOK_SECRET).verify(c.req.raw.headers, raw).catch((err: unknown) => {
      log.warn({ event: "webhook.rejected", outcome: "rejected", reason: err instanceof Error ? err.message : String(err) });
      throw err;
    });
    // Verified: the header is present.
    const webhookId = c.req.header("webhook-id") ?? "";

    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw));
    } catch {
      throw new AppError("bad_request", "webhook body is not UTF-8 JSON");
    }
    const parsed = RawWebhookEnvelope.safeParse(json);
    if (!parsed.success) throw new AppError("bad_request", "webhook body is not a 4Degrees event", { details: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join("."), message: i.message })) });
    const event = parsed.data;
    const receivedAt = Date.now();
    const message: QueueMessage = { v: 1, kind: "fourdegrees.webhook", webhookId, workspaceId: event.workspace_id, type: event.type, receivedAt, body: jsonRecord(json) };
    try {
      await c.env.SYNC_QUEUE.send(message, { contentType: "json" });
    } catch (cause) {
      // Nothing was recorded: 4Degrees' retry of this delivery is taken like the first.
      log.error({ event: "webhook.enqueue_failed", outcome: "retry", webhook_id: webhookId, error: cause });
      throw new AppError("upstream_unavailable", "could not enqueue the delivery; retry later", { cause });
    }
    // Debug: the consumer's `queue.batch` and `sync.record` lines are the operator's record (see the HighLevel route).
    log.debug({ event: "webhook.accepted", outcome: "ok", webhook_id: webhookId, type: event.type, workspace: event.workspace_id, fourdegrees_id: typeof event.data.object["id"] === "string" ? event.data.object["id"] : null });
    return c.json({ ok: true, status: "accepted" });
  },
);

/** The verified body as the message's record (the envelope parse proved it is an object). */
function jsonRecord(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new AppError("bad_request", "webhook body is not a JSON object");
  return Object.fromEntries(Object.entries(value));
}
