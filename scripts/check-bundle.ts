/**
 * The bundle budget, checked by `npm test`: builds what `wrangler deploy` would upload
 * (`wrangler deploy --dry-run --outdir .wrangler/dry-run`, minified per wrangler.toml) and fails
 * when its gzip size passes BUNDLE_BUDGET_KIB. The size is wrangler's own "Total Upload … gzip"
 * figure: every uploaded module concatenated and gzipped, source maps left out.
 *
 * Run: `npm run check:bundle` (exits 1 naming the size and the budget when over).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/**
 * Most the upload may weigh, KiB gzip: the measured size plus a small margin, so growth is a
 * decision (raise it here, with the reason in the commit) rather than an accident. The goal is
 * BUNDLE_TARGET_KIB (docs/benchmarks.md "Bundle" says what reaching it takes).
 */
export const BUNDLE_BUDGET_KIB = 220;
/** The size the bundle should reach (issue 16), printed by `npm run bench` beside the measured one. */
export const BUNDLE_TARGET_KIB = 150;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Where the dry run writes the upload (gitignored with the rest of .wrangler/). */
export const DRY_RUN_DIR = join(ROOT, ".wrangler", "dry-run");

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
export function checkBudget(size: BundleSize, budgetKib: number): { ok: boolean; message: string } {
  const measured = `${kib(size.bytes)} KiB / gzip: ${kib(size.gzipBytes)} KiB`;
  if (size.gzipBytes <= budgetKib * 1024)
    return { ok: true, message: `check-bundle: ${measured}, within the ${budgetKib} KiB gzip budget` };
  return {
    ok: false,
    message:
      `check-bundle: the Worker bundle is ${kib(size.gzipBytes)} KiB gzip, over its ${budgetKib} KiB budget ` +
      `by ${kib(size.gzipBytes - budgetKib * 1024)} KiB (${measured}). Find what grew with ` +
      "`wrangler deploy --dry-run --outdir .wrangler/dry-run --metafile .wrangler/dry-run/meta.json` " +
      "(https://esbuild.github.io/analyze/), or raise BUNDLE_BUDGET_KIB in scripts/check-bundle.ts and say why.",
  };
}

/**
 * Runs the dry run into `outdir` and measures it; throws with wrangler's output on failure. The
 * default out dir is emptied first (a module left from an older build would count); another one
 * must be new or empty, so that nothing of the caller's is deleted.
 */
export function buildBundle(outdir: string = DRY_RUN_DIR): BundleSize {
  if (outdir === DRY_RUN_DIR) rmSync(outdir, { recursive: true, force: true });
  else if (existsSync(outdir) && readdirSync(outdir).length > 0)
    throw new Error(`check-bundle: the out dir ${outdir} is not empty; give a new or empty one`);
  const run = spawnSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    encoding: "utf8",
  });
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
  const budget = Number(arg("--budget-kib") ?? BUNDLE_BUDGET_KIB);
  if (!Number.isFinite(budget) || budget <= 0) {
    console.error("check-bundle: --budget-kib takes a positive number of KiB");
    process.exit(64);
  }
  const outdir = arg("--outdir");
  const verdict = checkBudget(buildBundle(outdir === undefined ? DRY_RUN_DIR : resolve(outdir)), budget);
  if (!verdict.ok) {
    console.error(verdict.message);
    process.exit(1);
  }
  console.log(verdict.message);
}
