/**
 * The steps of `npm run deploy` (scripts/deploy.ts), written against a `RunWrangler` so a test can
 * drive them with a stand-in wrangler: create the missing queues, apply the remote D1 migrations,
 * `wrangler deploy` (which provisions D1 and KV), name the unset secrets, and list what to paste
 * into HighLevel and 4Degrees. Every step reads before it writes, so a second run changes nothing.
 */
import { z } from "zod";

/** Secrets the Worker reads when present (src/config.ts); `[secrets] required` holds the others. */
export const OPTIONAL_SECRETS = [
  "FOURDEGREES_API_KEY",
  "HIGHLEVEL_WEBHOOK_PUBLIC_KEY",
  "HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY",
  "HIGHLEVEL_SSO_KEY",
];

/** Scopes the Worker asks HighLevel for (src/highlevel/oauth.ts `scopesFor`; a test keeps them equal). */
export const HIGHLEVEL_SCOPES = {
  "read-only": [
    "opportunities.readonly",
    "contacts.readonly",
    "users.readonly",
    "locations.readonly",
    "locations/customFields.readonly",
    "oauth.write",
  ],
  "two-way": [
    "opportunities.readonly",
    "contacts.readonly",
    "users.readonly",
    "locations.readonly",
    "locations/customFields.readonly",
    "oauth.write",
    "opportunities.write",
    "contacts.write",
    "locations/customFields.write",
  ],
} as const;

/** What the deploy needs from wrangler.toml. */
export interface DeployConfig {
  workerName: string;
  /** Every queue the config names (producers, consumers, dead-letter queues), in order, once each. */
  queues: string[];
  /** Bindings of the D1 databases whose migrations are applied. */
  d1Bindings: string[];
  requiredSecrets: string[];
  publicUrl: string | undefined;
  syncMode: keyof typeof HIGHLEVEL_SCOPES;
  /** `[vars]` the Worker needs that wrangler.toml leaves empty (it refuses to start without them). */
  missingVars: string[];
}

/** Vars with no safe default: each deployment sets its own (src/config.ts names them when missing). */
const REQUIRED_VARS = ["PUBLIC_URL", "HIGHLEVEL_APP_ID"] as const;

const RawConfigSchema = z.object({
  name: z.string().min(1, "wrangler.toml has no `name`"),
  queues: z
    .object({
      producers: z.array(z.object({ queue: z.string().min(1) })).default([]),
      consumers: z
        .array(z.object({ queue: z.string().min(1), dead_letter_queue: z.string().min(1).optional() }))
        .default([]),
    })
    .default({ producers: [], consumers: [] }),
  d1_databases: z.array(z.object({ binding: z.string().min(1) })).default([]),
  secrets: z.object({ required: z.array(z.string().min(1)).default([]) }).default({ required: [] }),
  vars: z.record(z.string(), z.unknown()).default({}),
});

/** Picks the deploy's inputs out of wrangler's raw config (`experimental_readRawConfig().rawConfig`). */
export function deployConfigFrom(raw: unknown): DeployConfig {
  const parsed = RawConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`wrangler.toml: ${issues.join("; ")}`);
  }
  const config = parsed.data;
  const queues = [
    ...config.queues.producers.map((p) => p.queue),
    ...config.queues.consumers.flatMap((c) => [c.queue, ...(c.dead_letter_queue ? [c.dead_letter_queue] : [])]),
  ];
  const publicUrl = config.vars["PUBLIC_URL"];
  const syncMode = config.vars["SYNC_MODE"] === "read-only" ? "read-only" : "two-way";
  return {
    workerName: config.name,
    queues: [...new Set(queues)],
    d1Bindings: config.d1_databases.map((d) => d.binding),
    requiredSecrets: config.secrets.required,
    publicUrl: typeof publicUrl === "string" ? publicUrl.replace(/\/+$/, "") : undefined,
    syncMode,
    missingVars: REQUIRED_VARS.filter((name) => {
      const value = config.vars[name];
      return typeof value !== "string" || value.trim() === "";
    }),
  };
}

/** What one wrangler call printed and how it ended. */
export interface WranglerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs wrangler with `args`; `echo` streams its output (or only stdout) to the operator as it comes. */
/** `config` runs it on another config than the deploy's (`--config`): the console Worker's, or the bootstrap's. */
export type RunWrangler = (
  args: string[],
  options?: { echo?: boolean | "stdout"; config?: string },
) => Promise<WranglerResult>;

/**
 * The console Worker's part of the deploy (docs/architecture.md "Two Workers"): its name and the
 * two generated configs (scripts/lib/console-config.ts).
 */
export interface ConsoleUnit {
  workerName: string;
  /** The console Worker's config, with the sync Worker's vars and `kvId` as its CACHE; returns the path. */
  config(kvId: string): string;
  /** The sync Worker's config without its CONSOLE binding (deployed once, before the console Worker exists). */
  bootstrapConfig(): string;
}

/** A wrangler step that failed; carries what wrangler printed. */
export class DeployStepError extends Error {
  readonly step: string;
  readonly result: WranglerResult;

  constructor(step: string, result: WranglerResult) {
    const output = `${result.stdout}\n${result.stderr}`.trim();
    const hint = /not authenticated|wrangler login|CLOUDFLARE_API_TOKEN|Authentication error/i.test(output)
      ? "\n(log in first: `npx wrangler login`, or set CLOUDFLARE_API_TOKEN)"
      : "";
    super(`${step} failed (exit ${result.code})${hint}\n${output}`);
    this.name = "DeployStepError";
    this.step = step;
    this.result = result;
  }
}

/** What a run did and what is still to do. */
export interface DeployReport {
  queuesCreated: string[];
  /** Resources `wrangler deploy` said it created ("Creating new D1 Database …"). */
  provisioned: string[];
  /** Per D1 binding: migrations applied by this run, or none pending. */
  migrations: Record<string, "applied" | "up to date">;
  deployedUrls: string[];
  /** The console Worker's name. */
  consoleWorker: string;
  /** True when this run deployed the console Worker for the first time (the sync Worker went first without its binding). */
  consoleCreated: boolean;
  missingRequired: string[];
  /** Required secrets not set on the console Worker. */
  missingConsoleRequired: string[];
  missingOptional: string[];
  /** Required `[vars]` left empty in wrangler.toml. */
  missingVars: string[];
  /** PUBLIC_URL names a workers.dev host the Worker is not served on (the OAuth redirect would break). */
  publicUrlMismatch: { configured: string; deployed: string[] } | undefined;
}

/** `wrangler queues info NAME`: true when the queue exists, false when wrangler says it does not. */
export function queueExists(name: string, result: WranglerResult): boolean {
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.code === 0 && output.split("\n").some((line) => line.trim() === `Queue Name: ${name}`)) return true;
  if (result.code !== 0 && /does not exist/i.test(output)) return false;
  throw new DeployStepError(`wrangler queues info ${name}`, result);
}

/**
 * The secrets of `worker` (`wrangler secret list --name`), or null when the Worker does not exist
 * yet; any other failure is thrown.
 */
async function listSecrets(run: RunWrangler, worker?: string): Promise<Set<string> | null> {
  const listed = await run(["secret", "list", ...(worker ? ["--name", worker] : []), "--format", "json"]);
  if (listed.code === 0) return new Set(secretNames(listed.stdout));
  if (worker && /not found|does not exist/i.test(`${listed.stdout}\n${listed.stderr}`)) return null;
  throw new DeployStepError(`wrangler secret list${worker ? ` --name ${worker}` : ""}`, listed);
}

/**
 * The id of the KV namespace titled `title` (`wrangler kv namespace list`): the sync Worker's CACHE,
 * which wrangler created on the first deploy as `<worker>-cache`.
 */
export async function kvNamespaceId(run: RunWrangler, title: string): Promise<string> {
  const listed = await run(["kv", "namespace", "list"]);
  if (listed.code !== 0) throw new DeployStepError("wrangler kv namespace list", listed);
  const start = listed.stdout.indexOf("[");
  const parsed = z
    .array(z.object({ id: z.string(), title: z.string() }))
    .safeParse(start >= 0 ? safeJson(listed.stdout.slice(start, listed.stdout.lastIndexOf("]") + 1)) : null);
  if (!parsed.success) throw new Error(`wrangler kv namespace list printed no JSON list:\n${listed.stdout}`);
  const found = parsed.data.find((ns) => ns.title === title);
  if (!found)
    throw new Error(
      `no KV namespace titled "${title}" (the sync Worker's CACHE): the console Worker must share it. ` +
        'If you created it under another title, give its id to both Workers\' CACHE binding (`id = "…"`).',
    );
  return found.id;
}

/** The names in `wrangler secret list` (JSON: `[{ "name": …, "type": "secret_text" }]`). */
export function secretNames(stdout: string): string[] {
  const start = stdout.indexOf("[");
  const end = stdout.lastIndexOf("]");
  const listed = start >= 0 ? safeJson(stdout.slice(start, end + 1)) : null;
  const parsed = z.array(z.object({ name: z.string() })).safeParse(listed);
  if (!parsed.success) throw new Error(`wrangler secret list printed no JSON list of secrets:\n${stdout}`);
  return parsed.data.map((s) => s.name);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const D1_NOT_CREATED = /Couldn't find (a|an auto-provisioned) D1 DB/;

async function migrate(run: RunWrangler, binding: string): Promise<"applied" | "up to date" | "no database yet"> {
  const step = `wrangler d1 migrations apply ${binding} --remote`;
  // stderr stays quiet: "Couldn't find a D1 DB" is expected on a first run; a real failure is thrown with it.
  const result = await run(["d1", "migrations", "apply", binding, "--remote"], { echo: "stdout" });
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.code !== 0) {
    if (D1_NOT_CREATED.test(output)) return "no database yet";
    throw new DeployStepError(step, result);
  }
  return /No migrations to apply/i.test(output) ? "up to date" : "applied";
}

/**
 * Runs the deploy. Migrations go before `wrangler deploy` so new code never meets the old schema;
 * on the very first run the database does not exist yet, so they follow the deploy that creates it.
 */
export async function runDeploy(
  config: DeployConfig,
  run: RunWrangler,
  say: (line: string) => void,
  consoleUnit: ConsoleUnit,
): Promise<DeployReport> {
  const queuesCreated: string[] = [];
  for (const name of config.queues) {
    if (queueExists(name, await run(["queues", "info", name]))) continue;
    say(`creating queue ${name}`);
    const created = await run(["queues", "create", name], { echo: true });
    if (created.code !== 0) throw new DeployStepError(`wrangler queues create ${name}`, created);
    queuesCreated.push(name);
  }
  const newQueues = queuesCreated.join(", ");
  say(newQueues ? `queues created: ${newQueues}` : `queues present: ${config.queues.join(", ")}`);

  const migrations: DeployReport["migrations"] = {};
  const afterDeploy: string[] = [];
  for (const binding of config.d1Bindings) {
    say(`applying remote migrations to ${binding}`);
    const outcome = await migrate(run, binding);
    if (outcome === "no database yet") {
      say(`${binding} does not exist yet: wrangler deploy creates it, its migrations follow`);
      afterDeploy.push(binding);
    } else migrations[binding] = outcome;
  }

  // Cloudflare refuses a service binding to a Worker that does not exist, and the console Worker's gate
  // binding names the sync Worker: the first time, the sync Worker goes up once without its binding.
  const deployOutputs: string[] = [];
  const deploy = async (label: string, configPath?: string): Promise<WranglerResult> => {
    say(`wrangler deploy (${label})`);
    const result = await run(["deploy"], { echo: true, ...(configPath ? { config: configPath } : {}) });
    if (result.code !== 0) throw new DeployStepError(`wrangler deploy (${label})`, result);
    deployOutputs.push(result.stdout);
    return result;
  };
  const consoleSecrets = await listSecrets(run, consoleUnit.workerName);
  const consoleCreated = consoleSecrets === null;
  const bootstrap = consoleCreated
    ? await deploy("sync Worker, before the console Worker exists", consoleUnit.bootstrapConfig())
    : undefined;

  const migrateAfterDeploy = async () => {
    for (const binding of afterDeploy.splice(0)) {
      say(`applying remote migrations to ${binding} (created by this deploy)`);
      const outcome = await migrate(run, binding);
      if (outcome === "no database yet") {
        throw new Error(`wrangler deploy did not create the D1 database bound as ${binding}`);
      }
      migrations[binding] = outcome;
    }
  };
  if (bootstrap) await migrateAfterDeploy();
  if (afterDeploy.length > 0) await deploy("sync Worker");
  await migrateAfterDeploy();

  const kvId = await kvNamespaceId(run, `${config.workerName}-cache`);
  await deploy("console Worker", consoleUnit.config(kvId));
  const deployed = await deploy("sync Worker");
  const creations = deployOutputs.join("\n").matchAll(/Creating new ([A-Za-z0-9 ]+?) "([^"]+)"/g);
  const provisioned = [...new Set([...creations].map((m) => `${m[1]} ${m[2]}`))];
  const deployedUrls = [...new Set(deployed.stdout.match(/https:\/\/[^\s"']+\.workers\.dev/g) ?? [])];

  const present = (await listSecrets(run)) ?? new Set<string>();
  const presentOnConsole = (await listSecrets(run, consoleUnit.workerName)) ?? new Set<string>();

  const configured = config.publicUrl;
  const mismatch =
    configured !== undefined && new URL(configured).host.endsWith(".workers.dev") && deployedUrls.length > 0
      ? deployedUrls.includes(configured)
        ? undefined
        : { configured, deployed: deployedUrls }
      : undefined;

  return {
    queuesCreated,
    provisioned,
    migrations,
    deployedUrls,
    consoleWorker: consoleUnit.workerName,
    consoleCreated,
    missingRequired: config.requiredSecrets.filter((name) => !present.has(name)),
    missingConsoleRequired: config.requiredSecrets.filter((name) => !presentOnConsole.has(name)),
    missingOptional: OPTIONAL_SECRETS.filter((name) => !present.has(name)),
    missingVars: config.missingVars,
    publicUrlMismatch: mismatch,
  };
}

/** The summary an operator reads at the end: what changed, what is missing, what to paste where. */
export function summary(config: DeployConfig, report: DeployReport): string[] {
  const lines: string[] = [];
  const changed = [
    ...report.queuesCreated.map((q) => `queue ${q}`),
    ...(report.consoleCreated ? [`Worker ${report.consoleWorker}`] : []),
    ...report.provisioned,
    ...Object.entries(report.migrations)
      .filter(([, outcome]) => outcome === "applied")
      .map(([binding]) => `migrations on ${binding}`),
  ];
  lines.push(
    changed.length
      ? `Created or applied: ${changed.join(", ")}.`
      : "Nothing to create: queues, D1, KV and migrations were already in place.",
  );
  if (report.deployedUrls.length)
    lines.push(
      `Deployed at ${report.deployedUrls.join(", ")} (the console Worker ${report.consoleWorker} behind it, no URL of its own).`,
    );

  if (report.missingRequired.length || report.missingConsoleRequired.length) {
    lines.push(
      "",
      "Required secrets not set (the Worker answers 500 config_invalid until they are; `npm run secret -- NAME` sets one on both Workers):",
    );
    for (const name of report.missingRequired) lines.push(`  npx wrangler secret put ${name}`);
    for (const name of report.missingConsoleRequired)
      lines.push(`  npx wrangler secret put ${name} --name ${report.consoleWorker}`);
  }
  if (report.missingVars.length) {
    lines.push("", "Vars left empty in wrangler.toml [vars] (the Worker answers 500 config_invalid until set):");
    for (const name of report.missingVars) lines.push(`  ${name} = "…"`);
  }
  if (report.missingOptional.length) {
    const names = report.missingOptional.join(", ");
    lines.push("", `Optional secrets not set (fine unless you need them; README "Configuration"): ${names}`);
  }
  if (report.publicUrlMismatch) {
    const { configured, deployed } = report.publicUrlMismatch;
    lines.push(
      "",
      `PUBLIC_URL in wrangler.toml is ${configured}, but the Worker is served at ${deployed.join(", ")}.`,
      `Set PUBLIC_URL = "${deployed[0]}" under [vars] and run \`npm run deploy\` again:`,
      "the OAuth redirect URL is built from it.",
    );
  }

  // With PUBLIC_URL wrong, show the URLs it must become (the operator fixes it and runs again).
  const base = report.publicUrlMismatch?.deployed[0] ?? config.publicUrl ?? "https://<your worker>";
  lines.push(
    "",
    "HighLevel Marketplace app:",
    `  Redirect URL:        ${base}/oauth/callback`,
    `  Default webhook URL: ${base}/webhooks/highlevel`,
    "    events: OpportunityCreate/Update/Delete/StageUpdate/StatusUpdate/MonetaryValueUpdate/AssignedToUpdate,",
    "            NoteCreate/Update/Delete, INSTALL, UNINSTALL",
    `  Scopes (SYNC_MODE ${config.syncMode}): ${HIGHLEVEL_SCOPES[config.syncMode].join(" ")}`,
    `  Custom Page URL:     ${base}/embed   (its Shared Secret → HIGHLEVEL_SSO_KEY; README "Inside HighLevel")`,
    "4Degrees (once its partner API is enabled, docs/fourdegrees.md):",
    `  Webhook URL:         ${base}/webhooks/4degrees   (its signing secret → FOURDEGREES_WEBHOOK_SECRET)`,
    "Then install on a location:",
    `  ${base}/oauth/install   (or the console's "Connect HighLevel": ${base}/console)`,
  );
  return lines;
}

/** 0 when the deployment is ready to use; 1 when it is deployed but a secret, a var or PUBLIC_URL is missing. */
export function exitCode(report: DeployReport): 0 | 1 {
  return report.missingRequired.length > 0 ||
    report.missingConsoleRequired.length > 0 ||
    report.missingVars.length > 0 ||
    report.publicUrlMismatch
    ? 1
    : 0;
}
