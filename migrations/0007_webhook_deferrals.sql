-- Webhook deliveries the ingress answered 429 ("cannot take it now": queue or D1 trouble), so the
-- provider retries. HighLevel retries such a delivery about 10 minutes later with the same body —
-- and so the same `timestamp`, by then older than the 5-minute freshness window. A delivery whose
-- (signed) webhookId is recorded here is accepted past that window for its retry period, once
-- (the receipt dedupes it after that). Pruned with the receipts by the cron.
CREATE TABLE webhook_deferrals (
  provider      TEXT NOT NULL CHECK (provider IN ('highlevel', 'fourdegrees')),
  webhook_id    TEXT NOT NULL,
  deferred_at   INTEGER NOT NULL,                  -- epoch ms of the 429 answer
  PRIMARY KEY (provider, webhook_id)
);
CREATE INDEX webhook_deferrals_at ON webhook_deferrals (deferred_at);
