/**
 * The bundle budget (scripts/check-bundle.ts): the size is measured as wrangler measures an upload
 * (modules only, concatenated, gzipped), and the check passes at or under the budget and fails
 * over it, from the functions and from the command `npm test` runs.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import {
  BUNDLE_BUDGET_KIB,
  BUNDLE_TARGET_KIB,
  checkBudget,
  measureBundle,
  WORKERS,
} from "../../scripts/check-bundle.ts";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "check-bundle-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("check-bundle", () => {
  it("measures the uploaded modules only: main module first, no source map, no README", () => {
    const dir = tempDir();
    const main = "export default { fetch() { return new Response('ok'); } };\n".repeat(50);
    const chunk = "export const x = 1;\n";
    writeFileSync(join(dir, "index.js"), main);
    mkdirSync(join(dir, "lib"));
    writeFileSync(join(dir, "lib", "a-chunk.js"), chunk);
    writeFileSync(join(dir, "index.js.map"), "{}".repeat(10_000));
    writeFileSync(join(dir, "README.md"), "written by wrangler\n");

    const size = measureBundle(dir);
    expect(size.modules).toEqual(["index.js", "lib/a-chunk.js"]);
    expect(size.bytes).toBe(Buffer.byteLength(main) + Buffer.byteLength(chunk));
    expect(size.gzipBytes).toBe(gzipSync(Buffer.from(main + chunk)).byteLength);
  });

  it("refuses an out dir with no module", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "README.md"), "x");
    expect(() => measureBundle(dir)).toThrow(/no module/);
  });

  it("passes at or under the budget and fails over it, naming the size, the budget and where to look", () => {
    const at = { modules: ["index.js"], bytes: 700 * 1024, gzipBytes: 200 * 1024 };
    expect(checkBudget(at, 200)).toEqual({
      ok: true,
      message: "check-bundle: the Worker 700.00 KiB / gzip: 200.00 KiB, within its 200 KiB gzip budget",
    });
    const over = checkBudget({ ...at, gzipBytes: 200 * 1024 + 512 }, 200);
    expect(over.ok).toBe(false);
    expect(over.message).toContain("the Worker bundle is 200.50 KiB gzip, over its 200 KiB budget by 0.50 KiB");
    expect(over.message).toContain("raise its budget in scripts/check-bundle.ts");
    const named = checkBudget({ ...at, gzipBytes: 200 * 1024 + 512 }, 200, "console Worker", "wrangler.console.toml");
    expect(named.message).toContain("the console Worker bundle is 200.50 KiB gzip");
    expect(named.message).toContain("-c wrangler.console.toml");
    // The sync Worker's budget keeps it at its target; every Worker is checked, each with its own config.
    expect(BUNDLE_BUDGET_KIB).toBeLessThanOrEqual(BUNDLE_TARGET_KIB);
    expect(WORKERS.map((w) => [w.worker, w.config])).toEqual([
      ["sync", "wrangler.toml"],
      ["console", "wrangler.console.toml"],
    ]);
  });

  it("the command builds the real Worker and exits 1 over a budget it cannot meet, 64 on a bad one", () => {
    const script = resolve(import.meta.dirname, "../../scripts/check-bundle.ts");
    const outdir = join(tempDir(), "out");
    const over = spawnSync(process.execPath, [script, "--budget-kib", "1", "--outdir", outdir], { encoding: "utf8" });
    expect(over.stderr).toMatch(/the sync Worker bundle is [\d.]+ KiB gzip, over its 1 KiB budget/);
    expect(over.status).toBe(1);
    expect(measureBundle(outdir).modules).toContain("index.js");

    const bad = spawnSync(process.execPath, [script, "--budget-kib", "none"], { encoding: "utf8" });
    expect(bad.status).toBe(64);
  });
});
