/**
 * `npm run secret -- NAME`: sets one secret on both Workers (the sync Worker and the console Worker,
 * which read the same configuration). The value is read once: from stdin when it is piped
 * (`printf %s "$VALUE" | npm run secret -- NAME`), else from a prompt that does not echo it. Each
 * `wrangler secret put` gets it on stdin, so it never appears in argv or the shell history.
 * Exit 0: set on both; 1: a wrangler call failed (its output is shown); 64: bad usage.
 * WRANGLER_BIN runs another wrangler (the tests' stand-in).
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { experimental_readRawConfig } from "wrangler";
import { ROOT } from "./lib/processes.ts";

const readRawConfig = experimental_readRawConfig as (args: { config: string }) => { rawConfig: { name?: unknown } };

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { config: { type: "string", default: "wrangler.toml" } },
});
const name = positionals[0] ?? "";
if (positionals.length !== 1 || !/^[A-Z][A-Z0-9_]*$/.test(name)) {
  console.error(
    "usage: npm run secret -- NAME   (NAME in capitals, e.g. ADMIN_TOKEN; the value on stdin or at the prompt)",
  );
  process.exit(64);
}
const wranglerBin = process.env["WRANGLER_BIN"] || resolve(ROOT, "node_modules/.bin/wrangler");
const syncConfig = resolve(process.cwd(), values.config);
const consoleName = readRawConfig({ config: resolve(ROOT, "wrangler.console.toml") }).rawConfig.name;
if (typeof consoleName !== "string") throw new Error("wrangler.console.toml has no `name`");

async function readValue(): Promise<string> {
  if (!process.stdin.isTTY) {
    let text = "";
    for await (const chunk of process.stdin) text += String(chunk);
    return text.replace(/\r?\n$/, "");
  }
  // A prompt that shows what it asks but not what is typed.
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stdout.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const asked = new Promise<string>((done) => rl.question(`Value of ${name} (not shown): `, done));
  muted = true;
  const value = await asked;
  rl.close();
  process.stdout.write("\n");
  return value;
}

function put(args: string[], value: string): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(wranglerBin, ["secret", "put", name, ...args], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      stdio: ["pipe", "inherit", "inherit"],
    });
    child.on("error", fail);
    child.on("close", (code) => done(code ?? 1));
    child.stdin.end(value);
  });
}

const value = await readValue();
if (value === "") {
  console.error(`npm run secret: the value of ${name} is empty; nothing was set`);
  process.exit(64);
}
for (const [label, args] of [
  ["sync Worker", ["--config", syncConfig]],
  ["console Worker", ["--name", consoleName]],
] as const) {
  const code = await put([...args], value);
  if (code !== 0) {
    console.error(`npm run secret: wrangler secret put ${name} failed on the ${label} (exit ${code})`);
    process.exit(1);
  }
  console.log(`• ${name} set on the ${label}`);
}
