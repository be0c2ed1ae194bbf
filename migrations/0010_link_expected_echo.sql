-- The HighLevel webhooks we expect back for our own last write of the pair's opportunity
-- (src/sync/highlevel-echo.ts, "Expected echoes"): JSON {types: {eventType: count}, fields: the
-- write's answer as webhook payloads carry it, expiresAt}. Written with the link by the job that
-- made the write (only when HighLevel's answer is exactly what it read plus what it wrote), taken
-- one event type at a time by the webhooks of that write (compare-and-set on this very text), and
-- cleared by every other save of the link. NULL = nothing expected: every event takes the normal path.
ALTER TABLE links ADD COLUMN hl_echo_json TEXT;
