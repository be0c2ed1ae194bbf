/**
 * Black-box: the Worker under `wrangler dev` and the sandbox over real HTTP, as `npm start` runs
 * them (fresh local state in a temp directory, free ports).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type StartedSandbox } from "../../sandbox/server.ts";
import { localAdminToken } from "../../scripts/lib/demo.ts";
import { applyLocalMigrations, freePort, startWorker, type RunningWorker } from "../../scripts/lib/processes.ts";

let sandbox: StartedSandbox;
let worker: RunningWorker;
let state: string;

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), "fdghl-blackbox-"));
  await applyLocalMigrations(state);
  sandbox = await startSandbox({ port: 0, seedDemo: true });
  worker = await startWorker({ port: await freePort(), sandboxUrl: sandbox.url, persistTo: state });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await sandbox?.close();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("the Worker on its local runtime", () => {
  it("happy: /healthz answers anyone; /api/health reaches D1 (migrated), KV, both queues and the gate", async () => {
    const cheap = await fetch(`${worker.url}/healthz`);
    expect(cheap.status).toBe(200);
    expect(await cheap.json()).toMatchObject({ ok: true, version: expect.any(String) });
    expect((await fetch(`${worker.url}/api/health`)).status).toBe(401);
    const res = await fetch(`${worker.url}/api/health`, { headers: { authorization: `Bearer ${localAdminToken()}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      ok: boolean;
      bindings: Record<string, { ok: boolean; detail?: string }>;
      providers: Record<string, string>;
    };
    expect(body.ok).toBe(true);
    expect(body.bindings["DB"]?.detail).toMatch(/^[1-9]\d* migrations applied$/);
    expect(body.providers["highlevel"]).toBe(`${sandbox.url}/highlevel`);
    expect(body.providers["fourdegrees"]).toBe(`${sandbox.url}/4degrees/v1`);
  });

  it("happy: the sandbox answers on its own port", async () => {
    const res = await fetch(`${sandbox.url}/`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { service: string; seed: number };
    expect(body.service).toMatch(/sandbox/);
    expect(Number.isInteger(body.seed)).toBe(true);
  });

  it("error: unknown routes get the structured 404 with a request id", async () => {
    const res = await fetch(`${worker.url}/no-such-route`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("not_found");
    expect(res.headers.get("x-request-id")).toBe(body.error.requestId);
  });
});
