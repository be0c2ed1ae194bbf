-- A synced note keeps its original author (the mapped user's name, else the author's own) and its
-- original created_at in the note link, next to the header line the copy carries.
ALTER TABLE note_links ADD COLUMN author TEXT;
ALTER TABLE note_links ADD COLUMN source_created_at TEXT;
