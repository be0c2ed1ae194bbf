/**
 * The toolkit every queue job uses: its dependencies (`JobDeps`), the dirty-mark-and-enqueue step,
 * error classification and the call counter.
 */
import type { Config } from "../../config.ts";
import type { DealCrm } from "../../domain/port.ts";
import { fourDegreesWebhooks } from "../../fourdegrees/connector.ts";
import { RateLimitedError, type Lane } from "../../gate/client.ts";
import { AppError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { BatchScope, HandlerContext } from "../../queue/consumer.ts";
import type { QueueMessageInput } from "../../queue/messages.ts";
import { sendMessage } from "../../queue/queues.ts";
import type { SideName } from "../../store/links.ts";
import { markDirty, type PendingKind } from "../../store/pending.ts";
import type { ConnectorFactory } from "../connectors.ts";
import type { EngineDeps } from "../engine/types.ts";

/** What the handlers need besides the consumer's context; tests pass their own. */
export interface JobDeps {
  connectors: ConnectorFactory;
  /** Reads a 4Degrees webhook body (the port's `parseWebhook`, which needs no account). */
  fourdegreesWebhooks: Pick<DealCrm, "parseWebhook">;
  /** Sends a message to the sync queue (`delaySeconds` for coalescing and continuations). */
  enqueue(message: QueueMessageInput, delaySeconds?: number): Promise<void>;
  /** Epoch milliseconds (a function property, so it may be passed on as a value). */
  now: () => number;
  /**
   * Seconds an enqueued `sync.record` job waits so a burst of events for one record becomes one job
   * (re-runs, marks made outside a queue batch; a batch's live marks run at its end instead).
   */
  coalesceDelaySeconds: number;
  hooks?: EngineDeps["hooks"];
}

/** Production dependencies: the real connectors and the queues (live or bulk: src/queue/queues.ts). */
export function liveJobDeps(env: Env, connectors: ConnectorFactory): JobDeps {
  return {
    connectors,
    fourdegreesWebhooks: fourDegreesWebhooks,
    enqueue: (message, delaySeconds) => sendMessage(env, message, delaySeconds),
    now: () => Date.now(),
    coalesceDelaySeconds: 2,
  };
}

/**
 * Marks a record dirty and makes a job due only on the clean → dirty transition: a live job is
 * handed to the batch (`BatchScope.runAtEnd`, run after the batch's other messages), any other
 * enqueued with the coalescing delay. Returns whether a job was made due (false = one is already
 * due and will see this change).
 */
export async function markAndEnqueue(
  db: D1Database,
  deps: Pick<JobDeps, "enqueue" | "now" | "coalesceDelaySeconds">,
  target: {
    accountId: string;
    side: SideName;
    kind: PendingKind;
    recordId: string;
    locationId?: string | null;
    lane?: Lane;
  },
  batch?: BatchScope,
): Promise<boolean> {
  const key = dirtyKey(target);
  // Marked by an earlier message of this batch: that mark already covers this change (BatchScope).
  if (batch?.isDone(key)) return false;
  const markedAt = deps.now();
  const { newlyDirty, seq } = await markDirty(
    db,
    target.accountId,
    target.side,
    target.kind,
    target.recordId,
    markedAt,
  );
  if (newlyDirty) {
    const job = {
      v: 1 as const,
      kind: "sync.record" as const,
      accountId: target.accountId,
      side: target.side,
      record: target.kind,
      recordId: target.recordId,
      locationId: target.locationId ?? null,
      lane: target.lane ?? "live",
    };
    // A live change runs at the end of its own batch (no second queue hop); other lanes and
    // marks made outside a batch wait in the queue for the coalescing delay.
    // The batch's own job knows the mark it set (a later mark makes its clear fail: one more run);
    // a queued job reads the mark when it starts, so marks made while it waits join it.
    if (!(job.lane === "live" && batch?.runAtEnd({ ...job, markedSeq: seq }, markedAt)))
      await deps.enqueue(job, deps.coalesceDelaySeconds);
  }
  // Only once the mark (and its job) are in place may later messages of the batch rely on them.
  batch?.markDone(key);
  return newlyDirty;
}

/** The batch-scope key of a record's dirty mark. */
export function dirtyKey(target: { accountId: string; side: SideName; kind: PendingKind; recordId: string }): string {
  return `dirty:${target.accountId}:${target.side}:${target.kind}:${target.recordId}`;
}

/** How a failed job should be treated. */
export interface ErrorOutcome {
  kind: "retry" | "permanent";
  permanent: boolean;
  reason: string;
  delaySeconds?: number;
}

/** Classifies an error into a consumer outcome (rate limits keep the provider's / gate's delay). */
export function outcomeForError(err: unknown): ErrorOutcome {
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof RateLimitedError)
    return { kind: "retry", delaySeconds: err.delaySeconds, reason, permanent: false };
  const advice = err instanceof AppError ? err.retryAdvice : null;
  if (advice) {
    if (!advice.retryable) return { kind: "permanent", reason, permanent: true };
    return advice.delaySeconds === undefined
      ? { kind: "retry", reason, permanent: false }
      : { kind: "retry", delaySeconds: advice.delaySeconds, reason, permanent: false };
  }
  if (err instanceof AppError) {
    const transient = err.code === "rate_limited" || err.code === "upstream_unavailable" || err.code === "internal";
    return transient ? { kind: "retry", reason, permanent: false } : { kind: "permanent", reason, permanent: true };
  }
  // Unknown errors are transient until proven otherwise (retries end in the dead-letter queue).
  return { kind: "retry", reason, permanent: false };
}

/** Wraps a connector so every method call increments a counter (the "calls made" of a job). */
export function countCalls<T extends object>(target: T, onCall: () => void): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        onCall();
        const result: unknown = Reflect.apply(value, obj, args);
        return result;
      };
    },
  });
}

/** A logger-bearing context for calling handlers outside the consumer (cron, tests). */
export function handlerContext(env: Env, config: Config, log: Logger, attempts = 1): HandlerContext {
  return { env, config, log, attempts };
}
