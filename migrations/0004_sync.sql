-- Sync engine: account settings + mapping, ID links with last-synced snapshots, tombstones,
-- note links, the outbound write ledger, the dirty-record (coalescing) table, the activity trail,
-- failures, the review list and backfill checkpoints. See docs/sync.md for how each is used.

-- Per-account sync settings (the `accounts` row itself lives in 0001: id, name, status).
-- `mapping_json` is the validated mapping (src/sync/mapping-config.ts), versioned by `mapping_version`.
CREATE TABLE account_settings (
  account_id          TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  workspace_id        TEXT UNIQUE,                          -- the 4Degrees workspace this account syncs
  conflict_policy     TEXT NOT NULL DEFAULT 'newest' CHECK (conflict_policy IN ('newest', 'fourdegrees', 'highlevel')),
  delete_policy       TEXT NOT NULL DEFAULT 'archive' CHECK (delete_policy IN ('propagate', 'archive', 'ignore')),
  test_mode           INTEGER NOT NULL DEFAULT 0,
  read_only           INTEGER NOT NULL DEFAULT 0,           -- HighLevel → 4Degrees only
  mapping_json        TEXT,
  mapping_version     INTEGER NOT NULL DEFAULT 0,
  updated_at          INTEGER NOT NULL
);

-- The HighLevel locations of an account (a location belongs to at most one account).
CREATE TABLE account_locations (
  location_id   TEXT PRIMARY KEY,
  account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  added_at      INTEGER NOT NULL
);
CREATE INDEX account_locations_account ON account_locations (account_id);

-- One row per linked pair: a 4Degrees deal ↔ a HighLevel opportunity, with the last-synced
-- canonical snapshot (`base_json`, the three-way merge base) and each side's last seen
-- updatedAt / version (the out-of-order guard). `state = 'deleted'` rows are tombstones.
CREATE TABLE links (
  account_id        TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  fd_deal_id        TEXT NOT NULL,
  hl_opportunity_id TEXT NOT NULL,
  hl_location_id    TEXT NOT NULL,
  hl_contact_id     TEXT,
  state             TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleted')),
  base_json         TEXT NOT NULL,
  fd_updated_at     TEXT,
  fd_version        TEXT,
  hl_updated_at     TEXT,
  synced_at         INTEGER NOT NULL,
  deleted_side      TEXT CHECK (deleted_side IN ('fourdegrees', 'highlevel')),
  PRIMARY KEY (account_id, fd_deal_id),
  UNIQUE (account_id, hl_opportunity_id)
);
CREATE INDEX links_contact ON links (account_id, hl_contact_id);

-- Records known deleted on one side (also for records never linked), so a stray update after
-- a delete does not resurrect them.
CREATE TABLE tombstones (
  account_id  TEXT NOT NULL,
  side        TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  record_id   TEXT NOT NULL,
  deleted_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, side, record_id)
);

-- Linked notes. `body_hash` is the hash of the (origin-stripped) body last synced.
CREATE TABLE note_links (
  account_id    TEXT NOT NULL,
  fd_note_id    TEXT NOT NULL,
  hl_note_id    TEXT NOT NULL,
  fd_deal_id    TEXT NOT NULL,
  hl_contact_id TEXT NOT NULL,
  origin        TEXT NOT NULL CHECK (origin IN ('fourdegrees', 'highlevel')),
  body_hash     TEXT NOT NULL,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (account_id, fd_note_id),
  UNIQUE (account_id, hl_note_id)
);
CREATE INDEX note_links_deal ON note_links (account_id, fd_deal_id);

-- Outbound write ledger: one row per intended write, keyed by (account, target side, source
-- record, change hash). `pending` = about to call the API; `done` = the call answered (target_id
-- set). A retry that finds `done` skips the call; one that finds `pending` looks the record up first.
CREATE TABLE write_ledger (
  account_id     TEXT NOT NULL,
  target_side    TEXT NOT NULL CHECK (target_side IN ('fourdegrees', 'highlevel')),
  source_record  TEXT NOT NULL,
  change_hash    TEXT NOT NULL,
  operation      TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
  target_id      TEXT,
  attempts       INTEGER NOT NULL DEFAULT 1,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (account_id, target_side, source_record, change_hash)
);
CREATE INDEX write_ledger_created ON write_ledger (created_at);

-- Dirty records (coalescing): a webhook bumps `seq`; a job clears the row only when `seq` is
-- still what it read, so a change that arrives during a job is never lost.
CREATE TABLE pending_records (
  account_id     TEXT NOT NULL,
  side           TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  kind           TEXT NOT NULL CHECK (kind IN ('deal', 'notes')),
  record_id      TEXT NOT NULL,
  seq            INTEGER NOT NULL,
  first_dirty_at INTEGER NOT NULL,
  last_dirty_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, side, kind, record_id)
);

-- The activity trail: one row per job (and per notable engine decision).
CREATE TABLE sync_events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  account_id   TEXT NOT NULL,
  at           INTEGER NOT NULL,
  kind         TEXT NOT NULL,        -- sync | conflict | echo | review | delete | note | backfill | reconcile | test_mode | failure | alert
  direction    TEXT,                 -- to_highlevel | to_fourdegrees | both | none
  fd_id        TEXT,
  hl_id        TEXT,
  outcome      TEXT NOT NULL,
  detail_json  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sync_events_account_at ON sync_events (account_id, at);

-- Failures: permanent errors and dead letters, with the message needed to replay them.
CREATE TABLE sync_failures (
  id            TEXT PRIMARY KEY,
  account_id    TEXT,
  source        TEXT NOT NULL CHECK (source IN ('permanent', 'dead_letter')),
  message_json  TEXT NOT NULL,
  reason        TEXT NOT NULL,
  status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replayed')),
  created_at    INTEGER NOT NULL,
  replayed_at   INTEGER
);
CREATE INDEX sync_failures_account ON sync_failures (account_id, status);

-- Records the engine will not guess about (unmapped stage, ambiguous match, …).
CREATE TABLE review_items (
  account_id   TEXT NOT NULL,
  side         TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  record_id    TEXT NOT NULL,
  reason       TEXT NOT NULL,
  detail_json  TEXT NOT NULL DEFAULT '{}',
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (account_id, side, record_id)
);

-- Backfill checkpoint: one run per account at a time, resumable after every page.
CREATE TABLE backfill_runs (
  account_id    TEXT PRIMARY KEY,
  run_id        TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  phase         TEXT NOT NULL CHECK (phase IN ('fourdegrees', 'highlevel', 'done')),
  pipeline_idx  INTEGER NOT NULL DEFAULT 0,
  cursor        TEXT,
  done          INTEGER NOT NULL DEFAULT 0,
  total         INTEGER NOT NULL DEFAULT 0,
  created       INTEGER NOT NULL DEFAULT 0,
  matched       INTEGER NOT NULL DEFAULT 0,
  reviewed      INTEGER NOT NULL DEFAULT 0,
  error         TEXT,
  started_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

-- Reconcile checkpoint per account and side (the cron resumes where the last tick stopped).
CREATE TABLE reconcile_cursors (
  account_id    TEXT NOT NULL,
  side          TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  pipeline_idx  INTEGER NOT NULL DEFAULT 0,
  cursor        TEXT,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (account_id, side)
);
