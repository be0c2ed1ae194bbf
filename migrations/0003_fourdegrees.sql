-- 4Degrees connector: the workspace API key of each account (encrypted at rest) and the CSV
-- bridge's bookkeeping (which file rows were already imported, so a re-import is a no-op).

-- One row per account that has a 4Degrees API key set through the admin API. (A single-account
-- deployment may instead give the key as the FOURDEGREES_API_KEY secret; then no row exists.)
-- `api_key_enc` is an AES-256-GCM ciphertext (`v1.<kid>.<iv>.<data>`, src/lib/crypto.ts) whose
-- additional data is `fourdegrees_account:{account_id}`, so a value copied into another row does
-- not decrypt. `workspace_id` and `actor_id` come from `GET /me` when the key is set.
CREATE TABLE fourdegrees_accounts (
  account_id    TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  workspace_id  TEXT NOT NULL UNIQUE,
  api_key_enc   TEXT NOT NULL,
  key_id        TEXT NOT NULL,          -- encryption key id of api_key_enc (rotation)
  key_hint      TEXT NOT NULL,          -- last 4 characters of the key, for people; never the key
  actor_type    TEXT,                   -- the actor our writes carry (echo detection)
  actor_id      TEXT,
  verified_at   INTEGER NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

-- One row per CSV import run: its report (skipped rows capped) for the console.
CREATE TABLE fourdegrees_imports (
  id            TEXT PRIMARY KEY,
  account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  filename      TEXT,
  rows_total    INTEGER NOT NULL,
  created       INTEGER NOT NULL,
  updated       INTEGER NOT NULL,
  linked        INTEGER NOT NULL,
  unchanged     INTEGER NOT NULL,
  skipped       INTEGER NOT NULL,
  skipped_json  TEXT NOT NULL,          -- first 1,000 skipped rows: [{line, row, reason}]
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER NOT NULL
);
CREATE INDEX fourdegrees_imports_account ON fourdegrees_imports (account_id, started_at);

-- Every imported row's stable key (4Degrees id, HighLevel id or normalised deal name) and the
-- hash of its content as last enqueued. Same key + same hash = unchanged: nothing is enqueued.
CREATE TABLE fourdegrees_import_rows (
  account_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  import_key      TEXT NOT NULL,
  content_hash    TEXT NOT NULL,
  last_import_id  TEXT NOT NULL,
  first_seen_at   INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (account_id, import_key)
);
