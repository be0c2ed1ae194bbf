-- HighLevel agency installs: approved locations whose location token is not minted yet — over the
-- per-callback cap (MAX_LOCATIONS_PER_INSTALL: each mint is a subrequest, and a Worker request has
-- a limited number), or a mint that failed. The cron mints them later through the agency's gate
-- (src/highlevel/cron.ts) and deletes the row once the location's connection exists.
CREATE TABLE highlevel_pending_locations (
  location_id      TEXT PRIMARY KEY,                 -- a location belongs to one agency
  company_id       TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,       -- failed mints so far (drives the backoff)
  next_attempt_at  INTEGER NOT NULL,                 -- epoch ms; the cron takes rows due by now
  last_error       TEXT,                             -- why the last mint failed, never a token
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX highlevel_pending_locations_due ON highlevel_pending_locations (next_attempt_at);
CREATE INDEX highlevel_pending_locations_company ON highlevel_pending_locations (company_id);
