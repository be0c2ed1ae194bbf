/**
 * The many-accounts part of `npm run bench` (docs/scaling.md): ACCOUNTS sandbox tenants
 * (sandbox/tenants.ts) connected to one Worker, each with one deal created in 4Degrees and synced
 * to a HighLevel opportunity. Changes alternate sides: the deal's value in 4Degrees, then the
 * opportunity's name in HighLevel (odd and even accounts start on opposite sides, so every window
 * carries both kinds about equally). Then:
 *   - steady: every account makes one change every INTERVAL seconds (phases spread over the
 *     interval), measured in ROUNDS windows of STEADY seconds;
 *   - burst: every account makes one change at the same instant (half of them on each side), ROUNDS times.
 * Each window reports changes synced per second, change-to-other-side latency (p50 / p95, the
 * other side polled every 50 ms), and D1 statements, rows and busy time (D1's own `meta.duration`,
 * summed by D1_METER) per synced change. The ceiling of one D1 database follows from the busy time:
 * D1 runs a database's statements one at a time, so it saturates at 1000 / busy-ms-per-change
 * changes per second; divided by a stated activity profile it gives the locations one database carries.
 */
import { z } from "zod";
import type { Tenant } from "../../sandbox/tenants.ts";
import { startStack, waitFor, waitQuiet, type Stack } from "./stack.ts";

export interface AccountsOptions {
  accounts: number;
  /** Seconds between two changes of one account in the steady phase. */
  intervalSeconds: number;
  /** Length of each steady window. */
  steadySeconds: number;
  /** Steady windows and bursts, each (the report keeps the median). */
  rounds: number;
  /** The activity profile the location ceiling is stated at. */
  profile: ActivityProfile;
  log: (line: string) => void;
}

/** How busy one location is assumed to be (docs/scaling.md explains the defaults). */
export interface ActivityProfile {
  /** Synced changes per location in an average business hour (either side). */
  changesPerBusinessHour: number;
  /** The busiest minutes' rate over the average business hour's. */
  peakFactor: number;
  /** The share of D1's serial capacity a deployment plans to use (queueing grows fast past it). */
  targetUtilisation: number;
}

/** D1 use over one window, from the meter's totals. */
export interface D1Use {
  queries: number;
  rowsRead: number;
  rowsWritten: number;
  busyMs: number;
  /** Statements that changed the database (only the primary can run them). */
  writeQueries: number;
  writeBusyMs: number;
}

/** One measured window (a steady round or a burst). */
export interface WindowReport {
  changes: number;
  synced: number;
  /** Synced changes over the window's length (steady: its planned length plus the drain of its last changes). */
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  seconds: number;
  /** From the window's planned end (steady) or its start (burst) to the last change seen synced. */
  drainSeconds: number;
  d1: D1Use;
  perChange: {
    statements: number;
    writeStatements: number;
    rowsRead: number;
    rowsWritten: number;
    busyMs: number;
    writeBusyMs: number;
  };
}

export interface AccountsReport {
  accounts: number;
  setup: { bootstrapSeconds: number; createSeconds: number; creates: number; linked: number };
  steady: { offeredPerSecond: number; rounds: WindowReport[]; median: WindowReport };
  burst: { changesPerRound: number; rounds: WindowReport[]; median: WindowReport };
  ceiling: {
    /** Median busy ms per synced change over the steady rounds (the figure the ceiling rests on). */
    busyMsPerChange: number;
    statementsPerChange: number;
    /** 1000 / busyMsPerChange: one database fully busy. */
    changesPerSecond: number;
    /** At the profile's peak, fully busy. */
    locationsAtSaturation: number;
    /** At the profile's peak and its target utilisation. */
    locationsPlanned: number;
    /**
     * The same at D1's documented example of 1 ms per query (developers.cloudflare.com/d1/platform/limits,
     * "How much work can a D1 database do?"): a conservative bound, since local SQLite runs a statement
     * far faster than a production D1 with its storage and replication.
     */
    atDocumentedQueryMs: { msPerStatement: number; changesPerSecond: number; locationsPlanned: number };
    profile: ActivityProfile;
  };
}

const Meter = z.object({
  d1: z.object({
    queries: z.number(),
    rowsRead: z.number(),
    rowsWritten: z.number(),
    busyMs: z.number(),
    writeQueries: z.number(),
    writeBusyMs: z.number(),
  }),
});

async function meter(stack: Stack): Promise<D1Use> {
  return Meter.parse(await stack.admin("GET", "/api/debug/d1-meter")).d1;
}

function minus(a: D1Use, b: D1Use): D1Use {
  return {
    queries: a.queries - b.queries,
    rowsRead: a.rowsRead - b.rowsRead,
    rowsWritten: a.rowsWritten - b.rowsWritten,
    busyMs: a.busyMs - b.busyMs,
    writeQueries: a.writeQueries - b.writeQueries,
    writeBusyMs: a.writeBusyMs - b.writeBusyMs,
  };
}

/** The q-quantile (0..1) of `values` (nearest rank); 0 for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

/** The window whose `key` is the median of the windows (the lower middle for an even count). */
function medianBy(windows: readonly WindowReport[], key: (w: WindowReport) => number): WindowReport {
  const sorted = [...windows].sort((a, b) => key(a) - key(b));
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!mid) throw new Error("no windows measured");
  return mid;
}

/** The median of every figure over the windows, figure by figure. */
function medianWindow(windows: readonly WindowReport[]): WindowReport {
  const m = (key: (w: WindowReport) => number) => key(medianBy(windows, key));
  return {
    changes: m((w) => w.changes),
    synced: m((w) => w.synced),
    perSecond: m((w) => w.perSecond),
    p50Ms: m((w) => w.p50Ms),
    p95Ms: m((w) => w.p95Ms),
    maxMs: m((w) => w.maxMs),
    seconds: m((w) => w.seconds),
    drainSeconds: m((w) => w.drainSeconds),
    d1: {
      queries: m((w) => w.d1.queries),
      rowsRead: m((w) => w.d1.rowsRead),
      rowsWritten: m((w) => w.d1.rowsWritten),
      busyMs: m((w) => w.d1.busyMs),
      writeQueries: m((w) => w.d1.writeQueries),
      writeBusyMs: m((w) => w.d1.writeBusyMs),
    },
    perChange: {
      statements: m((w) => w.perChange.statements),
      writeStatements: m((w) => w.perChange.writeStatements),
      rowsRead: m((w) => w.perChange.rowsRead),
      rowsWritten: m((w) => w.perChange.rowsWritten),
      busyMs: m((w) => w.perChange.busyMs),
      writeBusyMs: m((w) => w.perChange.writeBusyMs),
    },
  };
}

/** One account under test: its tenant and its linked deal / opportunity. */
interface Linked {
  tenant: Tenant;
  dealId: string;
  oppId: string;
  /** Changes made so far; with the account's number it picks the side, so every window has both halves. */
  turn: number;
}

/** A change in flight: when it was made and how to see it on the other side. */
interface Pending {
  at: number;
  seen: () => boolean;
  doneAt: number | null;
}

/** Watches pending changes every 50 ms and stamps the moment each one shows on the other side. */
class Watcher {
  readonly #pending = new Set<Pending>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor() {
    this.#timer = setInterval(() => this.check(), 50);
  }

  add(change: Pending): void {
    this.#pending.add(change);
  }

  check(): void {
    const now = Date.now();
    for (const p of this.#pending) {
      if (p.seen()) {
        p.doneAt = now;
        this.#pending.delete(p);
      }
    }
  }

  get open(): number {
    return this.#pending.size;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Runs `work` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++];
        if (item !== undefined) await work(item);
      }
    }),
  );
}

/**
 * A window's figures. `seconds` is the steady window's planned length (the rate it kept up with),
 * or, for a burst (`seconds` undefined), from the burst to its last change seen on the other side.
 */
function windowReport(changes: readonly Pending[], started: number, d1: D1Use, planned?: number): WindowReport {
  const done = changes.filter((c) => c.doneAt !== null);
  const latencies = done.map((c) => (c.doneAt ?? 0) - c.at);
  const end = Math.max(started, ...done.map((c) => c.doneAt ?? 0));
  const seconds = planned ?? (end - started) / 1000;
  const n = Math.max(1, done.length);
  return {
    changes: changes.length,
    synced: done.length,
    perSecond: seconds > 0 ? done.length / seconds : 0,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    maxMs: Math.max(0, ...latencies),
    seconds,
    drainSeconds: Math.max(0, (end - started) / 1000 - (planned ?? 0)),
    d1,
    perChange: {
      statements: d1.queries / n,
      writeStatements: d1.writeQueries / n,
      rowsRead: d1.rowsRead / n,
      rowsWritten: d1.rowsWritten / n,
      busyMs: d1.busyMs / n,
      writeBusyMs: d1.writeBusyMs / n,
    },
  };
}

/** The many-accounts measurement on a fresh stack (stopped at the end, whatever happened). */
export async function runAccounts(options: AccountsOptions): Promise<AccountsReport> {
  const { log } = options;
  const stack = await startStack({
    vars: {
      D1_METER: "true",
      FOURDEGREES_RATE_PER_SECOND: "1000",
      FOURDEGREES_CONCURRENCY: "10",
    },
    sandboxSettings: { FOURDEGREES_RATE_LIMIT: "100000" },
  });
  const watcher = new Watcher();
  try {
    const sb = stack.sb;
    const tenants = sb.tenants.seed(options.accounts);
    sb.tenants.subscribe(`${stack.worker.url}/webhooks/4degrees`);

    // ---------- setup: connect every tenant, then one synced deal each ----------
    let t0 = Date.now();
    await pool(tenants, 8, async (t) => {
      await stack.admin("POST", "/api/bootstrap", {
        accountId: `tenant-${String(t.n).padStart(4, "0")}`,
        name: `Tenant ${t.n}`,
        highlevel: { locationId: t.highlevel.locationId, privateIntegrationToken: t.highlevel.pit },
        fourdegrees: { apiKey: t.fourdegrees.apiKey },
        backfill: false,
        conflictPolicy: "newest",
        deletePolicy: "propagate",
      });
    });
    const bootstrapSeconds = (Date.now() - t0) / 1000;
    log(`  ${tenants.length} accounts connected in ${bootstrapSeconds.toFixed(1)} s`);

    t0 = Date.now();
    const external = (t: Tenant, dealId: string) =>
      t.fourdegrees.sandbox.deal(dealId).external_refs?.find((r) => r.system === "highlevel")?.id ?? null;
    const made = tenants.map((t) => ({
      t,
      dealId: t.fourdegrees.sandbox.createDealAsUser({
        name: `Tenant ${t.n} Alpha`,
        pipeline_id: t.fourdegrees.pipelineId,
        stage_id: t.fourdegrees.stageIds[0] ?? "",
        value: { amount_minor: 100_000_00, currency: "USD" },
      }).id,
    }));
    await waitFor(() => made.every((m) => external(m.t, m.dealId) !== null), 120_000 + tenants.length * 1_000);
    const createSeconds = (Date.now() - t0) / 1000;
    const accounts: Linked[] = made.flatMap((m) => {
      const oppId = external(m.t, m.dealId);
      return oppId
        ? [{ tenant: m.t, dealId: m.dealId, oppId, turn: 0 }]
        : [];
    });
    log(`  ${accounts.length} of ${made.length} deals linked in ${createSeconds.toFixed(1)} s`);
    if (accounts.length === 0) throw new Error("no account got its deal linked");
    await waitQuiet(stack, 3_000, 60_000);

    // ---------- the changes ----------
    let serial = 0;
    /** The account's next change: its deal's value in 4Degrees, or its opportunity's name in HighLevel. */
    const change = (l: Linked): Pending => {
      const at = Date.now();
      if ((l.turn++ + l.tenant.n) % 2 === 0) {
        const amount = 300_000 + ++serial;
        l.tenant.fourdegrees.sandbox.updateDealAsUser(l.dealId, { value: { amount_minor: amount * 100, currency: "USD" } });
        return { at, seen: () => sb.highlevel.store.opportunities.get(l.oppId)?.monetaryValue === amount, doneAt: null };
      }
      const name = `Tenant ${l.tenant.n} Alpha r${++serial}`;
      sb.highlevel.service.updateOpportunity(l.oppId, { name });
      return { at, seen: () => l.tenant.fourdegrees.sandbox.deal(l.dealId).name === name, doneAt: null };
    };
    const drain = async (changes: readonly Pending[], timeoutMs: number) => {
      await waitFor(() => {
        watcher.check();
        return changes.every((c) => c.doneAt !== null);
      }, timeoutMs);
      await waitQuiet(stack, 2_000, 60_000);
    };

    // Steady: each account one change per interval, the accounts' phases spread evenly over it.
    const offeredPerSecond = accounts.length / options.intervalSeconds;
    const steadyRounds: WindowReport[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const before = await meter(stack);
      const started = Date.now();
      const changes: Pending[] = [];
      const timers: Array<ReturnType<typeof setTimeout>> = [];
      const end = started + options.steadySeconds * 1000;
      accounts.forEach((l, i) => {
        const phase = (i / accounts.length) * options.intervalSeconds * 1000;
        const tick = (at: number) => {
          if (at >= end) return;
          timers.push(
            setTimeout(
              () => {
                const c = change(l);
                changes.push(c);
                watcher.add(c);
                tick(at + options.intervalSeconds * 1000);
              },
              Math.max(0, at - Date.now()),
            ),
          );
        };
        tick(started + phase);
      });
      await new Promise((r) => setTimeout(r, options.steadySeconds * 1000));
      for (const t of timers) clearTimeout(t);
      await drain(changes, 120_000);
      const w = windowReport(changes, started, minus(await meter(stack), before), options.steadySeconds);
      steadyRounds.push(w);
      log(
        `  steady ${round + 1}/${options.rounds}: ${w.synced}/${w.changes} synced, ${w.perSecond.toFixed(1)}/s, p95 ${w.p95Ms} ms, ${w.perChange.statements.toFixed(1)} statements and ${w.perChange.busyMs.toFixed(2)} D1 ms per change`,
      );
    }

    // Burst: every account one change at once (the turns alternate, so about half on each side).
    const burstRounds: WindowReport[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const before = await meter(stack);
      const started = Date.now();
      const changes = accounts.map(change);
      for (const c of changes) watcher.add(c);
      await drain(changes, 60_000 + changes.length * 500);
      const w = windowReport(changes, started, minus(await meter(stack), before));
      burstRounds.push(w);
      log(
        `  burst ${round + 1}/${options.rounds}: ${w.synced}/${w.changes} synced in ${w.seconds.toFixed(1)} s = ${w.perSecond.toFixed(1)}/s, p95 ${w.p95Ms} ms, ${w.perChange.busyMs.toFixed(2)} D1 ms per change`,
      );
    }

    const steady = medianWindow(steadyRounds);
    const burst = medianWindow(burstRounds);
    const busyMsPerChange = steady.perChange.busyMs;
    const changesPerSecond = busyMsPerChange > 0 ? 1000 / busyMsPerChange : 0;
    const p = options.profile;
    const perLocationPeak = (p.changesPerBusinessHour * p.peakFactor) / 3600;
    const documentedMs = 1;
    const documentedPerSecond = 1000 / (documentedMs * Math.max(1, steady.perChange.statements));
    return {
      accounts: accounts.length,
      setup: { bootstrapSeconds, createSeconds, creates: made.length, linked: accounts.length },
      steady: { offeredPerSecond, rounds: steadyRounds, median: steady },
      burst: { changesPerRound: accounts.length, rounds: burstRounds, median: burst },
      ceiling: {
        busyMsPerChange,
        statementsPerChange: steady.perChange.statements,
        changesPerSecond,
        locationsAtSaturation: Math.floor(changesPerSecond / perLocationPeak),
        locationsPlanned: Math.floor((changesPerSecond * p.targetUtilisation) / perLocationPeak),
        atDocumentedQueryMs: {
          msPerStatement: documentedMs,
          changesPerSecond: documentedPerSecond,
          locationsPlanned: Math.floor((documentedPerSecond * p.targetUtilisation) / perLocationPeak),
        },
        profile: p,
      },
    };
  } finally {
    watcher.stop();
    await stack.stop();
  }
}

/** A row of the bench table: figure, measured, target, met (null = printed only). */
export type Record = (figure: string, measured: string, target: string, ok: boolean | null) => void;

/** The locations one D1 database should carry (issue 16: "ready for a thousand locations"). */
export const LOCATIONS_TARGET = 1_000;

/** Prints the report as bench rows (medians of the rounds; every round is in results.json). */
export function recordAccounts(r: AccountsReport, record: Record): void {
  const s = r.steady.median;
  const b = r.burst.median;
  const c = r.ceiling;
  const rounds = r.steady.rounds.length;
  record(
    "accounts: connected, deals linked",
    `${r.accounts} accounts; ${r.setup.linked}/${r.setup.creates} creates linked in ${r.setup.createSeconds.toFixed(1)} s (bootstrap ${r.setup.bootstrapSeconds.toFixed(1)} s)`,
    "all",
    r.setup.linked === r.setup.creates,
  );
  const allSynced = (ws: readonly WindowReport[]) => ws.every((w) => w.synced === w.changes);
  record(
    `accounts steady (median of ${rounds}): synced/s, drain, p50/p95`,
    `${s.synced}/${s.changes} synced at ${s.perSecond.toFixed(1)}/s (offered ${r.steady.offeredPerSecond.toFixed(1)}/s), the last ${s.drainSeconds.toFixed(1)} s after the window closed; p50 ${(s.p50Ms / 1000).toFixed(1)} s, p95 ${(s.p95Ms / 1000).toFixed(1)} s`,
    "every change synced (p95 printed; single change ≤ 3 s)",
    allSynced(r.steady.rounds),
  );
  record(
    `accounts burst (median of ${r.burst.rounds.length}): synced/s, p95`,
    `${b.synced}/${b.changes} in ${b.seconds.toFixed(1)} s = ${b.perSecond.toFixed(1)}/s; p50 ${(b.p50Ms / 1000).toFixed(1)} s, p95 ${(b.p95Ms / 1000).toFixed(1)} s (CPU-bound here)`,
    "every change synced",
    allSynced(r.burst.rounds),
  );
  record(
    "accounts D1 per change (steady | burst)",
    `${s.perChange.statements.toFixed(1)} | ${b.perChange.statements.toFixed(1)} statements (${s.perChange.writeStatements.toFixed(1)} | ${b.perChange.writeStatements.toFixed(1)} writes), ${(s.perChange.rowsRead + s.perChange.rowsWritten).toFixed(1)} | ${(b.perChange.rowsRead + b.perChange.rowsWritten).toFixed(1)} rows, ${s.perChange.busyMs.toFixed(2)} | ${b.perChange.busyMs.toFixed(2)} busy ms (writes ${s.perChange.writeBusyMs.toFixed(2)} | ${b.perChange.writeBusyMs.toFixed(2)})`,
    "(printed)",
    null,
  );
  const p = c.profile;
  record(
    "accounts: one D1 database's ceiling",
    `${c.changesPerSecond.toFixed(0)} changes/s (1000 / ${c.busyMsPerChange.toFixed(2)} ms); ${c.locationsAtSaturation.toLocaleString("en-US")} locations saturated, ${c.locationsPlanned.toLocaleString("en-US")} at ${Math.round(p.targetUtilisation * 100)}% busy (${p.changesPerBusinessHour} changes/location/business hour × ${p.peakFactor} peak)`,
    `≥ ${LOCATIONS_TARGET.toLocaleString("en-US")} locations planned`,
    c.locationsPlanned >= LOCATIONS_TARGET,
  );
  const d = c.atDocumentedQueryMs;
  record(
    "accounts: the same at D1's documented 1 ms/query",
    `${d.changesPerSecond.toFixed(0)} changes/s (${c.statementsPerChange.toFixed(1)} statements × ${d.msPerStatement} ms); ${d.locationsPlanned.toLocaleString("en-US")} locations at ${Math.round(p.targetUtilisation * 100)}% busy`,
    "(printed: the conservative bound; past it, more databases — docs/scaling.md)",
    null,
  );
}
