/**
 * Retention: the cron (src/index.ts `scheduled`) deletes rows past each table's retention, oldest
 * first, in bounded batches (`DELETE … WHERE rowid IN (SELECT rowid … LIMIT n)`, by the primary key
 * for a WITHOUT ROWID table) and at most
 * `maxStatements` statements a run, so D1 stays far from its 10 GB and no run grows with the
 * backlog. What is still needed is never deleted: open failures, queued notification deliveries,
 * pending ledger writes, and tombstones younger than their (floored) retention. Webhook receipts,
 * deferrals and OAuth states have their own pruning (src/highlevel/cron.ts, src/store/oauth-state.ts).
 */
import type { Config } from "../config.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Rows one DELETE statement removes at most. */
export const PRUNE_BATCH_ROWS = 1_000;

/** Days to keep per table, and the statement budget of one run (from `Config`, src/config.ts). */
export interface RetentionPolicy {
  activityDays: number;
  notificationDays: number;
  failureDays: number;
  tombstoneDays: number;
  importDays: number;
  ledgerDays: number;
  maxStatements: number;
}

/** The policy the configuration sets (`RETENTION_*` vars, validated with their defaults in src/config.ts). */
export function retentionPolicy(config: Config): RetentionPolicy {
  return {
    activityDays: config.RETENTION_ACTIVITY_DAYS,
    notificationDays: config.RETENTION_NOTIFICATION_DAYS,
    failureDays: config.RETENTION_FAILURE_DAYS,
    tombstoneDays: config.RETENTION_TOMBSTONE_DAYS,
    importDays: config.RETENTION_IMPORT_DAYS,
    ledgerDays: config.RETENTION_LEDGER_DAYS,
    maxStatements: config.RETENTION_MAX_STATEMENTS,
  };
}

/** One prunable table: its age column, what may never go, and which retention applies. */
interface Target {
  table: string;
  /** Epoch-ms column compared with the cutoff (indexed, migrations/0012). */
  column: string;
  /** Extra condition: rows that must stay whatever their age are excluded here. */
  keep?: string;
  /** The policy's retention for this table, or a fixed number of days. */
  days: keyof Omit<RetentionPolicy, "maxStatements"> | { fixed: number };
  /** The primary key's columns of a WITHOUT ROWID table (it has no rowid to delete by). */
  key?: string;
}

/** The unusual-activity baseline needs 7 days of hourly counters (src/notify/activity.ts); one more is slack. */
export const ACTIVITY_HOURLY_DAYS = 8;

/** `cron:<kind>:<deal>:` of an automation run's occurrence: the text up to its third colon. */
const CRON_PREFIX = `substr(automation_runs.occurrence, 1,
  5 + instr(substr(automation_runs.occurrence, 6), ':')
    + instr(substr(automation_runs.occurrence, 6 + instr(substr(automation_runs.occurrence, 6), ':')), ':'))`;

const TARGETS: readonly Target[] = [
  { table: "sync_events", column: "at", days: "activityDays" },
  {
    table: "notification_deliveries",
    column: "updated_at",
    keep: "state IN ('delivered', 'failed')",
    days: "notificationDays",
  },
  { table: "sync_failures", column: "replayed_at", keep: "status = 'replayed'", days: "failureDays" },
  { table: "tombstones", column: "deleted_at", days: "tombstoneDays" },
  { table: "fourdegrees_imports", column: "finished_at", days: "importDays" },
  { table: "fourdegrees_import_rows", column: "updated_at", days: "importDays" },
  {
    table: "write_ledger",
    column: "created_at",
    keep: "state != 'pending'",
    days: "ledgerDays",
    key: "account_id, target_side, source_record, change_hash",
  },
  { table: "activity_hourly", column: "hour", days: { fixed: ACTIVITY_HOURLY_DAYS } },
  // Settled runs of change-driven triggers: a pair change's id never recurs, and its duplicate
  // deliveries come within hours. A cron-trigger run (`cron:<kind>:<deal>:<situation>`) lasts as long
  // as its situation — dropping it would fire the rule again — so it goes only once a newer run of
  // the same rule, kind and deal shows the situation has changed.
  {
    table: "automation_runs",
    column: "created_at",
    keep: `state IN ('done', 'skipped', 'test_mode') AND (occurrence NOT LIKE 'cron:%' OR EXISTS (
      SELECT 1 FROM automation_runs AS newer WHERE newer.rule_id = automation_runs.rule_id
        AND newer.created_at > automation_runs.created_at
        AND substr(newer.occurrence, 1, length(${CRON_PREFIX})) = ${CRON_PREFIX}))`,
    days: "activityDays",
  },
];

/** What one run deleted per table, the statements it spent, and whether every table is caught up. */
export interface PruneResult {
  deleted: Record<string, number>;
  statements: number;
  done: boolean;
}

/**
 * Deletes expired rows, `PRUNE_BATCH_ROWS` per statement, the tables taking turns (one statement
 * each per round) so a large backlog in one never starves the others. Stops after
 * `policy.maxStatements` statements (never fewer than one per table); the next run continues.
 */
export async function pruneExpired(
  db: D1Database,
  policy: RetentionPolicy,
  now: number = Date.now(),
  batchRows: number = PRUNE_BATCH_ROWS,
): Promise<PruneResult> {
  const deleted: Record<string, number> = Object.fromEntries(TARGETS.map((t) => [t.table, 0]));
  // Every table gets its first turn in every run, whatever the budget, so none is starved.
  const budget = Math.max(policy.maxStatements, TARGETS.length);
  let pending = [...TARGETS];
  let statements = 0;
  while (pending.length > 0 && statements < budget) {
    const next: Target[] = [];
    for (const t of pending) {
      if (statements >= budget) {
        next.push(t);
        continue;
      }
      const cutoff = now - (typeof t.days === "string" ? policy[t.days] : t.days.fixed) * DAY_MS;
      const where = `${t.column} < ?1${t.keep ? ` AND ${t.keep}` : ""}`;
      const key = t.key ? `(${t.key})` : "rowid";
      const res = await db
        .prepare(
          `DELETE FROM ${t.table} WHERE ${key} IN (SELECT ${t.key ?? "rowid"} FROM ${t.table} WHERE ${where} ORDER BY ${t.column} LIMIT ?2)`,
        )
        .bind(cutoff, batchRows)
        .run();
      statements++;
      deleted[t.table] = (deleted[t.table] ?? 0) + res.meta.changes;
      // A full batch may have left more behind: this table takes another turn.
      if (res.meta.changes >= batchRows) next.push(t);
    }
    pending = next;
  }
  return { deleted, statements, done: pending.length === 0 };
}
