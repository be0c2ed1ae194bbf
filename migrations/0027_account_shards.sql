-- The routing table of account data across D1 databases (src/store/shards.ts, docs/scaling.md).
-- It lives in the main database (the `DB` binding), the directory every request starts from. An
-- account without a row lives in the main database, as every account does today.
CREATE TABLE IF NOT EXISTS account_shards (
  account_id TEXT PRIMARY KEY,
  -- "main" (the DB binding) or a name whose binding is DB_SHARD_<NAME> (upper case).
  shard TEXT NOT NULL,
  assigned_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS account_shards_by_shard ON account_shards (shard);
