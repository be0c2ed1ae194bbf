/**
 * Webhook receipts: dedupe on the provider's delivery id (HighLevel `webhookId`, 4Degrees
 * `webhook-id`). Idempotency lives in D1 (`PRIMARY KEY (provider, webhook_id)` +
 * `INSERT … ON CONFLICT DO NOTHING`), never in KV, which cannot compare-and-set. Location and
 * workspace events are claimed by the queue consumer, a batch at a time (`claimDeliveries`); app
 * INSTALL/UNINSTALL events by the ingress (`recordReceipt`), which applies them at once.
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

/** The receipt's insert, a no-op when (provider, webhookId) is already recorded; `messageId` names the claiming queue message. */
function insertReceipt(db: D1Database, receipt: Receipt, messageId: string | null = null): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO webhook_receipts (provider, webhook_id, event_type, scope_id, received_at, message_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider, webhook_id) DO NOTHING",
    )
    .bind(receipt.provider, receipt.webhookId, receipt.eventType, receipt.scopeId, receipt.receivedAt, messageId);
}

/** Records a delivery: `"new"` the first time this (provider, webhookId) is seen, else `"duplicate"`. */
export async function recordReceipt(db: D1Database, receipt: Receipt): Promise<"new" | "duplicate"> {
  const result = await insertReceipt(db, receipt).run();
  return result.meta.changes > 0 ? "new" : "duplicate";
}

/** One delivery the queue consumer claims: its receipt and the queue message that carries it. */
export interface Claim {
  receipt: Receipt;
  /** The queue message's id (stable across that message's retries). */
  messageId: string;
}

/**
 * Claims a batch of deliveries in ONE D1 round trip (plus one read when some were seen before):
 * `true` = process it — the first delivery of its (provider, webhookId), or a retry of the very
 * queue message that claimed it; `false` = a duplicate delivery, already claimed by another
 * message. Throws when D1 fails (nothing is claimed then: the batch is one transaction).
 */
export async function claimDeliveries(db: D1Database, claims: readonly Claim[]): Promise<boolean[]> {
  if (claims.length === 0) return [];
  const results = await db.batch(claims.map((c) => insertReceipt(db, c.receipt, c.messageId)));
  const fresh = claims.map((_, i) => (results[i]?.meta.changes ?? 0) > 0);
  const seen = claims.filter((_, i) => !fresh[i]);
  if (seen.length === 0) return fresh;
  // Seen before: ours again (a retried message) or another message's (a duplicate delivery).
  const owners = await db.batch(
    seen.map((c) =>
      db
        .prepare("SELECT message_id FROM webhook_receipts WHERE provider = ? AND webhook_id = ?")
        .bind(c.receipt.provider, c.receipt.webhookId),
    ),
  );
  const ownerOf = new Map(
    seen.map((c, i) => [
      `${c.receipt.provider}:${c.receipt.webhookId}`,
      (owners[i]?.results[0] as { message_id?: unknown } | undefined)?.message_id ?? null,
    ]),
  );
  return claims.map(
    (c, i) => fresh[i] === true || ownerOf.get(`${c.receipt.provider}:${c.receipt.webhookId}`) === c.messageId,
  );
}

/**
 * Gives up a delivery's claim: its message will not be processed (dead-lettered, or replayed from
 * a recorded failure), so the provider's re-send or the replay must claim it afresh instead of
 * being dropped as a duplicate.
 */
export async function releaseReceipt(db: D1Database, provider: Receipt["provider"], webhookId: string): Promise<void> {
  await db
    .prepare("DELETE FROM webhook_receipts WHERE provider = ? AND webhook_id = ?")
    .bind(provider, webhookId)
    .run();
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
export async function deferReceipt(
  db: D1Database,
  provider: Receipt["provider"],
  webhookId: string,
  now: number = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "INSERT INTO webhook_deferrals (provider, webhook_id, deferred_at) VALUES (?, ?, ?) ON CONFLICT (provider, webhook_id) DO UPDATE SET deferred_at = excluded.deferred_at",
    )
    .bind(provider, webhookId, now)
    .run();
}

/** Whether this delivery was answered 429 at or after `since` (its retry may be past the window). */
export async function wasDeferred(
  db: D1Database,
  provider: Receipt["provider"],
  webhookId: string,
  since: number,
): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS hit FROM webhook_deferrals WHERE provider = ? AND webhook_id = ? AND deferred_at >= ?")
    .bind(provider, webhookId, since)
    .first();
  return row !== null;
}

/** Deletes deferrals older than `before` (epoch ms); returns how many went. Called from the cron. */
export async function pruneDeferrals(db: D1Database, before: number): Promise<number> {
  const result = await db.prepare("DELETE FROM webhook_deferrals WHERE deferred_at < ?").bind(before).run();
  return result.meta.changes;
}
