/**
 * The attachments of a linked pair: 4Degrees deal attachments ↔ the files in the opportunity's
 * FILE_UPLOAD field (`mapping.attachmentsFieldId`). A new file is copied to the other side once,
 * streamed (download → metered hash/length check → multipart upload), ledger-guarded, and linked in
 * `attachment_links` only after the upload succeeded; a copy is recognised by its link, its
 * ledger row or its deterministic field key, so it is never copied back. Deletes follow the
 * account's delete policy. A file over `maxBytes` crosses as a note with its download URL, plus
 * a visible skip event. docs/sync.md "Attachments" has the whole story.
 */
import type { Attachment, DealAttachments, FieldFile, FileUpload } from "../../domain/attachments.ts";
import type { Mapping } from "../../domain/mapping-config.ts";
import type { DealCrm } from "../../domain/port.ts";
import type { HighLevelAdapter } from "../../highlevel/adapter.ts";
import { fileEntry, filesOfValue } from "../../highlevel/files.ts";
import { AppError } from "../../lib/errors.ts";
import { FileStreamError, meteredStream } from "../../lib/file-stream.ts";
import { sha256 } from "../../lib/hash.ts";
import type { Account } from "../../store/accounts.ts";
import {
  attachmentLinksForDeal,
  deleteAttachmentLink,
  saveAttachmentLink,
  type AttachmentLink,
} from "../../store/attachments.ts";
import { beginWrite, completeWrite, getWrite, ledgerIdempotencyKey, type LedgerKey } from "../../store/ledger.ts";
import { findLink, type Link, type SideName } from "../../store/links.ts";
import { recordEvent } from "../../store/sync-events.ts";
import { tagOrigin } from "./notes.ts";
import { blank, directionOfWrites, type JobResult } from "./types.ts";

/** What the attachment sync needs (built by src/sync/jobs/attachments.ts). */
export interface AttachmentsHost {
  db: D1Database;
  account: Account;
  mapping: Mapping;
  fourdegrees: DealAttachments;
  /** Notes, for the link a file over the limit becomes. */
  fourdegreesNotes: Pick<DealCrm, "createNote" | "deleteNote">;
  highlevel(locationId: string): HighLevelAdapter;
  /** Largest file copied (config `ATTACHMENT_MAX_BYTES`). */
  maxBytes: number;
  now(): number;
  /** Test hook: runs right after an upload answered, before anything records it (crash simulation). */
  afterUpload?(target: SideName, id: string): void | Promise<void>;
  /** Test hook: runs right after a write of the opportunity's file field, before it is read back. */
  afterFieldWrite?(opportunityId: string): void | Promise<void>;
}

/** Writes of the file field per job when concurrent writes keep dropping ours (then the job retries). */
const FIELD_WRITE_ATTEMPTS = 3;

/** One file that could not cross, with why (the job files them as one replayable failure). */
interface FileProblem {
  file: string;
  reason: string;
}

/**
 * The HighLevel field key of the copy of 4Degrees attachment `id`: a UUID derived from the id, so a
 * retry finds the entry an earlier attempt wrote and the reverse direction knows it is a copy.
 */
export async function copyKeyFor(fdAttachmentId: string): Promise<string> {
  const h = await sha256(`fourdegrees-attachment:${fdAttachmentId}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Syncs the attachments of the pair of a 4Degrees deal or HighLevel opportunity. */
export async function syncAttachments(host: AttachmentsHost, side: SideName, recordId: string): Promise<JobResult> {
  const link = await findLink(host.db, host.account.id, side, recordId);
  const fieldId = host.mapping.attachmentsFieldId;
  if (!fieldId || host.mapping.attachments === "off")
    return { ...blank(null, null), outcome: "skipped", reason: "attachments are off (no attachmentsFieldId)" };
  if (!link || link.state !== "active")
    return { ...blank(null, null), outcome: "skipped", reason: "the record has no active link yet" };
  return new PairAttachments(host, link, fieldId).run();
}

/**
 * Whether a pair's files differ from their links (reconcile's check for a lost webhook): a file of
 * either side with no link that the mapping's direction copies, or a linked file gone from one side
 * that the delete policy propagates. It only decides whether to run `syncAttachments`, which
 * recognises copies and ledger rows itself, so a false positive costs one job and no write.
 */
export async function attachmentsDiffer(
  mapping: Pick<Mapping, "attachments">,
  account: Pick<Account, "readOnly" | "deletePolicy">,
  fdList: readonly Attachment[],
  fieldValue: unknown,
  links: readonly AttachmentLink[],
): Promise<boolean> {
  const dir = mapping.attachments;
  if (dir === "off") return false;
  const toHl = !account.readOnly && (dir === "both" || dir === "to_highlevel");
  const toFd = dir === "both" || dir === "to_fourdegrees";
  const hlKeys = new Set(filesOfValue(fieldValue).map((f) => f.key));
  const fdIds = new Set(fdList.map((a) => a.id));
  const linkedFd = new Set(links.map((l) => l.fdAttachmentId));
  const linkedHl = new Set(links.map((l) => l.hlFileKey));
  for (const l of links) {
    const fdHere = (l.kind === "link_only" && l.origin === "highlevel") || fdIds.has(l.fdAttachmentId);
    const hlHere = (l.kind === "link_only" && l.origin === "fourdegrees") || hlKeys.has(l.hlFileKey);
    if (fdHere === hlHere) continue;
    if (account.deletePolicy !== "ignore" && (fdHere ? toFd : toHl)) return true;
  }
  const copyKeys = new Map<string, string>();
  for (const a of fdList) copyKeys.set(a.id, await copyKeyFor(a.id));
  const ourCopies = new Set(copyKeys.values());
  // An unlinked field file is new (copied when the direction allows) or our own copy (always linked).
  for (const key of hlKeys) if (!linkedHl.has(key) && (toFd || ourCopies.has(key))) return true;
  return toHl && fdList.some((a) => !linkedFd.has(a.id) && !linkedHl.has(copyKeys.get(a.id) ?? ""));
}

/** One run over one pair. */
class PairAttachments {
  readonly #h: AttachmentsHost;
  readonly #link: Link;
  readonly #fieldId: string;
  readonly #hl: HighLevelAdapter;
  readonly #out: JobResult;
  readonly #problems: FileProblem[] = [];
  /** Field entries to add (key → entry) and keys to remove, written in one update. */
  readonly #add = new Map<string, Record<string, unknown>>();
  readonly #remove = new Set<string>();
  /** Links to save once the field update that holds their entries succeeded. */
  readonly #pendingLinks: AttachmentLink[] = [];

  constructor(host: AttachmentsHost, link: Link, fieldId: string) {
    this.#h = host;
    this.#link = link;
    this.#fieldId = fieldId;
    this.#hl = host.highlevel(link.hlLocationId);
    this.#out = blank(link.fdDealId, link.hlOpportunityId);
  }

  async run(): Promise<JobResult> {
    const h = this.#h;
    const dir = h.mapping.attachments;
    const writable = !h.account.readOnly && (await this.#hl.canWrite());
    const toHl = writable && (dir === "both" || dir === "to_highlevel");
    const toFd = dir === "both" || dir === "to_fourdegrees";
    const test = h.account.testMode;
    const [fdList, opp, links] = await Promise.all([
      h.fourdegrees.listAttachments(this.#link.fdDealId),
      this.#hl.getOpportunity(this.#link.hlOpportunityId),
      attachmentLinksForDeal(h.db, h.account.id, this.#link.fdDealId),
    ]);
    if (!opp) return { ...this.#out, outcome: "skipped", reason: "the HighLevel opportunity is gone" };
    const value = opp.customFields.find((f) => f.id === this.#fieldId)?.value ?? null;
    const hlFiles = filesOfValue(value);
    const fdById = new Map(fdList.map((a) => [a.id, a]));
    const hlByKey = new Map(hlFiles.map((f) => [f.key, f]));
    const linkedFd = new Set(links.map((l) => l.fdAttachmentId));
    const linkedHl = new Set(links.map((l) => l.hlFileKey));
    const deletes = h.account.deletePolicy !== "ignore";

    // Linked files gone on one side: the delete crosses (by policy); gone on both: the link goes.
    for (const l of links) {
      const fdHere = l.kind === "link_only" && l.origin === "highlevel" ? true : fdById.has(l.fdAttachmentId);
      const hlHere = l.kind === "link_only" && l.origin === "fourdegrees" ? true : hlByKey.has(l.hlFileKey);
      if (fdHere && hlHere) continue;
      if (!fdHere && !hlHere) {
        if (!test) await deleteAttachmentLink(h.db, h.account.id, l.fdAttachmentId);
        continue;
      }
      // With the `ignore` policy the link stays, so the surviving copy is never copied back.
      if (!deletes) continue;
      if (!fdHere && toHl) {
        this.#out.writes.push({ side: "highlevel", op: "delete_attachment", id: l.hlFileKey });
        if (test) continue;
        if (l.kind === "link_only" && l.hlFileKey.startsWith("note:") && this.#link.hlContactId)
          await this.#hl.deleteNote(this.#link.hlContactId, l.hlFileKey.slice("note:".length));
        else this.#remove.add(l.hlFileKey);
        if (l.kind === "link_only") await deleteAttachmentLink(h.db, h.account.id, l.fdAttachmentId);
      } else if (!hlHere && toFd) {
        this.#out.writes.push({ side: "fourdegrees", op: "delete_attachment", id: l.fdAttachmentId });
        if (test) continue;
        const key = `sync:${h.account.id}:attachment-delete:${l.fdAttachmentId}`.slice(0, 255);
        if (l.fdAttachmentId.startsWith("note:"))
          await h.fourdegreesNotes.deleteNote(l.fdAttachmentId.slice("note:".length), { idempotencyKey: key });
        else await h.fourdegrees.deleteAttachment(l.fdAttachmentId, { idempotencyKey: key });
        await deleteAttachmentLink(h.db, h.account.id, l.fdAttachmentId);
      }
    }

    // HighLevel files without a link: our own copy (recognised and linked), or new → 4Degrees.
    for (const f of hlFiles) {
      if (linkedHl.has(f.key)) continue;
      const copyOf = await this.#copyOfFourDegrees(f, fdList);
      if (copyOf) {
        linkedFd.add(copyOf.id);
        if (!test) await this.#saveLink(copyOf, f.key, "fourdegrees", null);
        continue;
      }
      const ledger = this.#ledgerKey("fourdegrees", `highlevel:attachment:${f.key}`);
      const earlier = await getWrite(h.db, ledger);
      const copied = earlier?.state === "done" && earlier.targetId ? fdById.get(earlier.targetId) : undefined;
      if (copied) {
        linkedFd.add(copied.id);
        if (!test) await this.#saveLink(copied, f.key, "highlevel", null);
        continue;
      }
      if (!toFd) continue;
      this.#out.writes.push({ side: "fourdegrees", op: "create_attachment", id: null });
      if (test) continue;
      const created = await this.#guard(f.name ?? f.key, () => this.#copyToFourDegrees(f, ledger));
      if (created) linkedFd.add(created);
    }

    // 4Degrees attachments without a link: new → HighLevel (a copy of a HighLevel file was linked above).
    for (const a of fdList) {
      if (linkedFd.has(a.id)) continue;
      const key = await copyKeyFor(a.id);
      if (linkedHl.has(key)) continue;
      if (!toHl) continue;
      this.#out.writes.push({ side: "highlevel", op: "create_attachment", id: null });
      if (test) continue;
      await this.#guard(a.fileName, () => this.#copyToHighLevel(a, key));
    }

    let held: ReadonlySet<string> | null = null;
    if (!test && (this.#add.size > 0 || this.#remove.size > 0)) {
      held = await this.#writeField();
      for (const key of this.#remove) {
        const l = links.find((x) => x.hlFileKey === key);
        if (l && !held.has(key)) await deleteAttachmentLink(h.db, h.account.id, l.fdAttachmentId);
      }
    }
    // Only entries the field holds get a link: a missing one would later read as a HighLevel delete.
    for (const l of this.#pendingLinks)
      if (!held || !this.#add.has(l.hlFileKey) || held.has(l.hlFileKey)) await saveAttachmentLink(h.db, l, h.now());
    const dropped = held ? [...this.#add.keys()].filter((k) => !held.has(k)) : [];

    const out = this.#out;
    out.direction = directionOfWrites(out.writes);
    out.outcome = test ? (out.writes.length ? "test_mode" : "noop") : out.writes.length ? "ok" : "noop";
    if (out.writes.length > 0 && !test)
      await recordEvent(h.db, {
        accountId: h.account.id,
        kind: "attachment",
        direction: out.direction,
        fdId: this.#link.fdDealId,
        hlId: this.#link.hlOpportunityId,
        outcome: this.#problems.length ? "partial" : "ok",
        detail: { writes: out.writes },
      });
    if (dropped.length > 0)
      // The ledger keeps each upload's URL: the retry writes the entries again without uploading.
      throw new AppError(
        "upstream_unavailable",
        `attachments of deal ${this.#link.fdDealId}: HighLevel's file field kept losing ${dropped.length} new entr${dropped.length === 1 ? "y" : "ies"} to concurrent writes`,
      );
    if (this.#problems.length > 0)
      throw new AppError(
        "unprocessable",
        `attachments of deal ${this.#link.fdDealId}: ` +
          this.#problems.map((p) => `"${p.file}": ${p.reason}`).join("; "),
      );
    return out;
  }

  /**
   * Writes the field read-modify-write: re-read right before (the copies took a while, and a file a
   * user added since must stay), write, read back. A write landing just after ours from a stale copy
   * of the field drops our entries or brings back removed ones: they are merged into what the field
   * holds now and written again, at most `FIELD_WRITE_ATTEMPTS` times. Returns the keys the field
   * holds at the end. A write landing between our read and our write is not visible afterwards
   * (HighLevel has no conditional write): docs/sync.md "Attachments", the field's race.
   */
  async #writeField(): Promise<ReadonlySet<string>> {
    const valueOf = async () =>
      (await this.#hl.getOpportunity(this.#link.hlOpportunityId))?.customFields.find((f) => f.id === this.#fieldId)
        ?.value ?? null;
    let current = await valueOf();
    let held = new Set<string>();
    for (let attempt = 1; attempt <= FIELD_WRITE_ATTEMPTS; attempt++) {
      await this.#hl.setFileField(
        this.#link.hlOpportunityId,
        this.#fieldId,
        nextValue(current, this.#add, this.#remove),
      );
      await this.#h.afterFieldWrite?.(this.#link.hlOpportunityId);
      current = await valueOf();
      held = new Set(filesOfValue(current).map((f) => f.key));
      const settled = [...this.#add.keys()].every((k) => held.has(k)) && [...this.#remove].every((k) => !held.has(k));
      if (settled) break;
    }
    return held;
  }

  /** A 4Degrees attachment whose deterministic copy key is this HighLevel file's: the file is our copy. */
  async #copyOfFourDegrees(f: FieldFile, fdList: Attachment[]): Promise<Attachment | null> {
    for (const a of fdList) if ((await copyKeyFor(a.id)) === f.key) return a;
    return null;
  }

  #ledgerKey(target: SideName, sourceRecord: string): LedgerKey {
    return { accountId: this.#h.account.id, targetSide: target, sourceRecord, changeHash: "create" };
  }

  /**
   * Runs one file's copy: a permanent failure (refused type, bad length, failed download) is kept
   * as a problem so the other files still cross; anything transient is thrown (the job retries).
   */
  async #guard<T>(file: string, copy: () => Promise<T>): Promise<T | null> {
    try {
      return await copy();
    } catch (err) {
      const permanent =
        err instanceof FileStreamError ||
        (err instanceof AppError && err.retryAdvice?.retryable === false) ||
        (err instanceof AppError && err.retryAdvice === null && !["rate_limited", "internal"].includes(err.code));
      if (!permanent) throw err;
      this.#problems.push({ file, reason: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  async #saveLink(a: Attachment, hlKey: string, origin: SideName, hash: string | null): Promise<void> {
    await saveAttachmentLink(
      this.#h.db,
      {
        accountId: this.#h.account.id,
        fdDealId: this.#link.fdDealId,
        hlOpportunityId: this.#link.hlOpportunityId,
        fdAttachmentId: a.id,
        hlFileKey: hlKey,
        origin,
        kind: "copy",
        contentHash: hash,
        size: a.size,
        fileName: a.fileName,
        contentType: a.contentType,
      },
      this.#h.now(),
    );
  }

  /** HighLevel file → 4Degrees attachment (or, over the limit, a 4Degrees note with the URL). Its id. */
  async #copyToFourDegrees(f: FieldFile, ledger: LedgerKey): Promise<string> {
    const h = this.#h;
    const name = f.name ?? nameFromUrl(f.url);
    if (f.size !== null && f.size > h.maxBytes) return this.#linkOnlyToFourDegrees(f, name, f.size);
    await beginWrite(h.db, ledger, "create_attachment", h.now());
    const download = await this.#hl.downloadFile(f.url);
    const size = download.size ?? f.size;
    if (size === null) {
      await download.body.cancel();
      throw new FileStreamError("length_mismatch", "the download declared no length");
    }
    if (f.size !== null && download.size !== null && f.size !== download.size) {
      await download.body.cancel();
      throw new FileStreamError("length_mismatch", `the field says ${f.size} bytes, the download ${download.size}`);
    }
    if (size > h.maxBytes) {
      await download.body.cancel();
      return this.#linkOnlyToFourDegrees(f, name, size);
    }
    const contentType = (f.contentType ?? download.contentType ?? "application/octet-stream").split(";")[0]!.trim();
    const meter = meteredStream({ expected: size, limit: h.maxBytes });
    const upload: FileUpload = { fileName: name, contentType, size, body: download.body.pipeThrough(meter.stream) };
    const created = await h.fourdegrees.uploadAttachment(this.#link.fdDealId, upload, {
      idempotencyKey: ledgerIdempotencyKey(ledger),
    });
    const seen = await meter.result;
    await h.afterUpload?.("fourdegrees", created.id);
    await completeWrite(h.db, ledger, created.id, h.now());
    await this.#saveLink(created, f.key, "highlevel", seen.sha256);
    return created.id;
  }

  /** 4Degrees attachment → a file in the opportunity's field (or, over the limit, a HighLevel note). */
  async #copyToHighLevel(a: Attachment, key: string): Promise<void> {
    const h = this.#h;
    if (a.size > h.maxBytes) return this.#linkOnlyToHighLevel(a);
    const ledger = this.#ledgerKey("highlevel", `fourdegrees:attachment:${a.id}`);
    const begun = await beginWrite(h.db, ledger, "create_attachment", h.now());
    const done = begun.entry.state === "done" && begun.entry.targetId ? parseTarget(begun.entry.targetId) : null;
    let url = done?.url ?? null;
    let hash: string | null = null;
    if (!url) {
      const download = await h.fourdegrees.download(a);
      if (download.size !== null && download.size !== a.size) {
        await download.body.cancel();
        throw new FileStreamError("length_mismatch", `4Degrees says ${a.size} bytes, the download ${download.size}`);
      }
      const meter = meteredStream({ expected: a.size, limit: h.maxBytes });
      url = await this.#hl.uploadFieldFile(this.#link.hlOpportunityId, key, {
        fileName: a.fileName,
        contentType: a.contentType,
        size: a.size,
        body: download.body.pipeThrough(meter.stream),
      });
      hash = (await meter.result).sha256;
      await completeWrite(h.db, ledger, JSON.stringify({ key, url }), h.now());
      await h.afterUpload?.("highlevel", key);
    }
    this.#add.set(key, fileEntry(key, url, { fileName: a.fileName, contentType: a.contentType, size: a.size }));
    this.#pendingLinks.push({
      accountId: h.account.id,
      fdDealId: this.#link.fdDealId,
      hlOpportunityId: this.#link.hlOpportunityId,
      fdAttachmentId: a.id,
      hlFileKey: key,
      origin: "fourdegrees",
      kind: "copy",
      contentHash: hash,
      size: a.size,
      fileName: a.fileName,
      contentType: a.contentType,
    });
  }

  /** Over the limit, HighLevel → 4Degrees: a 4Degrees note with the file's (lasting) URL. */
  async #linkOnlyToFourDegrees(f: FieldFile, name: string, size: number): Promise<string> {
    const h = this.#h;
    const ledger = this.#ledgerKey("fourdegrees", `highlevel:attachment-link:${f.key}`);
    await beginWrite(h.db, ledger, "create_note", h.now());
    const text = `Attachment "${name}" (${size} bytes) is over the ${h.maxBytes}-byte sync limit: ${f.url}`;
    const note = await h.fourdegreesNotes.createNote(this.#link.fdDealId, tagOrigin(text, "highlevel", f.key), {
      idempotencyKey: ledgerIdempotencyKey(ledger),
    });
    await completeWrite(h.db, ledger, note.id, h.now());
    const id = `note:${note.id}`;
    await saveAttachmentLink(
      h.db,
      {
        accountId: h.account.id,
        fdDealId: this.#link.fdDealId,
        hlOpportunityId: this.#link.hlOpportunityId,
        fdAttachmentId: id,
        hlFileKey: f.key,
        origin: "highlevel",
        kind: "link_only",
        contentHash: null,
        size,
        fileName: name,
        contentType: f.contentType ?? "application/octet-stream",
      },
      h.now(),
    );
    await this.#skipped(name, size, "to_fourdegrees");
    return id;
  }

  /** Over the limit, 4Degrees → HighLevel: a note on the opportunity's contact (the URL expires: it says so). */
  async #linkOnlyToHighLevel(a: Attachment): Promise<void> {
    const h = this.#h;
    const contactId = this.#link.hlContactId;
    if (!contactId) {
      await this.#skipped(a.fileName, a.size, "to_highlevel");
      return;
    }
    const ledger = this.#ledgerKey("highlevel", `fourdegrees:attachment-link:${a.id}`);
    const begun = await beginWrite(h.db, ledger, "create_note", h.now());
    let noteId = begun.entry.state === "done" ? begun.entry.targetId : null;
    if (!noteId) {
      const text =
        `Attachment "${a.fileName}" (${a.size} bytes) is over the ${h.maxBytes}-byte sync limit; ` +
        `open the deal in 4Degrees for it (this download link expires): ${a.downloadUrl ?? "(none)"}`;
      noteId = (await this.#hl.createNote(contactId, tagOrigin(text, "fourdegrees", a.id))).id;
      await completeWrite(h.db, ledger, noteId, h.now());
    }
    await saveAttachmentLink(
      h.db,
      {
        accountId: h.account.id,
        fdDealId: this.#link.fdDealId,
        hlOpportunityId: this.#link.hlOpportunityId,
        fdAttachmentId: a.id,
        hlFileKey: `note:${noteId}`,
        origin: "fourdegrees",
        kind: "link_only",
        contentHash: null,
        size: a.size,
        fileName: a.fileName,
        contentType: a.contentType,
      },
      h.now(),
    );
    await this.#skipped(a.fileName, a.size, "to_highlevel");
  }

  /** The visible skip reason of a file over the limit (the Activity and Problems views read it). */
  async #skipped(file: string, size: number, direction: "to_highlevel" | "to_fourdegrees"): Promise<void> {
    const h = this.#h;
    this.#out.writes.push({
      side: direction === "to_highlevel" ? "highlevel" : "fourdegrees",
      op: "link_attachment",
      id: null,
    });
    await recordEvent(h.db, {
      accountId: h.account.id,
      kind: "attachment",
      direction,
      fdId: this.#link.fdDealId,
      hlId: this.#link.hlOpportunityId,
      outcome: "skipped",
      detail: {
        reason: `"${file}" is ${size} bytes, over the ${h.maxBytes}-byte limit (ATTACHMENT_MAX_BYTES): linked, not copied`,
        file,
        size,
      },
    });
  }
}

/** The last path segment of a file URL, decoded when it can be, as a file name ("file" when none). */
function nameFromUrl(url: string): string {
  let last = "";
  try {
    last = new URL(url).pathname.split("/").pop() ?? "";
    last = decodeURIComponent(last);
  } catch {
    // A malformed URL or escape: keep what was read.
  }
  return last || "file";
}

function parseTarget(raw: string): { key: string; url: string } | null {
  try {
    const v: unknown = JSON.parse(raw);
    if (
      v &&
      typeof v === "object" &&
      "key" in v &&
      "url" in v &&
      typeof v.key === "string" &&
      typeof v.url === "string"
    )
      return { key: v.key, url: v.url };
  } catch {
    // Not a target this module wrote.
  }
  return null;
}

/** The field value after adding and removing entries (the `{<uuid>: {meta, url}}` form; `null` when empty). */
function nextValue(
  current: unknown,
  add: Map<string, Record<string, unknown>>,
  remove: Set<string>,
): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  const files = filesOfValue(current);
  const single = files.length === 1 && files[0]?.key === files[0]?.url;
  if (single && files[0] && !remove.has(files[0].key)) out[files[0].key] = current;
  else if (!single && current && typeof current === "object" && !Array.isArray(current))
    for (const [k, v] of Object.entries(current)) if (!remove.has(k)) out[k] = v;
  for (const [k, v] of add) out[k] = v;
  return Object.keys(out).length > 0 ? out : null;
}
