-- Duplicates, decided by an operator (src/store/match-decisions.ts, docs/sync.md#duplicates).

-- A 4Degrees deal and a HighLevel opportunity told apart: never suggested or matched as a pair again.
CREATE TABLE match_rejections (
  account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  fd_deal_id         TEXT NOT NULL,
  hl_opportunity_id  TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  PRIMARY KEY (account_id, fd_deal_id, hl_opportunity_id)
);
CREATE INDEX match_rejections_hl ON match_rejections (account_id, hl_opportunity_id);

-- A record an operator unlinked: it no longer syncs (no match, no create) until it is linked by hand.
CREATE TABLE unlinked_records (
  account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  side        TEXT NOT NULL CHECK (side IN ('fourdegrees', 'highlevel')),
  record_id   TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, side, record_id)
);
