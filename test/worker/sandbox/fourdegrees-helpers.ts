/**
 * Shared set-up for the 4Degrees sandbox tests inside workerd: an in-process sandbox host in manual
 * webhook mode on a frozen clock, a JSON caller with the workspace key, and a webhook receiver.
 */
import { SandboxClock } from "../../../sandbox/core/clock.ts";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import type { Deal, Pipeline } from "../../../sandbox/fourdegrees/index.ts";
import type { JsonBody } from "../../support.ts";

export const KEY = "4d_sandbox_key_demo";
export const SECRET = "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA==";
export const API = "http://sandbox.test/4degrees/v1";
export const CONTROL = "http://sandbox.test/_sandbox/4degrees";
export const HOOK_URL = "http://worker.test/webhooks/4degrees";

export interface Received {
  headers: Headers;
  body: string;
  at: number;
}

export interface Harness {
  sandbox: Sandbox;
  clock: SandboxClock;
  /** Deliveries the webhook receiver got, in order. */
  received: Received[];
  /** What the receiver answers next (a queue; empty → 204). */
  answers: number[];
  call(
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string>; key?: string | null },
  ): Promise<{ status: number; headers: Headers; json: JsonBody; text: string }>;
  control(method: string, path: string, body?: unknown): Promise<{ status: number; json: JsonBody }>;
  pipeline(): Pipeline;
  stage(name: string): string;
  dealNamed(name: string): Deal;
}

/** A seeded, frozen, manual-mode sandbox with demo data and a subscribed receiver. */
export async function harness(
  options: { seed?: number; settings?: Record<string, string>; demo?: boolean; subscribe?: boolean } = {},
): Promise<Harness> {
  const clock = new SandboxClock();
  clock.freeze();
  const received: Received[] = [];
  const answers: number[] = [];
  const sandbox = createSandbox({
    clock,
    seed: options.seed ?? 42,
    webhookMode: "manual",
    settings: { FOURDEGREES_RATE_LIMIT: "1000", ...options.settings },
    fetch: async (request) => {
      received.push({ headers: request.headers, body: await request.text(), at: clock.now() });
      return new Response(null, { status: answers.shift() ?? 204 });
    },
  });
  if (options.demo ?? true) await sandbox.fourdegrees.seedDemo();
  if (options.subscribe ?? true) sandbox.fourdegrees.subscribe(HOOK_URL);

  const h: Harness = {
    sandbox,
    clock,
    received,
    answers,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = {
        ...(o.key === null ? {} : { authorization: `Bearer ${o.key ?? KEY}` }),
        ...o.headers,
      };
      let body: string | undefined;
      if (o.body !== undefined) {
        body = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
        headers["content-type"] ??= "application/json";
      }
      const res = await sandbox.fetch(
        new Request(`${API}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }),
      );
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: res.status, headers: res.headers, json, text };
    },
    async control(method, path, body) {
      const res = await sandbox.fetch(
        new Request(`${CONTROL}${path}`, {
          method,
          headers: { "content-type": "application/json" },
          ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
        }),
      );
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : null };
    },
    pipeline() {
      const p = [...sandbox.fourdegrees.store.pipelines.values()].find((x) => x.name === "Deal Flow");
      if (!p) throw new Error("demo pipeline missing");
      return p;
    },
    stage(name) {
      const s = h.pipeline().stages.find((x) => x.name === name);
      if (!s) throw new Error(`no stage ${name}`);
      return s.id;
    },
    dealNamed(name) {
      const d = sandbox.fourdegrees.deals().find((x) => x.name === name);
      if (!d) throw new Error(`no deal ${name}`);
      return d;
    },
  };
  return h;
}

/** Verifies a Standard Webhooks signature header with WebCrypto, independently of the sandbox's signer. */
export async function verifySignature(secret: string, headers: Headers, body: string): Promise<boolean> {
  const id = headers.get("webhook-id");
  const ts = headers.get("webhook-timestamp");
  const sigs = headers.get("webhook-signature");
  if (!id || !ts || !sigs) return false;
  const raw = atob(secret.replace(/^whsec_/, ""));
  const keyBytes = Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  for (const part of sigs.split(" ")) {
    const [version, b64] = part.split(",");
    if (version !== "v1" || !b64) continue;
    const mac = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    if (await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(`${id}.${ts}.${body}`))) return true;
  }
  return false;
}
