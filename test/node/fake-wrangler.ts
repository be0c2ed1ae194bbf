/**
 * A stand-in `wrangler` for test/node/deploy.test.ts: a Cloudflare account kept in the JSON file
 * FAKE_WRANGLER_STATE, answering the commands `npm run deploy` uses the way wrangler 4.164 prints
 * them, and recording each call's argv. Run as `node fake-wrangler.ts <args>`.
 */
import { readFileSync, writeFileSync } from "node:fs";

/** The account the stand-in pretends to be. */
export interface FakeAccount {
  queues: string[];
  d1: string | null;
  kv: string | null;
  workerDeployed: boolean;
  /** The console Worker (wrangler.console.toml) is deployed. */
  consoleDeployed?: boolean;
  /** The KV namespace id the console Worker's CACHE was deployed with. */
  consoleKv?: string;
  pendingMigrations: string[];
  secrets: string[];
  /** Secrets set on the console Worker. */
  consoleSecrets?: string[];
  /** `worker/NAME` → the value `secret put` received on stdin. */
  secretValues?: Record<string, string>;
  /** Answer `queues info` with this error (e.g. an expired login). */
  queuesInfoError?: string;
  /** Every call's argv, in order. */
  calls: string[][];
}

/** Where the stand-in says the Worker is served. */
export const WORKERS_DEV = "https://fourdegrees-ghl-sync.acme.workers.dev";
const PROJECT_QUEUES = ["sync-events", "sync-bulk", "sync-events-dlq"];
const SYNC = "fourdegrees-ghl-sync";
const CONSOLE = "fourdegrees-ghl-sync-console";

/** The deployed config's fields the stand-in checks as Cloudflare would (TOML or the deploy's JSON). */
interface DeployedConfig {
  name: string;
  bindsConsole: boolean;
  kvId: string | undefined;
}

function readDeployedConfig(path: string | undefined): DeployedConfig {
  const text = path ? readFileSync(path, "utf8") : "";
  if (path?.endsWith(".json")) {
    const json = JSON.parse(text) as {
      name: string;
      services?: { binding: string }[];
      kv_namespaces?: { id?: string }[];
    };
    return {
      name: json.name,
      bindsConsole: (json.services ?? []).some((b) => b.binding === "CONSOLE"),
      kvId: json.kv_namespaces?.[0]?.id,
    };
  }
  return {
    name: /^name = "([^"]+)"/m.exec(text)?.[1] ?? "",
    bindsConsole: /^binding = "CONSOLE"/m.test(text),
    kvId: undefined,
  };
}

function main(): number {
  const file = process.env["FAKE_WRANGLER_STATE"];
  if (!file) {
    process.stderr.write("fake wrangler: FAKE_WRANGLER_STATE is not set\n");
    return 64;
  }
  const account = JSON.parse(readFileSync(file, "utf8")) as FakeAccount;
  const argv = process.argv.slice(2);
  account.calls.push(argv);
  try {
    const at = argv.indexOf("--config");
    return answer(account, withoutConfig(argv), at < 0 ? undefined : argv[at + 1]);
  } finally {
    writeFileSync(file, JSON.stringify(account, null, 2));
  }
}

function withoutConfig(argv: string[]): string[] {
  const at = argv.indexOf("--config");
  return at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 2)];
}

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function answer(account: FakeAccount, args: string[], configPath: string | undefined): number {
  const [command, sub, ...rest] = args;
  const key = [command, sub].join(" ");
  if (key === "queues info") {
    const name = rest[0] ?? "";
    if (account.queuesInfoError) {
      err(`✘ [ERROR] ${account.queuesInfoError}`);
      return 1;
    }
    if (!account.queues.includes(name)) {
      err(`✘ [ERROR] Queue "${name}" does not exist. To create it, run: wrangler queues create ${name}`);
      return 1;
    }
    out(`Queue Name: ${name}\nQueue ID: q-${name}\nNumber of Producers: 1\nNumber of Consumers: 1`);
    return 0;
  }
  if (key === "queues create") {
    const name = rest[0] ?? "";
    if (account.queues.includes(name)) {
      err(`✘ [ERROR] A queue with name "${name}" already exists. [code: 11009]`);
      return 1;
    }
    account.queues.push(name);
    out(`🌀 Creating queue '${name}'\n✅ Created queue '${name}'`);
    return 0;
  }
  if (key === "d1 migrations" && rest[0] === "apply" && rest.includes("--remote")) {
    if (account.d1 === null) {
      err(`✘ [ERROR] Couldn't find a D1 DB named 'fourdegrees-ghl-sync' (bound as '${rest[1]}') in the API.`);
      return 1;
    }
    if (account.pendingMigrations.length === 0) {
      out("✅ No migrations to apply!");
      return 0;
    }
    out(`Migrations to be applied:\n${account.pendingMigrations.join("\n")}`);
    for (const name of account.pendingMigrations) out(`✅ ${name}`);
    account.pendingMigrations = [];
    return 0;
  }
  if (command === "deploy") {
    const deployed = readDeployedConfig(configPath);
    if (deployed.name === CONSOLE) {
      // The gate binding names the sync Worker's Durable Object class: that script must exist.
      if (!account.workerDeployed) {
        err(`✘ [ERROR] workers.api.error.script_not_found: Durable Object binding GATE: script "${SYNC}" not found`);
        return 1;
      }
      if (deployed.kvId === undefined) {
        out(`Provisioning CACHE (KV Namespace)...\n🌀 Creating new KV Namespace "${CONSOLE}-cache"...`);
        account.consoleKv = "kv-console-id";
      } else account.consoleKv = deployed.kvId;
      account.consoleDeployed = true;
      out(`Uploaded ${CONSOLE} (1.90 sec)\nNo deploy targets for ${CONSOLE} (workers_dev = false)`);
      out("Current Version ID: 1c9d-fake");
      return 0;
    }
    if (deployed.bindsConsole && !account.consoleDeployed) {
      err(`✘ [ERROR] Service binding 'CONSOLE' references Worker '${CONSOLE}' which was not found. [code: 10143]`);
      return 1;
    }
    // A consumer whose queue does not exist fails the deploy, as on Cloudflare.
    const missing = PROJECT_QUEUES.find((name) => !account.queues.includes(name));
    if (missing) {
      err(`✘ [ERROR] Queue "${missing}" does not exist.`);
      return 1;
    }
    if (account.d1 === null) {
      out(`Provisioning DB (D1 Database)...\nResource name found in config: fourdegrees-ghl-sync`);
      out(`🌀 Creating new D1 Database "fourdegrees-ghl-sync"...\n✨ DB provisioned 🎉`);
      account.d1 = "d1-uuid";
    }
    if (account.kv === null) {
      out(`Provisioning CACHE (KV Namespace)...\n🌀 Creating new KV Namespace "${SYNC}-cache"...`);
      account.kv = "kv-id";
    }
    account.workerDeployed = true;
    out(`Uploaded ${SYNC} (2.10 sec)\nDeployed ${SYNC} triggers (0.80 sec)`);
    out(`  ${WORKERS_DEV}\n  schedule: */5 * * * *\nCurrent Version ID: 0b8c-fake`);
    return 0;
  }
  if (key === "secret put") {
    const name = rest[0] ?? "";
    const named = rest.indexOf("--name");
    const worker = named < 0 ? SYNC : rest[named + 1];
    const value = readFileSync(0, "utf8");
    if (value === "") {
      err("✘ [ERROR] no secret value on stdin");
      return 1;
    }
    const list = worker === CONSOLE ? (account.consoleSecrets ??= []) : account.secrets;
    if (!list.includes(name)) list.push(name);
    (account.secretValues ??= {})[`${worker}/${name}`] = value;
    out(`✨ Success! Uploaded secret ${name}`);
    return 0;
  }
  if (key === "kv namespace" && rest[0] === "list") {
    out(JSON.stringify(account.kv === null ? [] : [{ id: account.kv, title: `${SYNC}-cache` }], null, 2));
    return 0;
  }
  if (key === "secret list") {
    const named = rest.indexOf("--name");
    const worker = named < 0 ? SYNC : rest[named + 1];
    const exists = worker === CONSOLE ? account.consoleDeployed === true : account.workerDeployed;
    if (!exists) {
      err(`✘ [ERROR] Worker "${worker}" not found.`);
      return 1;
    }
    const names = worker === CONSOLE ? (account.consoleSecrets ?? []) : account.secrets;
    out(
      JSON.stringify(
        names.map((name) => ({ name, type: "secret_text" })),
        null,
        "  ",
      ),
    );
    return 0;
  }
  err(`fake wrangler: unexpected command: ${args.join(" ")}`);
  return 64;
}

if (import.meta.main) process.exitCode = main();
