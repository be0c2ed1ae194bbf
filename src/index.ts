/**
 * The sync Worker (wrangler.toml): webhooks in, HighLevel OAuth, the queue consumers, the cron and the
 * rate gate's Durable Object. The console's paths go on to the console Worker (src/console.ts) over
 * the `CONSOLE` service binding, so this Worker, which every webhook and queue batch starts, carries
 * none of the console's code (docs/architecture.md "Two Workers").
 */
import { buildApp } from "./http/app-base.ts";
import { forwardToConsole } from "./http/console-forward.ts";
import { mountSyncRoutes } from "./http/sync-routes.ts";
import { syncWorker } from "./worker.ts";

export { AccountGate } from "./gate/gate.ts";

export default syncWorker(buildApp(mountSyncRoutes, forwardToConsole()));
