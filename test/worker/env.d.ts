declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** A second D1 database (vitest.config.ts) the account-shard tests bind as a shard. */
    SHARD_TEST_DB: D1Database;
  }
}

/** Vite's `?raw` imports (a file's text), used by tests that check a shipped file's content. */
declare module "*?raw" {
  const text: string;
  export default text;
}
