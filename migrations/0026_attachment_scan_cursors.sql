-- Reconcile's attachment scan: a rotating cursor over an account's active links (ordered by
-- 4Degrees deal id). Each cron tick compares the files of the next few pairs with their
-- attachment_links, so a file whose webhook was lost is copied by reconcile
-- (src/sync/jobs/reconcile.ts). `after` = the last deal id compared ('' = start over).
CREATE TABLE attachment_scan_cursors (
  account_id    TEXT PRIMARY KEY,
  after         TEXT NOT NULL DEFAULT '',
  updated_at    INTEGER NOT NULL
);
