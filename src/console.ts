/**
 * The console Worker (wrangler.console.toml): the admin API, the operator console and HighLevel's
 * Custom Page. It has no public route: the sync Worker hands it the console's paths over a service
 * binding (src/http/console-forward.ts). Its D1, KV and queue producers are the sync Worker's; the
 * rate gate is the sync Worker's Durable Object (`script_name`), so both Workers share one budget
 * per account.
 */
import { buildApp } from "./http/app-base.ts";
import { CONFIG_CHANGED_HEADER } from "./http/config-changed.ts";
import { mountConsoleRoutes } from "./http/console-routes.ts";
import { configForgets } from "./store/config-cache.ts";

const app = buildApp(mountConsoleRoutes);

export default {
  // Never cached here (the TTL stays 0): a person sees what D1 holds. A request that wrote cached
  // configuration says so to the sync Worker it came through (src/http/config-changed.ts).
  async fetch(request, env, ctx): Promise<Response> {
    const before = configForgets();
    const response = await app.fetch(request, env, ctx);
    if (configForgets() === before) return response;
    const marked = new Response(response.body, response);
    marked.headers.set(CONFIG_CHANGED_HEADER, "1");
    return marked;
  },
} satisfies ExportedHandler<Env>;
