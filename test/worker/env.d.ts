declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}

/** Vite's `?raw` imports (a file's text), used by tests that check a shipped file's content. */
declare module "*?raw" {
  const text: string;
  export default text;
}
