/**
 * Process orchestration shared by `npm start`, the Node tests (black-box, browser) and
 * `npm run bench`: apply D1 migrations locally, run the Worker under `wrangler dev` with its
 * provider base URLs pointed at the sandbox, wait until it is healthy, stop it cleanly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, existsSync, readFileSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { writeConsoleConfig } from "./console-config.ts";
import { SANDBOX_DEFAULT_SSO_KEY, sandboxAppId } from "../../sandbox/highlevel/index.ts";
import { readDotVars } from "../../sandbox/server.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
const WRANGLER = resolve(ROOT, "node_modules/.bin/wrangler");
const BASE_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

/** Creates `.dev.vars` from `.dev.vars.example` on first run (demo values that match the sandbox). */
export function ensureDevVars(): "created" | "present" {
  const target = resolve(ROOT, ".dev.vars");
  if (existsSync(target)) return "present";
  copyFileSync(resolve(ROOT, ".dev.vars.example"), target);
  return "created";
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = address && typeof address === "object" ? address.port : 0;
      srv.close(() => done(port));
    });
  });
}

function run(args: string[], label: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(WRANGLER, args, { cwd: ROOT, env: BASE_ENV, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", fail);
    child.on("exit", (code) => (code === 0 ? done() : fail(new Error(`${label} failed (exit ${code}):\n${output}`))));
  });
}

/** `wrangler d1 migrations apply DB --local` (idempotent). */
export function applyLocalMigrations(persistTo?: string): Promise<void> {
  return run(
    ["d1", "migrations", "apply", "DB", "--local", ...(persistTo ? ["--persist-to", persistTo] : [])],
    "wrangler d1 migrations apply --local",
  );
}

/**
 * Copies what `wrangler dev` builds the Worker from (src/, wrangler.toml, migrations/, the
 * tsconfig and package files, .dev.vars; node_modules linked) into `dir` and returns `dir`, for
 * `WorkerOptions.root`. Why: `wrangler dev` rebuilds and reloads on every source edit under its
 * root, and a reload drops the local queue's delayed messages and Durable Object memory; a long
 * benchmark in a checkout others are editing must not be restarted under it.
 */
export function snapshotWorkerSource(dir: string): string {
  ensureDevVars();
  for (const name of [
    "src",
    "migrations",
    "wrangler.toml",
    "wrangler.console.toml",
    "package.json",
    "tsconfig.json",
    "worker-configuration.d.ts",
    ".dev.vars",
  ]) {
    cpSync(resolve(ROOT, name), resolve(dir, name), { recursive: true });
  }
  symlinkSync(resolve(ROOT, "node_modules"), resolve(dir, "node_modules"), "dir");
  return dir;
}

export interface WorkerOptions {
  port: number;
  /** Where `wrangler dev` runs (a `snapshotWorkerSource` copy); default the checkout. */
  root?: string;
  /** Where the sandbox listens, e.g. http://127.0.0.1:8788 */
  sandboxUrl: string;
  /** Local state directory (D1/KV/DO/Queues); default .wrangler/state */
  persistTo?: string;
  /** Extra `[vars]` overrides. */
  vars?: Record<string, string>;
  /** Print the Worker's own output (logs) with this prefix; silent when undefined. */
  logPrefix?: string;
  /** Receives every output line (tests and benchmarks read the Worker's logs). */
  onLine?: (line: string) => void;
}

export interface RunningWorker {
  url: string;
  /** The Worker's DevTools inspector (`http://127.0.0.1:<port>`; `/json` lists its targets): CPU profiles. */
  inspectorUrl: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Optional secrets from `.dev.vars` (the sandbox's webhook public keys, `FOURDEGREES_API_KEY`, …).
 * Why: when `wrangler.toml` declares `[secrets] required`, `wrangler dev` loads from `.dev.vars`
 * only those names (and names already in `[vars]`) and silently drops the rest, so optional
 * secrets must be handed over explicitly for local runs. Production secrets are unaffected.
 */
export function optionalDevSecrets(): Record<string, string> {
  const toml = readFileSync(resolve(ROOT, "wrangler.toml"), "utf8");
  const block = /\[secrets\][\s\S]*?required\s*=\s*\[([\s\S]*?)\]/.exec(toml)?.[1] ?? "";
  const required = new Set([...block.matchAll(/"([A-Z0-9_]+)"/g)].map((m) => m[1]));
  const vars = readDotVars(resolve(ROOT, ".dev.vars"));
  return Object.fromEntries(Object.entries(vars).filter(([k, v]) => !required.has(k) && v !== ""));
}

/**
 * The `[vars]` that point the Worker at a local sandbox (and give it the sandbox app's id, its Shared
 * Secret for Custom Page SSO, and let the sandbox's app shell frame `/embed`).
 */
export function sandboxVars(sandboxUrl: string, workerUrl: string): Record<string, string> {
  const settings = { ...readDotVars(resolve(ROOT, ".dev.vars")), ...process.env };
  return {
    // The sandbox reads .dev.vars and the environment for its app id (sandbox/server.ts): agree with it.
    HIGHLEVEL_APP_ID: sandboxAppId(settings),
    HIGHLEVEL_SSO_KEY: settings["HIGHLEVEL_SSO_KEY"] || SANDBOX_DEFAULT_SSO_KEY,
    HIGHLEVEL_FRAME_ANCESTORS: new URL(sandboxUrl).origin,
    HIGHLEVEL_API_BASE: `${sandboxUrl}/highlevel`,
    HIGHLEVEL_MARKETPLACE_BASE: `${sandboxUrl}/marketplace`,
    FOURDEGREES_API_BASE: `${sandboxUrl}/4degrees/v1`,
    PUBLIC_URL: workerUrl,
  };
}

/**
 * The sandbox's HighLevel app shell framing the Worker's Custom Page (`/embed`) for `locationId`, as
 * that location's first user (docs/sandbox.md "App shell").
 */
export function appShellUrl(sandboxUrl: string, workerUrl: string, locationId: string): string {
  const q = new URLSearchParams({ app: `${workerUrl}/embed`, locationId, userType: "location" });
  return `${sandboxUrl}/_sandbox/highlevel/app-shell?${q.toString()}`;
}

/**
 * The console Worker's configuration for a local run, written under `<root>/.wrangler/` (path
 * returned): the sync Worker's vars, the sandbox's and `.dev.vars`' secrets as vars. Why: `wrangler
 * dev -c wrangler.toml -c <this>` runs both Workers in one session (shared local D1, KV, queues and
 * the gate), but `--var` reaches only the first Worker, and the second reads `.dev.vars` from beside
 * its own config.
 */
export function consoleDevConfig(root: string, vars: Record<string, string>): string {
  return writeConsoleConfig({
    syncConfig: resolve(root, "wrangler.toml"),
    consoleConfig: resolve(root, "wrangler.console.toml"),
    out: resolve(root, ".wrangler", "console-dev.json"),
    vars: { ...readDotVars(resolve(ROOT, ".dev.vars")), ...vars },
    withoutSecrets: true,
  });
}

/**
 * Starts `wrangler dev` with both Workers and resolves once the sync Worker's `GET /healthz` and the
 * console Worker's `GET /console/login` (over the service binding) answer 200.
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  ensureDevVars();
  const url = `http://127.0.0.1:${options.port}`;
  const vars = { ...optionalDevSecrets(), ...sandboxVars(options.sandboxUrl, url), ...options.vars };
  const inspectorPort = await freePort();
  const root = options.root ?? ROOT;
  // Both Workers in one session: the sync Worker (first: it serves the port) and the console Worker.
  const args = [
    "dev",
    "--config",
    resolve(root, "wrangler.toml"),
    "--config",
    consoleDevConfig(root, vars),
    "--ip",
    "127.0.0.1",
    "--port",
    String(options.port),
    "--inspector-port",
    String(inspectorPort),
    "--show-interactive-dev-session=false",
    "--test-scheduled",
    ...(options.persistTo ? ["--persist-to", options.persistTo] : []),
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ];
  // Own process group: wrangler → node → workerd all stop together when we signal the group, and a
  // terminal Ctrl-C reaches only our handler (which stops them in order) instead of racing it.
  const child = spawn(WRANGLER, args, {
    cwd: root,
    env: BASE_ENV,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let recent = "";
  const onData = (d: Buffer) => {
    const text = d.toString();
    recent = (recent + text).slice(-8000);
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      options.onLine?.(line);
      if (options.logPrefix !== undefined) console.log(`${options.logPrefix}${line}`);
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let exited: number | null | undefined;
  child.on("exit", (code) => (exited = code));

  const stop = () =>
    new Promise<void>((done) => {
      if (exited !== undefined) return done();
      const signalGroup = (signal: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => signalGroup("SIGKILL"), 5000);
      child.once("exit", () => {
        clearTimeout(timer);
        signalGroup("SIGKILL"); // workerd grandchildren, if any outlived wrangler
        done();
      });
      signalGroup("SIGTERM");
    });

  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`wrangler dev exited (${exited}) before serving:\n${recent}`);
    try {
      const res = await fetch(`${url}/healthz`);
      await res.body?.cancel();
      if (res.status === 200) {
        const page = await fetch(`${url}/console/login`);
        await page.body?.cancel();
        if (page.status === 200) return { url, inspectorUrl: `http://127.0.0.1:${inspectorPort}`, child, stop };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`wrangler dev did not become healthy on ${url} within 90 s:\n${recent}`);
}
