/** The Hono generic shared by every sub-app. */
import type { Config } from "../config.ts";
import type { Logger } from "../lib/log.ts";
import type { SessionScope } from "../store/console-auth.ts";

export type AppEnv = {
  Bindings: Env;
  Variables: {
    config: Config;
    log: Logger;
    requestId: string;
    /** Who the request acts for and what it may see (src/http/scope.ts); set by the auth middleware. */
    scope?: SessionScope;
    /** True when the response may be framed by HighLevel (src/http/embed-framing.ts). */
    embedded?: boolean;
  };
};
