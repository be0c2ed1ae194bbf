-- A 4Degrees note's copy to HighLevel is written ahead as its note link, pending (`hl_note_id`
-- NULL) until HighLevel answers the create, then completed with the new note's id: the link is
-- the create's write-ahead record instead of a `write_ledger` row (docs/benchmarks.md, storage).
-- The HighLevel-id index is partial, so a pending row writes no entry in it. Readers of note
-- links skip pending rows (src/store/links.ts). Every row is copied as it is.

CREATE TABLE note_links_new (
  account_id        TEXT NOT NULL,
  fd_note_id        TEXT NOT NULL,
  hl_note_id        TEXT,
  fd_deal_id        TEXT NOT NULL,
  hl_contact_id     TEXT NOT NULL,
  origin            TEXT NOT NULL CHECK (origin IN ('fourdegrees', 'highlevel')),
  body_hash         TEXT NOT NULL,
  updated_at        INTEGER NOT NULL,
  author            TEXT,
  source_created_at TEXT,
  PRIMARY KEY (account_id, fd_note_id)
);
INSERT INTO note_links_new (account_id, fd_note_id, hl_note_id, fd_deal_id, hl_contact_id, origin, body_hash, updated_at, author, source_created_at)
  SELECT account_id, fd_note_id, hl_note_id, fd_deal_id, hl_contact_id, origin, body_hash, updated_at, author, source_created_at FROM note_links;
DROP TABLE note_links;
ALTER TABLE note_links_new RENAME TO note_links;
CREATE UNIQUE INDEX note_links_hl ON note_links (account_id, hl_note_id) WHERE hl_note_id IS NOT NULL;
CREATE INDEX note_links_deal ON note_links (account_id, fd_deal_id);
