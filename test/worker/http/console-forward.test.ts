import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import consoleWorker from "../../../src/console.ts";
import { CONFIG_CHANGED_HEADER } from "../../../src/http/config-changed.ts";
import { servedByConsole } from "../../../src/http/console-forward.ts";
import syncWorker from "../../../src/index.ts";
import { configForgets } from "../../../src/store/config-cache.ts";
import { TEST_BINDINGS } from "../../bindings.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };
const ctx = {
  waitUntil: () => undefined,
  passThroughOnException: () => undefined,
  props: {},
} as unknown as ExecutionContext;

/** A stand-in console Worker: records what it was handed and answers `answer`. */
function fakeConsole(answer: () => Response = () => new Response("from the console", { status: 418 })) {
  const seen: { method: string; url: string; headers: Headers; body: string }[] = [];
  const binding = {
    async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      const request = new Request(input, init);
      seen.push({ method: request.method, url: request.url, headers: request.headers, body: await request.text() });
      return answer();
    },
  } as unknown as Fetcher;
  return { seen, env: { ...env, CONSOLE: binding } as Env };
}

describe("the sync Worker hands the console's paths to the console Worker (src/index.ts)", () => {
  it("happy: a console page goes over the binding as it came, and its answer comes back unchanged", async () => {
    const console = fakeConsole();
    const res = await syncWorker.fetch(
      new Request("https://sync.example/console/mapping?account=a1", {
        headers: { cookie: "s=1", accept: "text/html" },
      }),
      console.env,
      ctx,
    );
    expect(res.status).toBe(418);
    expect(await res.text()).toBe("from the console");
    // The sync Worker adds none of its own headers: the console Worker sets its own (CSP, framing).
    expect(res.headers.get("x-content-type-options")).toBeNull();
    expect(console.seen).toHaveLength(1);
    const [handed] = console.seen;
    expect(handed?.method).toBe("GET");
    expect(handed?.url).toBe("https://sync.example/console/mapping?account=a1");
    expect(handed?.headers.get("cookie")).toBe("s=1");
    // One request id across both Workers' logs.
    expect(handed?.headers.get("x-request-id")).toMatch(/\S/);
  });

  it("happy: an API call's body and method reach the console Worker intact", async () => {
    const console = fakeConsole(() => Response.json({ ok: true }, { status: 201 }));
    const body = JSON.stringify({ name: "Acme", deals: [1, 2, 3] });
    const res = await syncWorker.fetch(
      new Request("https://sync.example/api/accounts", {
        method: "POST",
        headers: { ...ADMIN, "content-type": "application/json", "x-request-id": "req-from-caller" },
        body,
      }),
      console.env,
      ctx,
    );
    expect(res.status).toBe(201);
    expect(console.seen[0]).toMatchObject({ method: "POST", body });
    expect(console.seen[0]?.headers.get("x-request-id")).toBe("req-from-caller");
  });

  it("edge: which paths are the console's", () => {
    for (const path of ["/api", "/api/accounts", "/console", "/console/login", "/embed", "/embed/home"])
      expect(servedByConsole(path), path).toBe(true);
    for (const path of ["/", "/healthz", "/ping", "/apix", "/consoles", "/embedded", "/webhooks/highlevel"])
      expect(servedByConsole(path), path).toBe(false);
    // The D1 meter counts this isolate's statements: the sync Worker serves it.
    expect(servedByConsole("/api/debug/d1-meter")).toBe(false);
  });

  it("happy: the sync Worker's own routes never reach the console Worker", async () => {
    const console = fakeConsole();
    const health = await syncWorker.fetch(new Request("https://sync.example/healthz"), console.env, ctx);
    expect(health.status).toBe(200);
    const meter = await syncWorker.fetch(new Request("https://sync.example/api/debug/d1-meter"), console.env, ctx);
    expect(meter.status).toBe(401); // the API's guard runs here too
    const unknown = await syncWorker.fetch(new Request("https://sync.example/apix"), console.env, ctx);
    expect(unknown.status).toBe(404);
    expect(console.seen).toEqual([]);
  });

  it("error: without the CONSOLE binding a console path answers 503 with the reason", async () => {
    const bare = { ...env } as Record<string, unknown>;
    delete bare["CONSOLE"];
    const res = await syncWorker.fetch(new Request("https://sync.example/console"), bare as unknown as Env, ctx);
    expect(res.status).toBe(503);
    const body = await res.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe("upstream_unavailable");
    expect(body.error.message).toContain("CONSOLE service binding");
  });

  it("happy: a console answer marked 'configuration changed' empties this isolate's cache and loses the mark", async () => {
    const console = fakeConsole(() => new Response(null, { status: 204, headers: { [CONFIG_CHANGED_HEADER]: "1" } }));
    const before = configForgets();
    const res = await syncWorker.fetch(
      new Request("https://sync.example/console/pause", { method: "POST" }),
      console.env,
      ctx,
    );
    expect(res.status).toBe(204);
    expect(res.headers.has(CONFIG_CHANGED_HEADER)).toBe(false);
    expect(configForgets()).toBe(before + 1);
  });
});

describe("the console Worker marks answers that changed cached configuration (src/console.ts)", () => {
  it("happy: a write of cached configuration is marked, a read is not", async () => {
    const write = await consoleWorker.fetch(
      new Request("https://sync.example/api/accounts/acct-forward/fourdegrees", { method: "DELETE", headers: ADMIN }),
      env,
      ctx,
    );
    expect(write.status).toBe(404); // no key stored; the writer still emptied the cache
    expect(write.headers.get(CONFIG_CHANGED_HEADER)).toBe("1");

    const read = await consoleWorker.fetch(
      new Request("https://sync.example/api/accounts/acct-forward/fourdegrees", { headers: ADMIN }),
      env,
      ctx,
    );
    expect(read.status).toBe(200); // the deployment-wide key (FOURDEGREES_API_KEY) answers
    expect(read.headers.has(CONFIG_CHANGED_HEADER)).toBe(false);
  });

  it("security: the console Worker serves none of the sync Worker's routes", async () => {
    for (const path of ["/webhooks/highlevel", "/webhooks/4degrees", "/oauth/callback", "/api/debug/d1-meter"]) {
      const res = await consoleWorker.fetch(
        new Request(`https://sync.example${path}`, { method: "POST", headers: ADMIN }),
        env,
        ctx,
      );
      expect(res.status, path).toBe(404);
    }
  });
});
