-- Reconcile's link verification: a rotating cursor over an account's active links (ordered by
-- 4Degrees deal id). Each cron tick re-reads both records of the next few links, so a delete whose
-- webhook was lost (HighLevel drops deliveries it did not get a 429 for) is found by reconcile
-- instead of leaving a link to a record that no longer exists. `after` = the last deal id verified
-- ('' = start over).
CREATE TABLE link_verify_cursors (
  account_id    TEXT PRIMARY KEY,
  after         TEXT NOT NULL DEFAULT '',
  updated_at    INTEGER NOT NULL
);
