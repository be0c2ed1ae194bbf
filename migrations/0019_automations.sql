-- Automation rules (src/automations/, docs/automations.md).

-- A rule: trigger + conditions + actions, as versioned JSON (src/domain/automation-rule.ts).
CREATE TABLE automation_rules (
  id          TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  enabled     INTEGER NOT NULL DEFAULT 1,
  rule_json   TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX automation_rules_account ON automation_rules (account_id, enabled);

-- One row per (rule, trigger occurrence): the claim that makes a rule fire once per occurrence
-- (INSERT … ON CONFLICT DO NOTHING), the context its actions run with, and what they did.
CREATE TABLE automation_runs (
  rule_id       TEXT NOT NULL REFERENCES automation_rules (id) ON DELETE CASCADE,
  occurrence    TEXT NOT NULL,
  account_id    TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('queued', 'done', 'skipped', 'failed', 'test_mode')),
  depth         INTEGER NOT NULL DEFAULT 0,
  context_json  TEXT NOT NULL,
  result_json   TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (rule_id, occurrence)
);
CREATE INDEX automation_runs_account ON automation_runs (account_id, created_at);

-- A change a rule's action wrote to one side (a stage move, a field set): when the sync records the
-- pair change it caused, the change is attributed to the rule (loop guard, chain depth).
CREATE TABLE automation_origins (
  account_id  TEXT NOT NULL,
  side        TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  record_id   TEXT NOT NULL,
  rule_id     TEXT NOT NULL,
  depth       INTEGER NOT NULL,
  patch_json  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, side, record_id, rule_id)
);

-- When a pair entered its current 4Degrees stage (the `days_in_stage` cron trigger); kept by the
-- record job from each recorded change.
CREATE TABLE automation_stage_entries (
  account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  fd_deal_id  TEXT NOT NULL,
  stage_id    TEXT NOT NULL,
  entered_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, fd_deal_id)
);
