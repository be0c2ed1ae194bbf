/**
 * `npm run bench` (issue 7): the Worker under `wrangler dev` (fresh temp state, free ports) and the
 * sandbox started here; every figure a ratio or a count measured side by side in the same run.
 *   1. ingress: POST /webhooks/highlevel (real signed bodies) vs GET /ping, same autocannon load;
 *   2. provider calls per user change vs the naive "GET then PUT per delivery";
 *   3. quota: a backfill of BENCH_BACKFILL_DEALS (2,000) deals with HighLevel's limits time-scaled
 *      by BENCH_RATE_SCALE in both the sandbox and the gate; achieved / allowed rate, 429s, and
 *      live changes made during it;
 *   4. D1 rows read / written per synced change (D1's own `meta`, D1_METER);
 *   5. the burst: BURST_EVENTS (10,000) signed webhooks, every one acknowledged and processed.
 * Prints a table, writes bench/results.json, exits 1 naming every missed target.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { runBurst, type BurstReport } from "./bench/burst.ts";
import { loadTrivial, loadWebhooks, webhookFactory } from "./bench/load.ts";
import { startStack, waitFor, waitQuiet, type CallCounts, type Stack } from "./bench/stack.ts";
import { ROOT } from "./lib/processes.ts";

const env = process.env;
const SCALE = Number(env["BENCH_RATE_SCALE"] ?? 2);
const DEALS = Number(env["BENCH_BACKFILL_DEALS"] ?? 2_000);
const BURST = Number(env["BURST_EVENTS"] ?? 10_000);
const LOAD_SECONDS = Number(env["BENCH_LOAD_SECONDS"] ?? 10);
const CONNECTIONS = Number(env["BENCH_CONNECTIONS"] ?? 20);
/** HighLevel's real limits: 100 requests per 10 s per location. */
const HL_MAX = 100;
const HL_INTERVAL_MS = 10_000;
/** Share of the burst budget the gate gives the backfill lane (src/gate/budget.ts LANE_SHARE). */
const BACKFILL_SHARE = 0.5;
/** "Synced within a few seconds": the live-change target, in scaled (HighLevel) seconds. */
const LIVE_TARGET_SCALED_S = 10;

interface Row {
  figure: string;
  measured: string;
  target: string;
  ok: boolean | null;
}
const rows: Row[] = [];
const missed: string[] = [];
function record(figure: string, measured: string, target: string, ok: boolean | null): void {
  rows.push({ figure, measured, target, ok });
  if (ok === false) missed.push(`${figure}: ${measured} (target ${target})`);
}
const step = (text: string) => console.log(`• ${text}`);

const Meter = z.object({ d1: z.object({ queries: z.number(), rowsRead: z.number(), rowsWritten: z.number() }) });
async function d1(stack: Stack): Promise<z.infer<typeof Meter>["d1"]> {
  return Meter.parse(await stack.admin("GET", "/api/debug/d1-meter")).d1;
}

function diff(a: CallCounts, b: CallCounts): CallCounts {
  return {
    highlevel: { reads: b.highlevel.reads - a.highlevel.reads, writes: b.highlevel.writes - a.highlevel.writes, rateLimited: b.highlevel.rateLimited - a.highlevel.rateLimited },
    fourdegrees: { reads: b.fourdegrees.reads - a.fourdegrees.reads, writes: b.fourdegrees.writes - a.fourdegrees.writes, rateLimited: b.fourdegrees.rateLimited - a.fourdegrees.rateLimited },
  };
}

interface ChangeResult {
  change: string;
  origin: "fourdegrees" | "highlevel";
  deliveries: number;
  calls: CallCounts;
  naive: { reads: number; writes: number };
  d1: { rowsRead: number; rowsWritten: number };
}

/** Runs one user change and measures until the Worker is quiet again. */
async function measureChange(stack: Stack, change: string, origin: "fourdegrees" | "highlevel", act: () => void, done: () => boolean): Promise<ChangeResult> {
  const deliveries = () => stack.sb.highlevel.deliveries().length + stack.sb.fourdegrees.deliveries().length;
  const before = { calls: stack.calls(), deliveries: deliveries(), d1: await d1(stack) };
  act();
  const synced = await waitFor(done, 60_000);
  if (!synced) throw new Error(`bench: the ${change} did not sync within 60 s`);
  await waitQuiet(stack, 4_000, 60_000);
  const after = { calls: stack.calls(), deliveries: deliveries(), d1: await d1(stack) };
  const n = after.deliveries - before.deliveries;
  return {
    change,
    origin,
    deliveries: n,
    calls: diff(before.calls, after.calls),
    // The naive integration: every delivery (the user's and the echoes of its own writes) → GET + PUT.
    naive: { reads: n, writes: n },
    d1: { rowsRead: after.d1.rowsRead - before.d1.rowsRead, rowsWritten: after.d1.rowsWritten - before.d1.rowsWritten },
  };
}

const results: Record<string, unknown> = { startedAt: new Date().toISOString(), settings: { rateScale: SCALE, backfillDeals: DEALS, burstEvents: BURST, loadSeconds: LOAD_SECONDS, connections: CONNECTIONS } };

step(`starting the sandbox and the Worker (HighLevel limits time-scaled ×${SCALE} in both; ${DEALS} 4Degrees deals seeded for the backfill)`);
const stack = await startStack({
  vars: { HIGHLEVEL_RATE_SCALE: String(SCALE), D1_METER: "true", FOURDEGREES_RATE_PER_SECOND: "1000", FOURDEGREES_CONCURRENCY: "10" },
  // 4Degrees is not the subject of the quota figure: its budget is wide on both sides.
  sandboxSettings: { HIGHLEVEL_RATE_LIMIT_MAX: String(HL_MAX), HIGHLEVEL_RATE_LIMIT_INTERVAL_MS: String(Math.round(HL_INTERVAL_MS / SCALE)), FOURDEGREES_RATE_LIMIT: "100000" },
  beforeSubscribe: (sb, demo) => {
    const stages = sb.fourdegrees.deals().filter((d) => d.pipeline_id === demo.fourdegreesPipelineId);
    const stageId = stages[0]?.stage_id ?? null;
    for (let i = 0; i < DEALS; i++) sb.fourdegrees.createDealAsUser({ name: `Backfill ${String(i).padStart(5, "0")}`, pipeline_id: demo.fourdegreesPipelineId, ...(stageId ? { stage_id: stageId } : {}), value: { amount_minor: (i + 1) * 100_00, currency: "USD" } });
  },
});

try {
  // ---------- 1. ingress ----------
  step(`1/5 ingress: GET /ping vs POST /webhooks/highlevel, ${LOAD_SECONDS} s each, ${CONNECTIONS} connections`);
  await loadTrivial(stack.worker.url, 2, CONNECTIONS); // warm-up
  const trivial = await loadTrivial(stack.worker.url, LOAD_SECONDS, CONNECTIONS);
  const ids = Array.from({ length: 5 }, (_, i) => `bench-ingress-${i}`);
  const webhooks = await loadWebhooks(stack.worker.url, LOAD_SECONDS, CONNECTIONS, webhookFactory(stack.locationId, ids, `ingress-${Date.now()}`));
  const ratio = webhooks.rps / trivial.rps;
  results["ingress"] = { trivial, webhooks, ratio };
  record("ingress req/s (webhook / trivial)", `${webhooks.rps.toFixed(0)} / ${trivial.rps.toFixed(0)} = ${ratio.toFixed(2)}`, "≥ 0.5", ratio >= 0.5);
  record("ingress p99 ms (webhook vs trivial)", `${webhooks.p99Ms} vs ${trivial.p99Ms}`, "(printed)", null);
  record("ingress errors (non-2xx + socket)", `${webhooks.non2xx + webhooks.errors} of ${webhooks.total}`, "0", webhooks.non2xx + webhooks.errors === 0);
  await waitQuiet(stack, 4_000, 120_000);

  // ---------- 2 + 4. provider calls and D1 rows per change ----------
  step("2/5 + 4/5 provider calls and D1 rows per user change");
  const sb = stack.sb;
  const fdStage = (name: string) => sb.fourdegrees.store.pipelines.get(stack.fourdegreesPipelineId)?.stages.find((s) => s.name === name)?.id ?? "";
  const hlStage = (name: string) => sb.highlevel.store.pipelines.get(stack.highlevelPipelineId)?.stages.find((s) => s.name === name)?.id ?? "";
  const external = (dealId: string) => sb.fourdegrees.deal(dealId).external_refs?.find((r) => r.system === "highlevel")?.id ?? null;
  let dealId = "";
  const changes: ChangeResult[] = [];
  changes.push(
    await measureChange(
      stack,
      "create (4Degrees → HighLevel)",
      "fourdegrees",
      () => {
        dealId = sb.fourdegrees.createDealAsUser({ name: "Bench Orbit Labs", pipeline_id: stack.fourdegreesPipelineId, stage_id: fdStage("Sourced"), value: { amount_minor: 250_000_00, currency: "USD" } }).id;
      },
      () => external(dealId) !== null,
    ),
  );
  const oppId = external(dealId) ?? "";
  changes.push(await measureChange(stack, "field update (4Degrees value)", "fourdegrees", () => void sb.fourdegrees.updateDealAsUser(dealId, { value: { amount_minor: 300_000_00, currency: "USD" } }), () => sb.highlevel.store.opportunities.get(oppId)?.monetaryValue === 300_000));
  changes.push(await measureChange(stack, "stage change (HighLevel, fan-out pair)", "highlevel", () => void sb.highlevel.service.updateOpportunity(oppId, { pipelineStageId: hlStage("Term Sheet") }), () => sb.fourdegrees.deal(dealId).stage_id === fdStage("Term Sheet")));
  changes.push(await measureChange(stack, "status change (HighLevel won)", "highlevel", () => void sb.highlevel.service.setStatus(oppId, "won"), () => sb.fourdegrees.deal(dealId).status === "won"));
  changes.push(await measureChange(stack, "note (4Degrees → HighLevel)", "fourdegrees", () => void sb.fourdegrees.addNoteAsUser(dealId, "Bench: met the founders."), () => sb.highlevel.store.notesOf(sb.highlevel.store.opportunities.get(oppId)?.contactId ?? "").some((n) => n.body.startsWith("Bench: met the founders."))));
  results["changes"] = changes;
  for (const c of changes) {
    const target = c.origin === "fourdegrees" ? "highlevel" : "fourdegrees";
    const t = c.calls[target];
    const o = c.calls[c.origin];
    const isCreate = c.change.startsWith("create");
    // Reads of the changed record: the re-read of the source plus the other side's current copy.
    const reads = c.calls.highlevel.reads + c.calls.fourdegrees.reads;
    const writes = c.calls.highlevel.writes + c.calls.fourdegrees.writes;
    const echoWrites = isCreate ? Math.max(0, o.writes - 1) : o.writes; // a create writes the link back once
    const ok = isCreate ? echoWrites === 0 : t.writes <= 1 && echoWrites === 0 && reads <= 2;
    record(
      `calls: ${c.change}`,
      `reads ${reads} (HL ${c.calls.highlevel.reads}, 4D ${c.calls.fourdegrees.reads}), writes ${writes} (to ${target === "highlevel" ? "HL" : "4D"} ${t.writes}, echo ${echoWrites}); naive ${c.naive.reads} GET + ${c.naive.writes} PUT for ${c.deliveries} deliveries`,
      isCreate ? "0 echo writes" : "≤ 1 write, 0 echo writes, ≤ 1 read per side",
      ok,
    );
  }
  const synced = changes.length;
  const d1Read = changes.reduce((n, c) => n + c.d1.rowsRead, 0);
  const d1Written = changes.reduce((n, c) => n + c.d1.rowsWritten, 0);
  results["storage"] = { perChange: changes.map((c) => ({ change: c.change, ...c.d1 })), averageRowsRead: d1Read / synced, averageRowsWritten: d1Written / synced };
  for (const c of changes) record(`D1 rows: ${c.change}`, `${c.d1.rowsRead} read, ${c.d1.rowsWritten} written`, "(printed)", null);
  record("D1 rows per synced change (mean)", `${(d1Read / synced).toFixed(1)} read, ${(d1Written / synced).toFixed(1)} written`, "(printed)", null);

  // ---------- 3. quota: the backfill ----------
  step(`3/5 quota: backfill of ${DEALS} deals at ×${SCALE} time (allowed ${HL_MAX} per ${HL_INTERVAL_MS / SCALE} ms; backfill lane ${BACKFILL_SHARE * 100}%)`);
  const callsBefore = stack.calls();
  const timesFrom = stack.highlevelCallTimes.length;
  const started = Date.now();
  await stack.admin("POST", "/api/accounts/demo/backfill");
  const Progress = z.object({ backfill: z.object({ state: z.string(), done: z.number(), total: z.number() }).loose().nullable() }).loose();
  const progress = async () => Progress.parse(await stack.admin("GET", "/api/accounts/demo/backfill")).backfill;
  // Live changes during the backfill, once it is well under way.
  await waitFor(async () => ((await progress())?.done ?? 0) >= Math.min(200, DEALS / 4), 600_000);
  const liveAt = Date.now();
  sb.fourdegrees.updateDealAsUser(dealId, { value: { amount_minor: 777_000_00, currency: "USD" } });
  const liveFdOk = await waitFor(() => sb.highlevel.store.opportunities.get(oppId)?.monetaryValue === 777_000, 120_000);
  const liveFdS = (Date.now() - liveAt) / 1000;
  const liveAt2 = Date.now();
  sb.highlevel.service.updateOpportunity(oppId, { name: "Bench Orbit Labs (renamed during backfill)" });
  const liveHlOk = await waitFor(() => sb.fourdegrees.deal(dealId).name === "Bench Orbit Labs (renamed during backfill)", 120_000);
  const liveHlS = (Date.now() - liveAt2) / 1000;
  const finished = await waitFor(async () => (await progress())?.state === "done", Math.max(600_000, DEALS * 2_000));
  const ended = Date.now();
  const run = await progress();
  const bfCalls = diff(callsBefore, stack.calls());
  const times = stack.highlevelCallTimes.slice(timesFrom);
  const spanS = times.length > 1 ? ((times[times.length - 1] ?? 0) - (times[0] ?? 0)) / 1000 : (ended - started) / 1000;
  const hlCalls = bfCalls.highlevel.reads + bfCalls.highlevel.writes;
  const achieved = hlCalls / spanS;
  const allowed = (HL_MAX / (HL_INTERVAL_MS / SCALE)) * 1000;
  const laneAllowed = allowed * BACKFILL_SHARE;
  results["quota"] = { run, finished, hlCalls, fourdegreesCalls: bfCalls.fourdegrees, spanSeconds: spanS, achievedPerSecond: achieved, allowedPerSecond: allowed, backfillLaneAllowedPerSecond: laneAllowed, rateLimited: bfCalls.highlevel.rateLimited, live: { fourdegreesToHighLevelSeconds: liveFdS, highLevelToFourDegreesSeconds: liveHlS, scale: SCALE } };
  record("backfill finished", `${run?.state ?? "?"}: ${run?.done ?? 0} of ${DEALS} deals, ${hlCalls} HighLevel calls in ${spanS.toFixed(1)} s`, "done", finished);
  record("quota: achieved / backfill-lane allowance", `${achieved.toFixed(1)} / ${laneAllowed.toFixed(1)} req/s = ${(achieved / laneAllowed).toFixed(2)}`, "≥ 0.9", achieved / laneAllowed >= 0.9);
  record("quota: achieved / HighLevel's whole allowance", `${(achieved / allowed).toFixed(2)} (the other ${(1 - BACKFILL_SHARE) * 100}% is kept for live changes)`, "(printed)", null);
  record("quota: 429s received", String(bfCalls.highlevel.rateLimited), "0", bfCalls.highlevel.rateLimited === 0);
  record("live change during backfill 4D → HL", `${liveFdS.toFixed(1)} s real = ${(liveFdS * SCALE).toFixed(1)} s scaled`, `≤ ${LIVE_TARGET_SCALED_S} s scaled`, liveFdOk && liveFdS * SCALE <= LIVE_TARGET_SCALED_S);
  record("live change during backfill HL → 4D", `${liveHlS.toFixed(1)} s real = ${(liveHlS * SCALE).toFixed(1)} s scaled`, `≤ ${LIVE_TARGET_SCALED_S} s scaled`, liveHlOk && liveHlS * SCALE <= LIVE_TARGET_SCALED_S);
} finally {
  await stack.stop();
}

// ---------- 5. burst ----------
step(`5/5 burst: ${BURST} signed webhooks (fresh stack, LOG_LEVEL=debug to observe each message's ack)`);
const burst: BurstReport = await runBurst(BURST, { drainTimeoutMs: 60_000 + BURST * 100 });
results["burst"] = burst;
record("burst: acknowledged", `${burst.acknowledged} of ${burst.events} (${JSON.stringify(burst.byStatus)})`, "all", burst.acknowledged === burst.events);
record("burst: processed / lost / applied twice", `${burst.processed} / ${burst.lost} / ${burst.appliedTwice}`, `${burst.events} / 0 / 0`, burst.processed === burst.events && burst.lost === 0 && burst.appliedTwice === 0);
record("burst: p99 ack ms, drain s", `${burst.p99AckMs} ms; sent in ${burst.sendSeconds.toFixed(1)} s, drained ${burst.drainSeconds.toFixed(1)} s after`, "(printed)", null);

// ---------- report ----------
results["rows"] = rows;
results["missed"] = missed;
mkdirSync(resolve(ROOT, "bench"), { recursive: true });
writeFileSync(resolve(ROOT, "bench/results.json"), JSON.stringify(results, null, 2));
const w1 = Math.max(...rows.map((r) => r.figure.length));
const w2 = Math.max(...rows.map((r) => r.measured.length));
console.log("");
for (const r of rows) console.log(`${r.ok === null ? " " : r.ok ? "✓" : "✗"} ${r.figure.padEnd(w1)}  ${r.measured.padEnd(w2)}  ${r.target}`);
console.log(`\nwritten: bench/results.json`);
if (missed.length > 0) {
  console.error(`\n${missed.length} target(s) missed:\n${missed.map((m) => `  - ${m}`).join("\n")}`);
  process.exit(1);
}
