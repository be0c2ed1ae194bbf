-- Attachment links: one row per file copied between a 4Degrees deal attachment and an entry of the
-- HighLevel opportunity's FILE_UPLOAD field (src/sync/engine/attachments.ts). Written only after the
-- copy's upload succeeded, so a row never points at half a copy. `kind = 'link_only'` is a file over
-- the size limit: the other side got a note with the download URL instead (its id in the other column).
CREATE TABLE attachment_links (
  account_id        TEXT NOT NULL,
  fd_deal_id        TEXT NOT NULL,
  hl_opportunity_id TEXT NOT NULL,
  fd_attachment_id  TEXT NOT NULL,
  hl_file_key       TEXT NOT NULL,
  origin            TEXT NOT NULL CHECK (origin IN ('fourdegrees', 'highlevel')),
  kind              TEXT NOT NULL CHECK (kind IN ('copy', 'link_only')),
  content_hash      TEXT,
  size              INTEGER NOT NULL,
  file_name         TEXT NOT NULL,
  content_type      TEXT NOT NULL,
  updated_at        INTEGER NOT NULL,
  PRIMARY KEY (account_id, fd_attachment_id),
  UNIQUE (account_id, hl_file_key)
);
CREATE INDEX attachment_links_deal ON attachment_links (account_id, fd_deal_id);
