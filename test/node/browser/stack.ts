/**
 * What every browser test starts: a Chromium (first, so a machine without a usable one fails before
 * anything else starts), fresh local Worker state with the migrations applied, the sandbox seeded
 * with demo data, and the Worker under `wrangler dev` pointed at it — as `npm start` runs them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser } from "playwright-core";
import { readDotVars, startSandbox, type StartedSandbox } from "../../../sandbox/server.ts";
import {
  applyLocalMigrations,
  ensureDevVars,
  freePort,
  ROOT,
  startWorker,
  type RunningWorker,
} from "../../../scripts/lib/processes.ts";
import { launchChromium } from "./chromium.ts";

/** A running browser-test stack; `stop` ends all of it and removes the state directory. */
export interface BrowserStack {
  browser: Browser;
  sandbox: StartedSandbox;
  worker: RunningWorker;
  /** A value of `.dev.vars` (the admin token, the demo 4Degrees key, …), "" when unset. */
  devVar(name: string): string;
  stop(): Promise<void>;
}

/** What a test file may change about its stack. */
export interface BrowserStackOptions {
  /** Extra Worker `[vars]` (e.g. `HIGHLEVEL_ALLOW_STATELESS_INSTALL`), over `npm start`'s. */
  workerVars?: Record<string, string>;
}

/** Starts the stack; `name` tags the temp state directory. Whatever started is stopped if a later step fails. */
export async function startBrowserStack(name: string, options: BrowserStackOptions = {}): Promise<BrowserStack> {
  ensureDevVars();
  const vars = readDotVars(resolve(ROOT, ".dev.vars"));
  const browser = await launchChromium();
  const state = mkdtempSync(join(tmpdir(), `fdghl-${name}-`));
  let sandbox: StartedSandbox | undefined;
  let worker: RunningWorker | undefined;
  const stop = async () => {
    await browser.close();
    await worker?.stop();
    await sandbox?.close();
    rmSync(state, { recursive: true, force: true });
  };
  try {
    await applyLocalMigrations(state);
    sandbox = await startSandbox({ port: 0, seedDemo: true });
    worker = await startWorker({
      port: await freePort(),
      sandboxUrl: sandbox.url,
      persistTo: state,
      ...(options.workerVars ? { vars: options.workerVars } : {}),
    });
    return { browser, sandbox, worker, devVar: (n) => vars[n] ?? "", stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
