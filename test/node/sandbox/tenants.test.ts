/**
 * Sandbox tenants (sandbox/tenants.ts): many HighLevel locations, each with its own 4Degrees
 * workspace, seeded through the control API; a tenant's API key reaches only its workspace, the
 * main key still the main one, each tenant's PIT only its location; a reset removes them.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import type { TenantSummary } from "../../../sandbox/tenants.ts";

let sb: Sandbox;
beforeEach(async () => {
  sb = createSandbox({ webhookMode: "manual", seed: 5 });
  await sb.seedDemo();
});

async function call(
  method: string,
  path: string,
  options: { body?: unknown; bearer?: string; version?: boolean } = {},
) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.bearer) headers["authorization"] = `Bearer ${options.bearer}`;
  if (options.version) headers["version"] = "2021-07-28";
  const res = await sb.fetch(
    new Request(`http://sandbox.test${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    }),
  );
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function seed(count: number): Promise<TenantSummary[]> {
  const res = await call("POST", "/_sandbox/tenants", { body: { count } });
  expect(res.status).toBe(200);
  return res.body["tenants"] as TenantSummary[];
}

describe("sandbox tenants", () => {
  it("seeds tenants idempotently with distinct locations, workspaces and keys", async () => {
    const first = await seed(3);
    expect(first.map((t) => t.n)).toEqual([1, 2, 3]);
    expect(new Set(first.map((t) => t.locationId)).size).toBe(3);
    expect(new Set(first.map((t) => t.workspaceId)).size).toBe(3);
    expect(first.map((t) => t.locationId)).not.toContain(sb.highlevel.demo?.locationId);
    const again = await seed(4);
    expect(again.slice(0, 3)).toEqual(first);
    expect((await call("GET", "/_sandbox/tenants")).body["tenants"]).toHaveLength(4);
  });

  it("sends a tenant's 4Degrees key to its own workspace and the main key to the main one", async () => {
    const [a, b] = await seed(2);
    const deal = sb.tenants
      .list()[0]!
      .fourdegrees.sandbox.createDealAsUser({ name: "Tenant one deal", pipeline_id: a!.fourdegreesPipelineId });
    const mine = await call("GET", `/4degrees/v1/deals/${deal.id}`, { bearer: a!.apiKey });
    expect(mine.status).toBe(200);
    const theirs = await call("GET", `/4degrees/v1/deals/${deal.id}`, { bearer: b!.apiKey });
    expect(theirs.status).toBe(404);
    const main = await call("GET", `/4degrees/v1/deals/${deal.id}`, { bearer: sb.fourdegrees.apiKey });
    expect(main.status).toBe(404);
    const unknown = await call("GET", "/4degrees/v1/pipelines", { bearer: "4d_not_a_key_at_all" });
    expect(unknown.status).toBe(401);
  });

  it("gives each tenant location a Deal Flow pipeline its PIT can read, and no other location", async () => {
    const [a, b] = await seed(2);
    const own = await call("GET", `/highlevel/opportunities/pipelines?locationId=${a!.locationId}`, {
      bearer: a!.pit,
      version: true,
    });
    expect(own.status).toBe(200);
    const pipelines = own.body["pipelines"] as Array<{ id: string; name: string; stages: unknown[] }>;
    expect(pipelines.map((p) => [p.id, p.name, p.stages.length])).toEqual([[a!.highlevelPipelineId, "Deal Flow", 6]]);
    const other = await call("GET", `/highlevel/opportunities/pipelines?locationId=${b!.locationId}`, {
      bearer: a!.pit,
      version: true,
    });
    expect(other.status).toBe(403);
  });

  it("delivers tenant workspaces' webhooks to a fleet subscriber, also for tenants seeded later", async () => {
    const sub = await call("POST", "/_sandbox/tenants/webhooks/subscribers", {
      body: { url: "http://worker.test/webhooks/4degrees" },
    });
    expect(sub.status).toBe(200);
    await seed(2);
    for (const t of sb.tenants.list()) {
      expect(t.fourdegrees.sandbox.webhooks.subscribers.has("http://worker.test/webhooks/4degrees")).toBe(true);
    }
  });

  it("answers 400 for bad input and forgets every tenant on reset", async () => {
    expect((await call("POST", "/_sandbox/tenants", { body: { count: 0 } })).status).toBe(400);
    expect((await call("POST", "/_sandbox/tenants", { body: { count: 2, extra: 1 } })).status).toBe(400);
    expect((await call("POST", "/_sandbox/tenants/webhooks/subscribers", { body: { url: "ftp://x" } })).status).toBe(
      400,
    );
    const [a] = await seed(1);
    await call("POST", "/_sandbox/reset");
    expect((await call("GET", "/_sandbox/tenants")).body["tenants"]).toEqual([]);
    expect((await call("GET", "/4degrees/v1/pipelines", { bearer: a!.apiKey })).status).toBe(401);
  });
});
