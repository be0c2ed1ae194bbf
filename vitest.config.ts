/**
 * Two test projects:
 * - `worker`: runs inside workerd through @cloudflare/vitest-plugin, with real local D1/KV/Queues/DOs.
 *   The network fails closed: an outbound fetch that no test routed (test/worker/helpers/network.ts)
 *   reaches `outboundService` below, which answers 599 and records the URL so the test fails.
 * - `node`: sandbox conformance (official OpenAPI + official SDK), black-box and browser tests.
 */
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_BINDINGS } from "./test/bindings.ts";

// The plugin reads secrets from process.env: give it the test values (never real credentials).
for (const [name, value] of Object.entries(TEST_BINDINGS)) process.env[name] ??= value;

export default defineConfig(async () => ({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            // Both Workers' routes in one module (test/worker/entry.ts); the bindings are wrangler.toml's.
            main: "./test/worker/entry.ts",
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: { ...TEST_BINDINGS, TEST_MIGRATIONS: await readD1Migrations("migrations") },
              // A second D1 database for the account-shard tests (test/worker/store/shards.test.ts), which bind
              // it as DB_SHARD_TEST themselves: under that name every other test would run with two shards.
              d1Databases: { SHARD_TEST_DB: "fourdegrees-ghl-sync-shard-test" },
              // The tests' main module serves the console's routes itself (test/worker/entry.ts): a request
              // that still reached the console Worker's binding is a mistake, answered like a stray fetch.
              serviceBindings: {
                CONSOLE: (request: Request) =>
                  new Response(`unexpected call to the console Worker in a test: ${request.method} ${request.url}`, {
                    status: 599,
                  }),
              },
              outboundService: (request: Request) =>
                new Response(`unexpected outbound call in a test: ${request.method} ${request.url}`, { status: 599 }),
            },
          }),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          setupFiles: ["./test/worker/setup.ts"],
          // workerd does not see the host's environment: the proof tests' knobs (chaos seed and
          // size, fuzz runs) reach them through `inject("proofEnv")` (test/worker/proof-env.ts).
          provide: {
            proofEnv: {
              CHAOS_SEED: process.env["CHAOS_SEED"] ?? "",
              CHAOS_HEAVY: process.env["CHAOS_HEAVY"] ?? "",
              FUZZ_RUNS: process.env["FUZZ_RUNS"] ?? "",
            },
          },
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
}));
