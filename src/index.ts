/**
 * Entry points — wiring only: `fetch` (Hono app), `queue` (sync consumer + dead letters),
 * `scheduled` (cron). Each parses config once (src/config.ts) before doing anything.
 */
import { createApp } from "./http/app.ts";
import { loadConfig } from "./config.ts";
import { createLogger } from "./lib/log.ts";
import { consumeBatch, type Handlers } from "./sync/consumer.ts";
import { deliverNotification } from "./notify/deliver.ts";
import { runHighLevelCron } from "./highlevel/cron.ts";

export { AccountGate } from "./gate/gate.ts";

const app = createApp();

/** Handlers per queue message kind; each connector/engine module registers its own. */
const handlers: Handlers = {
  "notify.deliver": deliverNotification,
};

export default {
  fetch: app.fetch,

  async queue(batch, env): Promise<void> {
    const config = loadConfig(env);
    await consumeBatch(batch, env, config, handlers);
  },

  async scheduled(controller, env): Promise<void> {
    const config = loadConfig(env);
    const log = createLogger(config.LOG_LEVEL, { cron: controller.cron });
    log.info({ event: "cron.tick", outcome: "ok", scheduled_time: controller.scheduledTime });
    await runHighLevelCron(env, log);
  },
} satisfies ExportedHandler<Env>;
