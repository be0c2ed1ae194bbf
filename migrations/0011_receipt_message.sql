-- Webhook deliveries are deduplicated by the queue consumer, not by the ingress (src/sync/consumer.ts,
-- `claimDeliveries` in src/store/webhook-receipts.ts): the ingress verifies and enqueues, and the
-- consumer claims a whole batch's deliveries in one D1 round trip. A claim names the queue message
-- that made it, so a retry of that same message (same id) is not mistaken for a duplicate delivery.
-- NULL for receipts written by the ingress itself (app INSTALL/UNINSTALL events).
ALTER TABLE webhook_receipts ADD COLUMN message_id TEXT;
