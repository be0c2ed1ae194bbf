-- Alerts for unusual activity and the mass-delete guard (docs/sync.md "Alerts" and "Mass-delete guard").

-- The guard's per-account thresholds: more than `delete_guard_max` deletes, or more than
-- `delete_guard_percent` % of the account's pairs, from one side within an hour puts further deletes on hold.
ALTER TABLE account_settings ADD COLUMN delete_guard_max INTEGER NOT NULL DEFAULT 10;
ALTER TABLE account_settings ADD COLUMN delete_guard_percent INTEGER NOT NULL DEFAULT 20;

-- Deletes on hold: a pair whose record was deleted on `gone_side` while the guard was tripped. The
-- other side is untouched until a person decides: `approved` applies the account's delete policy,
-- `discarded` unlinks the pair and leaves the surviving record alone. The row goes once applied.
CREATE TABLE held_deletes (
  account_id        TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  fd_deal_id        TEXT NOT NULL,
  hl_opportunity_id TEXT NOT NULL,
  hl_location_id    TEXT NOT NULL,
  gone_side         TEXT NOT NULL CHECK (gone_side IN ('fourdegrees', 'highlevel')),
  state             TEXT NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'approved', 'discarded')),
  held_at           INTEGER NOT NULL,
  decided_at        INTEGER,
  PRIMARY KEY (account_id, fd_deal_id)
);
CREATE INDEX held_deletes_state ON held_deletes (account_id, state, held_at);

-- Compact hourly counters, the baseline of the spike alerts (src/notify/activity.ts): one row per
-- (account, metric, hour), 7 days needed, pruned by src/store/retention.ts. `episode` is the start
-- hour of the spike episode this hour belongs to (null: not spiking), so an episode alerts once.
CREATE TABLE activity_hourly (
  account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  metric      TEXT NOT NULL CHECK (metric IN ('failures', 'rate_limited', 'deletes', 'changes')),
  hour        INTEGER NOT NULL,     -- epoch ms of the hour's start
  count       INTEGER NOT NULL,
  episode     INTEGER,
  PRIMARY KEY (account_id, metric, hour)
);
CREATE INDEX activity_hourly_hour ON activity_hourly (hour);

-- Notification rules gain the `unusual_activity` and `deletes_held` triggers. SQLite cannot alter a
-- CHECK, so both tables are rebuilt; every row is copied (the deliveries first, as dropping the
-- rules would cascade to them).
CREATE TABLE notification_deliveries_copy AS SELECT * FROM notification_deliveries;
DROP TABLE notification_deliveries;
CREATE TABLE notification_rules_new (
  id                  TEXT PRIMARY KEY,
  account_id          TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name                TEXT NOT NULL,
  trigger             TEXT NOT NULL CHECK (trigger IN ('deal_won', 'deal_lost', 'stage_entered', 'value_changed', 'sync_failure', 'needs_reconnect', 'quota_low', 'unusual_activity', 'deletes_held')),
  params_json         TEXT NOT NULL DEFAULT '{}',
  target_kind         TEXT NOT NULL CHECK (target_kind IN ('slack', 'webhook')),
  target_url_enc      TEXT NOT NULL,
  target_hint         TEXT NOT NULL,
  signing_secret_enc  TEXT,
  key_id              TEXT NOT NULL,
  enabled             INTEGER NOT NULL DEFAULT 1,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
);
INSERT INTO notification_rules_new SELECT id, account_id, name, trigger, params_json, target_kind, target_url_enc,
  target_hint, signing_secret_enc, key_id, enabled, created_at, updated_at FROM notification_rules;
DROP TABLE notification_rules;
ALTER TABLE notification_rules_new RENAME TO notification_rules;
CREATE INDEX notification_rules_account ON notification_rules (account_id, enabled);
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
  lease_until  INTEGER,
  PRIMARY KEY (rule_id, change_key)
);
INSERT INTO notification_deliveries (rule_id, change_key, account_id, event_json, state, attempts, last_status,
  last_error, created_at, updated_at, lease_until)
  SELECT rule_id, change_key, account_id, event_json, state, attempts, last_status, last_error, created_at,
  updated_at, lease_until FROM notification_deliveries_copy;
DROP TABLE notification_deliveries_copy;
CREATE INDEX notification_deliveries_account ON notification_deliveries (account_id, created_at);
CREATE INDEX notification_deliveries_settled ON notification_deliveries (state, updated_at);
