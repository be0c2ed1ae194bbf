/**
 * The browser tests' Chromium finder (test/node/browser/chromium.ts): the choice order with a fake
 * probe, and the real probe and PATH lookup against small scripts in a temp directory.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findChromium, probeChromium, whichExecutable, type ChromiumFinderDeps } from "./chromium.ts";

interface World {
  env?: Record<string, string | undefined>;
  /** path → what `--version` prints; a path not listed does not start. */
  working?: Record<string, string>;
  /** name → the path PATH lookup finds. */
  onPath?: Record<string, string>;
  bundled?: string | Error;
}

function fake(world: World): ChromiumFinderDeps & { probed: string[]; bundledCalls: number } {
  const deps = {
    probed: [] as string[],
    bundledCalls: 0,
    env: world.env ?? {},
    probe: async (path: string) => {
      deps.probed.push(path);
      return world.working?.[path] ?? null;
    },
    which: (name: string) => {
      if (!name.startsWith("/")) return world.onPath?.[name] ?? null;
      return name in (world.working ?? {}) || name in (world.onPath ?? {}) ? name : null;
    },
    bundled: async () => {
      deps.bundledCalls++;
      if (world.bundled instanceof Error) throw world.bundled;
      return world.bundled ?? "/tmp/chromium";
    },
  };
  return deps;
}

describe("findChromium: choice order", () => {
  it("CHROMIUM_PATH wins when it starts, and nothing else is consulted", async () => {
    const deps = fake({
      env: { CHROMIUM_PATH: "/opt/my/chrome" },
      working: { "/opt/my/chrome": "Chromium 150", "/usr/bin/chromium": "Chromium 156" },
    });
    await expect(findChromium(deps)).resolves.toEqual({
      path: "/opt/my/chrome",
      source: "CHROMIUM_PATH",
      version: "Chromium 150",
    });
    expect(deps.probed).toEqual(["/opt/my/chrome"]);
    expect(deps.bundledCalls).toBe(0);
  });

  it("a CHROMIUM_PATH that does not start is a clear error, not a silent fallback", async () => {
    const deps = fake({ env: { CHROMIUM_PATH: "/opt/broken" }, working: { "/usr/bin/chromium": "Chromium 156" } });
    await expect(findChromium(deps)).rejects.toThrow("CHROMIUM_PATH=/opt/broken does not start");
    expect(deps.bundledCalls).toBe(0);
  });

  it("an empty CHROMIUM_PATH counts as unset", async () => {
    const deps = fake({ env: { CHROMIUM_PATH: "  " }, working: { "/usr/bin/chromium": "Chromium 156" } });
    await expect(findChromium(deps)).resolves.toMatchObject({ path: "/usr/bin/chromium", source: "system" });
  });

  it("Debian's /usr/bin/chromium comes first among the system ones", async () => {
    const deps = fake({
      working: { "/usr/bin/chromium": "Chromium 156", "/usr/local/bin/google-chrome": "Google Chrome 150" },
      onPath: { "google-chrome": "/usr/local/bin/google-chrome" },
    });
    await expect(findChromium(deps)).resolves.toEqual({
      path: "/usr/bin/chromium",
      source: "system",
      version: "Chromium 156",
    });
  });

  it("a system Chromium that does not start is skipped for the next one on PATH", async () => {
    const deps = fake({
      working: { "/snap/bin/chromium-browser": "Chromium 149" },
      onPath: {
        "/usr/bin/chromium": "/usr/bin/chromium",
        chromium: "/usr/bin/chromium",
        "chromium-browser": "/snap/bin/chromium-browser",
      },
    });
    await expect(findChromium(deps)).resolves.toEqual({
      path: "/snap/bin/chromium-browser",
      source: "system",
      version: "Chromium 149",
    });
    // The same broken file found twice (fixed path and PATH) is probed once.
    expect(deps.probed).toEqual(["/usr/bin/chromium", "/snap/bin/chromium-browser"]);
    expect(deps.bundledCalls).toBe(0);
  });

  it("with no system Chromium the packaged one is unpacked and probed", async () => {
    const deps = fake({ working: { "/tmp/chromium": "Chromium 153.0.8010.0" } });
    await expect(findChromium(deps)).resolves.toEqual({
      path: "/tmp/chromium",
      source: "@sparticuz/chromium",
      version: "Chromium 153.0.8010.0",
    });
    expect(deps.probed).toEqual(["/tmp/chromium"]);
  });

  it("when only broken ones exist, the error names every path tried", async () => {
    const deps = fake({ onPath: { chromium: "/usr/bin/chromium", "google-chrome": "/opt/google/chrome" } });
    const error = await findChromium(deps).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(error)).toContain("/usr/bin/chromium (does not start), /opt/google/chrome (does not start)");
    expect(String(error)).toContain("@sparticuz/chromium unpacked /tmp/chromium but it does not start");
  });

  it("a packaged Chromium that cannot unpack is reported with its reason", async () => {
    const deps = fake({ bundled: new Error("ENOSPC: no space left on device") });
    await expect(findChromium(deps)).rejects.toThrow(/no Chromium found: no system Chromium .*ENOSPC/);
  });
});

describe("probeChromium and whichExecutable on real files", () => {
  const dir = mkdtempSync(join(tmpdir(), "fdghl-chromium-probe-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string): string => {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  };

  it("reads the version of a binary that starts", async () => {
    const good = script("good", 'echo "Chromium 153.0.8010.0"');
    await expect(probeChromium(good)).resolves.toBe("Chromium 153.0.8010.0");
  });

  it("refuses one that exits non-zero, one that prints no Chromium version, and a missing file", async () => {
    await expect(probeChromium(script("crashes", 'echo "Chromium 1"; exit 127'))).resolves.toBeNull();
    await expect(probeChromium(script("impostor", "echo hello"))).resolves.toBeNull();
    await expect(probeChromium(join(dir, "absent"))).resolves.toBeNull();
  });

  it("finds an executable on PATH and ignores a file that is not executable", () => {
    script("chromium-browser", "exit 0");
    writeFileSync(join(dir, "google-chrome"), "not executable");
    expect(whichExecutable("chromium-browser", `/nonexistent:${dir}`)).toBe(join(dir, "chromium-browser"));
    expect(whichExecutable("google-chrome", dir)).toBeNull();
    expect(whichExecutable(join(dir, "chromium-browser"), "")).toBe(join(dir, "chromium-browser"));
  });
});
