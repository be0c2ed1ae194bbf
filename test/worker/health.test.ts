import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app.ts";
import { TEST_BINDINGS } from "../bindings.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };

/** `env` whose D1, KV and Durable Object bindings record every use (and still work). */
function countingEnv(): { env: Env; used: string[] } {
  const used: string[] = [];
  const spy = <T extends object>(name: string, target: T): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const value: unknown = Reflect.get(t, prop, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          used.push(`${name}.${String(prop)}`);
          return Reflect.apply(value, t, args);
        };
      },
    });
  return { env: { ...env, DB: spy("DB", env.DB), CACHE: spy("CACHE", env.CACHE), GATE: spy("GATE", env.GATE) }, used };
}

describe("GET /healthz (public, cheap)", () => {
  it("happy: answers ok and the version", async () => {
    const res = await exports.default.fetch("http://worker.test/healthz");
    expect(res.status).toBe(200);
    const version = expect.stringMatching(/^\d+\.\d+\.\d+/);
    expect(await res.json()).toEqual({ ok: true, service: "fourdegrees-ghl-sync", version });
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("security: an anonymous /healthz touches no D1, KV or Durable Object", async () => {
    const { env: counted, used } = countingEnv();
    const res = await createApp().fetch(new Request("http://worker.test/healthz"), counted);
    expect(res.status).toBe(200);
    expect(used).toEqual([]);
    const body = await res.json<Record<string, unknown>>();
    expect(body).not.toHaveProperty("bindings");
    expect(body).not.toHaveProperty("providers");
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

describe("GET /api/health (deep, behind admin auth)", () => {
  it("happy: reports every binding reachable", async () => {
    const res = await exports.default.fetch("http://worker.test/api/health", { headers: ADMIN });
    expect(res.status).toBe(200);
    const body = await res.json<{ ok: boolean; bindings: Record<string, { ok: boolean }> }>();
    expect(body.ok).toBe(true);
    expect(Object.keys(body.bindings).sort()).toEqual(["BULK_QUEUE", "CACHE", "DB", "GATE", "SYNC_DLQ", "SYNC_QUEUE"]);
    for (const [name, probe] of Object.entries(body.bindings)) expect(probe.ok, name).toBe(true);
  });

  it("security: without credentials it answers 401 and touches no binding", async () => {
    const { env: counted, used } = countingEnv();
    const res = await createApp().fetch(new Request("http://worker.test/api/health"), counted);
    expect(res.status).toBe(401);
    expect(used).toEqual([]);
  });

  it("error: a binding that fails makes it 503 naming the binding", async () => {
    const down = new Proxy(env.DB, {
      get: (t, prop, receiver) =>
        prop === "prepare"
          ? () => {
              throw new Error("D1 is down");
            }
          : Reflect.get(t, prop, receiver),
    });
    const broken = { ...env, DB: down };
    const res = await createApp().fetch(new Request("http://worker.test/api/health", { headers: ADMIN }), broken);
    expect(res.status).toBe(503);
    const body = await res.json<{ ok: boolean; bindings: Record<string, { ok: boolean; detail?: string }> }>();
    expect(body.ok).toBe(false);
    expect(body.bindings["DB"]).toEqual({ ok: false, detail: "D1 is down" });
  });
});
