/**
 * D1 metering for benchmarks (`npm run bench`, figure 4 "storage per change"): a wrapper around a
 * `D1Database` that adds up D1's own `meta.rows_read` / `meta.rows_written` of every statement this
 * isolate runs, in total and per SQL text. Off unless the `D1_METER` var is "true" (src/index.ts
 * wraps `env.DB` then); the totals are read through `GET /api/debug/d1-meter` (src/http/d1-meter.ts).
 *
 * Why totals per isolate and not per request: a synced change spans several invocations (the
 * webhook request, its queue message, the coalesced record job), so the bench reads the totals
 * before and after a change and takes the difference. `wrangler dev` runs one isolate.
 *
 * `first()` and `raw()` do not return `meta`, so the wrapper answers them through `all()` (what D1
 * itself runs for them), keeping their results identical. `exec()` (no meta) and the Durable
 * Object's own use of D1 (token bookkeeping, not wrapped) are not counted.
 */

/** Running totals of the metered database. */
export interface D1MeterTotals {
  queries: number;
  rowsRead: number;
  rowsWritten: number;
  /**
   * Sum of D1's own `meta.duration` (ms): the time the database spent executing these statements.
   * D1 runs one database's statements one at a time, so this is the share of its capacity they used.
   */
  busyMs: number;
  /** Statements that changed the database (`meta.changed_db`): what only the primary can run. */
  writeQueries: number;
  /** The part of `busyMs` those statements took. */
  writeBusyMs: number;
}

/** The totals of one SQL text (whitespace folded), so the bench can say which statement costs what. */
export interface D1MeterStatement extends D1MeterTotals {
  sql: string;
}

const zero = (): D1MeterTotals => ({
  queries: 0,
  rowsRead: 0,
  rowsWritten: 0,
  busyMs: 0,
  writeQueries: 0,
  writeBusyMs: 0,
});
const totals = zero();
const bySql = new Map<string, D1MeterTotals>();

/** The totals so far (a copy). */
export function d1MeterTotals(): D1MeterTotals {
  return { ...totals };
}

/** The totals so far per SQL text (copies). */
export function d1MeterStatements(): D1MeterStatement[] {
  return [...bySql].map(([sql, t]) => ({ sql, ...t }));
}

function count(sql: string, meta: D1Meta | undefined): void {
  let one = bySql.get(sql);
  if (!one) bySql.set(sql, (one = zero()));
  for (const t of [totals, one]) {
    t.queries++;
    t.rowsRead += meta?.rows_read ?? 0;
    t.rowsWritten += meta?.rows_written ?? 0;
    addBusy(t, meta);
  }
}

function addBusy(t: D1MeterTotals, meta: D1Meta | undefined): void {
  const raw = meta?.duration;
  const ms = typeof raw === "number" && Number.isFinite(raw) && raw > 0 ? raw : 0;
  t.busyMs += ms;
  if (meta?.changed_db) {
    t.writeQueries++;
    t.writeBusyMs += ms;
  }
}

/** The real statement behind each metered one (`batch()` needs the real ones), and its SQL. */
const realStatements = new WeakMap<D1PreparedStatement, { real: D1PreparedStatement; sql: string }>();

function meterStatement(statement: D1PreparedStatement, sql: string): D1PreparedStatement {
  const metered = new Proxy(statement, {
    get(target, prop) {
      if (prop === "bind") return (...values: unknown[]) => meterStatement(target.bind(...values), sql);
      if (prop === "run" || prop === "all") {
        return async () => {
          const result = await target.all();
          count(sql, result.meta);
          return result;
        };
      }
      if (prop === "first") {
        return async (column?: string) => {
          const result = await target.all<Record<string, unknown>>();
          count(sql, result.meta);
          const row = result.results[0];
          if (row === undefined) return null;
          return column === undefined ? row : (row[column] ?? null);
        };
      }
      if (prop === "raw") {
        return async (options?: { columnNames?: boolean }) => {
          const result = await target.all<Record<string, unknown>>();
          count(sql, result.meta);
          const rows = result.results.map((row) => Object.values(row));
          const names = result.results[0] ? Object.keys(result.results[0]) : [];
          return options?.columnNames ? [names, ...rows] : rows;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      const bound: unknown = value.bind(target);
      return bound;
    },
  });
  realStatements.set(metered, { real: statement, sql });
  return metered;
}

/** `db` with every statement's D1 `meta` added to the isolate's totals. */
export function meterDatabase(db: D1Database): D1Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare")
        return (query: string) => meterStatement(target.prepare(query), query.replace(/\s+/g, " ").trim());
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const known = statements.map((s) => realStatements.get(s) ?? { real: s, sql: "(unmetered)" });
          const results = await target.batch(known.map((k) => k.real));
          results.forEach((r, i) => count(known[i]?.sql ?? "(unmetered)", r.meta));
          return results;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      const bound: unknown = value.bind(target);
      return bound;
    },
  });
}
