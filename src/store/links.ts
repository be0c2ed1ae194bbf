/**
 * ID links between a 4Degrees deal and a HighLevel opportunity, each with its last-synced
 * snapshot (the canonical base for the three-way merge and the echo guard) and each side's last
 * seen `updatedAt` / version (the out-of-order guard), and the webhooks HighLevel will send for
 * our own last write of the opportunity (the expected echo); tombstones of deleted records; note links.
 */
import * as z from "zod";
import type { Flat } from "../domain/port.ts";

export type SideName = "fourdegrees" | "highlevel";

/** A linked pair with its snapshot. */
export interface Link {
  accountId: string;
  fdDealId: string;
  hlOpportunityId: string;
  hlLocationId: string;
  hlContactId: string | null;
  state: "active" | "deleted";
  base: Flat;
  fdUpdatedAt: string | null;
  fdVersion: string | null;
  hlUpdatedAt: string | null;
  syncedAt: number;
  deletedSide: SideName | null;
}

const Row = z.object({
  account_id: z.string(),
  fd_deal_id: z.string(),
  hl_opportunity_id: z.string(),
  hl_location_id: z.string(),
  hl_contact_id: z.string().nullable(),
  state: z.enum(["active", "deleted"]),
  base_json: z.string(),
  fd_updated_at: z.string().nullable(),
  fd_version: z.string().nullable(),
  hl_updated_at: z.string().nullable(),
  synced_at: z.number(),
  deleted_side: z.enum(["fourdegrees", "highlevel"]).nullable(),
});

const FlatSchema = z.record(z.string(), z.unknown());

function toLink(raw: unknown): Link {
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    fdDealId: r.fd_deal_id,
    hlOpportunityId: r.hl_opportunity_id,
    hlLocationId: r.hl_location_id,
    hlContactId: r.hl_contact_id,
    state: r.state,
    base: FlatSchema.parse(JSON.parse(r.base_json)),
    fdUpdatedAt: r.fd_updated_at,
    fdVersion: r.fd_version,
    hlUpdatedAt: r.hl_updated_at,
    syncedAt: r.synced_at,
    deletedSide: r.deleted_side,
  };
}

/** The link of a record on either side. */
export async function findLink(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
): Promise<Link | null> {
  const column = side === "fourdegrees" ? "fd_deal_id" : "hl_opportunity_id";
  const row = await db
    .prepare(`SELECT * FROM links WHERE account_id = ? AND ${column} = ?`)
    .bind(accountId, recordId)
    .first();
  return row ? toLink(row) : null;
}

/** Active links whose HighLevel opportunity has this contact (notes live on contacts). */
export async function linksForContact(db: D1Database, accountId: string, contactId: string): Promise<Link[]> {
  const { results } = await db
    .prepare("SELECT * FROM links WHERE account_id = ? AND hl_contact_id = ? AND state = 'active'")
    .bind(accountId, contactId)
    .all();
  return results.map(toLink);
}

/**
 * The webhooks HighLevel will send for our own last write of a pair's opportunity
 * (src/sync/engine/echo.ts, "Expected echoes"): how many deliveries of each event type are still
 * to come, the write's answer as webhook payloads carry it, and when the record stops counting.
 */
export const ExpectedEchoSchema = z.object({
  types: z.record(z.string(), z.number().int().nonnegative()),
  fields: z.object({
    name: z.string().nullable(),
    monetaryValue: z.number().nullable(),
    status: z.string().nullable(),
    pipelineId: z.string().nullable(),
    pipelineStageId: z.string().nullable(),
    assignedTo: z.string().nullable(),
    contactId: z.string().nullable(),
  }),
  expiresAt: z.number(),
});
export type ExpectedEcho = z.infer<typeof ExpectedEchoSchema>;

/**
 * An expected echo to record with a link save, and the two conditions under which the save
 * records it (else the column is cleared): no other save of the link since the job read it
 * (`synced_at` unchanged), and no HighLevel-side dirty mark of the opportunity set or bumped since
 * the write began — a delivery of the write handled before this save could record anything took
 * the normal path, so its slot must not be left for another event to take.
 */
export interface RecordExpectedEcho {
  echo: ExpectedEcho;
  /** The link's `synced_at` as the job read it; null for the create of the pair (no link yet). */
  ifSyncedAt: number | null;
  /** When the HighLevel write began (ms). */
  unlessDirtySince: number;
}

/**
 * Inserts or replaces the link of a pair with its new snapshot. Keyed by the 4Degrees deal; the
 * UNIQUE (account, opportunity) constraint makes a second link to the same opportunity fail
 * instead of silently creating a duplicate pairing.
 *
 * Every save replaces the pair's expected echo: with `expectEcho` when the conditions of
 * `RecordExpectedEcho` hold, else with nothing (a newer sync of the pair never inherits the
 * expectation of an older write). A new link has one only from the create that made the pair
 * (`ifSyncedAt: null`).
 */
export async function saveLink(
  db: D1Database,
  link: Omit<Link, "syncedAt" | "state" | "deletedSide"> & {
    state?: Link["state"];
    deletedSide?: SideName | null;
    expectEcho?: RecordExpectedEcho | null;
  },
  now = Date.now(),
): Promise<void> {
  const expect = link.expectEcho ?? null;
  const echoJson = expect ? JSON.stringify(ExpectedEchoSchema.parse(expect.echo)) : null;
  // The usual save keeps the pair's ids: an UPDATE that leaves the indexed columns alone writes
  // one row (the upsert below also rewrites both index entries); a new or re-paired link upserts.
  // ?1–?15, the same for the in-place update and the upsert.
  const params = [
    link.accountId,
    link.fdDealId,
    link.hlOpportunityId,
    link.hlLocationId,
    link.hlContactId,
    link.state ?? "active",
    JSON.stringify(link.base),
    link.fdUpdatedAt,
    link.fdVersion,
    link.hlUpdatedAt,
    now,
    link.deletedSide ?? null,
    echoJson,
    expect?.ifSyncedAt ?? null,
    expect?.unlessDirtySince ?? null,
  ];
  const kept = await db
    .prepare(
      `UPDATE links SET hl_location_id = ?4, state = ?6, base_json = ?7, fd_updated_at = ?8, fd_version = ?9, hl_updated_at = ?10,
         synced_at = ?11, deleted_side = ?12,
         hl_echo_json = CASE
           WHEN ?13 IS NOT NULL AND ?6 = 'active' AND synced_at = ?14
             AND NOT EXISTS (SELECT 1 FROM pending_records p WHERE p.account_id = ?1 AND p.side = 'highlevel' AND p.kind = 'deal'
                               AND p.record_id = ?3 AND p.last_dirty_at >= ?15)
           THEN ?13 ELSE NULL END
       WHERE account_id = ?1 AND fd_deal_id = ?2 AND hl_opportunity_id = ?3 AND hl_contact_id IS ?5`,
    )
    .bind(...params)
    .run();
  if (kept.meta.changes > 0) return;
  await db
    .prepare(
      `INSERT INTO links (account_id, fd_deal_id, hl_opportunity_id, hl_location_id, hl_contact_id, state, base_json, fd_updated_at, fd_version, hl_updated_at, synced_at, deleted_side, hl_echo_json)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
         CASE WHEN ?13 IS NOT NULL AND ?14 IS NULL AND ?6 = 'active'
           AND NOT EXISTS (SELECT 1 FROM pending_records p WHERE p.account_id = ?1 AND p.side = 'highlevel' AND p.kind = 'deal'
                             AND p.record_id = ?3 AND p.last_dirty_at >= ?15)
         THEN ?13 ELSE NULL END)
       ON CONFLICT (account_id, fd_deal_id) DO UPDATE SET hl_opportunity_id = excluded.hl_opportunity_id, hl_location_id = excluded.hl_location_id,
         hl_contact_id = excluded.hl_contact_id, state = excluded.state, base_json = excluded.base_json, fd_updated_at = excluded.fd_updated_at,
         fd_version = excluded.fd_version, hl_updated_at = excluded.hl_updated_at, synced_at = excluded.synced_at, deleted_side = excluded.deleted_side,
         hl_echo_json = CASE
           WHEN ?13 IS NOT NULL AND excluded.state = 'active' AND links.synced_at = ?14 AND links.hl_opportunity_id = excluded.hl_opportunity_id
             AND NOT EXISTS (SELECT 1 FROM pending_records p WHERE p.account_id = excluded.account_id AND p.side = 'highlevel' AND p.kind = 'deal'
                               AND p.record_id = excluded.hl_opportunity_id AND p.last_dirty_at >= ?15)
           THEN ?13 ELSE NULL END`,
    )
    .bind(...params)
    .run();
}

/** A pair's expected echo as stored: `raw` is the exact text. */
export interface StoredExpectedEcho {
  fdDealId: string;
  hlLocationId: string;
  state: Link["state"];
  raw: string;
  /** null when the text does not parse (never trusted: the caller treats it as nothing expected). */
  echo: ExpectedEcho | null;
}

/** The stored text of an expected echo as `StoredExpectedEcho`; null when there is none or every slot is taken. */
function storedEcho(
  fdDealId: string,
  hlLocationId: string,
  state: Link["state"],
  raw: string | null,
): StoredExpectedEcho | null {
  if (raw === null) return null;
  let echo: ExpectedEcho | null = null;
  try {
    const parsed = ExpectedEchoSchema.safeParse(JSON.parse(raw));
    echo = parsed.success ? parsed.data : null;
  } catch {
    echo = null;
  }
  // Every slot taken (`takeExpectedEchoSlots` leaves the text spent): nothing is expected.
  if (echo && echo.expiresAt === 0 && Object.values(echo.types).every((n) => n <= 0)) return null;
  return { fdDealId, hlLocationId, state, raw, echo };
}

/** The expected echo recorded on the link of a HighLevel opportunity; null when none is. */
export async function findExpectedEcho(
  db: D1Database,
  accountId: string,
  hlOpportunityId: string,
): Promise<StoredExpectedEcho | null> {
  const found = await findLinkWithEcho(db, accountId, hlOpportunityId);
  return found?.echo ?? null;
}

/** The link of a HighLevel opportunity and its expected echo, in one read. */
export async function findLinkWithEcho(
  db: D1Database,
  accountId: string,
  hlOpportunityId: string,
): Promise<{ link: Link; echo: StoredExpectedEcho | null } | null> {
  const row = await db
    .prepare("SELECT * FROM links WHERE account_id = ? AND hl_opportunity_id = ?")
    .bind(accountId, hlOpportunityId)
    .first();
  if (!row) return null;
  const link = toLink(row);
  const raw = z.object({ hl_echo_json: z.string().nullable() }).parse(row).hl_echo_json;
  return { link, echo: storedEcho(link.fdDealId, link.hlLocationId, link.state, raw) };
}

/**
 * Voids a pair's expected echo (compare-and-set: only if the stored text is still `seen`). False =
 * someone else changed it first (re-read and decide again).
 */
export async function voidExpectedEcho(
  db: D1Database,
  accountId: string,
  fdDealId: string,
  seen: string,
): Promise<boolean> {
  const res = await db
    .prepare("UPDATE links SET hl_echo_json = NULL WHERE account_id = ? AND fd_deal_id = ? AND hl_echo_json = ?")
    .bind(accountId, fdDealId, seen)
    .run();
  return res.meta.changes > 0;
}

/** The event types an expected echo counts (the opportunity events whose body is its state). */
export const ECHO_TYPES = [
  "OpportunityCreate",
  "OpportunityUpdate",
  "OpportunityStatusUpdate",
  "OpportunityStageUpdate",
  "OpportunityMonetaryValueUpdate",
  "OpportunityAssignedToUpdate",
] as const;

/** Slots still expected, summed over every counted type (the SQL twin of the JSON's `types`). */
const SLOTS_LEFT = ECHO_TYPES.map((t) => `coalesce(json_extract(hl_echo_json, '$.types.${t}'), 0)`).join(" + ");

/**
 * Takes one slot of a pair's live expected echo for each of `types` (the deliveries of one state:
 * the event's, and its fan-out partners' when they are handled together), in one statement (one
 * row read, one written; a miss reads the row and writes nothing): only when the link is active,
 * neither side of the pair is on the review list, every type still has a slot and the events'
 * location and carried fields are exactly the recorded ones. Each type's count is lowered; the last
 * slot leaves the text spent (`expiresAt` 0, which every reader treats as nothing expected). All or
 * nothing, and atomic, so two deliveries never take the same slot. False = nothing taken (the
 * caller decides whether a live expectation is to be voided).
 */
export async function takeExpectedEchoSlots(
  db: D1Database,
  accountId: string,
  event: { types: readonly string[]; opportunityId: string; locationId: string | null; fields: ExpectedEcho["fields"] },
  now: number,
): Promise<boolean> {
  // Only counted types have slots (and only such names are spliced into the JSON paths), each once.
  const types = [...new Set(event.types)];
  if (types.length === 0 || types.length !== event.types.length) return false;
  if (!types.every((t) => (ECHO_TYPES as readonly string[]).includes(t))) return false;
  const f = event.fields;
  const slots = types.map((t) => `'$.types.${t}'`);
  const lowered = slots.map((slot) => `${slot}, json_extract(hl_echo_json, ${slot}) - 1`).join(", ");
  const expected = slots.map((slot) => `coalesce(json_extract(hl_echo_json, ${slot}), 0) > 0`).join(" AND ");
  const res = await db
    .prepare(
      `UPDATE links SET hl_echo_json = json_set(hl_echo_json, ${lowered},
         '$.expiresAt', CASE WHEN ${SLOTS_LEFT} <= ${types.length} THEN 0 ELSE json_extract(hl_echo_json, '$.expiresAt') END)
       WHERE account_id = ?1 AND hl_opportunity_id = ?2 AND hl_echo_json IS NOT NULL AND json_valid(hl_echo_json)
         AND json_extract(hl_echo_json, '$.expiresAt') > ?11
         AND state = 'active' AND hl_location_id IS ?3 AND ${expected}
         AND json_extract(hl_echo_json, '$.fields.name') IS ?4 AND json_extract(hl_echo_json, '$.fields.monetaryValue') IS ?5
         AND json_extract(hl_echo_json, '$.fields.status') IS ?6 AND json_extract(hl_echo_json, '$.fields.pipelineId') IS ?7
         AND json_extract(hl_echo_json, '$.fields.pipelineStageId') IS ?8 AND json_extract(hl_echo_json, '$.fields.assignedTo') IS ?9
         AND json_extract(hl_echo_json, '$.fields.contactId') IS ?10
         AND NOT EXISTS (SELECT 1 FROM review_items r WHERE r.account_id = ?1 AND r.side = 'highlevel' AND r.record_id = ?2)
         AND NOT EXISTS (SELECT 1 FROM review_items r WHERE r.account_id = ?1 AND r.side = 'fourdegrees' AND r.record_id = links.fd_deal_id)`,
    )
    .bind(
      accountId,
      event.opportunityId,
      event.locationId,
      f.name,
      f.monetaryValue,
      f.status,
      f.pipelineId,
      f.pipelineStageId,
      f.assignedTo,
      f.contactId,
      now,
    )
    .run();
  return res.meta.changes > 0;
}

/** Clears the expected echo of a HighLevel opportunity's link, whatever it holds. */
export async function clearExpectedEcho(db: D1Database, accountId: string, hlOpportunityId: string): Promise<void> {
  await db
    .prepare(
      "UPDATE links SET hl_echo_json = NULL WHERE account_id = ? AND hl_opportunity_id = ? AND hl_echo_json IS NOT NULL",
    )
    .bind(accountId, hlOpportunityId)
    .run();
}

/** Marks a pair deleted (a tombstone: later events for either id are ignored). */
export async function markLinkDeleted(
  db: D1Database,
  accountId: string,
  fdDealId: string,
  side: SideName,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "UPDATE links SET state = 'deleted', deleted_side = ?, synced_at = ?, hl_echo_json = NULL WHERE account_id = ? AND fd_deal_id = ?",
    )
    .bind(side, now, accountId, fdDealId)
    .run();
}

/** Page of active links (reconcile compares them with the sides). */
export async function listLinks(
  db: D1Database,
  accountId: string,
  options: { after?: string; limit?: number; state?: Link["state"] } = {},
): Promise<Link[]> {
  const { results } = await db
    .prepare("SELECT * FROM links WHERE account_id = ? AND state = ? AND fd_deal_id > ? ORDER BY fd_deal_id LIMIT ?")
    .bind(accountId, options.state ?? "active", options.after ?? "", options.limit ?? 100)
    .all();
  return results.map(toLink);
}

export async function countLinks(db: D1Database, accountId: string): Promise<{ active: number; deleted: number }> {
  const row = await db
    .prepare(
      "SELECT SUM(state = 'active') AS active, SUM(state = 'deleted') AS deleted FROM links WHERE account_id = ?",
    )
    .bind(accountId)
    .first<{ active: number | null; deleted: number | null }>();
  return { active: row?.active ?? 0, deleted: row?.deleted ?? 0 };
}

/** Records that a record is gone on `side` (idempotent). */
export async function addTombstone(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "INSERT INTO tombstones (account_id, side, record_id, deleted_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(accountId, side, recordId, now)
    .run();
}

export async function hasTombstone(
  db: D1Database,
  accountId: string,
  side: SideName,
  recordId: string,
): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS x FROM tombstones WHERE account_id = ? AND side = ? AND record_id = ?")
    .bind(accountId, side, recordId)
    .first();
  return row !== null;
}

/** A linked note pair. */
export interface NoteLink {
  accountId: string;
  fdNoteId: string;
  hlNoteId: string;
  fdDealId: string;
  hlContactId: string;
  origin: SideName;
  bodyHash: string;
  /** The original note's author as the copy names it, and its original time (null: unknown / kept). */
  author?: string | null;
  sourceCreatedAt?: string | null;
}

const NoteRow = z.object({
  account_id: z.string(),
  fd_note_id: z.string(),
  hl_note_id: z.string(),
  fd_deal_id: z.string(),
  hl_contact_id: z.string(),
  origin: z.enum(["fourdegrees", "highlevel"]),
  body_hash: z.string(),
  author: z.string().nullish(),
  source_created_at: z.string().nullish(),
});

function toNoteLink(raw: unknown): NoteLink {
  const r = NoteRow.parse(raw);
  return {
    accountId: r.account_id,
    fdNoteId: r.fd_note_id,
    hlNoteId: r.hl_note_id,
    fdDealId: r.fd_deal_id,
    hlContactId: r.hl_contact_id,
    origin: r.origin,
    bodyHash: r.body_hash,
    author: r.author ?? null,
    sourceCreatedAt: r.source_created_at ?? null,
  };
}

/** The note links of a deal, pending ones left out (`noteLinkRowsForDeal`). */
export async function noteLinksForDeal(db: D1Database, accountId: string, fdDealId: string): Promise<NoteLink[]> {
  return (await noteLinkRowsForDeal(db, accountId, fdDealId)).linked;
}

/**
 * A note create written ahead as its note link (`claimNoteCreate`): everything but the HighLevel
 * note's id, which the create's answer fills in (`completeNoteCreate`).
 */
export type PendingNoteLink = Omit<NoteLink, "hlNoteId">;

/** A deal's note links in one read: the complete ones, and the pending creates (no HighLevel id yet). */
export async function noteLinkRowsForDeal(
  db: D1Database,
  accountId: string,
  fdDealId: string,
): Promise<{ linked: NoteLink[]; pending: PendingNoteLink[] }> {
  const { results } = await db
    .prepare("SELECT * FROM note_links WHERE account_id = ? AND fd_deal_id = ?")
    .bind(accountId, fdDealId)
    .all();
  const linked: NoteLink[] = [];
  const pending: PendingNoteLink[] = [];
  for (const row of results) {
    if (z.object({ hl_note_id: z.string().nullable() }).parse(row).hl_note_id === null) {
      const { hlNoteId: _none, ...rest } = toNoteLink({ ...row, hl_note_id: "" });
      pending.push(rest);
    } else linked.push(toNoteLink(row));
  }
  return { linked, pending };
}

/**
 * Writes a note create ahead as its pending note link, before HighLevel is called. `fresh`: this
 * call wrote it. Else `hlNoteId` is the note another attempt made and linked (no create), or null:
 * an earlier attempt may have created it and died, so the caller looks for that copy first (the
 * listing's origin footer) and creates only when it found none.
 */
export async function claimNoteCreate(
  db: D1Database,
  link: PendingNoteLink,
  now = Date.now(),
): Promise<{ fresh: true } | { fresh: false; hlNoteId: string | null }> {
  const inserted = await db
    .prepare(
      `INSERT INTO note_links (account_id, fd_note_id, hl_note_id, fd_deal_id, hl_contact_id, origin, body_hash, updated_at,
         author, source_created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    )
    .bind(...noteLinkValues({ ...link, hlNoteId: null }, now))
    .run();
  if (inserted.meta.changes > 0) return { fresh: true };
  const row = await db
    .prepare("SELECT hl_note_id FROM note_links WHERE account_id = ? AND fd_note_id = ?")
    .bind(link.accountId, link.fdNoteId)
    .first();
  return { fresh: false, hlNoteId: row ? z.object({ hl_note_id: z.string().nullable() }).parse(row).hl_note_id : null };
}

/** Completes a pending note link (`claimNoteCreate`) with the id of the note HighLevel created. */
export async function completeNoteCreate(
  db: D1Database,
  accountId: string,
  fdNoteId: string,
  hlNoteId: string,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare("UPDATE note_links SET hl_note_id = ?, updated_at = ? WHERE account_id = ? AND fd_note_id = ?")
    .bind(hlNoteId, now, accountId, fdNoteId)
    .run();
}

/** The note link of a HighLevel note (one read through the unique HighLevel id); null when none. */
export async function noteLinkForHighLevelNote(
  db: D1Database,
  accountId: string,
  hlNoteId: string,
): Promise<NoteLink | null> {
  const row = await db
    .prepare("SELECT * FROM note_links WHERE account_id = ? AND hl_note_id = ?")
    .bind(accountId, hlNoteId)
    .first();
  return row ? toNoteLink(row) : null;
}

export async function saveNoteLink(db: D1Database, link: NoteLink, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT INTO note_links (account_id, fd_note_id, hl_note_id, fd_deal_id, hl_contact_id, origin, body_hash, updated_at,
         author, source_created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, fd_note_id) DO UPDATE SET hl_note_id = excluded.hl_note_id, body_hash = excluded.body_hash,
         updated_at = excluded.updated_at, author = COALESCE(excluded.author, note_links.author),
         source_created_at = COALESCE(excluded.source_created_at, note_links.source_created_at)`,
    )
    .bind(...noteLinkValues(link, now))
    .run();
}

/** A note link's `INSERT` values, in the column order both writers name. */
function noteLinkValues(link: PendingNoteLink & { hlNoteId: string | null }, now: number): unknown[] {
  const { accountId, fdNoteId, hlNoteId, fdDealId, hlContactId, origin, bodyHash } = link;
  return [
    accountId,
    fdNoteId,
    hlNoteId,
    fdDealId,
    hlContactId,
    origin,
    bodyHash,
    now,
    link.author ?? null,
    link.sourceCreatedAt ?? null,
  ];
}

export async function deleteNoteLink(db: D1Database, accountId: string, fdNoteId: string): Promise<void> {
  await db.prepare("DELETE FROM note_links WHERE account_id = ? AND fd_note_id = ?").bind(accountId, fdNoteId).run();
}

/** Where reconcile's link verification resumes for an account: the last 4Degrees deal id verified ('' = the start). */
export async function getLinkVerifyCursor(db: D1Database, accountId: string): Promise<string> {
  const row = await db.prepare("SELECT after FROM link_verify_cursors WHERE account_id = ?").bind(accountId).first();
  return row ? z.object({ after: z.string() }).parse(row).after : "";
}

/** Saves the link verification cursor ('' wraps around to the first link). */
export async function saveLinkVerifyCursor(
  db: D1Database,
  accountId: string,
  after: string,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "INSERT INTO link_verify_cursors (account_id, after, updated_at) VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET after = excluded.after, updated_at = excluded.updated_at",
    )
    .bind(accountId, after, now)
    .run();
}
