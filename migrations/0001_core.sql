-- Core tables shared by every connector.

-- An account pairs one 4Degrees workspace with one or more HighLevel locations.
CREATE TABLE accounts (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

-- Webhook receipts: dedupe on the provider's delivery id (HighLevel `webhookId`, 4Degrees `webhook-id`).
-- Idempotency lives in D1 (UNIQUE + INSERT … ON CONFLICT), never in eventually consistent KV.
CREATE TABLE webhook_receipts (
  provider      TEXT NOT NULL CHECK (provider IN ('highlevel', 'fourdegrees')),
  webhook_id    TEXT NOT NULL,
  event_type    TEXT NOT NULL,
  scope_id      TEXT,            -- locationId / workspaceId
  received_at   INTEGER NOT NULL,
  PRIMARY KEY (provider, webhook_id)
);
CREATE INDEX webhook_receipts_received ON webhook_receipts (received_at);
