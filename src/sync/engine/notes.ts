/**
 * The notes of a pair: HighLevel keeps notes on the opportunity's contact, 4Degrees on the deal.
 * Each copy carries an origin footer (`tagOrigin`) so it is linked, never copied back.
 */
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Note } from "../../domain/port.ts";
import { sha256 } from "../../lib/hash.ts";
import type { Account } from "../../store/accounts.ts";
import { beginWrite, completeWrite, ledgerIdempotencyKey, type LedgerKey } from "../../store/ledger.ts";
import {
  claimNoteCreate,
  completeNoteCreate,
  deleteNoteLink,
  findLink,
  linksForContact,
  noteLinkRowsForDeal,
  noteLinksForDeal,
  saveNoteLink,
  type Link,
  type SideName,
} from "../../store/links.ts";
import { recordEvent } from "../../store/sync-events.ts";
import type { LookupCache } from "./lookups.ts";
import {
  attributeFourDegrees,
  attributeHighLevel,
  attributionLine,
  type Attribution,
  type People,
} from "./note-authors.ts";
import { blank, directionOfWrites, type EngineDeps, type JobResult } from "./types.ts";

/** What the notes sync needs of the engine (the `SyncEngine` of the job). */
export interface NotesHost {
  readonly deps: EngineDeps;
  readonly account: Account;
  readonly mapping: Mapping;
  readonly db: D1Database;
  readonly lookups: LookupCache;
  highLevelWritable(locationId: string): Promise<boolean>;
}

/**
 * Syncs the notes of one pair (by 4Degrees deal id, or every pair of a HighLevel contact).
 * HighLevel notes live on the opportunity's contact; a contact shared by several linked
 * opportunities cannot say which deal an untagged note belongs to, so those are left alone.
 */
export async function syncNotes(engine: NotesHost, side: SideName, recordId: string): Promise<JobResult> {
  if (side === "fourdegrees") {
    const link = await findLink(engine.db, engine.account.id, "fourdegrees", recordId);
    if (!link || link.state !== "active" || !link.hlContactId)
      return {
        ...blank(recordId, null),
        outcome: "skipped",
        reason: "the deal has no active link with a HighLevel contact yet",
      };
    const shared = (await linksForContact(engine.db, engine.account.id, link.hlContactId)).length > 1;
    return syncNotesOf(engine, link, shared);
  }
  const links = await linksForContact(engine.db, engine.account.id, recordId);
  if (links.length === 0)
    return { ...blank(null, null), outcome: "skipped", reason: `no active link uses HighLevel contact ${recordId}` };
  const total: JobResult = { ...blank(links[0]?.fdDealId ?? null, links[0]?.hlOpportunityId ?? null) };
  for (const link of links) {
    const r = await syncNotesOf(engine, link, links.length > 1);
    total.writes.push(...r.writes);
    if (r.outcome === "test_mode") total.outcome = "test_mode";
  }
  if (total.outcome !== "test_mode") total.outcome = total.writes.length > 0 ? "ok" : "noop";
  total.direction = directionOfWrites(total.writes);
  return total;
}

/**
 * Whether the notes of a linked 4Degrees deal differ from what was last synced — a note on one
 * side that is not on the other, an edit, a delete, or note-link bookkeeping a job would do.
 * Runs the notes sync in plan-only mode (two list calls, no writes): what reconcile uses to
 * catch a note whose webhook was lost, marking the pair's notes dirty only when it differs (so
 * a converged account stays quiet).
 */
export async function notesDiffer(engine: NotesHost, fdDealId: string): Promise<boolean> {
  const link = await findLink(engine.db, engine.account.id, "fourdegrees", fdDealId);
  if (!link || link.state !== "active" || !link.hlContactId || engine.mapping.notes === "off") return false;
  const shared = (await linksForContact(engine.db, engine.account.id, link.hlContactId)).length > 1;
  const planned = await syncNotesOf(engine, link, shared, { plan: true });
  return planned.writes.length > 0 || (planned.detail?.["bookkeeping"] ?? 0) !== 0;
}

/** Syncs (or, with `plan`, only plans) the notes of one linked pair. */
async function syncNotesOf(
  engine: NotesHost,
  link: Link,
  sharedContact: boolean,
  options: { plan?: boolean } = {},
): Promise<JobResult> {
  const contactId = link.hlContactId ?? "";
  const hl = engine.deps.highlevel(link.hlLocationId);
  const writable = engine.mapping.notes !== "off" && (await engine.highLevelWritable(link.hlLocationId));
  const toHl = writable && (engine.mapping.notes === "both" || engine.mapping.notes === "to_highlevel");
  const toFd = engine.mapping.notes === "both" || engine.mapping.notes === "to_fourdegrees";
  const deletes = engine.account.deletePolicy !== "ignore";
  const [fdNotes, hlNotes, { linked: links, pending }] = await Promise.all([
    engine.deps.fourdegrees.listNotes(link.fdDealId),
    hl.listNotes(contactId),
    noteLinkRowsForDeal(engine.db, engine.account.id, link.fdDealId),
  ]);
  const out: JobResult = { ...blank(link.fdDealId, link.hlOpportunityId) };
  // Test mode and plan-only runs compute every write and make none.
  const test = engine.account.testMode || options.plan === true;
  /** Note-link changes (saves, deletes, hash refreshes) this run made or, when `test`, would make. */
  let bookkeeping = 0;
  const now = () => engine.deps.now();
  // Users are read only when a copy is written (its author line); an author they do not know reloads them once.
  const users = async (author: { fd?: string | null; hl?: string | null }): Promise<People> => {
    const [fd, hl] = await Promise.all([
      engine.lookups.ensureFourDegreesUser(author.fd ?? null),
      engine.lookups.ensureHighLevelUser(link.hlLocationId, author.hl),
    ]);
    return { fdUsers: fd.users, hlUsers: hl.users, userMap: engine.mapping };
  };
  const byFd = new Map(fdNotes.map((n) => [n.id, n]));
  const byHl = new Map(hlNotes.map((n) => [n.id, n]));
  const linkedFd = new Set(links.map((l) => l.fdNoteId));
  const linkedHl = new Set(links.map((l) => l.hlNoteId));
  // Notes linked to other deals of a shared contact are not ours to judge.
  if (sharedContact) {
    const others = await noteIdsOfOtherPairs(engine, contactId, link.fdDealId);
    for (const id of others) byHl.delete(id);
  }

  // A pending create whose 4Degrees note is gone has nothing left to link (its copy, if made, is
  // tagged and left alone as today's copies of deleted notes are).
  for (const p of pending) {
    if (byFd.has(p.fdNoteId)) continue;
    bookkeeping++;
    if (!test) await deleteNoteLink(engine.db, engine.account.id, p.fdNoteId);
  }

  for (const nl of links) {
    const f = byFd.get(nl.fdNoteId);
    const h = byHl.get(nl.hlNoteId);
    if (!f && !h) {
      bookkeeping++;
      if (!test) await deleteNoteLink(engine.db, engine.account.id, nl.fdNoteId);
      continue;
    }
    if (!f || !h) {
      // Deleted on one side (the listing is the confirming re-read).
      if (deletes && ((!f && toHl) || (!h && toFd))) {
        out.writes.push(
          !f
            ? { side: "highlevel", op: "delete_note", id: nl.hlNoteId }
            : { side: "fourdegrees", op: "delete_note", id: nl.fdNoteId },
        );
        if (!test) {
          if (!f) await hl.deleteNote(contactId, nl.hlNoteId);
          else
            await engine.deps.fourdegrees.deleteNote(nl.fdNoteId, {
              idempotencyKey: `sync:${engine.account.id}:note-delete:${nl.fdNoteId}`,
            });
        }
      }
      bookkeeping++;
      if (!test) await deleteNoteLink(engine.db, engine.account.id, nl.fdNoteId);
      continue;
    }
    const fBody = stripOrigin(f.body).text;
    const hBody = stripOrigin(h.body).text;
    const fh = await sha256(fBody);
    const hh = await sha256(hBody);
    if (fh === hh) {
      if (fh !== nl.bodyHash) bookkeeping++;
      if (fh !== nl.bodyHash && !test) await saveNoteLink(engine.db, { ...nl, bodyHash: fh }, now());
      continue;
    }
    const fdChanged = fh !== nl.bodyHash;
    const hlChanged = hh !== nl.bodyHash;
    let winner: SideName | null =
      fdChanged && !hlChanged ? "fourdegrees" : hlChanged && !fdChanged ? "highlevel" : null;
    if (winner === null) {
      const policy = engine.account.conflictPolicy;
      winner =
        policy === "newest"
          ? Date.parse(f.updatedAt ?? f.createdAt ?? "") >= Date.parse(h.dateAdded ?? "")
            ? "fourdegrees"
            : "highlevel"
          : policy;
      if (!options.plan)
        await recordEvent(engine.db, {
          accountId: engine.account.id,
          kind: "conflict",
          direction: winner === "fourdegrees" ? "to_highlevel" : "to_fourdegrees",
          fdId: link.fdDealId,
          hlId: link.hlOpportunityId,
          outcome: `${winner}_wins`,
          detail: { field: "note", fdNoteId: f.id, hlNoteId: h.id, policy },
        });
    }
    if (winner === "fourdegrees" && toHl) {
      out.writes.push({ side: "highlevel", op: "update_note", id: h.id });
      if (!test)
        await hl.updateNote(
          contactId,
          h.id,
          tagOrigin(fBody, "fourdegrees", f.id, attributeFourDegrees(f, await users({ fd: f.authorId }))),
        );
      if (!test) await saveNoteLink(engine.db, { ...nl, bodyHash: fh }, now());
    } else if (winner === "highlevel" && toFd) {
      out.writes.push({ side: "fourdegrees", op: "update_note", id: f.id });
      if (!test)
        await engine.deps.fourdegrees.updateNote(
          f.id,
          tagOrigin(hBody, "highlevel", h.id, attributeHighLevel(h, await users({ hl: h.userId }))),
          {
            idempotencyKey: `sync:${engine.account.id}:note:${f.id}:${hh}`,
          },
        );
      if (!test) await saveNoteLink(engine.db, { ...nl, bodyHash: hh }, now());
    }
  }

  // Unlinked 4Degrees notes: ours (tagged) → link; theirs → copy to HighLevel.
  for (const f of fdNotes) {
    if (linkedFd.has(f.id)) continue;
    const { text, origin } = stripOrigin(f.body);
    if (origin?.side === "highlevel") {
      if (byHl.has(origin.id)) bookkeeping++;
      if (!test && byHl.has(origin.id))
        await saveNoteLink(
          engine.db,
          {
            accountId: engine.account.id,
            fdNoteId: f.id,
            hlNoteId: origin.id,
            fdDealId: link.fdDealId,
            hlContactId: contactId,
            origin: "highlevel",
            bodyHash: await sha256(text),
          },
          now(),
        );
      continue;
    }
    const tagged = hlNotes.find((h) => stripOrigin(h.body).origin?.id === f.id);
    if (tagged) {
      bookkeeping++;
      if (!test)
        await saveNoteLink(
          engine.db,
          {
            accountId: engine.account.id,
            fdNoteId: f.id,
            hlNoteId: tagged.id,
            fdDealId: link.fdDealId,
            hlContactId: contactId,
            origin: "fourdegrees",
            bodyHash: await sha256(text),
          },
          now(),
        );
      continue;
    }
    if (!toHl) continue;
    const write = { side: "highlevel" as const, op: "create_note" as const, id: null, from: `fourdegrees:${f.id}` };
    out.writes.push(write);
    if (test) continue;
    // The pending note link is the create's write-ahead record: a retry that finds it pending
    // looked for the copy above (its origin footer) and found none, so it creates; one that finds
    // it complete (another job's create) links nothing more.
    const by = attributeFourDegrees(f, await users({ fd: f.authorId }));
    const claim = await claimNoteCreate(
      engine.db,
      {
        accountId: engine.account.id,
        fdNoteId: f.id,
        fdDealId: link.fdDealId,
        hlContactId: contactId,
        origin: "fourdegrees",
        bodyHash: await sha256(text),
        author: by.name,
        sourceCreatedAt: by.createdAt,
      },
      now(),
    );
    if (!claim.fresh && claim.hlNoteId !== null) {
      out.writes.splice(out.writes.indexOf(write), 1);
      continue;
    }
    const created = await hl.createNote(contactId, tagOrigin(text, "fourdegrees", f.id, by), by.hlUserId ?? undefined);
    await engine.deps.hooks?.afterCreate?.("highlevel", created.id);
    await completeNoteCreate(engine.db, engine.account.id, f.id, created.id, now());
  }

  // Unlinked HighLevel notes: ours (tagged) → link above; theirs → copy to 4Degrees (not on a shared contact).
  for (const h of byHl.values()) {
    if (linkedHl.has(h.id)) continue;
    const { text, origin } = stripOrigin(h.body);
    if (origin) continue; // a copy of a 4Degrees note: linked (or about to be) by the loop above
    if (fdNotes.some((f) => stripOrigin(f.body).origin?.id === h.id)) continue;
    if (sharedContact || !toFd) continue;
    out.writes.push({ side: "fourdegrees", op: "create_note", id: null, from: `highlevel:${h.id}` });
    if (test) continue;
    const key: LedgerKey = {
      accountId: engine.account.id,
      targetSide: "fourdegrees",
      sourceRecord: `highlevel:note:${h.id}`,
      changeHash: "create",
    };
    const by = attributeHighLevel(h, await users({ hl: h.userId }));
    const begun = await beginWrite(engine.db, key, "create_note", now(), tagOrigin(text, "highlevel", h.id, by));
    // A retry re-sends the first attempt's body with the same key (a replay needs the identical
    // request); the link's hash is then that body's, so an edit made since syncs as an update.
    const body =
      !begun.fresh && typeof begun.entry.request === "string"
        ? begun.entry.request
        : tagOrigin(text, "highlevel", h.id, by);
    const created: Note = await engine.deps.fourdegrees.createNote(link.fdDealId, body, {
      idempotencyKey: ledgerIdempotencyKey(key),
      // The original author and time, when the author is a 4Degrees user (needs the `import` scope).
      ...(by.fdUserId ? { authorId: by.fdUserId, ...(by.createdAt ? { createdAt: by.createdAt } : {}) } : {}),
    });
    await engine.deps.hooks?.afterCreate?.("fourdegrees", created.id);
    await completeWrite(engine.db, key, created.id, now());
    await saveNoteLink(
      engine.db,
      {
        accountId: engine.account.id,
        fdNoteId: created.id,
        hlNoteId: h.id,
        fdDealId: link.fdDealId,
        hlContactId: contactId,
        origin: "highlevel",
        bodyHash: await sha256(stripOrigin(body).text),
        author: by.name,
        sourceCreatedAt: by.createdAt,
      },
      now(),
    );
  }
  out.outcome = test ? (out.writes.length ? "test_mode" : "noop") : out.writes.length ? "ok" : "noop";
  if (bookkeeping > 0) out.detail = { ...out.detail, bookkeeping };
  out.direction = directionOfWrites(out.writes);
  // The record job's one `note` event carries these writes (src/sync/jobs/record.ts).
  return out;
}

/** HighLevel note ids linked to the other pairs of a shared contact. */
async function noteIdsOfOtherPairs(engine: NotesHost, contactId: string, fdDealId: string): Promise<string[]> {
  const ids: string[] = [];
  for (const other of await linksForContact(engine.db, engine.account.id, contactId)) {
    if (other.fdDealId === fdDealId) continue;
    for (const nl of await noteLinksForDeal(engine.db, engine.account.id, other.fdDealId)) ids.push(nl.hlNoteId);
  }
  return ids;
}

const ORIGIN = /\n\n(?:— by [^\n]* · [^\n]*\n)?— synced from (4Degrees|HighLevel) note ([A-Za-z0-9_\-:.]+)$/;

/**
 * Appends the origin marker (a footer naming the source note) so a copy never bounces back, with
 * the original author and time on the line above it when known (note-authors.ts).
 */
export function tagOrigin(text: string, origin: SideName, id: string, by?: Attribution | null): string {
  const line = attributionLine(by);
  return `${text}\n\n${line ? `${line}\n` : ""}— synced from ${origin === "fourdegrees" ? "4Degrees" : "HighLevel"} note ${id}`;
}

/** Splits a note body into its text and the origin marker, if any. */
export function stripOrigin(body: string): { text: string; origin: { side: SideName; id: string } | null } {
  const m = ORIGIN.exec(body);
  if (!m) return { text: body, origin: null };
  return {
    text: body.slice(0, m.index),
    origin: { side: m[1] === "4Degrees" ? "fourdegrees" : "highlevel", id: m[2] ?? "" },
  };
}
