/**
 * Finds a Chromium for the browser tests, with no download at run time and no root: `CHROMIUM_PATH`
 * when set, else a system Chromium that actually starts, else the headless Chromium that the
 * `@sparticuz/chromium` devDependency carries inside the package (unpacked once into the temp dir).
 */
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { chromium, type Browser } from "playwright-core";

/** Where the chosen Chromium came from. */
export type ChromiumSource = "CHROMIUM_PATH" | "system" | "@sparticuz/chromium";

/** The Chromium the tests will launch. */
export interface ChromiumChoice {
  path: string;
  source: ChromiumSource;
  /** What `--version` printed, e.g. "Chromium 153.0.8010.0". */
  version: string;
}

/** The outside world the finder consults; tests pass fakes. */
export interface ChromiumFinderDeps {
  env: Readonly<Record<string, string | undefined>>;
  /** Runs `path --version`; resolves to the printed version, or null when it does not start. */
  probe(path: string): Promise<string | null>;
  /** The absolute path of `name` on PATH, or null. */
  which(name: string): string | null;
  /** Unpacks the packaged Chromium and resolves to its path. */
  bundled(): Promise<string>;
}

/** System locations tried in order: Debian's fixed path, then the usual names on PATH. */
export const SYSTEM_CANDIDATES = ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"] as const;

/**
 * Flags for a headless run on a closed network: without the background-networking ones Chromium
 * keeps dialling Google's hosts and floods the log with refused connections.
 */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
] as const;

const PROBE_TIMEOUT_MS = 15_000;

/** `path --version` succeeded and printed something that names Chrome or Chromium. */
export function probeChromium(path: string): Promise<string | null> {
  return new Promise((done) => {
    execFile(path, ["--version"], { timeout: PROBE_TIMEOUT_MS }, (error, stdout) => {
      const version = String(stdout).trim();
      done(!error && /chrom/i.test(version) ? version : null);
    });
  });
}

/** The first executable file called `name` on PATH (a name with a slash is checked as it is). */
export function whichExecutable(name: string, pathVar = process.env["PATH"] ?? ""): string | null {
  const dirs = pathVar.split(delimiter).filter(Boolean);
  const candidates = name.includes("/") ? [name] : dirs.map((dir) => join(dir, name));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here: try the next directory
    }
  }
  return null;
}

/**
 * Unpacks the packaged Chromium once per version into `<tmp>/sparticuz-chromium-<version>-<uid>/`. The
 * package itself unpacks straight into the temp dir's root, so an interrupted or concurrent unpack
 * leaves a truncated binary that it then reuses; here it unpacks into a private staging dir (its
 * TMPDIR for the call) that is renamed into place whole.
 */
async function unpackBundled(): Promise<string> {
  if (process.platform !== "linux" || (process.arch !== "x64" && process.arch !== "arm64")) {
    const here = `${process.platform}/${process.arch}`;
    throw new Error(`@sparticuz/chromium ships Chromium for Linux x64/arm64 only, not ${here}`);
  }
  const entry = createRequire(import.meta.url).resolve("@sparticuz/chromium");
  const manifest = JSON.parse(readFileSync(join(dirname(entry), "../package.json"), "utf8")) as { version: string };
  const root = tmpdir();
  // Per user as well: the staging dir (and so the folder) is private to whoever unpacked it.
  const target = join(root, `sparticuz-chromium-${manifest.version}-${process.getuid?.() ?? "user"}`);
  if (existsSync(join(target, "chromium"))) return join(target, "chromium");

  const staging = mkdtempSync(join(root, "sparticuz-chromium-unpack-"));
  const saved = process.env["TMPDIR"];
  process.env["TMPDIR"] = staging;
  try {
    const { default: packaged } = await import("@sparticuz/chromium");
    const unpacked = await packaged.executablePath();
    if (unpacked !== join(staging, "chromium")) throw new Error(`unpacked to ${unpacked}, not into ${staging}`);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  } finally {
    if (saved === undefined) delete process.env["TMPDIR"];
    else process.env["TMPDIR"] = saved;
  }
  try {
    renameSync(staging, target);
  } catch (error) {
    // Another run put its copy there first: use that one.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(target, "chromium"))) throw error;
  }
  return join(target, "chromium");
}

const DEFAULT_DEPS: ChromiumFinderDeps = {
  env: process.env,
  probe: probeChromium,
  which: (name) => whichExecutable(name),
  bundled: unpackBundled,
};

/**
 * Chooses the Chromium to launch. An explicit `CHROMIUM_PATH` that does not start is an error, not
 * a reason to fall back: the caller asked for that binary. A system Chromium that does not start is
 * skipped. Throws, naming every path tried, when nothing starts.
 */
export async function findChromium(deps: ChromiumFinderDeps = DEFAULT_DEPS): Promise<ChromiumChoice> {
  const override = deps.env["CHROMIUM_PATH"]?.trim();
  if (override) {
    const version = await deps.probe(override);
    if (version === null) {
      throw new Error(`CHROMIUM_PATH=${override} does not start (\`${override} --version\` failed); fix or unset it`);
    }
    return { path: override, source: "CHROMIUM_PATH", version };
  }

  const tried: string[] = [];
  const seen = new Set<string>();
  for (const candidate of SYSTEM_CANDIDATES) {
    const path = deps.which(candidate);
    if (path === null || seen.has(path)) continue;
    seen.add(path);
    const version = await deps.probe(path);
    if (version !== null) return { path, source: "system", version };
    tried.push(`${path} (does not start)`);
  }

  let path: string;
  try {
    path = await deps.bundled();
  } catch (error) {
    throw new Error(`no Chromium found: ${describe(tried)}; @sparticuz/chromium failed: ${message(error)}`);
  }
  const version = await deps.probe(path);
  if (version === null) {
    throw new Error(
      `no Chromium starts: ${describe(tried)}; @sparticuz/chromium unpacked ${path} but it does not start ` +
        `(delete its folder to unpack it again), or set CHROMIUM_PATH`,
    );
  }
  return { path, source: "@sparticuz/chromium", version };
}

/**
 * Launches the chosen Chromium headless. Playwright's `launch` gives every run a new, empty
 * `--user-data-dir` in the temp dir and removes it on close, so no profile carries over.
 */
export async function launchChromium(choice?: ChromiumChoice): Promise<Browser> {
  const { path } = choice ?? (await findChromium());
  return chromium.launch({ executablePath: path, args: [...CHROMIUM_ARGS] });
}

function describe(tried: string[]): string {
  return tried.length ? `tried ${tried.join(", ")}` : `no system Chromium (${SYSTEM_CANDIDATES.join(", ")})`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
