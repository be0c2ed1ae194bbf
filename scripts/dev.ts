/**
 * `npm start`: the whole product on this machine, offline.
 *   1. creates .dev.vars from .dev.vars.example on first run (demo secrets that match the sandbox),
 *   2. clears the Worker's local state (.wrangler/state; KEEP_STATE=1 keeps it) and applies the D1
 *      migrations locally — the sandbox is in memory and seeded anew on each start, so links,
 *      snapshots and a finished backfill kept from the last run would point at records that no
 *      longer exist (and the demo's backfill would not run again),
 *   3. starts the sandbox (HighLevel + 4Degrees) on SANDBOX_PORT (8788), seeded with demo data,
 *   4. starts the Worker under `wrangler dev` on PORT (8787), its provider base URLs on the sandbox,
 *   5. points both sandboxes' webhooks at the Worker and connects the demo account,
 *   6. prints what to open. Ctrl-C stops both.
 */
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { startSandbox } from "../sandbox/server.ts";
import { connectDemo } from "./lib/demo.ts";
import {
  applyLocalMigrations,
  appShellUrl,
  ensureDevVars,
  ROOT,
  startWorker,
  type RunningWorker,
} from "./lib/processes.ts";

const sandboxPort = Number(process.env["SANDBOX_PORT"] ?? 8788);
const workerPort = Number(process.env["PORT"] ?? 8787);
const verbose = process.env["VERBOSE"] === "1";

const step = (text: string) => console.log(`• ${text}`);

if (ensureDevVars() === "created")
  step("created .dev.vars from .dev.vars.example (demo secrets that match the sandbox)");
if (process.env["KEEP_STATE"] === "1") step("keeping the Worker's local state from the last run (KEEP_STATE=1)");
else {
  rmSync(resolve(ROOT, ".wrangler/state"), { recursive: true, force: true });
  step(
    "cleared the Worker's local state (.wrangler/state): the sandbox starts fresh, so does the Worker (KEEP_STATE=1 keeps it)",
  );
}
step("applying D1 migrations locally");
await applyLocalMigrations();

step(`starting the sandbox on ${sandboxPort}`);
const sandbox = await startSandbox({ port: sandboxPort, seedDemo: true });

step(`starting the Worker (wrangler dev) on ${workerPort}`);
let worker: RunningWorker;
try {
  worker = await startWorker({
    port: workerPort,
    sandboxUrl: sandbox.url,
    logPrefix: verbose ? "[worker] " : undefined,
  });
} catch (err) {
  await sandbox.close();
  throw err;
}

let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping…");
  await worker.stop();
  await sandbox.close();
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
worker.child.on("exit", (code) => {
  if (!stopping) {
    console.error(`wrangler dev exited (${code}); stopping the sandbox`);
    void shutdown(1);
  }
});

const demo = await connectDemo({ sandboxUrl: sandbox.url, workerUrl: worker.url }).catch((err: unknown) => {
  console.error(`could not connect the demo account: ${err instanceof Error ? err.message : String(err)}`);
  return null;
});

console.log(`
Ready (sandbox seed ${sandbox.seed}; replay faults with SANDBOX_SEED=${sandbox.seed}).

  Worker        ${worker.url}/healthz
  Console       ${worker.url}/console   (admin token: ADMIN_TOKEN in .dev.vars)${
    demo
      ? `\n  In HighLevel  ${appShellUrl(sandbox.url, worker.url, demo.locationId)}\n` +
        `                (the sandbox's app shell framing ${worker.url}/embed as the demo location's user)`
      : ""
  }
  Sandbox       ${sandbox.url}/   (HighLevel ${sandbox.url}/highlevel · 4Degrees ${sandbox.url}/4degrees/v1)
  Control API   ${sandbox.url}/_sandbox/…   (docs/sandbox.md)
${demo ? `\n${demo.summary}\n` : ""}
Logs: VERBOSE=1 npm start prints the Worker's own log lines. Ctrl-C stops both.`);
