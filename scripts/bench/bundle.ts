/**
 * The bundle part of `npm run bench` (issue 16): each Worker's upload size as `npm test` measures it
 * (scripts/check-bundle.ts), against the 150 KiB gzip goal and its budget, and its start-up time: `wrangler check startup` evaluates the built bundle in a local workerd under the
 * V8 profiler, and the figure is the profile's active (non-idle) time, median of
 * BENCH_STARTUP_RUNS runs. A local, sampled figure (about 1 ms per sample): it tracks what a cold
 * isolate does before its first request, not the start-up time Cloudflare reports on deploy.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as z from "zod";
import { BUNDLE_TARGET_KIB, buildBundle, kib, WORKERS, type WorkerName } from "../check-bundle.ts";
import { ROOT } from "../lib/processes.ts";

const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

export interface BundleReport {
  /** Which Worker: `sync` (webhooks, queues, cron, the gate) or `console` (admin API, console, /embed). */
  worker: WorkerName;
  bytes: number;
  gzipBytes: number;
  targetKib: number;
  budgetKib: number;
  /** Active (non-idle) ms of each start-up profile, in run order. */
  startupActiveMs: number[];
  startupMedianMs: number;
  /** Of the median run: garbage collection inside the active time. */
  startupGcMs: number;
}

/** The part of a V8 CPU profile that wrangler's own start-up summary reads. */
const CpuProfile = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: z.object({ functionName: z.string() }) })),
  samples: z.array(z.number()).default([]),
  timeDeltas: z.array(z.number()).default([]),
});

/** Active and garbage-collection ms of a profile, summed as `wrangler check startup` sums them. */
export function summarizeProfile(profile: unknown): { activeMs: number; gcMs: number } {
  const p = CpuProfile.parse(profile);
  const names = new Map(p.nodes.map((n) => [n.id, n.callFrame.functionName]));
  let sampled = 0;
  let idle = 0;
  let gc = 0;
  p.timeDeltas.forEach((delta, i) => {
    sampled += delta;
    const name = names.get(p.samples[i] ?? -1);
    if (name === "(idle)") idle += delta;
    else if (name === "(garbage collector)") gc += delta;
  });
  return { activeMs: (sampled - idle) / 1000, gcMs: gc / 1000 };
}

function wrangler(args: readonly string[]): void {
  const run = spawnSync(WRANGLER, args, { cwd: ROOT, env: ENV, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`wrangler ${args[0]} failed (exit ${run.status}):\n${run.stdout}${run.stderr}`);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** Builds each Worker's bundle once, measures it, and profiles its start-up `runs` times. */
export function runBundle(runs: number): BundleReport[] {
  return WORKERS.map((w) => {
    const size = buildBundle(w.outdir, w.config);
    const dir = mkdtempSync(join(tmpdir(), "bench-bundle-"));
    try {
      const bundle = join(dir, "worker.bundle");
      wrangler(["deploy", "--dry-run", "--config", w.config, "--outfile", bundle]);
      const profiles = Array.from({ length: runs }, (_, i) => {
        const out = join(dir, `startup-${i}.cpuprofile`);
        wrangler(["check", "startup", "--config", w.config, "--worker-bundle", bundle, "--outfile", out]);
        return summarizeProfile(JSON.parse(readFileSync(out, "utf8")));
      });
      const active = profiles.map((p) => p.activeMs);
      const mid = median(active);
      return {
        worker: w.worker,
        bytes: size.bytes,
        gzipBytes: size.gzipBytes,
        targetKib: BUNDLE_TARGET_KIB,
        budgetKib: w.budgetKib,
        startupActiveMs: active,
        startupMedianMs: mid,
        startupGcMs: profiles.find((p) => p.activeMs === mid)?.gcMs ?? NaN,
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** The bench table's rows for a report: figure, measured, target, met (null = printed only). */
export function bundleRows(r: BundleReport): [string, string, string, boolean | null][] {
  const gz = r.gzipBytes / 1024;
  return [
    [
      `bundle: ${r.worker} Worker, KiB gzip (minified upload)`,
      `${kib(r.gzipBytes)} KiB gzip (${(gz / r.targetKib).toFixed(2)} of the target; ${kib(r.bytes)} KiB raw; npm test budget ${r.budgetKib})`,
      `≤ ${r.targetKib} KiB`,
      gz <= r.targetKib,
    ],
    [
      `bundle: ${r.worker} Worker, start-up ms (local workerd profile)`,
      `${r.startupMedianMs.toFixed(1)} ms active, median of ${r.startupActiveMs.length} (${r.startupGcMs.toFixed(1)} ms GC; runs ${r.startupActiveMs.map((ms) => ms.toFixed(0)).join(", ")})`,
      "(printed)",
      null,
    ],
  ];
}
