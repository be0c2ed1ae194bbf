-- Where a HighLevel connection's install started: 'console' (an operator signed in and used
-- "Connect HighLevel", the state bound to their browser) or 'marketplace' (a callback without state,
-- accepted only with HIGHLEVEL_ALLOW_STATELESS_INSTALL). NULL for rows written before this column
-- and for Private Integration Tokens. The console flags unattached 'marketplace' connections.
ALTER TABLE connections ADD COLUMN install_origin TEXT CHECK (install_origin IN ('console', 'marketplace'));

-- Deployment-wide conditions that are not one connection's, e.g. HighLevel refusing this app's client
-- credentials (`highlevel_client_rejected`). A row exists while the condition lasts; `since` names
-- the episode (one alert each), and the row is deleted when the condition clears.
CREATE TABLE app_status (
  key     TEXT PRIMARY KEY,
  since   INTEGER NOT NULL,
  reason  TEXT NOT NULL
);
