declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}

/** A file's text, through Vite's `?raw` import (tests read wrangler.toml this way). */
declare module "*?raw" {
  const text: string;
  export default text;
}
