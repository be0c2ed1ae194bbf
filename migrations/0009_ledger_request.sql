-- The request a ledgered write sent first (JSON), so a retry after a crash re-sends the very same
-- request with the same Idempotency-Key: 4Degrees replays a key only for an identical request
-- (a changed body answers 422 idempotency_key_reused), and the record may have changed between the
-- attempts. NULL for rows written before this column and for writes that need no replay.
ALTER TABLE write_ledger ADD COLUMN request_json TEXT;
