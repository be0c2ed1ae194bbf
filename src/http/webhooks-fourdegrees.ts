/**
 * `POST /webhooks/4degrees`: verify (Standard Webhooks, over the raw bytes), enqueue one
 * `fourdegrees.webhook` message, answer in milliseconds. Redeliveries of a `webhook-id` are
 * dropped by the queue consumer, which claims a whole batch's deliveries in one D1 round trip
 * (src/queue/consumer.ts) — Queues deliver at least once, so the consumer had to be idempotent anyway.
 *
 * The signing secret is the workspace's own when it has one (admin API), else the global
 * `FOURDEGREES_WEBHOOK_SECRET`. Which workspace is only said by the body, so its `workspace_id` is
 * read as an untrusted hint to pick the secret, and the raw bytes are verified with that secret
 * before anything else of the body is used: a body naming a workspace with its own secret passes
 * only with that secret. The hint's secret is looked up in D1 and kept for `SECRET_CACHE_MS` per
 * isolate, so a burst costs D1 one read per workspace, and a workspace seen before is still
 * verified while D1 is down (a workspace never seen answers 503 then).
 *
 * Answers: 200 accepted, 401 missing/bad/stale signature, 400 body that is not a 4Degrees event
 * (or nests deeper than `MAX_JSON_DEPTH`), 413 body over `MAX_WEBHOOK_BYTES` or a message that
 * cannot fit a queue message, 503 when the queue or D1 cannot take it — 4Degrees retries any
 * non-2xx with backoff (assumed contract), so a 503 loses nothing.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { RawWebhookEnvelope } from "../fourdegrees/schemas.ts";
import { createWebhookVerifier } from "../fourdegrees/webhook.ts";
import { AppError } from "../lib/errors.ts";
import { jsonDepthExceeds, MAX_JSON_DEPTH, QUEUE_MESSAGE_BUDGET_BYTES, queueMessageBytes } from "../lib/json-limits.ts";
import type { EncryptionKey } from "../lib/crypto.ts";
import { cachedWorkspaceKeyRow } from "../store/account-config.ts";
import { webhookSecretOf } from "../store/fourdegrees-accounts.ts";
import type { QueueMessage } from "../queue/messages.ts";
import type { WebhookVerifier } from "../domain/port.ts";
import type { AppEnv } from "./context.ts";

/**
 * Largest accepted body. Why 96 KiB: the event travels on in one queue message, and a Queues
 * message is at most 128 KB; a 4Degrees event (one deal or note) is a few KiB.
 */
export const MAX_WEBHOOK_BYTES = 96 * 1024;

/** How long an isolate keeps a workspace's secret (or its absence); a change applies everywhere after it. */
export const SECRET_CACHE_MS = 60_000;
/** Entries the caches hold at most: hints are attacker-chosen, so neither may grow without bound. */
const CACHE_MAX = 1_000;

const verifiers = new Map<string, WebhookVerifier>();
function verifierFor(secret: string): WebhookVerifier {
  let v = verifiers.get(secret);
  if (!v) {
    v = createWebhookVerifier(secret);
    if (verifiers.size >= CACHE_MAX) verifiers.clear();
    verifiers.set(secret, v);
  }
  return v;
}

const workspaceSecrets = new Map<string, { secret: string | null; until: number }>();

/** Forgets this isolate's copy of a workspace's secret (the admin API calls it after a change). */
export function forgetWorkspaceSecret(workspaceId: string): void {
  workspaceSecrets.delete(workspaceId);
}

/**
 * The workspace's own secret, or null: then the global one applies. Cached; with D1 down an expired
 * entry still answers (a workspace seen before keeps flowing), and an unseen workspace throws.
 */
async function workspaceSecret(
  db: D1Database,
  keys: readonly EncryptionKey[],
  workspaceId: string,
): Promise<string | null> {
  const now = Date.now();
  const hit = workspaceSecrets.get(workspaceId);
  if (hit && hit.until > now) return hit.secret;
  let secret: string | null;
  try {
    // Through the configuration cache: the one read also fills the account's entries its job needs.
    secret = await webhookSecretOf(keys, await cachedWorkspaceKeyRow(db, workspaceId));
  } catch (err) {
    if (hit) return hit.secret;
    throw err;
  }
  workspaceSecrets.delete(workspaceId);
  if (workspaceSecrets.size >= CACHE_MAX) workspaceSecrets.delete(workspaceSecrets.keys().next().value ?? "");
  workspaceSecrets.set(workspaceId, { secret, until: now + SECRET_CACHE_MS });
  return secret;
}

/** The parsed body and the `workspace_id` it names, both UNTRUSTED until the signature is verified. */
function unverifiedBody(raw: Uint8Array): { json: unknown; workspaceHint: string | null } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw));
  } catch {
    return { json: undefined, workspaceHint: null };
  }
  const isObject = typeof json === "object" && json !== null && !Array.isArray(json);
  const ws = isObject ? (json as Record<string, unknown>)["workspace_id"] : undefined;
  return { json, workspaceHint: typeof ws === "string" && ws.length > 0 && ws.length <= 256 ? ws : null };
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
    const reject = (reason: string) => log.warn({ event: "webhook.rejected", outcome: "rejected", reason });
    // Before any parse: a deep body costs this scan only.
    if (jsonDepthExceeds(raw)) {
      reject("json too deep");
      throw new AppError("bad_request", `webhook body nests deeper than ${MAX_JSON_DEPTH} levels`);
    }
    const { json, workspaceHint } = unverifiedBody(raw);
    let secret = c.var.config.FOURDEGREES_WEBHOOK_SECRET;
    if (workspaceHint !== null) {
      try {
        secret = (await workspaceSecret(c.env.DB, c.var.config.TOKEN_ENCRYPTION_KEY, workspaceHint)) ?? secret;
      } catch (cause) {
        log.error({ event: "webhook.secret_lookup_failed", outcome: "retry", workspace: workspaceHint, error: cause });
        const message = "could not read the workspace's webhook secret; retry later";
        throw new AppError("upstream_unavailable", message, { cause });
      }
    }
    await verifierFor(secret)
      .verify(c.req.raw.headers, raw)
      .catch((err: unknown) => {
        reject(err instanceof Error ? err.message : String(err));
        throw err;
      });
    // Verified: the header is present, and the body below is the one the secret signed.
    const webhookId = c.req.header("webhook-id") ?? "";

    if (json === undefined) throw new AppError("bad_request", "webhook body is not UTF-8 JSON");
    const parsed = RawWebhookEnvelope.safeParse(json);
    if (!parsed.success)
      throw new AppError("bad_request", "webhook body is not a 4Degrees event", {
        details: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join("."), message: i.message })),
      });
    const event = parsed.data;
    // The secret was chosen by this id: one it could not be chosen by (too long) was verified with the global one.
    if (event.workspace_id !== workspaceHint) {
      throw new AppError("bad_request", "webhook workspace_id is longer than 256 characters");
    }
    const receivedAt = Date.now();
    const message: QueueMessage = {
      v: 1,
      kind: "fourdegrees.webhook",
      webhookId,
      workspaceId: event.workspace_id,
      type: event.type,
      receivedAt,
      body: jsonRecord(json),
    };
    const size = queueMessageBytes(message);
    if (size > QUEUE_MESSAGE_BUDGET_BYTES) {
      // A retry would fail the same way: refuse it for good instead of 503ing it into a loop.
      log.error({ event: "webhook.too_large", outcome: "rejected", webhook_id: webhookId, message_bytes: size });
      const limit = `over the ${QUEUE_MESSAGE_BUDGET_BYTES}-byte limit`;
      throw new AppError("payload_too_large", `webhook event is ${size} bytes as a queue message, ${limit}`);
    }
    try {
      await c.env.SYNC_QUEUE.send(message, { contentType: "json" });
    } catch (cause) {
      // Nothing was recorded: 4Degrees' retry of this delivery is taken like the first.
      log.error({ event: "webhook.enqueue_failed", outcome: "retry", webhook_id: webhookId, error: cause });
      throw new AppError("upstream_unavailable", "could not enqueue the delivery; retry later", { cause });
    }
    // Debug: the consumer's `queue.batch` and `sync.record` lines are the operator's record (see the HighLevel route).
    log.debug({
      event: "webhook.accepted",
      outcome: "ok",
      webhook_id: webhookId,
      type: event.type,
      workspace: event.workspace_id,
      fourdegrees_id: typeof event.data.object["id"] === "string" ? event.data.object["id"] : null,
    });
    return c.json({ ok: true, status: "accepted" });
  },
);

/** The verified body as the message's record (the envelope parse proved it is an object). */
function jsonRecord(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new AppError("bad_request", "webhook body is not a JSON object");
  return Object.fromEntries(Object.entries(value));
}
