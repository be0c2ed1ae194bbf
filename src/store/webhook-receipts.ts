/**
 * Webhook receipts: dedupe on the provider's delivery id (HighLevel `webhookId`, 4Degrees
 * `webhook-id`). Idempotency lives in D1 (`PRIMARY KEY (provider, webhook_id)` +
 * `INSERT … ON CONFLICT DO NOTHING`), never in KV, which cannot compare-and-set.
 */

/** One delivery as received. */
export interface Receipt {
  provider: "highlevel" | "fourdegrees";
  webhookId: string;
  eventType: string;
  /** locationId / workspaceId, when the event names one. */
  scopeId: string | null;
  /** Epoch ms. */
  receivedAt: number;
}

function insertReceipt(db: D1Database, receipt: Receipt): D1PreparedStatement {
  return db
    .prepare("INSERT INTO webhook_receipts (provider, webhook_id, event_type, scope_id, received_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, webhook_id) DO NOTHING")
    .bind(receipt.provider, receipt.webhookId, receipt.eventType, receipt.scopeId, receipt.receivedAt);
}

/** Records a delivery: `"new"` the first time this (provider, webhookId) is seen, else `"duplicate"`. */
export async function recordReceipt(db: D1Database, receipt: Receipt): Promise<"new" | "duplicate"> {
  const result = await insertReceipt(db, receipt).run();
  return result.meta.changes > 0 ? "new" : "duplicate";
}

/**
 * Records a delivery and runs one read (`lookup`) in the same D1 round trip (`db.batch`, one
 * transaction): the ingress needs both, and each round trip to D1 is most of a webhook's cost.
 * Returns the receipt's outcome and the lookup's rows. Throws when either fails (then neither ran).
 */
export async function recordReceiptAndRead(db: D1Database, receipt: Receipt, lookup: D1PreparedStatement): Promise<{ receipt: "new" | "duplicate"; rows: unknown[] }> {
  const [inserted, read] = await db.batch([insertReceipt(db, receipt), lookup]);
  if (!inserted || !read) throw new Error("D1 batch answered fewer results than statements");
  return { receipt: inserted.meta.changes > 0 ? "new" : "duplicate", rows: read.results };
}

/**
 * Forgets a receipt. The ingress calls this when it recorded a delivery but could not enqueue it,
 * so the provider's retry (HighLevel retries on 429) is not mistaken for a duplicate.
 */
export async function forgetReceipt(db: D1Database, provider: Receipt["provider"], webhookId: string): Promise<void> {
  await db.prepare("DELETE FROM webhook_receipts WHERE provider = ? AND webhook_id = ?").bind(provider, webhookId).run();
}

/** Deletes receipts older than `before` (epoch ms); returns how many went. Called from the cron. */
export async function pruneReceipts(db: D1Database, before: number): Promise<number> {
  const result = await db.prepare("DELETE FROM webhook_receipts WHERE received_at < ?").bind(before).run();
  return result.meta.changes;
}

/**
 * Remembers that a delivery was answered 429 (and its receipt forgotten), so its retry is accepted
 * even when its `timestamp` has left the freshness window meanwhile (see migrations/0007).
 */
export async function deferReceipt(db: D1Database, provider: Receipt["provider"], webhookId: string, now: number = Date.now()): Promise<void> {
  await db
    .prepare("INSERT INTO webhook_deferrals (provider, webhook_id, deferred_at) VALUES (?, ?, ?) ON CONFLICT (provider, webhook_id) DO UPDATE SET deferred_at = excluded.deferred_at")
    .bind(provider, webhookId, now)
    .run();
}

/** Whether this delivery was answered 429 at or after `since` (its retry may be past the window). */
export async function wasDeferred(db: D1Database, provider: Receipt["provider"], webhookId: string, since: number): Promise<boolean> {
  const row = await db.prepare("SELECT 1 AS hit FROM webhook_deferrals WHERE provider = ? AND webhook_id = ? AND deferred_at >= ?").bind(provider, webhookId, since).first();
  return row !== null;
}

/** Deletes deferrals older than `before` (epoch ms); returns how many went. Called from the cron. */
export async function pruneDeferrals(db: D1Database, before: number): Promise<number> {
  const result = await db.prepare("DELETE FROM webhook_deferrals WHERE deferred_at < ?").bind(before).run();
  return result.meta.changes;
}
