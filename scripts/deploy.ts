/**
 * `npm run deploy [-- --config other.toml]`: the one deploy command (steps in scripts/lib/deploy.ts).
 *   1. creates each queue wrangler.toml names that the account does not have yet,
 *   2. applies the remote D1 migrations (after the deploy instead when the database is new),
 *   3. `wrangler deploy` of both Workers: the console Worker (wrangler.console.toml, with the sync
 *      Worker's vars and KV namespace), then the sync Worker; on the first run the sync Worker goes up
 *      once before them without its CONSOLE binding, creating the D1 database and KV namespace,
 *   4. names every secret still unset and prints the URLs to paste into HighLevel and 4Degrees.
 * A second run creates nothing. Exit 0: ready; 1: deployed, but a secret or PUBLIC_URL is missing;
 * 2: a step failed. WRANGLER_BIN runs another wrangler (the tests' stand-in).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { experimental_readRawConfig } from "wrangler";
import { writeConsoleConfig, writeSyncBootstrapConfig } from "./lib/console-config.ts";
import { deployConfigFrom, exitCode, runDeploy, summary, type ConsoleUnit, type RunWrangler } from "./lib/deploy.ts";
import { ROOT } from "./lib/processes.ts";

/** wrangler's config reader; its declaration re-exports a package wrangler bundles, so it is typed here. */
const readRawConfig = experimental_readRawConfig as (args: { config: string }) => { rawConfig: unknown };

const { values } = parseArgs({ options: { config: { type: "string", default: "wrangler.toml" } } });
const configPath = resolve(process.cwd(), values.config);
const wranglerBin = process.env["WRANGLER_BIN"] || resolve(ROOT, "node_modules/.bin/wrangler");

// Piped output keeps wrangler non-interactive: it creates what is missing instead of asking.
const run: RunWrangler = (args, options = {}) =>
  new Promise((done, fail) => {
    const child = spawn(wranglerBin, [...args, "--config", options.config ?? configPath], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (options.echo) process.stdout.write(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (options.echo === true) process.stderr.write(d);
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code: code ?? 1, stdout, stderr }));
  });

try {
  if (!existsSync(configPath)) throw new Error(`no wrangler config at ${configPath}`);
  const config = deployConfigFrom(readRawConfig({ config: configPath }).rawConfig);
  // The console Worker's config sits beside the sync Worker's (the project's, when it is not there).
  const beside = resolve(dirname(configPath), "wrangler.console.toml");
  const consoleConfig = existsSync(beside) ? beside : resolve(ROOT, "wrangler.console.toml");
  const consoleRaw = readRawConfig({ config: consoleConfig }).rawConfig as { name?: unknown };
  if (typeof consoleRaw.name !== "string" || consoleRaw.name === "")
    throw new Error(`${consoleConfig} has no \`name\``);
  const generated = resolve(ROOT, ".wrangler", "deploy");
  const consoleUnit: ConsoleUnit = {
    workerName: consoleRaw.name,
    config: (kvId) =>
      writeConsoleConfig({ syncConfig: configPath, consoleConfig, out: resolve(generated, "console.json"), kvId }),
    bootstrapConfig: () => writeSyncBootstrapConfig(configPath, resolve(generated, "sync-bootstrap.json")),
  };
  const report = await runDeploy(config, run, (line) => console.log(`• ${line}`), consoleUnit);
  console.log(["", ...summary(config, report)].join("\n"));
  process.exitCode = exitCode(report);
} catch (error) {
  console.error(`\nnpm run deploy stopped: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
}
