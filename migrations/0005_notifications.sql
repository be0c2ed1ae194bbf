-- Team notifications (src/notify/) and the report's per-stage win probabilities (src/console/).

-- A rule: when `trigger` matches a change of `account_id`, deliver to the target. The target URL
-- (a Slack incoming-webhook URL is itself a credential) and the Standard Webhooks signing secret of
-- a generic target are AES-256-GCM ciphertexts (src/lib/crypto.ts) bound to `notification_rule:{id}`.
CREATE TABLE notification_rules (
  id                  TEXT PRIMARY KEY,
  account_id          TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name                TEXT NOT NULL,
  trigger             TEXT NOT NULL CHECK (trigger IN ('deal_won', 'deal_lost', 'stage_entered', 'value_changed', 'sync_failure', 'needs_reconnect', 'quota_low')),
  params_json         TEXT NOT NULL DEFAULT '{}',   -- {stage} | {threshold} | {remaining}
  target_kind         TEXT NOT NULL CHECK (target_kind IN ('slack', 'webhook')),
  target_url_enc      TEXT NOT NULL,
  target_hint         TEXT NOT NULL,                -- the URL's host, for people; never the URL
  signing_secret_enc  TEXT,                         -- 'webhook' targets only
  key_id              TEXT NOT NULL,                -- encryption key id (rotation)
  enabled             INTEGER NOT NULL DEFAULT 1,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
);
CREATE INDEX notification_rules_account ON notification_rules (account_id, enabled);

-- One row per (rule, change): the dedupe key that makes a rule fire exactly once per matching
-- change (INSERT … ON CONFLICT DO NOTHING; only the inserting caller enqueues), and the delivery's
-- state for the console.
CREATE TABLE notification_deliveries (
  rule_id      TEXT NOT NULL REFERENCES notification_rules (id) ON DELETE CASCADE,
  change_key   TEXT NOT NULL,
  account_id   TEXT NOT NULL,
  event_json   TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_status  INTEGER,
  last_error   TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (rule_id, change_key)
);
CREATE INDEX notification_deliveries_account ON notification_deliveries (account_id, created_at);

-- The report's weighted forecast: probability (0–100) that an open deal in a stage is won.
-- `stage_id` is the HighLevel stage id of a mapped stage pair.
CREATE TABLE report_stage_probabilities (
  account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  stage_id     TEXT NOT NULL,
  probability  INTEGER NOT NULL CHECK (probability BETWEEN 0 AND 100),
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (account_id, stage_id)
);
