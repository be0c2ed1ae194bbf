/**
 * Failures: permanent errors (recorded and acked by the consumer) and dead letters (messages that
 * exhausted their retries), each with the message needed to replay it once the cause is fixed.
 */
import * as z from "zod";

/** The name of the bucket of failures whose account could not be known (`account_id` NULL). */
export const UNASSIGNED = "unassigned";

export interface Failure {
  id: string;
  accountId: string | null;
  source: "permanent" | "dead_letter";
  message: unknown;
  reason: string;
  status: "open" | "replayed";
  createdAt: number;
  replayedAt: number | null;
}

const Row = z.object({
  id: z.string(),
  account_id: z.string().nullable(),
  source: z.enum(["permanent", "dead_letter"]),
  message_json: z.string(),
  reason: z.string(),
  status: z.enum(["open", "replayed"]),
  created_at: z.number(),
  replayed_at: z.number().nullable(),
});

function toFailure(raw: unknown): Failure {
  const r = Row.parse(raw);
  return {
    id: r.id,
    accountId: r.account_id,
    source: r.source,
    message: JSON.parse(r.message_json),
    reason: r.reason,
    status: r.status,
    createdAt: r.created_at,
    replayedAt: r.replayed_at,
  };
}

/** Records a failure. `id` should be stable per message (a redelivered dead letter is stored once). */
export async function recordFailure(
  db: D1Database,
  f: Omit<Failure, "status" | "replayedAt" | "createdAt"> & { createdAt?: number },
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO sync_failures (id, account_id, source, message_json, reason, status, created_at) VALUES (?, ?, ?, ?, ?, 'open', ?)
       ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, status = 'open', source = excluded.source`,
    )
    .bind(f.id, f.accountId, f.source, JSON.stringify(f.message), f.reason.slice(0, 2000), f.createdAt ?? Date.now())
    .run();
}

/** One failure by id, or null. */
export async function getFailure(db: D1Database, id: string): Promise<Failure | null> {
  const row = await db.prepare("SELECT * FROM sync_failures WHERE id = ?").bind(id).first();
  return row ? toFailure(row) : null;
}

/**
 * The failures of one account, newest first; `accountId` null lists the unassigned bucket (messages
 * whose account could not be known: an unknown location or workspace, an unreadable body).
 */
export async function listFailures(
  db: D1Database,
  accountId: string | null,
  status: Failure["status"] | "all" = "open",
  limit = 200,
): Promise<Failure[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM sync_failures WHERE account_id IS ? AND (? = 'all' OR status = ?) ORDER BY created_at DESC LIMIT ?",
    )
    .bind(accountId, status, status, limit)
    .all();
  return results.map(toFailure);
}

/** Marks a failure replayed (its message was sent again). */
export async function markReplayed(db: D1Database, id: string, now = Date.now()): Promise<void> {
  await db.prepare("UPDATE sync_failures SET status = 'replayed', replayed_at = ? WHERE id = ?").bind(now, id).run();
}
