/**
 * Bench part 4, "D1 rows per synced change": reads the Worker's D1 meter (src/store/d1-meter.ts,
 * totals and per SQL text) around each change and reports, per change kind, the rows read, the
 * rows written and the statements run beside the targets (≤ 15 rows read + written per update,
 * ≤ 40 per create). The per-statement breakdown goes to the console and results.json, so a
 * regression names the statement that costs it.
 */
import { z } from "zod";
import type { Stack } from "./stack.ts";

const Totals = z.object({ queries: z.number(), rowsRead: z.number(), rowsWritten: z.number() });
const Meter = z.object({
  d1: Totals,
  statements: z.array(Totals.extend({ sql: z.string() })).default([]),
});
/** One reading of the Worker's D1 meter. */
export type MeterReading = z.infer<typeof Meter>;

/** The cost of one change: totals and the statements that ran, most expensive first. */
export interface D1Cost {
  rowsRead: number;
  rowsWritten: number;
  statements: number;
  bySql: Array<{ sql: string; queries: number; rowsRead: number; rowsWritten: number }>;
}

/** Reads the Worker's meter (GET /api/debug/d1-meter, D1_METER=true). */
export async function readMeter(stack: Stack): Promise<MeterReading> {
  return Meter.parse(await stack.admin("GET", "/api/debug/d1-meter"));
}

/** What ran between two readings. */
export function meterDiff(before: MeterReading, after: MeterReading): D1Cost {
  const old = new Map(before.statements.map((s) => [s.sql, s]));
  const bySql = after.statements
    .map((s) => {
      const o = old.get(s.sql);
      return {
        sql: s.sql,
        queries: s.queries - (o?.queries ?? 0),
        rowsRead: s.rowsRead - (o?.rowsRead ?? 0),
        rowsWritten: s.rowsWritten - (o?.rowsWritten ?? 0),
      };
    })
    .filter((s) => s.queries > 0)
    .sort((a, b) => b.rowsRead + b.rowsWritten - (a.rowsRead + a.rowsWritten) || b.queries - a.queries);
  return {
    rowsRead: after.d1.rowsRead - before.d1.rowsRead,
    rowsWritten: after.d1.rowsWritten - before.d1.rowsWritten,
    statements: after.d1.queries - before.d1.queries,
    bySql,
  };
}

/** Statements on per-account configuration (src/store/config-cache.ts keeps them a minute per isolate). */
const CONFIG_TABLES =
  /\b(?:FROM|JOIN)\s+(?:accounts|account_settings|account_locations|fourdegrees_accounts|connections|automation_rules|notification_rules)\b/i;

/** Rows the change spent reading configuration: what a warm configuration cache saves. */
export function configRows(cost: D1Cost): number {
  return cost.bySql.filter((s) => CONFIG_TABLES.test(s.sql)).reduce((n, s) => n + s.rowsRead, 0);
}

/** The per-change targets: rows read + written. */
export const STORAGE_TARGETS = { create: 40, update: 15 } as const;

interface Measured {
  change: string;
  synced: boolean;
  d1: D1Cost;
}

type Record = (figure: string, measured: string, target: string, ok: boolean | null) => void;

/** Records one row per change kind beside its target plus the mean, prints the statements; returns results.json's part. */
export function reportStorage(changes: Measured[], record: Record): unknown {
  for (const c of changes) {
    const limit = c.change.startsWith("create") ? STORAGE_TARGETS.create : STORAGE_TARGETS.update;
    const sum = c.d1.rowsRead + c.d1.rowsWritten;
    record(
      `D1 rows: ${c.change}`,
      `${c.d1.rowsRead} read + ${c.d1.rowsWritten} written = ${sum}; ${c.d1.statements} statements; ${configRows(c.d1)} of the reads configuration (cache misses)${c.synced ? "" : " (NOT SYNCED)"}`,
      `≤ ${limit} rows`,
      c.synced && sum <= limit,
    );
    console.log(`  D1 statements, ${c.change} (queries, rows read, rows written):`);
    for (const s of c.d1.bySql) console.log(`    ${s.queries}× r${s.rowsRead} w${s.rowsWritten}  ${s.sql.slice(0, 150)}`);
  }
  const synced = changes.filter((c) => c.synced);
  const n = Math.max(1, synced.length);
  const read = synced.reduce((t, c) => t + c.d1.rowsRead, 0) / n;
  const written = synced.reduce((t, c) => t + c.d1.rowsWritten, 0) / n;
  const statements = synced.reduce((t, c) => t + c.d1.statements, 0) / n;
  record(
    "D1 rows per synced change (mean)",
    `${read.toFixed(1)} read, ${written.toFixed(1)} written, ${statements.toFixed(1)} statements over ${synced.length} changes`,
    "(printed)",
    null,
  );
  return {
    perChange: changes.map((c) => ({ change: c.change, synced: c.synced, configRowsRead: configRows(c.d1), ...c.d1 })),
    averageRowsRead: read,
    averageRowsWritten: written,
    averageStatements: statements,
  };
}
