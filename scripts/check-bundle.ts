/**
 * The bundle budgets, checked by `npm test`: builds what `wrangler deploy` would upload for each
 * Worker (`wrangler deploy --dry-run --outdir …`, minified per its config) and fails when a gzip
 * size passes its budget. The size is wrangler's own "Total Upload … gzip" figure: every uploaded
 * module concatenated and gzipped, source maps left out.
 *
 * Run: `npm run check:bundle` (exits 1 naming the Worker, its size and its budget when over).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/**
 * Most the sync Worker's upload may weigh, KiB gzip: the measured size plus a small margin, so
 * growth is a decision (raise it here, with the reason in the commit) rather than an accident. It
 * stays under BUNDLE_TARGET_KIB: this Worker starts for every webhook and queue batch.
 */
export const BUNDLE_BUDGET_KIB = 145;
/** The same for the console Worker (wrangler.console.toml), which starts when a person or script opens it. */
export const CONSOLE_BUNDLE_BUDGET_KIB = 180;
/** The size each Worker's bundle should reach (issue 16), printed by `npm run bench` beside the measured one. */
export const BUNDLE_TARGET_KIB = 150;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Where the dry run writes the sync Worker's upload (gitignored with the rest of .wrangler/). */
export const DRY_RUN_DIR = join(ROOT, ".wrangler", "dry-run");

/** The two deploy units (docs/architecture.md "Two Workers"), each with its config, budget and dry-run dir. */
export const WORKERS = [
  { worker: "sync", config: "wrangler.toml", budgetKib: BUNDLE_BUDGET_KIB, outdir: DRY_RUN_DIR },
  {
    worker: "console",
    config: "wrangler.console.toml",
    budgetKib: CONSOLE_BUNDLE_BUDGET_KIB,
    outdir: join(ROOT, ".wrangler", "dry-run-console"),
  },
] as const;
export type WorkerName = (typeof WORKERS)[number]["worker"];

export interface BundleSize {
  /** The uploaded modules, relative to the out dir. */
  modules: string[];
  bytes: number;
  gzipBytes: number;
}

/** Files of a dry run's out dir that wrangler uploads as modules (not its README, not source maps). */
function isModule(name: string): boolean {
  return !name.endsWith(".map") && name !== "README.md";
}

/**
 * Size of the upload in `outdir`, computed as wrangler does: the modules concatenated, gzipped with
 * zlib's defaults. The main module (`index.js`) comes first, the rest in name order.
 */
export function measureBundle(outdir: string): BundleSize {
  const modules: string[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`);
      else if (isModule(name)) modules.push(`${prefix}${name}`);
    }
  };
  walk(outdir, "");
  modules.sort((a, b) => (a === "index.js" ? -1 : b === "index.js" ? 1 : a.localeCompare(b)));
  if (modules.length === 0) throw new Error(`no module in ${outdir}: did the dry run write its out dir?`);
  const all = Buffer.concat(modules.map((m) => readFileSync(join(outdir, m))));
  return { modules, bytes: all.byteLength, gzipBytes: gzipSync(all).byteLength };
}

/** KiB with two decimals, as wrangler prints them. */
export const kib = (bytes: number): string => (bytes / 1024).toFixed(2);

/** The verdict on a size against a budget in KiB gzip, with the line `npm test` prints. */
export function checkBudget(
  size: BundleSize,
  budgetKib: number,
  worker = "Worker",
  config = "wrangler.toml",
): { ok: boolean; message: string } {
  const measured = `${kib(size.bytes)} KiB / gzip: ${kib(size.gzipBytes)} KiB`;
  if (size.gzipBytes <= budgetKib * 1024)
    return { ok: true, message: `check-bundle: the ${worker} ${measured}, within its ${budgetKib} KiB gzip budget` };
  return {
    ok: false,
    message:
      `check-bundle: the ${worker} bundle is ${kib(size.gzipBytes)} KiB gzip, over its ${budgetKib} KiB budget ` +
      `by ${kib(size.gzipBytes - budgetKib * 1024)} KiB (${measured}). Find what grew with ` +
      `\`wrangler deploy --dry-run -c ${config} --outdir .wrangler/dry-run --metafile .wrangler/dry-run/meta.json\` ` +
      "(https://esbuild.github.io/analyze/), or raise its budget in scripts/check-bundle.ts and say why.",
  };
}

/**
 * Runs the dry run into `outdir` and measures it; throws with wrangler's output on failure. The
 * default out dir is emptied first (a module left from an older build would count); another one
 * must be new or empty, so that nothing of the caller's is deleted.
 */
export function buildBundle(outdir: string = DRY_RUN_DIR, config = "wrangler.toml"): BundleSize {
  if (WORKERS.some((w) => w.outdir === outdir)) rmSync(outdir, { recursive: true, force: true });
  else if (existsSync(outdir) && readdirSync(outdir).length > 0)
    throw new Error(`check-bundle: the out dir ${outdir} is not empty; give a new or empty one`);
  const run = spawnSync(
    join(ROOT, "node_modules", ".bin", "wrangler"),
    ["deploy", "--dry-run", "--config", config, "--outdir", outdir],
    {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
      encoding: "utf8",
    },
  );
  if (run.status !== 0)
    throw new Error(`wrangler deploy --dry-run failed (exit ${run.status}):\n${run.stdout}${run.stderr}`);
  return measureBundle(outdir);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // `--budget-kib N` and `--outdir DIR` override the defaults (the test of the failing path uses them).
  const arg = (name: string) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const budgetArg = arg("--budget-kib");
  const budget = budgetArg === undefined ? undefined : Number(budgetArg);
  if (budget !== undefined && (!Number.isFinite(budget) || budget <= 0)) {
    console.error("check-bundle: --budget-kib takes a positive number of KiB");
    process.exit(64);
  }
  // With --outdir (the tests), only the sync Worker, into that dir; otherwise both.
  const outdir = arg("--outdir");
  const workers = outdir === undefined ? WORKERS : [{ ...WORKERS[0], outdir: resolve(outdir) }];
  let failed = false;
  for (const w of workers) {
    const verdict = checkBudget(buildBundle(w.outdir, w.config), budget ?? w.budgetKib, `${w.worker} Worker`, w.config);
    if (verdict.ok) console.log(verdict.message);
    else {
      console.error(verdict.message);
      failed = true;
    }
  }
  if (failed) process.exit(1);
}
