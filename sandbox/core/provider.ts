/** What each provider sandbox (HighLevel, 4Degrees) gives the sandbox host. */
import type { Hono } from "hono";
import type { SandboxClock } from "./clock.ts";
import type { FaultInjector } from "./faults.ts";
import type { WebhookDispatcher } from "./webhooks.ts";

/** Shared settings every provider sandbox is created with. */
export interface ProviderContext {
  clock: SandboxClock;
  /** Seed for ids and faults (printed by the server, replayable). */
  seed: number;
  /** Webhook delivery mode: `auto` (server) or `manual` (tests call `flush()`). */
  webhookMode: "auto" | "manual";
  /** How webhook deliveries reach subscribers (default: global fetch). */
  fetch?: (request: Request) => Promise<Response>;
  /** Environment-like settings (client ids, secrets, keys), read from process.env by the server. */
  settings: Record<string, string | undefined>;
}

export interface ProviderSandbox {
  /** Mount point → Hono app, e.g. `{ "/highlevel": api, "/marketplace": oauthPages }`. */
  mounts: Record<string, Hono>;
  /** The control API, mounted under `/_sandbox/<name>`. */
  control: Hono;
  /** Short name used in the control path (`highlevel`, `4degrees`). */
  name: string;
  faults: FaultInjector;
  webhooks: WebhookDispatcher;
  /** Clears all data, faults, subscribers and counters. */
  reset(): void;
  /** Loads demo data (idempotent after a reset). */
  seedDemo(): Promise<unknown>;
}
