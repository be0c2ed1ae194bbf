-- One-time console messages that must not travel in a URL: a new webhook rule's signing secret.
-- The browser holds only a random id (an HttpOnly cookie); the row is keyed by the id's SHA-256,
-- bound to the SHA-256 of the session credential it was made for, encrypted under
-- TOKEN_ENCRYPTION_KEY, and deleted on its first read (`DELETE … RETURNING`) or after 5 minutes.
CREATE TABLE console_flashes (
  id_hash TEXT PRIMARY KEY,
  session_hash TEXT NOT NULL,
  body_enc TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX console_flashes_expires ON console_flashes (expires_at);
