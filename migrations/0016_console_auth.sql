-- Console sign-in state (src/store/console-auth.ts).
-- console_sessions: one row per signed-in browser, keyed by the SHA-256 of the cookie's random id
-- (a leaked table names no usable cookie). Logout deletes the row, so a copied cookie dies with it;
-- expired rows are pruned at each login.
CREATE TABLE console_sessions (
  id_hash TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- console_login_attempts: sign-in attempts per client (CF-Connecting-IP; IPv6 by /64) in the
-- current window. A success deletes the row; rows whose window ended are pruned at each attempt.
CREATE TABLE console_login_attempts (
  client TEXT PRIMARY KEY,
  attempts INTEGER NOT NULL,
  window_start INTEGER NOT NULL
);
CREATE INDEX console_login_attempts_window ON console_login_attempts (window_start);
