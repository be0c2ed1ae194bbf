/**
 * Delivery of one (rule, change) from the queue: Slack's incoming-webhook JSON, or JSON signed the
 * Standard Webhooks way (`webhook-id` stable across retries, `webhook-timestamp`,
 * `webhook-signature: v1,<base64 HMAC-SHA256>` — the same signer as the 4Degrees connector,
 * src/fourdegrees/webhook.ts). Retries with backoff on 408/429/5xx/network errors, gives up on
 * other 4xx and after `MAX_ATTEMPTS`; every attempt is recorded on the delivery row.
 */
import type { Config } from "../config.ts";
import { decryptSecret } from "../lib/crypto.ts";
import { sha256 } from "../lib/hash.ts";
import { signWebhook } from "../fourdegrees/webhook.ts";
import { getDelivery, getRule, leaseAttempt, recordAttempt, type NotificationRule } from "../store/notifications.ts";
import type { Logger } from "../lib/log.ts";
import { NotifyEventSchema, type NotifyEvent } from "./events.ts";
import type { DeliverMessage } from "./notify.ts";
import { describe, eventType } from "./rules.ts";
import { targetPolicy, targetProblem } from "./targets.ts";

/** Attempts before a delivery is marked failed (the queue would dead-letter at 8). */
export const MAX_ATTEMPTS = 6;
/**
 * A receiver gets this long to answer. Short, because a receiver that never answers holds its
 * consumer for this long per attempt; it waits on the `sync-notify` queue only, never ahead of a
 * record job, and a timeout is retried with backoff like a 5xx.
 */
export const DELIVERY_TIMEOUT_MS = 5_000;
/** How long an attempt holds its delivery: past its timeout, so a crashed attempt frees it soon. */
export const ATTEMPT_LEASE_MS = 30_000;

/** Additional data binding a rule's ciphertexts to its row. */
export const ruleAad = (ruleId: string) => `notification_rule:${ruleId}`;

/** The stable Standard Webhooks message id of a delivery. */
export async function deliveryId(ruleId: string, changeKey: string): Promise<string> {
  return `msg_${await sha256(`${ruleId}\n${changeKey}`)}`;
}

/** Builds the request a rule sends for an event (exported for tests and the console's "send test"). */
export async function buildDelivery(
  config: Config,
  rule: NotificationRule,
  event: NotifyEvent,
  changeKey: string,
  now: number = Date.now(),
): Promise<{ url: string; init: RequestInit }> {
  const url = await decryptSecret(config.TOKEN_ENCRYPTION_KEY, rule.targetUrlEnc, ruleAad(rule.id));
  const text = describe(rule.trigger, event);
  if (rule.targetKind === "slack") {
    // https://api.slack.com/messaging/webhooks — a JSON body with `text` (mrkdwn).
    return {
      url,
      init: {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: `${text} — _${rule.name}_` }),
      },
    };
  }
  if (!rule.signingSecretEnc) throw new Error(`rule ${rule.id} is a webhook rule without a signing secret`);
  const secret = await decryptSecret(config.TOKEN_ENCRYPTION_KEY, rule.signingSecretEnc, `${ruleAad(rule.id)}:secret`);
  const id = await deliveryId(rule.id, changeKey);
  const body = JSON.stringify({
    type: eventType(rule.trigger),
    timestamp: new Date(now).toISOString(),
    data: { rule: { id: rule.id, name: rule.name }, summary: text, changeKey, event },
  });
  const headers = await signWebhook(secret, id, now / 1000, body);
  return { url, init: { method: "POST", headers: { "content-type": "application/json", ...headers }, body } };
}

const retryable = (status: number) => status === 0 || status === 408 || status === 429 || status >= 500;

/** What a queue hands a delivery handler: the consumer's handler context, as far as notify/ uses it. */
export interface DeliveryContext {
  env: Env;
  config: Config;
  log: Logger;
  attempts: number;
}

/** What the queue does with a delivery message (the consumer's outcome shape; notify/ knows no queue module). */
export type DeliveryOutcome =
  { kind: "ack" } | { kind: "retry"; reason: string; delaySeconds?: number } | { kind: "permanent"; reason: string };

/**
 * The `notify.deliver` handler of the live and bulk queues: hands the delivery to `NOTIFY_QUEUE`
 * (the message lands here only if it was sent before notifications had their own queue, or by
 * hand) so no receiver is ever waited on in a batch that holds record jobs.
 */
export async function forwardNotification(msg: DeliverMessage, ctx: DeliveryContext): Promise<DeliveryOutcome> {
  // A failed send throws: the consumer retries the message here, nothing is lost.
  await ctx.env.NOTIFY_QUEUE.send(msg, { contentType: "json" });
  ctx.log.info({ event: "notify.forwarded", rule: msg.ruleId, change_key: msg.changeKey, outcome: "ok" });
  return { kind: "ack" };
}

/** The `notify.deliver` handler of the `sync-notify` queue: one attempt at one delivery. */
export async function deliverNotification(msg: DeliverMessage, ctx: DeliveryContext): Promise<DeliveryOutcome> {
  const { env, config } = ctx;
  const log = ctx.log.child({ rule: msg.ruleId, change_key: msg.changeKey });
  const [rule, delivery] = await Promise.all([
    getRule(env.DB, msg.ruleId),
    getDelivery(env.DB, msg.ruleId, msg.changeKey),
  ]);
  if (!rule || !delivery) {
    log.info({ event: "notify.skipped", outcome: "skipped", reason: "rule or delivery deleted" });
    return { kind: "ack" };
  }
  if (delivery.state !== "queued") return { kind: "ack" };
  const account = rule.accountId;
  if (!rule.enabled) {
    await recordAttempt(env.DB, rule.id, msg.changeKey, {
      state: "failed",
      status: null,
      error: "rule disabled before delivery",
    });
    return { kind: "ack" };
  }
  const event = NotifyEventSchema.safeParse(delivery.event);
  if (!event.success) {
    await recordAttempt(env.DB, rule.id, msg.changeKey, {
      state: "failed",
      status: null,
      error: "stored event no longer parses",
    });
    return { kind: "permanent", reason: "stored notification event no longer parses" };
  }
  const { url, init } = await buildDelivery(config, rule, event.data, msg.changeKey);
  // Checked again here: a rule stored before a check existed, or under another PUBLIC_URL.
  const refused = targetProblem(rule.targetKind, url, targetPolicy(config));
  if (refused) {
    const error = `target refused: ${refused}`;
    await recordAttempt(env.DB, rule.id, msg.changeKey, { state: "failed", status: null, error });
    const where = { account, trigger: rule.trigger, target: rule.targetKind, host: rule.targetHint };
    log.warn({ event: "notify.refused", ...where, outcome: "failed", reason: refused });
    return { kind: "ack" };
  }
  // Two copies of this message (a redelivery, a forwarded stray) must not both call the receiver.
  if (!(await leaseAttempt(env.DB, rule.id, msg.changeKey, ATTEMPT_LEASE_MS))) {
    log.info({ event: "notify.in_flight", account, outcome: "retry", reason: "another attempt holds this delivery" });
    return {
      kind: "retry",
      delaySeconds: ATTEMPT_LEASE_MS / 1000,
      reason: "another attempt of this delivery is in flight",
    };
  }
  const started = Date.now();
  let status = 0;
  let error: string | null = null;
  try {
    const res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    status = res.status;
    await res.body?.cancel();
  } catch (err) {
    error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
  const duration_ms = Date.now() - started;
  const base = {
    account,
    trigger: rule.trigger,
    target: rule.targetKind,
    host: rule.targetHint,
    status,
    duration_ms,
    attempts: delivery.attempts + 1,
  };
  if (status >= 200 && status < 300) {
    await recordAttempt(env.DB, rule.id, msg.changeKey, { state: "delivered", status, error: null });
    log.info({ event: "notify.delivered", outcome: "ok", ...base });
    return { kind: "ack" };
  }
  const reason = error ?? `receiver answered ${status}`;
  const giveUp = !retryable(status) || delivery.attempts + 1 >= MAX_ATTEMPTS;
  await recordAttempt(env.DB, rule.id, msg.changeKey, {
    state: giveUp ? "failed" : "queued",
    status: status || null,
    error: reason,
  });
  if (giveUp) {
    log.warn({ event: "notify.failed", outcome: "failed", reason, ...base });
    // Recorded on the delivery row (the console shows it); not a sync failure, so ack.
    return { kind: "ack" };
  }
  log.warn({ event: "notify.retry", outcome: "retry", reason, ...base });
  return { kind: "retry", reason };
}
