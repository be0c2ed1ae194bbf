-- Fewer D1 rows per synced change (docs/benchmarks.md, storage). D1 bills every row a statement
-- touches, each index entry included:
-- * `sync_events` drops AUTOINCREMENT: each insert no longer reads and rewrites `sqlite_sequence`.
--   Ids stay unique and increasing (rowid = max + 1); retention deletes the oldest rows, never the
--   newest, so an id is not handed out twice in practice.
-- * `pending_records` and `webhook_receipts` become WITHOUT ROWID tables keyed by their primary
--   key: one b-tree instead of a rowid table plus the primary key's index, so an insert writes one
--   row (plus `webhook_receipts_received` for the receipts' pruning). Nothing reads their rowid.
-- Every row is copied as it is.

CREATE TABLE sync_events_new (
  id           INTEGER PRIMARY KEY,
  account_id   TEXT NOT NULL,
  at           INTEGER NOT NULL,
  kind         TEXT NOT NULL,
  direction    TEXT,
  fd_id        TEXT,
  hl_id        TEXT,
  outcome      TEXT NOT NULL,
  detail_json  TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO sync_events_new (id, account_id, at, kind, direction, fd_id, hl_id, outcome, detail_json)
  SELECT id, account_id, at, kind, direction, fd_id, hl_id, outcome, detail_json FROM sync_events;
DROP TABLE sync_events;
ALTER TABLE sync_events_new RENAME TO sync_events;
CREATE INDEX sync_events_account_at ON sync_events (account_id, at);
CREATE INDEX sync_events_at ON sync_events (at);

CREATE TABLE pending_records_new (
  account_id     TEXT NOT NULL,
  side           TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  kind           TEXT NOT NULL CHECK (kind IN ('deal', 'notes')),
  record_id      TEXT NOT NULL,
  seq            INTEGER NOT NULL,
  first_dirty_at INTEGER NOT NULL,
  last_dirty_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, side, kind, record_id)
) WITHOUT ROWID;
INSERT INTO pending_records_new SELECT account_id, side, kind, record_id, seq, first_dirty_at, last_dirty_at FROM pending_records;
DROP TABLE pending_records;
ALTER TABLE pending_records_new RENAME TO pending_records;

CREATE TABLE webhook_receipts_new (
  provider      TEXT NOT NULL CHECK (provider IN ('highlevel', 'fourdegrees')),
  webhook_id    TEXT NOT NULL,
  event_type    TEXT NOT NULL,
  scope_id      TEXT,
  received_at   INTEGER NOT NULL,
  message_id    TEXT,
  PRIMARY KEY (provider, webhook_id)
) WITHOUT ROWID;
INSERT INTO webhook_receipts_new SELECT provider, webhook_id, event_type, scope_id, received_at, message_id FROM webhook_receipts;
DROP TABLE webhook_receipts;
ALTER TABLE webhook_receipts_new RENAME TO webhook_receipts;
CREATE INDEX webhook_receipts_received ON webhook_receipts (received_at);
