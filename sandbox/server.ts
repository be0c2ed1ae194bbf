/**
 * `npm run sandbox`: the sandbox host in Node on http://127.0.0.1:8788 (SANDBOX_PORT to change).
 * Reads the same names as the Worker (HIGHLEVEL_CLIENT_ID, HIGHLEVEL_CLIENT_SECRET,
 * FOURDEGREES_API_KEY, FOURDEGREES_WEBHOOK_SECRET, …) from the environment and from .dev.vars
 * (falling back to .dev.vars.example), so the Worker and the sandbox agree without set-up.
 */
import { serve } from "@hono/node-server";
import { existsSync, readFileSync } from "node:fs";
import { createSandbox } from "./index.ts";

/** Parses a dotenv-style file (KEY=value, "quoted" values with \n escapes kept as-is). */
export function readDotVars(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith("#")) continue;
    let value = m[2]!;
    if (/^".*"$/.test(value) || /^'.*'$/.test(value)) value = value.slice(1, -1);
    out[m[1]!] = value;
  }
  return out;
}

export interface StartedSandbox {
  url: string;
  seed: number;
  close(): Promise<void>;
}

/** Starts the sandbox host; used by `npm run sandbox`, `npm start` and the Node tests. */
export async function startSandbox(
  options: { port?: number; hostname?: string; settings?: Record<string, string | undefined>; seedDemo?: boolean } = {},
): Promise<StartedSandbox> {
  const fileVars = existsSync(".dev.vars") ? readDotVars(".dev.vars") : readDotVars(".dev.vars.example");
  const settings = { ...fileVars, ...process.env, ...options.settings };
  const sandbox = createSandbox({ settings, webhookMode: "auto" });
  if (options.seedDemo ?? settings["SANDBOX_SEED_DEMO"] !== "false") await sandbox.seedDemo();
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? Number(settings["SANDBOX_PORT"] ?? 8788);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: sandbox.fetch, port, hostname }, () => resolve(s));
  });
  const address = server.address();
  const actualPort = address && typeof address === "object" ? address.port : port;
  return {
    url: `http://${hostname}:${actualPort}`,
    seed: sandbox.seed,
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const started = await startSandbox();
  console.log(`sandbox listening on ${started.url} (seed ${started.seed}; replay with SANDBOX_SEED=${started.seed})`);
  console.log(`  HighLevel API   ${started.url}/highlevel`);
  console.log(`  OAuth pages     ${started.url}/marketplace/v2/oauth/chooselocation`);
  console.log(`  4Degrees API    ${started.url}/4degrees/v1`);
  console.log(`  control API     ${started.url}/_sandbox/…  (docs/sandbox.md)`);
  const stop = () => void started.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
