/**
 * The outbound write ledger: one row per intended write, keyed by (account, target side, source
 * record, change hash). Exactly-once *effects* on top of at-least-once delivery:
 * - `begin` inserts `pending` (or returns the existing row): a retry that finds `done` knows the
 *   target id and skips the call; one that finds `pending` knows a crash may have happened after
 *   the call and must look the record up before writing again;
 * - the ledger key doubles as the 4Degrees `Idempotency-Key`, so a replayed create answers the
 *   first create's record.
 * In D1, not KV: KV is eventually consistent and has no compare-and-set.
 */
import * as z from "zod";
import type { SideName } from "./links.ts";

export interface LedgerKey {
  accountId: string;
  targetSide: SideName;
  /** e.g. `fourdegrees:deal_1` or `highlevel:note:abc`. */
  sourceRecord: string;
  /** A hash of the change (or `create`). */
  changeHash: string;
}

export interface LedgerEntry extends LedgerKey {
  operation: string;
  state: "pending" | "done" | "failed";
  targetId: string | null;
  attempts: number;
  /** The request the first attempt sent (parsed JSON), for a retry to re-send unchanged; null when none was recorded. */
  request: unknown;
  /** When the first attempt began (epoch ms). */
  createdAt: number;
}

const Row = z.object({
  account_id: z.string(),
  target_side: z.enum(["fourdegrees", "highlevel"]),
  source_record: z.string(),
  change_hash: z.string(),
  operation: z.string(),
  state: z.enum(["pending", "done", "failed"]),
  target_id: z.string().nullable(),
  attempts: z.number(),
  request_json: z.string().nullish(),
  created_at: z.number(),
});

function toEntry(raw: unknown): LedgerEntry {
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    targetSide: r.target_side,
    sourceRecord: r.source_record,
    changeHash: r.change_hash,
    operation: r.operation,
    state: r.state,
    targetId: r.target_id,
    attempts: r.attempts,
    request: r.request_json ? JSON.parse(r.request_json) : null,
    createdAt: r.created_at,
  };
}

/** The idempotency key a ledger row stands for (stable across retries). */
export function ledgerIdempotencyKey(key: LedgerKey): string {
  return `sync:${key.accountId}:${key.targetSide}:${key.sourceRecord}:${key.changeHash}`.slice(0, 255);
}

/**
 * Starts a write: inserts a `pending` row, or (when the key exists) bumps `attempts` and returns
 * the row as it was, so the caller can tell a first attempt (`fresh: true`) from a retry.
 * `request` (JSON-serialisable) is kept with a new row and never replaced: a retry reads it back
 * (`entry.request`) and re-sends the first attempt's request with the same idempotency key.
 */
export async function beginWrite(
  db: D1Database,
  key: LedgerKey,
  operation: string,
  now = Date.now(),
  request?: unknown,
): Promise<{ fresh: boolean; entry: LedgerEntry }> {
  const requestJson = request === undefined ? null : JSON.stringify(request);
  const inserted = await db
    .prepare(
      "INSERT INTO write_ledger (account_id, target_side, source_record, change_hash, operation, state, attempts, created_at, updated_at, request_json) VALUES (?, ?, ?, ?, ?, 'pending', 1, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(key.accountId, key.targetSide, key.sourceRecord, key.changeHash, operation, now, now, requestJson)
    .run();
  if (inserted.meta.changes > 0) {
    const entry: LedgerEntry = {
      ...key,
      operation,
      state: "pending",
      targetId: null,
      attempts: 1,
      createdAt: now,
      request: request ?? null,
    };
    return { fresh: true, entry };
  }
  const row = await db
    .prepare(
      "UPDATE write_ledger SET attempts = attempts + 1, updated_at = ? WHERE account_id = ? AND target_side = ? AND source_record = ? AND change_hash = ? RETURNING *",
    )
    .bind(now, key.accountId, key.targetSide, key.sourceRecord, key.changeHash)
    .first();
  const entry = toEntry(row);
  return { fresh: false, entry: { ...entry, attempts: entry.attempts - 1 } };
}

/** Marks a write done with the id of the record it created or changed. */
export async function completeWrite(
  db: D1Database,
  key: LedgerKey,
  targetId: string | null,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "UPDATE write_ledger SET state = 'done', target_id = ?, updated_at = ? WHERE account_id = ? AND target_side = ? AND source_record = ? AND change_hash = ?",
    )
    .bind(targetId, now, key.accountId, key.targetSide, key.sourceRecord, key.changeHash)
    .run();
}

/** Marks a write failed for good (a permanent error); a later identical change starts over. */
export async function failWrite(db: D1Database, key: LedgerKey, now = Date.now()): Promise<void> {
  await db
    .prepare(
      "UPDATE write_ledger SET state = 'failed', updated_at = ? WHERE account_id = ? AND target_side = ? AND source_record = ? AND change_hash = ?",
    )
    .bind(now, key.accountId, key.targetSide, key.sourceRecord, key.changeHash)
    .run();
}

export async function getWrite(db: D1Database, key: LedgerKey): Promise<LedgerEntry | null> {
  const row = await db
    .prepare(
      "SELECT * FROM write_ledger WHERE account_id = ? AND target_side = ? AND source_record = ? AND change_hash = ?",
    )
    .bind(key.accountId, key.targetSide, key.sourceRecord, key.changeHash)
    .first();
  return row ? toEntry(row) : null;
}

/** Counts ledger rows by state for an account (tests and the console). */
export async function ledgerCounts(db: D1Database, accountId: string): Promise<Record<LedgerEntry["state"], number>> {
  const { results } = await db
    .prepare("SELECT state, COUNT(*) AS n FROM write_ledger WHERE account_id = ? GROUP BY state")
    .bind(accountId)
    .all();
  const out: Record<LedgerEntry["state"], number> = { pending: 0, done: 0, failed: 0 };
  for (const r of z.array(z.object({ state: z.enum(["pending", "done", "failed"]), n: z.number() })).parse(results))
    out[r.state] = r.n;
  return out;
}

/**
 * The creates toward `targetSide` of `accountId` begun after `since` (epoch ms) that are still in
 * flight (pending) or made `targetId` — with their requests. Read through `write_ledger_created`,
 * so the rows read are the deployment's ledger rows of that window, not the account's whole ledger.
 */
export async function recentCreates(
  db: D1Database,
  accountId: string,
  targetSide: SideName,
  since: number,
  targetId: string,
): Promise<LedgerEntry[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM write_ledger WHERE created_at > ? AND account_id = ? AND target_side = ? AND change_hash = 'create' AND (state = 'pending' OR target_id = ?) LIMIT 50",
    )
    .bind(since, accountId, targetSide, targetId)
    .all();
  return results.map(toEntry);
}
