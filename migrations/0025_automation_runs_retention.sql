-- The retention prune of settled automation runs (src/store/retention.ts) reads them oldest first.
CREATE INDEX automation_runs_created ON automation_runs (created_at);
