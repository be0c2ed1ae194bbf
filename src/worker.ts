/**
 * The sync Worker's handlers, for an application of routes: `fetch` (Hono app), `queue` (sync and
 * notification consumers, dead letters), `scheduled` (cron). Each parses config once (src/config.ts)
 * before doing anything. src/index.ts deploys them with the sync routes; the Workers-runtime tests
 * with every route (test/worker/entry.ts).
 */
import type { Hono } from "hono";
import type { AppEnv } from "./http/context.ts";
import { loadConfig } from "./config.ts";
import { createLogger } from "./lib/log.ts";
import { consumeBatch, type Handlers } from "./queue/consumer.ts";
import { deliverNotification, forwardNotification } from "./notify/deliver.ts";
import { scanNotifications } from "./notify/scan.ts";
import { runHighLevelCron } from "./highlevel/cron.ts";
import { liveConnectors } from "./sync/connectors.ts";
import { consumeDeadLetters } from "./sync/jobs/dead-letters.ts";
import { syncHandlers } from "./sync/jobs/handlers.ts";
import { liveJobDeps } from "./sync/jobs/deps.ts";
import { runReconcile } from "./sync/jobs/reconcile.ts";
import { scanAutomations } from "./sync/jobs/automation.ts";
import { setConfigCacheTtl } from "./store/config-cache.ts";
import { meterDatabase } from "./store/d1-meter.ts";
import { pruneExpired, retentionPolicy } from "./store/retention.ts";

const metered = new WeakMap<Env, Env>();
/** With `D1_METER=true`, the same env with `DB` counting D1's rows read/written (src/store/d1-meter.ts). */
function withMeter(env: Env): Env {
  // Read raw (before the config parse, which the app runs inside its error mapper).
  if (Reflect.get(env, "D1_METER") !== "true") return env;
  let hit = metered.get(env);
  if (!hit) {
    hit = { ...env, DB: meterDatabase(env.DB) };
    metered.set(env, hit);
  }
  return hit;
}

/** Handlers per queue message kind; each connector/engine module registers its own. */
const handlers: Handlers = {
  // The sync engine: webhooks → dirty marks → coalesced `sync.record` jobs, and backfill pages.
  ...syncHandlers((ctx) => liveJobDeps(ctx.env, liveConnectors(ctx.env, ctx.config))),
  // A delivery that reached the live or bulk queue moves on to its own queue, unsent.
  "notify.deliver": forwardNotification,
};
/** The `sync-notify` queue: receivers are waited on here only. */
const notifyHandlers: Handlers = { ...handlers, "notify.deliver": deliverNotification };

/** The sync Worker's handlers, `app` answering its HTTP requests. */
export function syncWorker(app: Hono<AppEnv>) {
  return {
    fetch: (request, env, ctx) => app.fetch(request, withMeter(env), ctx),

    async queue(batch, rawEnv): Promise<void> {
      const env = withMeter(rawEnv);
      const config = loadConfig(env);
      setConfigCacheTtl(config.CONFIG_CACHE_SECONDS * 1000);
      // Every queue arrives here: dead letters are recorded (replayable); the live and the bulk queue
      // (src/queue/queues.ts) share the handlers; only the notify queue waits on receivers.
      if (batch.queue === "sync-events-dlq") await consumeDeadLetters(batch, env, config);
      else if (batch.queue === "sync-notify") await consumeBatch(batch, env, config, notifyHandlers);
      else await consumeBatch(batch, env, config, handlers);
    },

    async scheduled(controller, env): Promise<void> {
      const config = loadConfig(env);
      setConfigCacheTtl(config.CONFIG_CACHE_SECONDS * 1000);
      const log = createLogger(config.LOG_LEVEL, { cron: controller.cron });
      log.info({ event: "cron.tick", outcome: "ok", scheduled_time: controller.scheduledTime });
      await runHighLevelCron(env, log);
      // Reconcile re-scan (catches lost webhooks), after token refresh so it finds fresh tokens.
      await runReconcile(env, liveJobDeps(env, liveConnectors(env, config)), log);
      // Time-driven automation triggers (bounded per account; never throws).
      await scanAutomations(env, liveJobDeps(env, liveConnectors(env, config)), log);
      // Reconnect and quota-low notifications (once per episode; never throws).
      await scanNotifications(env, config, log);
      // Retention: bounded batches of expired rows (src/store/retention.ts); the next tick continues.
      try {
        const pruned = await pruneExpired(env.DB, retentionPolicy(config));
        log.info({
          event: "cron.retention",
          outcome: "ok",
          deleted: pruned.deleted,
          statements: pruned.statements,
          caught_up: pruned.done,
        });
      } catch (err) {
        log.error({ event: "cron.retention", outcome: "failed", error: err });
      }
    },
  } satisfies ExportedHandler<Env>;
}
