/**
 * The local stack the benchmarks and the burst test run against: the sandbox (HighLevel +
 * 4Degrees, in this process, behind a request counter) and the Worker under `wrangler dev` with
 * a fresh temporary state directory, on free ports; the demo account bootstrapped over the admin
 * API; both sandboxes' webhooks pointed at the Worker. Signed HighLevel webhook bodies are made
 * with the sandbox's private key (sandbox/keys/ed25519-private.pem), exactly as the sandbox signs.
 */
import { serve } from "@hono/node-server";
import { createPrivateKey, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createSandbox, type Sandbox } from "../../sandbox/index.ts";
import { readDotVars } from "../../sandbox/server.ts";
import { applyLocalMigrations, ensureDevVars, freePort, ROOT, snapshotWorkerSource, startWorker, type RunningWorker } from "../lib/processes.ts";

/** Provider calls the Worker made, by provider and read/write (a search is a read). */
export interface CallCounts {
  highlevel: { reads: number; writes: number; rateLimited: number };
  fourdegrees: { reads: number; writes: number; rateLimited: number };
}

export interface Stack {
  sb: Sandbox;
  sandboxUrl: string;
  worker: RunningWorker;
  adminToken: string;
  locationId: string;
  /** The demo "Deal Flow" pipelines (4Degrees id, HighLevel id). */
  fourdegreesPipelineId: string;
  highlevelPipelineId: string;
  /** Running totals of the Worker's calls to each sandbox. */
  calls(): CallCounts;
  /** Every HighLevel API call the Worker made, with the time it arrived (real ms). */
  highlevelCallTimes: number[];
  /** The Worker's log lines (JSON lines parsed, plus `seenAt`: when this process read them; others skipped). */
  logs: Array<Record<string, unknown>>;
  admin(method: string, path: string, body?: unknown): Promise<unknown>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Extra Worker vars. */
  vars?: Record<string, string>;
  /** Sandbox settings (docs/sandbox.md names). */
  sandboxSettings?: Record<string, string>;
  /** Before the Worker subscribes: e.g. seed many deals without emitting webhooks to it. */
  beforeSubscribe?: (sb: Sandbox, demo: { fourdegreesPipelineId: string }) => Promise<void> | void;
  /**
   * Point the sandboxes' webhooks at the Worker (default true). The burst turns it off: its only
   * deliveries are its own, so the echoes of the sync jobs it triggers are not counted as its events.
   */
  subscribe?: boolean;
  /** Keep the Worker's JSON log lines in `logs` (burst observation). */
  keepLogs?: boolean;
  /** Every raw output line of `wrangler dev` (diagnostics: miniflare's own queue and error lines). */
  onLine?: (line: string) => void;
}

/**
 * The HighLevel API version every bench stack's Worker runs with: BENCH_HIGHLEVEL_API_VERSION
 * (`2021-07-28`, the default, or `v3`), so one run measures one version.
 */
export const BENCH_API_VERSION = benchApiVersion(process.env["BENCH_HIGHLEVEL_API_VERSION"]);

function benchApiVersion(raw: string | undefined): "2021-07-28" | "v3" {
  if (raw === undefined || raw === "" || raw === "2021-07-28") return "2021-07-28";
  if (raw === "v3") return "v3";
  throw new Error(`BENCH_HIGHLEVEL_API_VERSION must be "2021-07-28" or "v3", not ${JSON.stringify(raw)}`);
}

const isRead = (method: string, path: string) => method === "GET" || (method === "POST" && path.endsWith("/search"));

/** Starts sandbox + Worker and connects the demo account (no backfill: the bench starts its own). */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  ensureDevVars();
  const devVars = readDotVars(resolve(ROOT, ".dev.vars"));
  const adminToken = devVars["ADMIN_TOKEN"] ?? "";
  if (!adminToken) throw new Error(".dev.vars has no ADMIN_TOKEN");
  const state = mkdtempSync(join(tmpdir(), "fdghl-bench-"));
  const sb = createSandbox({ settings: { ...devVars, ...options.sandboxSettings }, webhookMode: "auto" });
  const demo = await sb.highlevel.seedDemo();
  const fdDemo = await sb.fourdegrees.seedDemo();

  const counts: CallCounts = { highlevel: { reads: 0, writes: 0, rateLimited: 0 }, fourdegrees: { reads: 0, writes: 0, rateLimited: 0 } };
  const highlevelCallTimes: number[] = [];
  const server = await new Promise<ReturnType<typeof serve>>((done) => {
    const s = serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        fetch: async (request: Request) => {
          const path = new URL(request.url).pathname;
          const response = await sb.fetch(request);
          const provider = path.startsWith("/highlevel/") ? "highlevel" : path.startsWith("/4degrees/") ? "fourdegrees" : null;
          if (provider) {
            const c = counts[provider];
            if (isRead(request.method, path)) c.reads++;
            else c.writes++;
            if (response.status === 429) c.rateLimited++;
            if (provider === "highlevel") highlevelCallTimes.push(Date.now());
          }
          return response;
        },
      },
      () => done(s),
    );
  });
  const address = server.address();
  const sandboxUrl = `http://127.0.0.1:${address && typeof address === "object" ? address.port : 0}`;
  const closeServer = () => new Promise<void>((done) => server.close(() => done()));

  const logs: Array<Record<string, unknown>> = [];
  let worker: RunningWorker;
  try {
    await applyLocalMigrations(state);
    // A frozen copy of the source: edits others make in the checkout must not reload the Worker
    // mid-run (a reload loses the local queue's delayed messages and the gate's in-memory window).
    const root = snapshotWorkerSource(join(state, "worker"));
    worker = await startWorker({
      port: await freePort(),
      root,
      sandboxUrl,
      persistTo: state,
      // The sandbox's signing key, given explicitly (one line, `\n` escapes): the bench signs with its private half.
      vars: {
        HIGHLEVEL_WEBHOOK_PUBLIC_KEY: readFileSync(resolve(ROOT, "sandbox/keys/ed25519-public.pem"), "utf8").trim().replace(/\n/g, "\\n"),
        HIGHLEVEL_API_VERSION: BENCH_API_VERSION,
        ...options.vars,
      },
      onLine: (line) => {
        options.onLine?.(line);
        if (!options.keepLogs) return;
        const at = line.indexOf("{");
        if (at < 0) return;
        try {
          const parsed: unknown = JSON.parse(line.slice(at));
          if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) logs.push({ ...Object.fromEntries(Object.entries(parsed)), seenAt: Date.now() });
        } catch {
          // not a log line of ours
        }
      },
    });
  } catch (err) {
    await closeServer();
    rmSync(state, { recursive: true, force: true });
    throw err;
  }

  const admin = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${worker.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 400)}`);
    return text ? JSON.parse(text) : null;
  };

  const stop = async () => {
    await worker.stop();
    await closeServer();
    rmSync(state, { recursive: true, force: true });
  };

  try {
    const pit = sb.highlevel.createPit({ locationId: demo.locationId });
    await admin("POST", "/api/bootstrap", { accountId: "demo", highlevel: { locationId: demo.locationId, privateIntegrationToken: pit }, fourdegrees: { apiKey: sb.fourdegrees.apiKey }, backfill: false, conflictPolicy: "newest", deletePolicy: "propagate" });
    await options.beforeSubscribe?.(sb, { fourdegreesPipelineId: fdDemo.pipelineId });
    if (options.subscribe !== false) {
      sb.highlevel.subscribe(`${worker.url}/webhooks/highlevel`);
      sb.fourdegrees.subscribe(`${worker.url}/webhooks/4degrees`);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    sb,
    sandboxUrl,
    worker,
    adminToken,
    locationId: demo.locationId,
    fourdegreesPipelineId: fdDemo.pipelineId,
    highlevelPipelineId: demo.pipelineId,
    calls: () => structuredClone(counts),
    highlevelCallTimes,
    logs,
    admin,
    stop,
  };
}

let privateKey: KeyObject | null = null;

/**
 * A signed HighLevel `OpportunityUpdate` delivery (unique `webhookId`, fresh `timestamp`), as the
 * sandbox signs one: `x-ghl-signature` = base64 Ed25519 over the raw body.
 */
export function signedHighLevelWebhook(input: { locationId: string; opportunityId: string; webhookId: string; type?: string }): { body: string; headers: Record<string, string> } {
  privateKey ??= createPrivateKey(readFileSync(resolve(ROOT, "sandbox/keys/ed25519-private.pem")));
  const body = JSON.stringify({ type: input.type ?? "OpportunityUpdate", locationId: input.locationId, id: input.opportunityId, webhookId: input.webhookId, timestamp: new Date().toISOString() });
  const signature = sign(null, Buffer.from(body), privateKey).toString("base64");
  return { body, headers: { "content-type": "application/json", "x-ghl-signature": signature } };
}

/**
 * Polls `check` every `everyMs` (100) until it is true or `timeoutMs` passes; returns whether it
 * became true. A check that asks the Worker (an admin API read) polls slower: the Worker shares the CPU.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return check();
}

/** Waits until the Worker has made no provider call for `quietMs` (bounded by `timeoutMs`). */
export async function waitQuiet(stack: Stack, quietMs: number, timeoutMs: number): Promise<boolean> {
  const total = () => {
    const c = stack.calls();
    return c.highlevel.reads + c.highlevel.writes + c.fourdegrees.reads + c.fourdegrees.writes;
  };
  let last = total();
  let since = Date.now();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return true;
  }
  return false;
}
