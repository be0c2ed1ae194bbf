-- Guided setup (src/http/console/pages/setup.tsx): what the account's own state cannot tell.
-- Connection, key, mapping, test mode and the backfill are read
-- from their own tables; only the operator's confirmations and the wizard's test results live here.
CREATE TABLE setup_progress (
  account_id        TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  -- The mapping version whose stages, owners and fields were reviewed (a new mapping needs a new review).
  reviewed_version  INTEGER,
  -- The mapping version the last test ran against, when, and whether every read and translation passed.
  tested_version    INTEGER,
  tested_at         INTEGER,
  test_ok           INTEGER,
  -- The backfill run the wizard started in test mode (backfill_runs.run_id).
  test_backfill_run TEXT,
  updated_at        INTEGER NOT NULL
);
