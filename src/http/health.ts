/**
 * Health, in two depths:
 * - `GET /healthz` (public): the Worker is serving and its configuration parses. It touches no
 *   binding, so an anonymous caller cannot make it cost D1, KV or Durable Object work.
 * - `GET /api/health` (behind adminAuth, mounted under `/api`): which bindings this Worker can
 *   reach right now (200 when all can, else 503).
 * `GET /ping`: a trivial text answer (the baseline route of the ingress benchmark in `npm run bench`).
 */
import { Hono } from "hono";
// A named import: the bundler keeps only this field, not the whole package.json.
import { version } from "../../package.json";
import { gateStub } from "../gate/client.ts";
import { probeCache, probeDatabase, type ProbeResult } from "../store/health.ts";
import type { AppEnv } from "./context.ts";

const SERVICE = "fourdegrees-ghl-sync";

export const health = new Hono<AppEnv>()
  .get("/ping", (c) => c.text("pong"))
  .get("/healthz", (c) => c.json({ ok: true, service: SERVICE, version }, 200, { "cache-control": "no-store" }));

export const deepHealth = new Hono<AppEnv>().get("/health", async (c) => {
  const gate: Promise<ProbeResult> = gateStub(c.env, "health", "probe")
    .ping()
    .then((v) => ({ ok: true, detail: `alive at ${new Date(v).toISOString()}` }))
    .catch((err: unknown) => ({ ok: false, detail: err instanceof Error ? err.message : String(err) }));
  const checks = {
    DB: await probeDatabase(c.env.DB),
    CACHE: await probeCache(c.env.CACHE),
    SYNC_QUEUE: { ok: typeof c.env.SYNC_QUEUE?.send === "function" },
    BULK_QUEUE: { ok: typeof c.env.BULK_QUEUE?.send === "function" },
    SYNC_DLQ: { ok: typeof c.env.SYNC_DLQ?.send === "function" },
    GATE: await gate,
  };
  const ok = Object.values(checks).every((r) => r.ok);
  const config = c.var.config;
  return c.json(
    {
      ok,
      service: SERVICE,
      version,
      mode: config.SYNC_MODE,
      bindings: checks,
      providers: {
        highlevel: config.HIGHLEVEL_API_BASE,
        marketplace: config.HIGHLEVEL_MARKETPLACE_BASE,
        fourdegrees: config.FOURDEGREES_API_BASE,
      },
    },
    ok ? 200 : 503,
  );
});
