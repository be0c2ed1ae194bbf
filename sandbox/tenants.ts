/**
 * Tenants: many connected HighLevel locations, each with its own 4Degrees workspace, for runs that
 * need many accounts at once (`npm run bench` part `accounts`). Tenant n is a location of the
 * HighLevel sandbox (sandbox/highlevel/tenant-seed.ts) and a 4Degrees workspace of its own: a
 * separate 4Degrees sandbox instance (same clock and webhook mode as the host) with workspace id
 * `ws_tenant_<nnnn>`, API key `4d_tenant_<nnnn>_key`, one user, the "Deal Flow" pipeline and two
 * pass reasons. The host sends a `/4degrees/v1/*` request carrying a tenant's API key to that
 * tenant's workspace; every other key goes to the main workspace, as before.
 *
 * Control API (`/_sandbox/tenants`): `POST /` `{count}` seeds tenants 1..count (idempotent) and
 * lists them; `GET /` lists them; `POST /webhooks/subscribers` `{url}` subscribes a URL to every
 * tenant workspace's webhooks, present and future. HighLevel webhooks of tenant locations go to
 * the HighLevel sandbox's own subscribers. A host reset removes every tenant.
 */
import { Hono } from "hono";
import { z } from "zod";
import { ControlError, controlBody } from "./core/control.ts";
import type { ProviderContext } from "./core/provider.ts";
import { API_BASE, DEMO_STAGES, FourDegreesSandbox } from "./fourdegrees/index.ts";
import type { HighLevelSandbox, TenantLocation } from "./highlevel/index.ts";

/** At most this many tenants (a guard against a typo costing the machine's memory). */
export const MAX_TENANTS = 2_000;

/** One tenant: its HighLevel location and its 4Degrees workspace. */
export interface Tenant {
  n: number;
  highlevel: TenantLocation;
  fourdegrees: {
    sandbox: FourDegreesSandbox;
    workspaceId: string;
    apiKey: string;
    pipelineId: string;
    /** Stage ids in pipeline order. */
    stageIds: string[];
    userId: string;
  };
}

/** A tenant as the control API lists it (ids and keys, no live objects). */
export interface TenantSummary {
  n: number;
  locationId: string;
  pit: string;
  highlevelPipelineId: string;
  workspaceId: string;
  apiKey: string;
  fourdegreesPipelineId: string;
}

const label = (n: number) => String(n).padStart(4, "0");

/** The tenants of one sandbox host. */
export class TenantFleet {
  readonly #ctx: ProviderContext;
  readonly #highlevel: HighLevelSandbox;
  readonly #byNumber = new Map<number, Tenant>();
  readonly #byKey = new Map<string, Hono>();
  readonly #subscribers = new Set<string>();
  readonly control: Hono;

  constructor(ctx: ProviderContext, highlevel: HighLevelSandbox) {
    this.#ctx = ctx;
    this.#highlevel = highlevel;
    this.control = tenantControl(this);
  }

  /** Every tenant, by number. */
  list(): Tenant[] {
    return [...this.#byNumber.values()].sort((a, b) => a.n - b.n);
  }

  /** Seeds tenants 1..count that do not exist yet; answers all of 1..count. */
  seed(count: number): Tenant[] {
    if (!Number.isInteger(count) || count < 1 || count > MAX_TENANTS)
      throw new RangeError(`tenant count must be an integer from 1 to ${MAX_TENANTS}, not ${count}`);
    const out: Tenant[] = [];
    for (let n = 1; n <= count; n++) out.push(this.#byNumber.get(n) ?? this.#create(n));
    return out;
  }

  /** Subscribes `url` to every tenant workspace's 4Degrees webhooks, including tenants seeded later. */
  subscribe(url: string): void {
    this.#subscribers.add(url);
    for (const t of this.#byNumber.values()) t.fourdegrees.sandbox.subscribe(url);
  }

  /**
   * The answer of the tenant workspace whose API key `request` carries (`Authorization: Bearer …`),
   * or null when the request is not a 4Degrees API call with a tenant's key.
   */
  route(request: Request): Promise<Response> | null {
    if (this.#byKey.size === 0 || !new URL(request.url).pathname.startsWith(`${API_BASE}/`)) return null;
    const key = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
    const app = key === undefined ? undefined : this.#byKey.get(key);
    return app ? Promise.resolve(app.fetch(request)) : null;
  }

  /** Removes every tenant workspace and subscriber (the HighLevel side is cleared by its own reset). */
  reset(): void {
    for (const t of this.#byNumber.values()) t.fourdegrees.sandbox.webhooks.reset();
    this.#byNumber.clear();
    this.#byKey.clear();
    this.#subscribers.clear();
  }

  #create(n: number): Tenant {
    const highlevel = this.#highlevel.seedTenant(n);
    const apiKey = `4d_tenant_${label(n)}_key`;
    const workspaceId = `ws_tenant_${label(n)}`;
    const sandbox = new FourDegreesSandbox({
      ...this.#ctx,
      // Each workspace its own id stream and fault stream, replayable from the host seed.
      seed: (this.#ctx.seed + n * 7_919) >>> 0,
      settings: {
        ...this.#ctx.settings,
        FOURDEGREES_API_KEY: apiKey,
        FOURDEGREES_WORKSPACE_ID: workspaceId,
        FOURDEGREES_WORKSPACE_NAME: `Tenant ${label(n)}`,
      },
    });
    const user = sandbox.store.addUser({
      name: `Tenant ${label(n)} owner`,
      email: `owner@tenant-${label(n)}.example`,
      role: "admin",
    });
    const pipeline = sandbox.store.addPipeline({ name: "Deal Flow", stages: [...DEMO_STAGES] });
    for (const name of ["Passed: team", "Passed: market size"]) sandbox.store.addPassReason({ name });
    for (const url of this.#subscribers) sandbox.subscribe(url);
    const tenant: Tenant = {
      n,
      highlevel,
      fourdegrees: {
        sandbox,
        workspaceId,
        apiKey,
        pipelineId: pipeline.id,
        stageIds: [...pipeline.stages].sort((a, b) => a.position - b.position).map((s) => s.id),
        userId: user.id,
      },
    };
    this.#byNumber.set(n, tenant);
    const api = sandbox.mounts[API_BASE];
    if (!api) throw new Error(`the 4Degrees sandbox has no ${API_BASE} mount`);
    this.#byKey.set(apiKey, new Hono().route(API_BASE, api));
    return tenant;
  }
}

/** The ids and keys of a tenant (the control API's answer). */
export function tenantSummary(t: Tenant): TenantSummary {
  return {
    n: t.n,
    locationId: t.highlevel.locationId,
    pit: t.highlevel.pit,
    highlevelPipelineId: t.highlevel.pipelineId,
    workspaceId: t.fourdegrees.workspaceId,
    apiKey: t.fourdegrees.apiKey,
    fourdegreesPipelineId: t.fourdegrees.pipelineId,
  };
}

const SeedBody = z.object({ count: z.number().int().min(1).max(MAX_TENANTS) }).strict();
const UrlBody = z.object({ url: z.url({ protocol: /^https?$/ }) }).strict();

function tenantControl(fleet: TenantFleet): Hono {
  const app = new Hono();
  app.get("/", (c) => c.json({ tenants: fleet.list().map(tenantSummary) }));
  app.post("/", async (c) => {
    const { count } = await controlBody(c, SeedBody);
    return c.json({ tenants: fleet.seed(count).map(tenantSummary) });
  });
  app.post("/webhooks/subscribers", async (c) => {
    const { url } = await controlBody(c, UrlBody);
    fleet.subscribe(url);
    return c.json({ ok: true, tenants: fleet.list().length });
  });
  app.onError((err, c) => {
    if (err instanceof ControlError)
      return c.json({ error: err.message, ...(err.issues ? { issues: err.issues } : {}) }, err.status);
    console.error("tenants sandbox control: unexpected error", err);
    return c.json({ error: "The sandbox hit an unexpected error (a sandbox bug)" }, 500);
  });
  return app;
}
