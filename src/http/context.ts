/** The Hono generic shared by every sub-app. */
import type { Config } from "../config.ts";
import type { Logger } from "../lib/log.ts";

export type AppEnv = {
  Bindings: Env;
  Variables: {
    config: Config;
    log: Logger;
    requestId: string;
  };
};
