/**
 * The notifier's entry point for the engine: `notifyChange(env, config, event)` finds the
 * account's enabled rules that match, claims each (rule, change) once in D1 and enqueues one
 * `notify.deliver` message per claim on `NOTIFY_QUEUE` (its own queue: a slow receiver never
 * delays a record job). It never throws: a notification problem is logged and must
 * not fail, slow or retry the sync job that reported the change.
 */
import type { Config } from "../config.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { claimDelivery, releaseDelivery } from "../store/notifications.ts";
import { changeKeyOf, NotifyEventSchema, type NotifyEventInput } from "./events.ts";
import { ruleMatches } from "./rules.ts";
import { cachedNotificationRules } from "../store/account-config.ts";

/** The queue message of one claimed delivery (the `notify.deliver` kind of src/queue/messages.ts). */
export interface DeliverMessage {
  v: 1;
  kind: "notify.deliver";
  ruleId: string;
  changeKey: string;
}

/** What `notifyChange` did (for tests and the caller's log line). */
export interface NotifyResult {
  matched: number;
  enqueued: number;
  duplicates: number;
  failed: number;
}

/**
 * Reports one change to the notifier. Safe to call more than once for the same change: each
 * matching rule fires once. Resolves (never rejects) with counts.
 */
export async function notifyChange(
  env: Env,
  config: Config,
  input: NotifyEventInput,
  log: Logger = createLogger(config.LOG_LEVEL),
): Promise<NotifyResult> {
  const result: NotifyResult = { matched: 0, enqueued: 0, duplicates: 0, failed: 0 };
  const parsed = NotifyEventSchema.safeParse(input);
  if (!parsed.success) {
    log.error({ event: "notify.invalid_event", outcome: "failed", issues: parsed.error.issues.slice(0, 5) });
    result.failed++;
    return result;
  }
  const event = parsed.data;
  const changeKey = changeKeyOf(event);
  try {
    const rules = (await cachedNotificationRules(env.DB, event.accountId)).filter((r) =>
      ruleMatches(r.trigger, r.params, event),
    );
    result.matched = rules.length;
    for (const rule of rules) {
      const claimed = await claimDelivery(env.DB, { ruleId: rule.id, changeKey, accountId: event.accountId, event });
      if (!claimed) {
        result.duplicates++;
        continue;
      }
      const message: DeliverMessage = { v: 1, kind: "notify.deliver", ruleId: rule.id, changeKey };
      try {
        await env.NOTIFY_QUEUE.send(message, { contentType: "json" });
        result.enqueued++;
        log.info({
          event: "notify.enqueued",
          account: event.accountId,
          rule: rule.id,
          trigger: rule.trigger,
          change_key: changeKey,
          outcome: "ok",
        });
      } catch (err) {
        // Release the claim so a later report of the same change can try again.
        await releaseDelivery(env.DB, rule.id, changeKey).catch(() => undefined);
        result.failed++;
        log.error({
          event: "notify.enqueue_failed",
          account: event.accountId,
          rule: rule.id,
          change_key: changeKey,
          outcome: "failed",
          error: err,
        });
      }
    }
  } catch (err) {
    result.failed++;
    log.error({
      event: "notify.failed",
      account: event.accountId,
      change_key: changeKey,
      outcome: "failed",
      error: err,
    });
  }
  return result;
}
