/**
 * The console Worker's configuration as a deploy or a local run uses it: wrangler.console.toml with
 * the sync Worker's `[vars]` (wrangler.toml is where an operator sets them, once) and, for a deploy,
 * the sync Worker's KV namespace id (a KV binding without an id would get a namespace of its own).
 * Also the sync Worker's configuration without its CONSOLE binding, for the one deploy that comes
 * before the console Worker exists (Cloudflare refuses a service binding to a missing Worker).
 * Written as JSON (wrangler reads it like the TOML) with absolute paths, so it may live anywhere.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { experimental_readRawConfig } from "wrangler";

type RawConfig = Record<string, unknown> & {
  main?: string;
  vars?: Record<string, unknown>;
  d1_databases?: Record<string, unknown>[];
  kv_namespaces?: Record<string, unknown>[];
};

/** wrangler's config reader; its declaration re-exports a package wrangler bundles, so it is typed here. */
const readRawConfig = experimental_readRawConfig as (args: { config: string }) => { rawConfig: RawConfig };

/** A config with its `main` and migrations directories made absolute (it is written elsewhere). */
function absolute(raw: RawConfig, configPath: string): RawConfig {
  const base = dirname(configPath);
  return {
    ...raw,
    ...(raw.main === undefined ? {} : { main: resolve(base, raw.main) }),
    d1_databases: (raw.d1_databases ?? []).map((d) => ({
      ...d,
      migrations_dir: resolve(base, typeof d["migrations_dir"] === "string" ? d["migrations_dir"] : "migrations"),
    })),
  };
}

function write(path: string, config: RawConfig): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

export interface ConsoleConfigOptions {
  /** The sync Worker's config (wrangler.toml): its `[vars]` are the console Worker's. */
  syncConfig: string;
  /** wrangler.console.toml. */
  consoleConfig: string;
  /** Where to write the result. */
  out: string;
  /** Vars over the sync Worker's (local runs: the sandbox URLs and `.dev.vars`' secrets). */
  vars?: Record<string, string>;
  /** The KV namespace id of the sync Worker's `CACHE` (deploys). */
  kvId?: string;
  /** Leave `[secrets] required` out (local runs, where every secret is a var). */
  withoutSecrets?: boolean;
}

/** Writes the console Worker's configuration and returns its path. */
export function writeConsoleConfig(options: ConsoleConfigOptions): string {
  const sync = readRawConfig({ config: options.syncConfig }).rawConfig;
  const consoleRaw = absolute(readRawConfig({ config: options.consoleConfig }).rawConfig, options.consoleConfig);
  const config: RawConfig = {
    ...consoleRaw,
    vars: { ...sync.vars, ...options.vars },
    ...(sync["secrets"] === undefined || options.withoutSecrets ? {} : { secrets: sync["secrets"] }),
  };
  if (options.kvId !== undefined)
    config.kv_namespaces = (consoleRaw.kv_namespaces ?? []).map((kv) => ({ ...kv, id: options.kvId }));
  return write(options.out, config);
}

/** Writes the sync Worker's configuration without its CONSOLE service binding and returns its path. */
export function writeSyncBootstrapConfig(syncConfig: string, out: string): string {
  const raw = absolute(readRawConfig({ config: syncConfig }).rawConfig, syncConfig);
  const services = Array.isArray(raw["services"]) ? (raw["services"] as Record<string, unknown>[]) : [];
  return write(out, { ...raw, services: services.filter((s) => s["binding"] !== "CONSOLE") });
}
