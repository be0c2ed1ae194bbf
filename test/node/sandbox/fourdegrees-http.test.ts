/**
 * The 4Degrees sandbox over real HTTP from Node (sandbox/server.ts on a free port): the API with
 * the key and secret read from the Worker's setting names, idempotency and If-Match, the CSV
 * import, rate limits, webhooks delivered to a real HTTP receiver and verified with node:crypto,
 * retries after a non-2xx, and no 5xx for arbitrary bad input.
 */
import fc from "fast-check";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startSandbox, type StartedSandbox } from "../../../sandbox/server.ts";

const KEY = "4d_node_test_key_1";
const SECRET = `whsec_${Buffer.from("node-test-webhook-secret-0123456789").toString("base64")}`;

interface Hit {
  headers: Record<string, string>;
  body: string;
}

let sandbox: StartedSandbox;
let receiver: Server;
let receiverUrl: string;
const hits: Hit[] = [];
const answers: number[] = [];

async function api(
  method: string,
  path: string,
  options: { body?: string | object; headers?: Record<string, string>; key?: string } = {},
) {
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === "string"
        ? options.body
        : JSON.stringify(options.body);
  const res = await fetch(`${sandbox.url}/4degrees/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${options.key ?? KEY}`,
      ...(body !== undefined && typeof options.body === "object" ? { "content-type": "application/json" } : {}),
      ...options.headers,
    },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, json, text };
}

async function control(method: string, path: string, body?: unknown) {
  const res = await fetch(`${sandbox.url}/_sandbox/4degrees${path}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as any };
}

/** Standard Webhooks verification with node:crypto (independent of the sandbox's WebCrypto signer). */
function verify(secret: string, hit: Hit): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${hit.headers["webhook-id"]}.${hit.headers["webhook-timestamp"]}.${hit.body}`)
    .digest();
  return (hit.headers["webhook-signature"] ?? "").split(" ").some((part) => {
    const [v, b64] = part.split(",");
    const got = Buffer.from(b64 ?? "", "base64");
    return v === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      hits.push({ headers, body });
      res.statusCode = answers.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/4degrees`;
  sandbox = await startSandbox({
    port: 0,
    seedDemo: true,
    settings: {
      SANDBOX_SEED: "4242",
      FOURDEGREES_API_KEY: KEY,
      FOURDEGREES_WEBHOOK_SECRET: SECRET,
      FOURDEGREES_RATE_LIMIT: "10000",
    },
  });
});

afterAll(async () => {
  await sandbox?.close();
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
});

beforeEach(async () => {
  hits.length = 0;
  answers.length = 0;
  await control("DELETE", "/faults");
  await control("PUT", "/ratelimit", { max: 10_000, intervalMs: 1_000 });
});

describe("4Degrees sandbox over HTTP", () => {
  it("happy: the API answers with the key from FOURDEGREES_API_KEY and rate-limit headers", async () => {
    const res = await api("GET", "/me");
    expect(res.status).toBe(200);
    expect(res.json.workspace.name).toBe("Acme Capital Partners");
    expect(res.headers.get("x-ratelimit-limit")).toBe("10000");
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    expect((await api("GET", "/me", { key: "4d_sandbox_key_demo" })).status).toBe(401);
  });

  it("happy: create with an Idempotency-Key twice, then a stale If-Match gets 409", async () => {
    const pipeline = (await api("GET", "/pipelines")).json.data[0];
    const body = { name: "HTTP Deal", pipeline_id: pipeline.id, value: { amount_minor: 12_300, currency: "USD" } };
    const a = await api("POST", "/deals", { body, headers: { "idempotency-key": "http-create-1" } });
    const b = await api("POST", "/deals", { body, headers: { "idempotency-key": "http-create-1" } });
    expect(a.status).toBe(201);
    expect(b.json).toEqual(a.json);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
    const moved = await api("PATCH", `/deals/${a.json.id}`, {
      body: { stage_id: pipeline.stages[1].id },
      headers: { "if-match": '"1"' },
    });
    expect(moved.json.version).toBe(2);
    const stale = await api("PATCH", `/deals/${a.json.id}`, {
      body: { name: "Stale" },
      headers: { "if-match": '"1"' },
    });
    expect(stale.status).toBe(409);
    expect(stale.json.error.code).toBe("version_conflict");
  });

  it("happy: the CSV import takes a text/csv upload with a BOM and CRLF line ends", async () => {
    const pipeline = (await api("GET", "/pipelines")).json.data[0];
    const csv =
      '\uFEFFDeal Name,Stage,Owner,Value\r\n"Over HTTP, Inc",Due Diligence,jordan.lee@acmecapital.example,42000\r\n';
    const res = await api("POST", `/pipelines/${pipeline.id}/import`, {
      body: csv,
      headers: { "content-type": "text/csv; charset=utf-8" },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ created: 1, errors: [] });
    const again = await api("POST", `/pipelines/${pipeline.id}/import`, {
      body: csv,
      headers: { "content-type": "text/csv" },
    });
    expect(again.json).toMatchObject({ created: 0, updated: 0, unchanged: 1 });
  });

  it("error: over the limit the API answers 429 with Retry-After", async () => {
    await control("PUT", "/ratelimit", { max: 3, intervalMs: 60_000 });
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof api>> | null = null;
    for (let i = 0; i < 4; i++) {
      last = await api("GET", "/users");
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(59);
    expect(last!.headers.get("x-ratelimit-remaining")).toBe("0");
  });

  it("happy: a UI change is delivered to a real HTTP receiver, signed with FOURDEGREES_WEBHOOK_SECRET", async () => {
    await control("POST", "/webhooks/subscribers", { url: receiverUrl });
    const deals = (await control("GET", "/deals")).json.deals;
    const changed = await control("PATCH", `/deals/${deals[0].id}`, { tags: ["over-http"] });
    expect(changed.status).toBe(200);
    await waitFor(() => hits.length >= 1);
    const hit = hits[0]!;
    expect(verify(SECRET, hit)).toBe(true);
    const event = JSON.parse(hit.body);
    expect(event).toMatchObject({
      type: "deal.updated",
      actor: { type: "user" },
      data: { object: { id: deals[0].id, tags: ["over-http"] } },
    });
    expect(hit.headers["webhook-id"]).toBe(event.id);
    expect(Math.abs(Number(hit.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(300);
    await control("DELETE", "/webhooks/subscribers", { url: receiverUrl });
  });

  it("happy: a 500 from the receiver is retried by the schedule until it answers 2xx", async () => {
    await control("POST", "/webhooks/subscribers", { url: receiverUrl });
    await control("PUT", "/webhooks", { retrySchedule: [50, 50] });
    answers.push(500);
    const deals = (await control("GET", "/deals")).json.deals;
    await control("POST", `/deals/${deals[1].id}/notes`, { body: "retry me" });
    await waitFor(() => hits.length >= 2);
    expect(hits[0]!.headers["webhook-id"]).toBe(hits[1]!.headers["webhook-id"]);
    expect(verify(SECRET, hits[1]!)).toBe(true);
    const log = await control("GET", "/webhooks/deliveries?type=note.created");
    expect(log.json.deliveries.at(-1).attempts.map((a: { status: number }) => a.status)).toEqual([500, 200]);
    await control("DELETE", "/webhooks/subscribers", { url: receiverUrl });
  });

  it("security: arbitrary JSON and text bodies never get a 5xx from the deal and note endpoints", async () => {
    const deals = (await control("GET", "/deals")).json.deals;
    const paths = [
      "/deals",
      `/deals/${deals[0].id}`,
      `/deals/${deals[0].id}/notes`,
      "/deals/deal_missing",
      "/contacts",
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom("POST", "PATCH"),
        fc.oneof(fc.json(), fc.string()),
        fc.constantFrom("application/json", "text/csv", "text/plain"),
        async (path, method, body, type) => {
          const res = await api(method, path, { body, headers: { "content-type": type } });
          expect(res.status).toBeLessThan(500);
          if (res.status >= 400) expect(typeof res.json?.error?.code).toBe("string");
        },
      ),
      { numRuns: 150, seed: 4242 },
    );
    const pipeline = (await api("GET", "/pipelines")).json.data[0];
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 400 }), async (csv) => {
        const res = await api("POST", `/pipelines/${pipeline.id}/import`, {
          body: csv,
          headers: { "content-type": "text/csv" },
        });
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 100, seed: 4242 },
    );
  });

  it("happy: a real multipart upload over HTTP, its signed download URL serves the bytes, a forged one is 403", async () => {
    const deals = await api("GET", "/deals?limit=1");
    const dealId = deals.json.data[0].id as string;
    const bytes = Buffer.concat([Buffer.from("%PDF-1.7\n"), Buffer.alloc(300_000, 0x41)]);
    const form = new FormData();
    form.append("file", new File([bytes], "Data room index.pdf", { type: "application/pdf" }));
    const res = await fetch(`${sandbox.url}/4degrees/v1/deals/${dealId}/attachments`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: form,
    });
    expect(res.status).toBe(201);
    const att = (await res.json()) as { id: string; size: number; download_url: string };
    expect(att.size).toBe(bytes.length);
    expect(att.download_url.startsWith(`${sandbox.url}/4degrees/files/${att.id}?`)).toBe(true);
    const file = await fetch(att.download_url);
    expect(file.status).toBe(200);
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
    const forged = await fetch(att.download_url.replace(/signature=[^&]+/, "signature=forged"));
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
    expect((await api("DELETE", `/attachments/${att.id}`)).status).toBe(200);
  });
});
