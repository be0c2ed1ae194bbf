/**
 * `npm run deploy` (scripts/deploy.ts) offline, against a stand-in wrangler that keeps a fake
 * Cloudflare account in a JSON file (test/node/fake-wrangler.ts): a first run on an empty
 * account creates the queues, deploys (D1 and KV provisioned), migrates and names the unset secrets;
 * a second run creates nothing. Also the config parse; the printed scopes are checked in
 * test/worker/highlevel/oauth-scopes-printed.test.ts.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { experimental_readRawConfig } from "wrangler";
import { deployConfigFrom, exitCode, OPTIONAL_SECRETS, summary } from "../../scripts/lib/deploy.ts";
import { ROOT } from "../../scripts/lib/processes.ts";
import { WORKERS_DEV, type FakeAccount } from "./fake-wrangler.ts";

const REQUIRED = [
  "HIGHLEVEL_CLIENT_ID",
  "HIGHLEVEL_CLIENT_SECRET",
  "TOKEN_ENCRYPTION_KEY",
  "ADMIN_TOKEN",
  "FOURDEGREES_WEBHOOK_SECRET",
];
const QUEUES = ["sync-events", "sync-bulk", "sync-notify", "sync-events-dlq"];
const CONSOLE = "fourdegrees-ghl-sync-console";
const LIST_CONSOLE_SECRETS = `secret list --name ${CONSOLE} --format json`;

const dir = mkdtempSync(join(tmpdir(), "fdghl-deploy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const stateFile = join(dir, "account.json");
const wrangler = join(dir, "wrangler");
const fake = resolve(import.meta.dirname, "fake-wrangler.ts");
writeFileSync(wrangler, `#!/bin/sh\nexec "${process.execPath}" "${fake}" "$@"\n`);
chmodSync(wrangler, 0o755);

/**
 * The project's wrangler.toml with PUBLIC_URL set to `publicUrl` and an app id (unless `appId` is
 * empty), written beside the test (the real file is left alone).
 */
function configWith(publicUrl: string, appId = "6650f1e2a3b4c5d6e7f80912"): string {
  const file = join(
    dir,
    `wrangler-${Buffer.from(publicUrl + appId)
      .toString("hex")
      .slice(-16)}.toml`,
  );
  const toml = readFileSync(resolve(ROOT, "wrangler.toml"), "utf8");
  const replaced = toml
    .replace(/^PUBLIC_URL = ".*"$/m, `PUBLIC_URL = "${publicUrl}"`)
    .replace(/^HIGHLEVEL_APP_ID = ".*"$/m, `HIGHLEVEL_APP_ID = "${appId}"`);
  expect(replaced).not.toBe(toml);
  writeFileSync(file, replaced);
  return file;
}

function account(): FakeAccount {
  return JSON.parse(readFileSync(stateFile, "utf8")) as FakeAccount;
}

function setAccount(change: Partial<FakeAccount>): void {
  writeFileSync(stateFile, JSON.stringify({ ...account(), ...change, calls: [] }));
}

function deploy(configFile: string): Promise<{ code: number; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [resolve(ROOT, "scripts/deploy.ts"), "--config", configFile], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_BIN: wrangler, FAKE_WRANGLER_STATE: stateFile },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", fail);
    child.on("close", (code) => done({ code: code ?? -1, output }));
  });
}

/** Each call without its trailing `--config <file>`. */
const commands = (calls: string[][]) => calls.map((argv) => argv.slice(0, argv.indexOf("--config")).join(" "));

/** An account where an earlier deploy left everything in place. */
const deployedAccount: Partial<FakeAccount> = {
  queues: QUEUES,
  d1: "d1-uuid",
  kv: "kv-id",
  workerDeployed: true,
  consoleDeployed: true,
  consoleKv: "kv-id",
  pendingMigrations: [],
  secrets: REQUIRED,
  consoleSecrets: REQUIRED,
};

beforeEach(() => {
  const empty: FakeAccount = {
    queues: [],
    d1: null,
    kv: null,
    workerDeployed: false,
    pendingMigrations: ["0001_init.sql", "0002_more.sql"],
    secrets: [],
    calls: [],
  };
  writeFileSync(stateFile, JSON.stringify(empty));
});

describe("npm run deploy against a stand-in wrangler", () => {
  it("happy: an empty account gets its queues, D1, KV and migrations; a second run changes nothing", async () => {
    const config = configWith(WORKERS_DEV);
    const first = await deploy(config);
    expect(first.code, first.output).toBe(1);
    expect(commands(account().calls)).toEqual([
      ...QUEUES.flatMap((q) => [`queues info ${q}`, `queues create ${q}`]),
      "d1 migrations apply DB --remote", // no database yet: wrangler deploy creates it
      LIST_CONSOLE_SECRETS, // no console Worker yet: the sync Worker goes up first without its binding
      "deploy",
      "d1 migrations apply DB --remote",
      "kv namespace list",
      "deploy", // the console Worker, with the sync Worker's KV namespace
      "deploy", // the sync Worker, now with its CONSOLE binding
      "secret list --format json",
      LIST_CONSOLE_SECRETS,
    ]);
    const configs = account().calls.map((argv) => argv.at(-1) ?? "");
    const deploys = account()
      .calls.map((argv, i) => [argv[0], configs[i]] as const)
      .filter(([command]) => command === "deploy")
      .map(([, path]) => path);
    expect(deploys).toEqual([
      resolve(ROOT, ".wrangler/deploy/sync-bootstrap.json"),
      resolve(ROOT, ".wrangler/deploy/console.json"),
      config,
    ]);
    expect(configs.filter((path) => path !== config)).toHaveLength(2);
    // One KV namespace for both Workers; the console Worker runs with the sync Worker's vars.
    expect(account().consoleKv).toBe("kv-id");
    expect(first.output).not.toContain(`Creating new KV Namespace "${CONSOLE}-cache"`);
    const consoleJson = JSON.parse(readFileSync(resolve(ROOT, ".wrangler/deploy/console.json"), "utf8")) as {
      name: string;
      vars: Record<string, string>;
      workers_dev: boolean;
      secrets: { required: string[] };
    };
    expect(consoleJson).toMatchObject({ name: CONSOLE, workers_dev: false, secrets: { required: REQUIRED } });
    expect(consoleJson.vars["PUBLIC_URL"]).toBe(WORKERS_DEV);
    const bootstrap = readFileSync(resolve(ROOT, ".wrangler/deploy/sync-bootstrap.json"), "utf8");
    expect(bootstrap).not.toContain('"CONSOLE"');
    for (const name of REQUIRED)
      expect(first.output).toContain(`  npx wrangler secret put ${name} --name ${CONSOLE}\n`);
    expect(account()).toMatchObject({ queues: QUEUES, d1: "d1-uuid", kv: "kv-id", pendingMigrations: [] });
    expect(first.output).toContain(
      "Created or applied: queue sync-events, queue sync-bulk, queue sync-notify, queue sync-events-dlq, " +
        `Worker ${CONSOLE}, D1 Database fourdegrees-ghl-sync, KV Namespace fourdegrees-ghl-sync-cache, migrations on DB.`,
    );
    for (const name of REQUIRED) expect(first.output).toContain(`  npx wrangler secret put ${name}\n`);
    expect(first.output).toContain(
      `Optional secrets not set (fine unless you need them; README "Configuration"): ` + OPTIONAL_SECRETS.join(", "),
    );
    expect(first.output).toContain(`Redirect URL:        ${WORKERS_DEV}/oauth/callback`);
    expect(first.output).toContain(`Default webhook URL: ${WORKERS_DEV}/webhooks/highlevel`);
    expect(first.output).toContain(`Custom Page URL:     ${WORKERS_DEV}/embed`);
    expect(first.output).toContain(`Webhook URL:         ${WORKERS_DEV}/webhooks/4degrees`);
    expect(first.output).not.toContain("PUBLIC_URL in wrangler.toml is");
    // The expected "no database yet" answer of the first migration call is not shown as an error.
    expect(first.output).toContain("DB does not exist yet: wrangler deploy creates it, its migrations follow");
    expect(first.output).not.toContain("Couldn't find a D1 DB");

    setAccount({ secrets: REQUIRED, consoleSecrets: REQUIRED }); // the operator ran `wrangler secret put` for each
    const second = await deploy(config);
    expect(second.code, second.output).toBe(0);
    expect(commands(account().calls)).toEqual([
      ...QUEUES.map((q) => `queues info ${q}`),
      "d1 migrations apply DB --remote",
      LIST_CONSOLE_SECRETS,
      "kv namespace list",
      "deploy",
      "deploy",
      "secret list --format json",
      LIST_CONSOLE_SECRETS,
    ]);
    expect(second.output).toContain("Nothing to create: queues, D1, KV and migrations were already in place.");
    expect(second.output).not.toContain("Creating new");
    expect(second.output).not.toContain("Required secrets not set");
  });

  it("on an existing deployment, new migrations are applied before the new code is deployed", async () => {
    setAccount({ ...deployedAccount, pendingMigrations: ["0009_next.sql"] });
    const run = await deploy(configWith(WORKERS_DEV));
    expect(run.code, run.output).toBe(0);
    expect(commands(account().calls).slice(QUEUES.length)).toEqual([
      "d1 migrations apply DB --remote",
      LIST_CONSOLE_SECRETS,
      "kv namespace list",
      "deploy",
      "deploy",
      "secret list --format json",
      LIST_CONSOLE_SECRETS,
    ]);
    expect(run.output).toContain("Created or applied: migrations on DB.");
  });

  it("error: a PUBLIC_URL the Worker is not served on is named, with the URL to put there", async () => {
    setAccount(deployedAccount);
    const run = await deploy(configWith("https://fourdegrees-ghl-sync.other.workers.dev"));
    expect(run.code, run.output).toBe(1);
    expect(run.output).toContain(
      "PUBLIC_URL in wrangler.toml is https://fourdegrees-ghl-sync.other.workers.dev, " +
        `but the Worker is served at ${WORKERS_DEV}.`,
    );
    expect(run.output).toContain(`Set PUBLIC_URL = "${WORKERS_DEV}" under [vars]`);
    expect(run.output).toContain(`Redirect URL:        ${WORKERS_DEV}/oauth/callback`);
  });

  it("error: a failing wrangler step stops the run before anything is created, with wrangler's message", async () => {
    setAccount({ queuesInfoError: "Not logged in. You are not authenticated. Please run `wrangler login`." });
    const run = await deploy(configWith(WORKERS_DEV));
    expect(run.code).toBe(2);
    expect(run.output).toContain("npm run deploy stopped: wrangler queues info sync-events failed (exit 1)");
    expect(run.output).toContain("(log in first: `npx wrangler login`, or set CLOUDFLARE_API_TOKEN)");
    expect(commands(account().calls)).toEqual(["queues info sync-events"]);
  });

  it("error: a missing config file is named", async () => {
    const run = await deploy(join(dir, "absent.toml"));
    expect(run.code).toBe(2);
    expect(run.output).toContain(`no wrangler config at ${join(dir, "absent.toml")}`);
    expect(account().calls).toEqual([]);
  });
});

describe("deployConfigFrom", () => {
  it("reads the project's wrangler.toml: every queue once, the D1 binding, the required secrets", () => {
    const config = deployConfigFrom(experimental_readRawConfig({ config: resolve(ROOT, "wrangler.toml") }).rawConfig);
    expect(config).toMatchObject({
      workerName: "fourdegrees-ghl-sync",
      queues: QUEUES,
      d1Bindings: ["DB"],
      requiredSecrets: REQUIRED,
      syncMode: "two-way",
      // Left empty on purpose in the committed file: each deployment names its own app.
      missingVars: ["HIGHLEVEL_APP_ID"],
    });
  });

  it("error: a required var left empty is named and the run exits 1", () => {
    const raw = { name: "w", vars: { PUBLIC_URL: "https://w.example.com", HIGHLEVEL_APP_ID: " " } };
    const config = deployConfigFrom(raw);
    expect(config.missingVars).toEqual(["HIGHLEVEL_APP_ID"]);
    const report = {
      queuesCreated: [],
      provisioned: [],
      migrations: {},
      deployedUrls: [],
      consoleWorker: "w-console",
      consoleCreated: false,
      missingRequired: [],
      missingConsoleRequired: [],
      missingOptional: [],
      missingVars: config.missingVars,
      publicUrlMismatch: undefined,
    };
    expect(summary(config, report)).toContain('  HIGHLEVEL_APP_ID = "…"');
    expect(exitCode(report)).toBe(1);
    expect(exitCode({ ...report, missingVars: [] })).toBe(0);
    // A secret missing on the console Worker alone also leaves the deployment unusable.
    const consoleOnly = { ...report, missingVars: [], missingConsoleRequired: ["ADMIN_TOKEN"] };
    expect(exitCode(consoleOnly)).toBe(1);
    expect(summary(config, consoleOnly)).toContain("  npx wrangler secret put ADMIN_TOKEN --name w-console");
  });

  it("counts a queue named only as a dead-letter queue, and refuses a config without a name", () => {
    const raw = { name: "w", queues: { consumers: [{ queue: "a", dead_letter_queue: "a-dlq" }] } };
    expect(deployConfigFrom(raw).queues).toEqual(["a", "a-dlq"]);
    expect(() => deployConfigFrom({ queues: {} })).toThrow("wrangler.toml: name:");
  });
});

describe("npm run secret (scripts/secret.ts)", () => {
  const secret = (args: string[], stdin: string): Promise<{ code: number; output: string }> =>
    new Promise((done, fail) => {
      const child = spawn(process.execPath, [resolve(ROOT, "scripts/secret.ts"), ...args], {
        cwd: ROOT,
        env: { ...process.env, WRANGLER_BIN: wrangler, FAKE_WRANGLER_STATE: stateFile },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", fail);
      child.on("close", (code) => done({ code: code ?? -1, output }));
      child.stdin.end(stdin);
    });

  it("happy: one value from stdin reaches both Workers, never through argv", async () => {
    setAccount(deployedAccount);
    const run = await secret(["ADMIN_TOKEN"], "s3cret-value\n");
    expect(run.code, run.output).toBe(0);
    expect(account().secretValues).toEqual({
      "fourdegrees-ghl-sync/ADMIN_TOKEN": "s3cret-value",
      [`${CONSOLE}/ADMIN_TOKEN`]: "s3cret-value",
    });
    expect(account().calls.flat().join(" ")).not.toContain("s3cret-value");
    expect(run.output).toContain("ADMIN_TOKEN set on the console Worker");
  });

  it("error: a bad name or an empty value sets nothing and exits 64", async () => {
    setAccount(deployedAccount);
    expect((await secret(["admin token"], "x")).code).toBe(64);
    const empty = await secret(["ADMIN_TOKEN"], "");
    expect(empty.code).toBe(64);
    expect(empty.output).toContain("the value of ADMIN_TOKEN is empty");
    expect(account().calls).toEqual([]);
  });
});
