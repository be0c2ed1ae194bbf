-- Retention (src/store/retention.ts): the cron deletes rows past each table's retention in bounded
-- batches, oldest first. These indexes on the age columns keep each batch's lookup to the rows it
-- deletes, instead of a scan of the whole table every five minutes. Indexes only: no data changes.
-- (write_ledger already has write_ledger_created.)
CREATE INDEX sync_events_at ON sync_events (at);
CREATE INDEX notification_deliveries_settled ON notification_deliveries (state, updated_at);
CREATE INDEX sync_failures_replayed ON sync_failures (status, replayed_at);
CREATE INDEX tombstones_deleted ON tombstones (deleted_at);
CREATE INDEX fourdegrees_imports_finished ON fourdegrees_imports (finished_at);
CREATE INDEX fourdegrees_import_rows_updated ON fourdegrees_import_rows (updated_at);
