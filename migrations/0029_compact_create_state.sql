-- Fewer D1 rows per create (docs/benchmarks.md, storage): `write_ledger` (one row per create)
-- becomes a WITHOUT ROWID table keyed by its primary key, so an insert writes the row once instead
-- of a rowid row plus the primary key's index, and a ledger update finds its row in one b-tree.
-- (`note_links` stays a rowid table: as WITHOUT ROWID, SQLite answers its by-deal lookup from the
-- primary key's account prefix, every note of the account, instead of `note_links_deal`.) Retention deletes ledger rows by their key
-- (src/store/retention.ts), not by rowid. Every row is copied as it is.

CREATE TABLE write_ledger_new (
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
  request_json   TEXT,
  PRIMARY KEY (account_id, target_side, source_record, change_hash)
) WITHOUT ROWID;
INSERT INTO write_ledger_new (account_id, target_side, source_record, change_hash, operation, state, target_id, attempts, created_at, updated_at, request_json)
  SELECT account_id, target_side, source_record, change_hash, operation, state, target_id, attempts, created_at, updated_at, request_json FROM write_ledger;
DROP TABLE write_ledger;
ALTER TABLE write_ledger_new RENAME TO write_ledger;
CREATE INDEX write_ledger_created ON write_ledger (created_at);
