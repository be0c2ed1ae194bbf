import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Idempotent: applies only what is not yet applied.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
