-- HighLevel connector: OAuth connections (tokens encrypted at rest) and single-use OAuth `state`.

-- One row per HighLevel token holder: a sub-account (`location:{locationId}`) or an agency
-- (`company:{companyId}`). Tokens are AES-256-GCM ciphertexts (`v1.<kid>.<iv>.<data>`, see
-- src/lib/crypto.ts) whose additional data binds them to this row's id, so a value copied into
-- another row does not decrypt. The per-location Durable Object (src/gate/) is the only writer of
-- the token columns; `token_version` increases with every refresh.
CREATE TABLE connections (
  id                 TEXT PRIMARY KEY,                 -- 'location:{locationId}' | 'company:{companyId}'
  kind               TEXT NOT NULL CHECK (kind IN ('location', 'company')),
  location_id        TEXT UNIQUE,                      -- NULL for an agency (company) connection
  company_id         TEXT,
  -- How a location's tokens renew: its own refresh token, or a fresh token minted from the
  -- agency connection through /oauth/locationToken (those carry no refresh token).
  token_source       TEXT NOT NULL DEFAULT 'refresh' CHECK (token_source IN ('refresh', 'agency')),
  account_id         TEXT REFERENCES accounts (id),
  status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_reconnect', 'backoff', 'uninstalled')),
  scopes             TEXT NOT NULL DEFAULT '',
  access_token_enc   TEXT,
  refresh_token_enc  TEXT,
  key_id             TEXT,                             -- encryption key id of the token columns (rotation)
  expires_at         INTEGER,                          -- access token expiry, epoch ms
  token_version      INTEGER NOT NULL DEFAULT 0,
  user_id            TEXT,                             -- HighLevel user who installed
  app_id             TEXT,
  last_error         TEXT,                             -- last refresh failure, never a token
  retry_at           INTEGER,                          -- 'backoff': not before (epoch ms)
  installed_at       INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  uninstalled_at     INTEGER
);
CREATE INDEX connections_company ON connections (company_id);
CREATE INDEX connections_status_expiry ON connections (status, expires_at);

-- OAuth `state`: valid 10 minutes, usable once. In D1, not KV: KV is eventually consistent and has
-- no compare-and-set, so two callbacks racing with one state could both "use" it. D1's
-- `DELETE … RETURNING` consumes a row atomically: exactly one caller gets it back.
CREATE TABLE oauth_states (
  state        TEXT PRIMARY KEY,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  return_to    TEXT
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);
