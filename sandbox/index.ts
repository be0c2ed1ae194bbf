/**
 * The sandbox host: a local, faithful HighLevel and 4Degrees with fault injection, as one Hono
 * app that runs in Node (`npm run sandbox`, sandbox/server.ts) and in-process inside workerd
 * (tests: `createSandbox()` then route the Worker's fetch to `sandbox.fetch`).
 *
 * Paths:
 *   /highlevel/*          stands in for https://services.leadconnectorhq.com
 *   /marketplace/*        stands in for https://marketplace.gohighlevel.com (OAuth pages)
 *   /4degrees/v1/*        stands in for https://api.4degrees.ai/v1 (the ASSUMED contract)
 *   /4degrees/files/*     its signed attachment download links
 *   /_sandbox/<provider>  control API (docs/sandbox.md)
 *   /_sandbox/tenants     many locations, each with its own 4Degrees workspace (sandbox/tenants.ts)
 */
import { Hono } from "hono";
import { SandboxClock } from "./core/clock.ts";
import type { ProviderContext, ProviderSandbox } from "./core/provider.ts";
import { parseSeed } from "./core/random.ts";
import { createFourDegreesSandbox, FourDegreesSandbox } from "./fourdegrees/index.ts";
import { createHighLevelSandbox, isHighLevelSandbox } from "./highlevel/index.ts";
import type { HighLevelSandbox } from "./highlevel/index.ts";
import { TenantFleet } from "./tenants.ts";

export interface SandboxOptions {
  seed?: number;
  clock?: SandboxClock;
  webhookMode?: "auto" | "manual";
  fetch?: (request: Request) => Promise<Response>;
  /** Environment-like settings; see docs/sandbox.md for the names each provider reads. */
  settings?: Record<string, string | undefined>;
}

export interface Sandbox {
  app: Hono;
  fetch: (request: Request) => Promise<Response>;
  clock: SandboxClock;
  seed: number;
  providers: ProviderSandbox[];
  /** Resets every provider. */
  reset(): void;
  /** Seeds every provider's demo data. */
  seedDemo(): Promise<void>;
  /** The 4Degrees sandbox (typed domain accessors: deals, notes, actors, subscribe, flush, …). */
  fourdegrees: FourDegreesSandbox;
  /** The HighLevel sandbox (typed domain accessors: store, service, oauth, createPit, connect, subscribe, flush, …). */
  highlevel: HighLevelSandbox;
  /** Tenant locations with their own 4Degrees workspaces (many-account runs; none until seeded). */
  tenants: TenantFleet;
}

/** Creates a sandbox host with every provider mounted. */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const clock = options.clock ?? new SandboxClock();
  const seed = options.seed ?? parseSeed(options.settings?.["SANDBOX_SEED"]);
  const ctx: ProviderContext = {
    clock,
    seed,
    webhookMode: options.webhookMode ?? "auto",
    settings: options.settings ?? {},
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  const providers: ProviderSandbox[] = createProviders(ctx);

  const highlevel = highLevelOf(providers);
  const tenants = new TenantFleet(ctx, highlevel);
  const app = new Hono();
  // A tenant's 4Degrees API key picks its workspace; every other request goes to the providers below.
  app.use("/4degrees/*", async (c, next) => (await tenants.route(c.req.raw)) ?? next());
  app.get("/", (c) =>
    c.json({
      service: "fourdegrees-ghl-sync sandbox",
      seed,
      providers: providers.map((p) => ({
        name: p.name,
        mounts: Object.keys(p.mounts),
        control: `/_sandbox/${p.name}`,
      })),
      docs: "docs/sandbox.md",
    }),
  );
  for (const p of providers) {
    for (const [path, sub] of Object.entries(p.mounts)) app.route(path, sub);
    app.route(`/_sandbox/${p.name}`, p.control);
  }
  app.route("/_sandbox/tenants", tenants.control);
  app.post("/_sandbox/reset", (c) => {
    for (const p of providers) p.reset();
    tenants.reset();
    clock.reset();
    return c.json({ ok: true });
  });
  app.post("/_sandbox/seed", async (c) => {
    const seeded: Record<string, unknown> = {};
    for (const p of providers) seeded[p.name] = await p.seedDemo();
    return c.json({ ok: true, seeded });
  });
  app.get("/_sandbox/time", (c) => c.json({ now: clock.now(), iso: new Date(clock.now()).toISOString() }));
  app.post("/_sandbox/time/advance", async (c) => {
    const body: unknown = await c.req.json().catch(() => null);
    const ms = body && typeof body === "object" && "ms" in body && typeof body.ms === "number" ? body.ms : NaN;
    if (!Number.isFinite(ms) || ms < 0) return c.json({ error: 'body must be {"ms": <non-negative number>}' }, 400);
    clock.advance(ms);
    return c.json({ now: clock.now() });
  });
  app.notFound((c) =>
    c.json(
      { statusCode: 404, message: `Cannot ${c.req.method} ${new URL(c.req.url).pathname}`, error: "Not Found" },
      404,
    ),
  );

  return {
    app,
    fetch: async (request) => app.fetch(request),
    clock,
    seed,
    providers,
    fourdegrees: providerOf(providers, FourDegreesSandbox),
    highlevel,
    tenants,
    reset() {
      for (const p of providers) p.reset();
      tenants.reset();
      clock.reset();
    },
    async seedDemo() {
      for (const p of providers) await p.seedDemo();
    },
  };
}

/** Every provider sandbox; each provider module adds itself here. */
function createProviders(ctx: ProviderContext): ProviderSandbox[] {
  return [createHighLevelSandbox(ctx), createFourDegreesSandbox(ctx)];
}

/** The HighLevel provider (a plain object, so found by its type guard rather than by class). */
function highLevelOf(providers: ProviderSandbox[]): HighLevelSandbox {
  const found = providers.find(isHighLevelSandbox);
  if (!found) throw new Error("sandbox provider highlevel is not registered in createProviders");
  return found;
}

/** The provider of a class, for the typed accessors on `Sandbox`. */
function providerOf<T extends ProviderSandbox>(
  providers: ProviderSandbox[],
  kind: abstract new (...args: never[]) => T,
): T {
  const found = providers.find((p): p is T => p instanceof kind);
  if (!found) throw new Error(`sandbox provider ${kind.name} is not registered in createProviders`);
  return found;
}
