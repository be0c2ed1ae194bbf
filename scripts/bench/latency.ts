/**
 * The latency part of `npm run bench`: single user changes made in the sandbox one at a time, each
 * way, with HighLevel's real fan-out (a stage move arrives as OpportunityUpdate +
 * OpportunityStageUpdate, a stage and value edit as 3 deliveries), timed from the change to the
 * write arriving on the other side; and the record jobs each change cost, counted from the
 * consumer's `queue.batch` lines (`kinds["sync.record"]`, jobs run by the batch included).
 */
import type { Stack } from "./stack.ts";
import { waitQuiet } from "./stack.ts";

export interface LatencyChange {
  direction: "4D → HL" | "HL → 4D";
  /** Seconds from the sandbox change to the other side holding it (null: not within the wait). */
  seconds: number | null;
  /** Webhook deliveries the change (and the echoes of the sync's write) sent to the Worker. */
  deliveries: number;
  /** Record jobs run while the change and its echoes were handled (null: no `queue.batch` lines seen). */
  recordJobs: number | null;
  /** The consumer's own time for the batch that ran the job, and the job's (`duration_ms` of their lines). */
  batchMs: number | null;
  jobMs: number | null;
}

export interface LatencyRun {
  changes: LatencyChange[];
  /** Per direction and both together: p50 / p95 seconds over the synced changes. */
  percentiles: Record<"4D → HL" | "HL → 4D" | "all", { p50: number; p95: number; n: number }>;
  /** Most record jobs any change cost, and the mean. */
  recordJobs: { max: number | null; mean: number | null };
  unsynced: number;
}

/** The nearest-rank percentile `q` (0–1) of `values` (NaN when empty). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** Polls `check` every 10 ms (the sandbox is in this process: a poll is a map lookup) until true or `timeoutMs`. */
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}

/** `duration_ms` of the first line read after `since` that `pick` accepts. */
function firstDuration(stack: Stack, since: number, pick: (line: Record<string, unknown>) => boolean): number | null {
  const line = stack.logs.find((l) => Number(l["seenAt"] ?? 0) >= since && pick(l));
  return line && typeof line["duration_ms"] === "number" ? line["duration_ms"] : null;
}

/** Record jobs in the consumer's `queue.batch` lines read after `since` (null when there are none at all). */
function recordJobsSince(stack: Stack, since: number): number | null {
  let jobs = 0;
  let lines = 0;
  for (const line of stack.logs) {
    if (line["event"] !== "queue.batch" || Number(line["seenAt"] ?? 0) < since) continue;
    lines++;
    const kinds = line["kinds"];
    const t = kinds && typeof kinds === "object" ? (kinds as Record<string, unknown>)["sync.record"] : undefined;
    if (t && typeof t === "object") {
      const c = t as Record<string, unknown>;
      jobs += Number(c["ack"] ?? 0) + Number(c["retry"] ?? 0) + Number(c["failed"] ?? 0);
    }
  }
  return lines === 0 ? null : jobs;
}

/**
 * `perSide` changes each way (alternating, after one unmeasured warm-up each way), on a pair this
 * part creates. Between changes it waits until the Worker is quiet, so changes never overlap and
 * each change's record jobs (and its echoes') are counted alone. Needs the stack's `keepLogs`.
 */
export async function runLatency(stack: Stack, perSide: number): Promise<LatencyRun> {
  const sb = stack.sb;
  const fdPipeline = () => sb.fourdegrees.store.pipelines.get(stack.fourdegreesPipelineId);
  const hlPipeline = () => sb.highlevel.store.pipelines.get(stack.highlevelPipelineId);
  const fdStage = (name: string) => fdPipeline()?.stages.find((s) => s.name === name)?.id ?? "";
  const hlStage = (name: string) => hlPipeline()?.stages.find((s) => s.name === name)?.id ?? "";
  const deliveries = () => sb.highlevel.deliveries().length + sb.fourdegrees.deliveries().length;
  const dealId = sb.fourdegrees.createDealAsUser({
    // A name of its own per run: a second run's deal must not match the first run's opportunity.
    name: `Latency Bench ${new Date().toISOString()}`,
    pipeline_id: stack.fourdegreesPipelineId,
    stage_id: fdStage("Sourced"),
    value: { amount_minor: 1_000_00, currency: "USD" },
  }).id;
  const externalOf = () => sb.fourdegrees.deal(dealId).external_refs?.find((r) => r.system === "highlevel")?.id;
  if (!(await until(() => externalOf() !== undefined, 60_000))) throw new Error("the latency pair did not link in 60 s");
  const oppId = externalOf() ?? "";
  await settle(stack);

  const stages = ["Term Sheet", "Sourced"];
  let step = 0;
  let hlStep = 0;
  const change = async (direction: LatencyChange["direction"]): Promise<LatencyChange> => {
    step++;
    const before = deliveries();
    const at = Date.now();
    let done: () => boolean;
    if (direction === "4D → HL") {
      const amount = 10_000 + step;
      sb.fourdegrees.updateDealAsUser(dealId, { value: { amount_minor: amount * 100, currency: "USD" } });
      done = () => sb.highlevel.store.opportunities.get(oppId)?.monetaryValue === amount;
    } else {
      // Stage moves back and forth: to Term Sheet alone (2 deliveries), back to Sourced with a
      // value edit (3 deliveries).
      hlStep++;
      const stage = stages[hlStep % 2] ?? "Sourced";
      const amount = 20_000 + step;
      const withValue = hlStep % 2 === 1;
      sb.highlevel.service.updateOpportunity(oppId, {
        pipelineStageId: hlStage(stage),
        ...(withValue ? { monetaryValue: amount } : {}),
      });
      done = () => {
        const deal = sb.fourdegrees.deal(dealId);
        return deal.stage_id === fdStage(stage) && (!withValue || deal.value?.amount_minor === amount * 100);
      };
    }
    // The other side cannot hold a change the Worker has not seen yet: the change made nothing new.
    if (done()) throw new Error(`the ${direction} change #${step} changed nothing`);
    const synced = await until(done, 30_000);
    const seconds = synced ? (Date.now() - at) / 1000 : null;
    await settle(stack);
    const ranJob = (l: Record<string, unknown>) =>
      l["event"] === "queue.batch" && JSON.stringify(l["kinds"] ?? {}).includes('"sync.record"');
    return {
      direction,
      seconds,
      deliveries: deliveries() - before,
      recordJobs: recordJobsSince(stack, at),
      batchMs: firstDuration(stack, at, ranJob),
      jobMs: firstDuration(stack, at, (l) => l["event"] === "sync.record"),
    };
  };

  await change("4D → HL");
  await change("HL → 4D");
  const changes: LatencyChange[] = [];
  for (let i = 0; i < perSide; i++) {
    changes.push(await change("4D → HL"));
    changes.push(await change("HL → 4D"));
  }
  const stats = (list: LatencyChange[]) => {
    const secs = list.flatMap((c) => (c.seconds === null ? [] : [c.seconds]));
    return { p50: percentile(secs, 0.5), p95: percentile(secs, 0.95), n: secs.length };
  };
  const jobs = changes.flatMap((c) => (c.recordJobs === null ? [] : [c.recordJobs]));
  return {
    changes,
    percentiles: {
      "4D → HL": stats(changes.filter((c) => c.direction === "4D → HL")),
      "HL → 4D": stats(changes.filter((c) => c.direction === "HL → 4D")),
      all: stats(changes),
    },
    recordJobs: {
      max: jobs.length ? Math.max(...jobs) : null,
      mean: jobs.length ? jobs.reduce((a, b) => a + b, 0) / jobs.length : null,
    },
    unsynced: changes.filter((c) => c.seconds === null).length,
  };
}

/**
 * Waits for the change's echoes to be handled: they make no provider call when recognised, so
 * "quiet" alone could end before their batch ran; the batch timeout (1 s) plus its work is covered.
 * A job that runs later still (a re-run) is counted with the next change: the total stays honest.
 */
async function settle(stack: Stack): Promise<void> {
  await new Promise((r) => setTimeout(r, 2_000));
  await waitQuiet(stack, 500, 30_000);
}

/** Targets: a single change reaches the other side within these (seconds), at one record job per change. */
export const LATENCY_TARGET = { p50: 2, p95: 3, jobsPerChange: 1 } as const;

const median = (values: readonly number[]) => percentile(values, 0.5);

/**
 * The bench's rows for `runs` (each run's percentiles, then the median over runs): per direction
 * p50 / p95 beside the targets, and the record jobs per change beside its target.
 */
export function latencyRows(
  runs: readonly LatencyRun[],
): Array<{ figure: string; measured: string; target: string; ok: boolean | null }> {
  const rows: Array<{ figure: string; measured: string; target: string; ok: boolean | null }> = [];
  const over = runs.length > 1 ? ` (median of ${runs.length} runs)` : "";
  for (const direction of ["4D → HL", "HL → 4D"] as const) {
    const p50 = median(runs.map((r) => r.percentiles[direction].p50));
    const p95 = median(runs.map((r) => r.percentiles[direction].p95));
    const n = runs.reduce((sum, r) => sum + r.percentiles[direction].n, 0);
    const each = runs.map((r) => `${r.percentiles[direction].p50.toFixed(2)}/${r.percentiles[direction].p95.toFixed(2)}`);
    rows.push({
      figure: `latency ${direction}: p50 / p95 s${over}`,
      measured: `${p50.toFixed(2)} / ${p95.toFixed(2)} over ${n} changes${runs.length > 1 ? ` (runs: ${each.join(", ")})` : ""}`,
      target: `≤ ${LATENCY_TARGET.p50} / ≤ ${LATENCY_TARGET.p95}`,
      ok: p50 <= LATENCY_TARGET.p50 && p95 <= LATENCY_TARGET.p95,
    });
  }
  const unsynced = runs.reduce((sum, r) => sum + r.unsynced, 0);
  const all = runs.flatMap((r) => r.changes);
  const maxJobs = Math.max(...runs.map((r) => r.recordJobs.max ?? Number.NaN));
  const meanJobs = all.reduce((s, c) => s + (c.recordJobs ?? 0), 0) / Math.max(1, all.length);
  const fanOut = all.filter((c) => c.direction === "HL → 4D").map((c) => c.deliveries);
  const ms = (pick: (c: LatencyChange) => number | null) => {
    const v = all.flatMap((c) => {
      const x = pick(c);
      return x === null ? [] : [x];
    });
    return v.length ? `${median(v).toFixed(0)} ms` : "not seen";
  };
  rows.push({
    figure: "latency: where a change's time goes (medians)",
    measured: `total ${(median(all.flatMap((c) => (c.seconds === null ? [] : [c.seconds]))) * 1000).toFixed(0)} ms = queue wait before the batch + the consumer's batch ${ms((c) => c.batchMs)} (claim, triage, settle, job); of it the record job ${ms((c) => c.jobMs)}`,
    target: "(printed)",
    ok: null,
  });
  rows.push({
    figure: "latency: record jobs per change",
    measured: Number.isNaN(maxJobs)
      ? "not measured (no queue.batch lines: LOG_LEVEL above info?)"
      : `max ${maxJobs}, mean ${meanJobs.toFixed(2)} over ${all.length} changes (HL → 4D: ${Math.min(...fanOut)}–${Math.max(...fanOut)} deliveries each, echoes included); ${unsynced} not synced in 30 s`,
    target: `${LATENCY_TARGET.jobsPerChange} each, all synced`,
    ok: !Number.isNaN(maxJobs) && maxJobs <= LATENCY_TARGET.jobsPerChange && unsynced === 0,
  });
  return rows;
}
