-- Scoped console sessions (src/store/console-auth.ts): a session made from HighLevel's Custom Page
-- user context (POST /embed/session) sees only the accounts its scope allows. Existing rows (and
-- every ADMIN_TOKEN login) are operator sessions.
-- scope_kind: 'operator' (everything), 'location' (the account attached to scope_location_id),
-- 'agency' (the accounts of scope_company_id's locations). user_id / user_name: who HighLevel said it is.
ALTER TABLE console_sessions ADD COLUMN scope_kind TEXT NOT NULL DEFAULT 'operator';
ALTER TABLE console_sessions ADD COLUMN scope_location_id TEXT;
ALTER TABLE console_sessions ADD COLUMN scope_company_id TEXT;
ALTER TABLE console_sessions ADD COLUMN user_id TEXT;
ALTER TABLE console_sessions ADD COLUMN user_name TEXT;
