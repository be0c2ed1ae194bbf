import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("GET /healthz", () => {
  it("happy: reports every binding reachable", async () => {
    const res = await exports.default.fetch("http://worker.test/healthz");
    expect(res.status).toBe(200);
    const body = await res.json<{ ok: boolean; bindings: Record<string, { ok: boolean }> }>();
    expect(body.ok).toBe(true);
    expect(Object.keys(body.bindings).sort()).toEqual(["BULK_QUEUE", "CACHE", "DB", "GATE", "SYNC_DLQ", "SYNC_QUEUE"]);
    for (const [name, probe] of Object.entries(body.bindings)) expect(probe.ok, name).toBe(true);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("happy: GET /ping answers without touching a binding (the bench's baseline route)", async () => {
    const res = await exports.default.fetch("http://worker.test/ping");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("pong");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("error: unknown route answers the structured 404", async () => {
    const res = await exports.default.fetch("http://worker.test/nope");
    expect(res.status).toBe(404);
    const body = await res.json<{ error: { code: string; requestId: string } }>();
    expect(body.error.code).toBe("not_found");
    expect(body.error.requestId).toBeTruthy();
  });
});
