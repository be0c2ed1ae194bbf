/**
 * Retention (src/store/retention.ts): under a long simulated run — rows written every day, the
 * cron's prune run every day — each table stays bounded by its retention, what is still needed
 * (open failures, queued deliveries, pending ledger writes, young tombstones) is never deleted,
 * and one run never spends more than its statement budget however large the backlog.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { createAccount, deleteAccount } from "../../src/store/accounts.ts";
import { setActivityCount } from "../../src/store/activity.ts";
import {
  ACTIVITY_HOURLY_DAYS,
  pruneExpired,
  retentionPolicy,
  type RetentionPolicy,
} from "../../src/store/retention.ts";

const DAY = 24 * 60 * 60 * 1000;
const ACC = "ret-acc";
const RULE = "ret-rule";
/** Rows written per table per simulated day. */
const PER_DAY = 4;

/** One day's rows in every pruned table, stamped `at`. */
function dayRows(db: D1Database, day: number, at: number): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  for (let i = 0; i < PER_DAY; i++) {
    const id = `${day}-${i}`;
    out.push(
      db.prepare("INSERT INTO sync_events (account_id, at, kind, outcome) VALUES (?, ?, 'sync', 'ok')").bind(ACC, at),
      db
        .prepare(
          "INSERT INTO notification_deliveries (rule_id, change_key, account_id, event_json, state, created_at, updated_at) VALUES (?, ?, ?, '{}', 'delivered', ?, ?)",
        )
        .bind(RULE, id, ACC, at, at),
      db
        .prepare(
          "INSERT INTO sync_failures (id, account_id, source, message_json, reason, status, created_at, replayed_at) VALUES (?, ?, 'permanent', '{}', 'x', 'replayed', ?, ?)",
        )
        .bind(`ret-${id}`, ACC, at, at),
      db
        .prepare("INSERT INTO tombstones (account_id, side, record_id, deleted_at) VALUES (?, 'highlevel', ?, ?)")
        .bind(ACC, `opp-${id}`, at),
      db
        .prepare(
          "INSERT INTO fourdegrees_imports (id, account_id, filename, rows_total, created, updated, linked, unchanged, skipped, skipped_json, started_at, finished_at) VALUES (?, ?, NULL, 1, 1, 0, 0, 0, 0, '[]', ?, ?)",
        )
        .bind(`imp-${id}`, ACC, at, at),
      db
        .prepare(
          "INSERT INTO fourdegrees_import_rows (account_id, import_key, content_hash, last_import_id, first_seen_at, updated_at) VALUES (?, ?, 'h', ?, ?, ?)",
        )
        .bind(ACC, `name:${id}`, `imp-${id}`, at, at),
      db
        .prepare(
          "INSERT INTO write_ledger (account_id, target_side, source_record, change_hash, operation, state, created_at, updated_at) VALUES (?, 'highlevel', ?, 'c', 'update', 'done', ?, ?)",
        )
        .bind(ACC, `fourdegrees:${id}`, at, at),
    );
  }
  return out;
}

const TABLES = [
  "sync_events",
  "notification_deliveries",
  "sync_failures",
  "tombstones",
  "fourdegrees_imports",
  "fourdegrees_import_rows",
  "write_ledger",
] as const;

async function counts(db: D1Database): Promise<Record<(typeof TABLES)[number], number>> {
  const rows = await db.batch(
    TABLES.map((t) => db.prepare(`SELECT COUNT(*) AS n FROM ${t} WHERE account_id = ?`).bind(ACC)),
  );
  return Object.fromEntries(TABLES.map((t, i) => [t, (rows[i]!.results[0] as { n: number }).n])) as Record<
    (typeof TABLES)[number],
    number
  >;
}

beforeAll(async () => {
  await deleteAccount(env.DB, ACC);
  await createAccount(env.DB, { id: ACC, name: ACC, workspaceId: null, locations: [] });
  await env.DB.prepare(
    "INSERT INTO notification_rules (id, account_id, name, trigger, target_kind, target_url_enc, target_hint, key_id, created_at, updated_at) VALUES (?, ?, 'r', 'deal_won', 'slack', 'x', 'h', 'k1', 0, 0)",
  )
    .bind(RULE, ACC)
    .run();
});

describe("retention", () => {
  it("security: over 120 simulated days every table stays bounded by its retention, and nothing still needed goes", async () => {
    const policy = retentionPolicy(loadConfig(env));
    expect(policy).toMatchObject({
      activityDays: 30,
      notificationDays: 30,
      failureDays: 30,
      tombstoneDays: 90,
      importDays: 90,
      ledgerDays: 30,
    });
    const start = Date.now() - 200 * DAY;
    // Rows that must outlive any retention, written on day 0.
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO sync_failures (id, account_id, source, message_json, reason, status, created_at) VALUES ('ret-open', ?, 'dead_letter', '{}', 'x', 'open', ?)",
      ).bind(ACC, start),
      env.DB.prepare(
        "INSERT INTO notification_deliveries (rule_id, change_key, account_id, event_json, state, created_at, updated_at) VALUES (?, 'ret-queued', ?, '{}', 'queued', ?, ?)",
      ).bind(RULE, ACC, start, start),
      env.DB.prepare(
        "INSERT INTO write_ledger (account_id, target_side, source_record, change_hash, operation, state, created_at, updated_at) VALUES (?, 'highlevel', 'ret-pending', 'c', 'create', 'pending', ?, ?)",
      ).bind(ACC, start, start),
    ]);
    const days = 120;
    const limit = (d: number) => PER_DAY * (d + 1);
    for (let day = 0; day < days; day++) {
      const now = start + day * DAY;
      await env.DB.batch(dayRows(env.DB, day, now));
      const run = await pruneExpired(env.DB, policy, now);
      expect(run.done).toBe(true);
      expect(run.statements).toBeLessThanOrEqual(policy.maxStatements);
      const c = await counts(env.DB);
      expect(c.sync_events).toBeLessThanOrEqual(limit(policy.activityDays));
      expect(c.notification_deliveries).toBeLessThanOrEqual(limit(policy.notificationDays) + 1);
      expect(c.sync_failures).toBeLessThanOrEqual(limit(policy.failureDays) + 1);
      expect(c.tombstones).toBeLessThanOrEqual(limit(policy.tombstoneDays));
      expect(c.fourdegrees_imports).toBeLessThanOrEqual(limit(policy.importDays));
      expect(c.fourdegrees_import_rows).toBeLessThanOrEqual(limit(policy.importDays));
      expect(c.write_ledger).toBeLessThanOrEqual(limit(policy.ledgerDays) + 1);
    }
    // 120 days written; about a retention's worth kept of each.
    const c = await counts(env.DB);
    expect(c.sync_events).toBeGreaterThanOrEqual(PER_DAY * policy.activityDays);
    expect(c.tombstones).toBeGreaterThanOrEqual(PER_DAY * policy.tombstoneDays);
    const kept = await env.DB.batch([
      env.DB.prepare("SELECT status FROM sync_failures WHERE id = 'ret-open'"),
      env.DB.prepare("SELECT state FROM notification_deliveries WHERE change_key = 'ret-queued'"),
      env.DB.prepare("SELECT state FROM write_ledger WHERE source_record = 'ret-pending'"),
      env.DB.prepare("SELECT COUNT(*) AS n FROM tombstones WHERE account_id = ? AND deleted_at >= ?").bind(
        ACC,
        start + (days - 1 - policy.tombstoneDays) * DAY,
      ),
    ]);
    expect(kept.slice(0, 3).map((r) => r.results.length)).toEqual([1, 1, 1]);
    // Every tombstone younger than its retention is still there.
    expect((kept[3]!.results[0] as { n: number }).n).toBe(PER_DAY * (policy.tombstoneDays + 1));
  });

  it("security: a backlog larger than one run's budget is deleted over several runs, never more statements than the budget", async () => {
    // Catch up first (the previous test left rows that are old by today's clock).
    while (!(await pruneExpired(env.DB, retentionPolicy(loadConfig(env)))).done);
    const old = Date.now() - 400 * DAY;
    const rows = Array.from({ length: 2_500 }, () => old);
    await env.DB.prepare(
      "INSERT INTO sync_events (account_id, at, kind, outcome) SELECT ?, value, 'sync', 'ok' FROM json_each(?)",
    )
      .bind(ACC, JSON.stringify(rows))
      .run();
    const policy: RetentionPolicy = { ...retentionPolicy(loadConfig(env)), maxStatements: 10 };
    const runs: Array<{ deleted: number; statements: number }> = [];
    for (let done = false; !done && runs.length < 20;) {
      const r = await pruneExpired(env.DB, policy, Date.now(), 100);
      runs.push({ deleted: r.deleted["sync_events"] ?? 0, statements: r.statements });
      done = r.done;
    }
    // Nine tables take a first turn each; sync_events then has the rest: 2 × 100 rows a run.
    expect(runs.slice(0, -1).every((r) => r.statements === 10 && r.deleted === 200)).toBe(true);
    expect(runs.length).toBe(13);
    expect(
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM sync_events WHERE at = ?").bind(old).first<{ n: number }>())?.n,
    ).toBe(0);
  });

  it("security: settled automation runs of pair changes go after the activity retention, cron-trigger runs once superseded; queued and failed runs stay", async () => {
    while (!(await pruneExpired(env.DB, retentionPolicy(loadConfig(env)))).done);
    const rule = "ret-auto-rule";
    const old = Date.now() - 40 * DAY;
    const recent = Date.now() - 2 * DAY;
    const run = (occurrence: string, state: string, at: number) =>
      env.DB.prepare(
        "INSERT INTO automation_runs (rule_id, occurrence, account_id, state, context_json, created_at, updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
      ).bind(rule, occurrence, ACC, state, at, at);
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO automation_rules (id, account_id, name, rule_json, created_at, updated_at) VALUES (?, ?, 'r', '{}', 0, 0)",
      ).bind(rule, ACC),
      run("change:old-done", "done", old),
      run("change:old-skipped", "skipped", old),
      run("change:old-test", "test_mode", old),
      run("change:old-queued", "queued", old),
      run("change:old-failed", "failed", old),
      run("cron:no_activity:deal_1:123", "done", old),
      // deal_2 went quiet twice: the older situation is superseded by the newer run and goes.
      run("cron:no_activity:deal_2:100", "done", old),
      run("cron:no_activity:deal_2:900", "done", recent),
      run("cron:days_in_stage:deal_2:st_a:100", "done", old),
      run("change:recent-done", "done", recent),
    ]);
    while (!(await pruneExpired(env.DB, retentionPolicy(loadConfig(env)))).done);
    const left = await env.DB.prepare("SELECT occurrence FROM automation_runs WHERE rule_id = ? ORDER BY occurrence")
      .bind(rule)
      .all<{ occurrence: string }>();
    expect(left.results.map((r) => r.occurrence)).toEqual([
      "change:old-failed",
      "change:old-queued",
      "change:recent-done",
      "cron:days_in_stage:deal_2:st_a:100",
      "cron:no_activity:deal_1:123",
      "cron:no_activity:deal_2:900",
    ]);
  });

  it("the unusual-activity counters keep their 7-day baseline (8 days), older hours go", async () => {
    const now = Date.now();
    const hour = (daysAgo: number) => Math.floor((now - daysAgo * DAY) / 3_600_000) * 3_600_000;
    for (const daysAgo of [1, 7, ACTIVITY_HOURLY_DAYS + 1, 30])
      await setActivityCount(env.DB, ACC, "changes", hour(daysAgo), 5);
    while (!(await pruneExpired(env.DB, retentionPolicy(loadConfig(env)), now)).done);
    const { results } = await env.DB.prepare("SELECT hour FROM activity_hourly WHERE account_id = ? ORDER BY hour DESC")
      .bind(ACC)
      .all<{ hour: number }>();
    expect(results.map((r) => r.hour)).toEqual([hour(1), hour(7)]);
  });

  it("error: a retention shorter than its floor, or not a number, is refused and named at start-up", () => {
    expect(() => loadConfig({ ...env, RETENTION_TOMBSTONE_DAYS: "3" } as Env)).toThrow(
      /RETENTION_TOMBSTONE_DAYS: RETENTION_TOMBSTONE_DAYS must be at least 7 days/,
    );
    expect(() => loadConfig({ ...env, RETENTION_LEDGER_DAYS: "1" } as Env)).toThrow(/RETENTION_LEDGER_DAYS/);
    expect(() => loadConfig({ ...env, RETENTION_ACTIVITY_DAYS: "a month" } as Env)).toThrow(ConfigError);
    expect(() => loadConfig({ ...env, RETENTION_MAX_STATEMENTS: "2" } as Env)).toThrow(
      /RETENTION_MAX_STATEMENTS must be at least 10/,
    );
    expect(loadConfig({ ...env, RETENTION_ACTIVITY_DAYS: "7" } as Env).RETENTION_ACTIVITY_DAYS).toBe(7);
  });
});
