/**
 * Queue consumer: decides per message — ack on success, `retry({delaySeconds})` with capped
 * exponential backoff on transient failures, record-and-ack on permanent ones. Never a blanket ack.
 */
import type { Config } from "../config.ts";
import { AppError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { pool } from "../lib/pool.ts";
import { recordFailure } from "../store/failures.ts";
import { claimDeliveries, type Receipt } from "../store/webhook-receipts.ts";
import { accountOfMessage, envForMessage } from "./message-account.ts";
import { QueueMessageSchema, type QueueMessage, type QueueMessageInput, type QueueMessageKind } from "./messages.ts";
import { sendMessage } from "./queues.ts";

/** What a handler tells the consumer about one message. */
export type Outcome =
  { kind: "ack" } | { kind: "retry"; delaySeconds?: number; reason: string } | { kind: "permanent"; reason: string };

export interface HandlerContext {
  env: Env;
  config: Config;
  log: Logger;
  attempts: number;
  /** What the messages of the current batch share (absent outside a batch: cron, tests). */
  batch?: BatchScope;
  /**
   * For a webhook whose handler claims its own delivery (`claimingItsDelivery`): claims it now —
   * true = process it, false = a duplicate another message claimed (ack it, do nothing). Absent:
   * the consumer claimed the delivery before the handler ran.
   */
  claim?: () => Promise<boolean>;
}

const claimsItself = new WeakSet<object>();

/**
 * Marks a webhook handler as claiming its delivery itself (`HandlerContext.claim`), only once it
 * has work for it: an echo, a delivery coalesced into a mark of the same batch or one of an
 * unknown location then writes no receipt row (2 D1 rows each). A redelivery of one of those is
 * triaged again the same way, so it still causes no second job.
 */
export function claimingItsDelivery<H extends object>(handler: H): H {
  claimsItself.add(handler);
  return handler;
}

/**
 * What the messages of one batch may share. Every message of a batch was enqueued before the batch
 * was delivered, so facts established while handling the batch are at least as new as any of its
 * messages: a record marked dirty by an earlier message of the batch need not be marked again (its
 * job reads after the mark, so it sees every change behind the batch's messages), and an account
 * looked up for one message serves the next. A burst of 25 deliveries for a handful of records then
 * costs a handful of D1 writes instead of 25, and one account lookup instead of 25.
 */
export class BatchScope {
  readonly #memo = new Map<string, Promise<unknown>>();
  readonly #done = new Set<string>();
  readonly #due: DueJob[] = [];
  readonly #shared = new Map<string, unknown>();
  readonly #runsJobs: boolean;
  #messages: readonly QueueMessage[] = [];
  #current = -1;

  /** `runsJobs`: the batch runs the live record jobs its messages make due (`consumeBatch`). */
  constructor(options: { runsJobs?: boolean } = {}) {
    this.#runsJobs = options.runsJobs ?? false;
  }

  /**
   * Takes a live record job to run at the end of this batch, after every message of the batch has
   * marked its record (so the job reads after all of them); false when this batch does not run
   * jobs (the caller enqueues it instead).
   */
  runAtEnd(msg: RecordJobInput, markedAt: number): boolean {
    if (!this.#runsJobs) return false;
    this.#due.push({ msg, markedAt });
    return true;
  }

  /** The batch's messages in order (`consumeBatch`), so a handler can see the ones still to come (`later`). */
  setMessages(messages: readonly QueueMessage[]): void {
    this.#messages = messages;
    this.#current = -1;
  }

  /** Which message of `setMessages` is being handled now (null: none, e.g. the jobs at the end). */
  handling(msg: QueueMessage | null): void {
    this.#current = msg === null ? -1 : this.#messages.indexOf(msg);
  }

  /**
   * The batch's messages after the one being handled, not handled yet (empty when none is being
   * handled): what lets a handler do once the work of several of them (the expected echo's slots).
   */
  later(): readonly QueueMessage[] {
    return this.#current < 0 ? [] : this.#messages.slice(this.#current + 1);
  }

  /** Leaves `value` under `key` for a later message of the batch (`shared`). */
  share(key: string, value: unknown): void {
    this.#shared.set(key, value);
  }

  /** What an earlier message of the batch left under `key` (`share`), if anything. */
  shared(key: string): unknown {
    return this.#shared.get(key);
  }

  /** The jobs `runAtEnd` took, emptied. */
  takeDueJobs(): DueJob[] {
    return this.#due.splice(0);
  }

  /** `load()` once per batch per key (a failed load is forgotten, so the next message tries again). */
  once<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.#memo.get(key) as Promise<T> | undefined;
    if (hit) return hit;
    const p = load();
    this.#memo.set(key, p);
    p.catch(() => this.#memo.delete(key));
    return p;
  }

  /** Whether `key` was recorded as done earlier in this batch. */
  isDone(key: string): boolean {
    return this.#done.has(key);
  }

  /** Records `key` as done — only after the work succeeded, so a failure never hides later messages' work. */
  markDone(key: string): void {
    this.#done.add(key);
  }

  /** True the first time `key` is asked in this batch (e.g. one warning per batch), false after. */
  first(key: string): boolean {
    if (this.#done.has(key)) return false;
    this.#done.add(key);
    return true;
  }
}

/** A `sync.record` message as handlers build it. */
export type RecordJobInput = Extract<QueueMessageInput, { kind: "sync.record" }>;

/** A live record job a message of the batch made due, and when its record was marked (epoch ms). */
export interface DueJob {
  msg: RecordJobInput;
  markedAt: number;
}

/**
 * How long after its mark a record job run at the end of a batch waits before it reads: deliveries
 * of the same change that Queues handed to a concurrent batch mark the record within this window,
 * and the job's read then covers them (one job for HighLevel's 2–3 deliveries of one change).
 */
export const DUE_JOB_SETTLE_MS = 300;

/** `load()` once per batch per key when there is a batch (`BatchScope.once`), else every time. */
export function onceInBatch<T>(batch: BatchScope | undefined, key: string, load: () => Promise<T>): Promise<T> {
  return batch ? batch.once(key, load) : load();
}

export type Handler<K extends QueueMessageKind> = (
  msg: Extract<QueueMessage, { kind: K }>,
  ctx: HandlerContext,
) => Promise<Outcome>;
export type Handlers = { [K in QueueMessageKind]?: Handler<K> };

/** Backoff for attempt n (1-based): 2^n seconds, capped at 15 minutes, with ±20% jitter. */
export function backoffSeconds(attempts: number, random = Math.random): number {
  const base = Math.min(900, 2 ** Math.max(1, attempts));
  return Math.max(1, Math.round(base * (0.8 + random() * 0.4)));
}

/** Record jobs of one batch in flight at once (never two for one record). */
export const BATCH_JOB_CONCURRENCY = 5;

/**
 * Processes one batch: parse every message, claim the batch's webhook deliveries (one D1 round
 * trip; duplicates acked), then run the handlers — webhook and other light messages one after
 * another in batch order (they mark records dirty and share the batch scope), then the batch's
 * `sync.record` messages and the live jobs its webhooks made due (`BatchScope.runAtEnd`: a change
 * reaches the other side without a second queue hop) `BATCH_JOB_CONCURRENCY` at a time, jobs of
 * one record one after another.
 * Order between records does not matter: a job clears a record's dirty mark only if no mark came
 * after its start (else it runs again), so a mark and a job of one record may come in any order.
 */
export async function consumeBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  config: Config,
  handlers: Handlers,
): Promise<void> {
  const log = createLogger(config.LOG_LEVEL, { queue: batch.queue });
  const batchStarted = Date.now();
  const scope = new BatchScope({ runsJobs: handlers["sync.record"] !== undefined });
  /** Outcomes of the batch by message kind, for its one `queue.batch` info line. */
  const tally: Record<string, { ack: number; retry: number; failed: number; duplicate: number }> = {};
  const count = (kind: string, outcome: "ack" | "retry" | "failed" | "duplicate") => {
    const t = (tally[kind] ??= { ack: 0, retry: 0, failed: 0, duplicate: 0 });
    t[outcome]++;
  };
  const valid: Array<{ message: Message<unknown>; msg: QueueMessage }> = [];
  for (const message of batch.messages) {
    const parsed = QueueMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join(".") || "body"}: ${i.message}`)
        .join("; ");
      log.error({
        event: "queue.invalid_message",
        outcome: "failed",
        message_id: message.id,
        issues: parsed.error.issues.slice(0, 5),
      });
      await fileUnprocessable(
        env,
        message,
        `invalid:${message.id}`,
        `the message does not match the queue schema (${issues})`,
        log,
        count,
        "invalid",
      );
      continue;
    }
    valid.push({ message, msg: parsed.data });
  }
  const run = async ({ message, msg }: { message: Message<unknown>; msg: QueueMessage }): Promise<void> => {
    const handler = handlers[msg.kind] as Handler<typeof msg.kind> | undefined;
    if (!handler) {
      log.warn({ event: "queue.no_handler", kind: msg.kind, outcome: "failed", message_id: message.id });
      await fileUnprocessable(
        env,
        message,
        `unhandled:${message.id}`,
        `no handler for ${msg.kind} messages in this version`,
        log,
        count,
        msg.kind,
      );
      return;
    }
    const started = Date.now();
    const receipt = claimsItself.has(handler) ? receiptOf(msg) : null;
    // Once per message: a handler asking twice (attachments, then the mark) costs one claim.
    let claiming: Promise<boolean> | null = null;
    const claim = receipt
      ? () =>
          (claiming ??= claimDeliveries(env.DB, [{ receipt, messageId: message.id }]).then(
            ([won]) => won === true,
            (err: unknown) => {
              claiming = null;
              throw err;
            },
          ))
      : undefined;
    let outcome: Outcome;
    try {
      // The account's own database when it is routed to a shard (docs/scaling.md).
      const routed = await envForMessage(env, msg);
      outcome = await handler(msg, {
        env: routed,
        config,
        log,
        attempts: message.attempts,
        batch: scope,
        ...(claim ? { claim } : {}),
      });
    } catch (err) {
      // Unknown errors are transient until proven otherwise: retry, never swallow.
      outcome = {
        kind: "retry",
        reason:
          err instanceof AppError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err),
      };
      log.error({ event: "queue.handler_error", kind: msg.kind, error: err, outcome: "retry", message_id: message.id });
    }
    const duration_ms = Date.now() - started;
    switch (outcome.kind) {
      case "ack":
        message.ack();
        count(msg.kind, "ack");
        log.debug({ event: "queue.ack", kind: msg.kind, outcome: "ok", duration_ms, message_id: message.id });
        break;
      case "retry": {
        const delaySeconds = outcome.delaySeconds ?? backoffSeconds(message.attempts);
        message.retry({ delaySeconds });
        count(msg.kind, "retry");
        log.warn({
          event: "queue.retry",
          kind: msg.kind,
          outcome: "retry",
          reason: outcome.reason,
          delay_s: delaySeconds,
          attempts: message.attempts,
          duration_ms,
          message_id: message.id,
        });
        break;
      }
      case "permanent":
        message.ack();
        count(msg.kind, "failed");
        log.error({
          event: "queue.permanent_failure",
          kind: msg.kind,
          outcome: "failed",
          reason: outcome.reason,
          duration_ms,
          message_id: message.id,
        });
        break;
    }
  };
  const selfClaiming = (msg: QueueMessage) => {
    const handler = handlers[msg.kind];
    return handler !== undefined && claimsItself.has(handler);
  };
  const items = await claimWebhooks(env.DB, valid, selfClaiming, log, count);
  const light = items.filter((item) => item.msg.kind !== "sync.record");
  scope.setMessages(light.map((item) => item.msg));
  for (const item of light) {
    scope.handling(item.msg);
    await run(item);
  }
  scope.handling(null);
  // The batch's queued record jobs and the live jobs its webhooks made due, one pool: two jobs of
  // one record never run at once (the second finds the record clean, or runs once more).
  const jobs: Array<{ item: { message: Message<unknown>; msg: QueueMessage } } | { due: DueJob }> = [
    ...items.filter((item) => item.msg.kind === "sync.record").map((item) => ({ item })),
    ...scope.takeDueJobs().map((due) => ({ due })),
  ];
  const dueJobs = jobs.filter((job) => "due" in job).length;
  const recordKey = (msg: { accountId: string; side: string; record: string; recordId: string }) =>
    `${msg.accountId}:${msg.side}:${msg.record}:${msg.recordId}`;
  await pool(
    jobs,
    BATCH_JOB_CONCURRENCY,
    (job) =>
      "due" in job ? recordKey(job.due.msg) : job.item.msg.kind === "sync.record" ? recordKey(job.item.msg) : "",
    async (job) => {
      if ("item" in job) return run(job.item);
      const handler = handlers["sync.record"];
      if (handler) await runDueJob(job.due, handler, { env, config, log, attempts: 1, batch: scope }, count);
    },
    () => false,
  );
  // One line per batch: what `wrangler tail` shows of the queue's throughput (accepted webhooks
  // are logged here, counted, rather than one line per delivery at the ingress).
  log.info({
    event: "queue.batch",
    outcome: "ok",
    messages: batch.messages.length,
    kinds: tally,
    // Record jobs run here for the batch's webhooks (counted in `kinds` under sync.record).
    due_jobs: dueJobs,
    duration_ms: Date.now() - batchStarted,
  });
}

/**
 * Runs a live record job a webhook of this batch made due, in this invocation: the change reaches
 * the other side without a second queue hop (its delay and batch wait). It first lets the
 * record's mark settle (`DUE_JOB_SETTLE_MS`). There is no queue message behind it: a retry is sent
 * as a new `sync.record` message with the retry's delay; a permanent failure is filed by the job.
 * If the invocation dies midway, the dirty mark stays and the reconcile cron re-enqueues it.
 */
async function runDueJob(
  due: DueJob,
  handler: Handler<"sync.record">,
  ctx: HandlerContext,
  count: (kind: string, outcome: "ack" | "retry" | "failed" | "duplicate") => void,
): Promise<void> {
  const wait = due.markedAt + DUE_JOB_SETTLE_MS - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait, DUE_JOB_SETTLE_MS)));
  const msg = QueueMessageSchema.parse(due.msg);
  if (msg.kind !== "sync.record") return;
  let outcome: Outcome;
  try {
    // The account's own database when it is routed to a shard, as for a queued message.
    outcome = await handler(msg, { ...ctx, env: await envForMessage(ctx.env, msg) });
  } catch (err) {
    outcome = {
      kind: "retry",
      reason:
        err instanceof AppError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err),
    };
    ctx.log.error({ event: "queue.handler_error", kind: msg.kind, error: err, outcome: "retry", due: true });
  }
  if (outcome.kind === "ack") return count(msg.kind, "ack");
  if (outcome.kind === "permanent") {
    count(msg.kind, "failed");
    ctx.log.error({
      event: "queue.permanent_failure",
      kind: msg.kind,
      outcome: "failed",
      reason: outcome.reason,
      due: true,
    });
    return;
  }
  const delaySeconds = outcome.delaySeconds ?? backoffSeconds(1);
  count(msg.kind, "retry");
  ctx.log.warn({
    event: "queue.retry",
    kind: msg.kind,
    outcome: "retry",
    reason: outcome.reason,
    delay_s: delaySeconds,
    attempts: 1,
    due: true,
  });
  try {
    // The retry reads the mark as it is then (a queued job), not the one this batch set.
    const { markedSeq: _set, ...queued } = due.msg;
    await sendMessage(ctx.env, queued, delaySeconds);
  } catch (err) {
    // The record stays marked dirty: the reconcile cron re-enqueues marks whose job was lost.
    ctx.log.error({ event: "queue.send_failed", kind: msg.kind, outcome: "failed", error: err, due: true });
  }
}

/**
 * Files a message that will not be processed as an open failure (under its account, else the
 * unassigned bucket) and acks it; when D1 fails the message is retried, never dropped unseen.
 */
async function fileUnprocessable(
  env: Env,
  message: Message<unknown>,
  id: string,
  reason: string,
  log: Logger,
  count: (kind: string, outcome: "ack" | "retry" | "failed" | "duplicate") => void,
  kind: string,
): Promise<void> {
  try {
    const accountId = await accountOfMessage(env.DB, message.body);
    await recordFailure(env.DB, { id, accountId, source: "permanent", message: message.body, reason });
    message.ack();
    count(kind, "failed");
  } catch (err) {
    log.error({ event: "queue.failure_record_failed", outcome: "retry", error: err, message_id: message.id });
    message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    count(kind, "retry");
  }
}

/** The receipt of a webhook message (null for other kinds). */
function receiptOf(msg: QueueMessage): Receipt | null {
  if (msg.kind === "highlevel.webhook")
    return {
      provider: "highlevel",
      webhookId: msg.webhookId,
      eventType: msg.type,
      scopeId: msg.locationId,
      receivedAt: msg.receivedAt,
    };
  if (msg.kind === "fourdegrees.webhook")
    return {
      provider: "fourdegrees",
      webhookId: msg.webhookId,
      eventType: msg.type,
      scopeId: msg.workspaceId,
      receivedAt: msg.receivedAt,
    };
  return null;
}

/**
 * Deduplicates the batch's webhook deliveries in one D1 round trip (`claimDeliveries`; those whose
 * handler claims its own delivery are left to it): a delivery
 * whose provider id another message already claimed is acked as a duplicate; the rest go on to
 * their handlers. The ingress does not touch D1 for this, so a burst costs one claim per batch, and
 * D1 trouble delays deliveries (retried with backoff) instead of refusing them at the door.
 */
async function claimWebhooks(
  db: D1Database,
  items: Array<{ message: Message<unknown>; msg: QueueMessage }>,
  claimsItself: (msg: QueueMessage) => boolean,
  log: Logger,
  count: (kind: string, outcome: "ack" | "retry" | "failed" | "duplicate") => void,
): Promise<Array<{ message: Message<unknown>; msg: QueueMessage }>> {
  const webhooks = items.flatMap((item) => {
    const receipt = claimsItself(item.msg) ? null : receiptOf(item.msg);
    return receipt ? [{ item, claim: { receipt, messageId: item.message.id } }] : [];
  });
  if (webhooks.length === 0) return items;
  let claimed: boolean[];
  try {
    claimed = await claimDeliveries(
      db,
      webhooks.map((w) => w.claim),
    );
  } catch (err) {
    // Nothing was claimed: every delivery of the batch waits and tries again; other kinds go on.
    log.error({ event: "queue.claim_failed", outcome: "retry", error: err, deliveries: webhooks.length });
    for (const { item } of webhooks) {
      item.message.retry({ delaySeconds: backoffSeconds(item.message.attempts) });
      count(item.msg.kind, "retry");
    }
    const waiting = new Set(webhooks.map(({ item }) => item));
    return items.filter((item) => !waiting.has(item));
  }
  const duplicates = new Set<Message<unknown>>();
  webhooks.forEach(({ item, claim }, i) => {
    if (claimed[i]) return;
    duplicates.add(item.message);
    item.message.ack();
    count(item.msg.kind, "duplicate");
    log.debug({
      event: "webhook.duplicate",
      kind: item.msg.kind,
      outcome: "skipped",
      webhook_id: claim.receipt.webhookId,
      message_id: item.message.id,
    });
  });
  return items.filter((item) => !duplicates.has(item.message));
}
