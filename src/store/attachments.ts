/**
 * Attachment links (migrations/01NN_attachment_links.sql): which 4Degrees deal attachment and which
 * entry of the HighLevel opportunity's file field are the same file, with its SHA-256, size and name.
 * A row is written only after the copy's upload succeeded; the write ledger covers the gap between.
 */
import * as z from "zod";
import type { SideName } from "./links.ts";

export interface AttachmentLink {
  accountId: string;
  fdDealId: string;
  hlOpportunityId: string;
  fdAttachmentId: string;
  /** The key of the entry in the HighLevel FILE_UPLOAD field value (or `note:<id>` for a link-only note). */
  hlFileKey: string;
  origin: SideName;
  /** `copy`: the bytes crossed; `link_only`: over the size limit, the other side got a note with the URL. */
  kind: "copy" | "link_only";
  /** Hex SHA-256 of the bytes, when they crossed. */
  contentHash: string | null;
  size: number;
  fileName: string;
  contentType: string;
}

const Row = z.object({
  account_id: z.string(),
  fd_deal_id: z.string(),
  hl_opportunity_id: z.string(),
  fd_attachment_id: z.string(),
  hl_file_key: z.string(),
  origin: z.enum(["fourdegrees", "highlevel"]),
  kind: z.enum(["copy", "link_only"]),
  content_hash: z.string().nullable(),
  size: z.number(),
  file_name: z.string(),
  content_type: z.string(),
});

function toLink(raw: unknown): AttachmentLink {
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    fdDealId: r.fd_deal_id,
    hlOpportunityId: r.hl_opportunity_id,
    fdAttachmentId: r.fd_attachment_id,
    hlFileKey: r.hl_file_key,
    origin: r.origin,
    kind: r.kind,
    contentHash: r.content_hash,
    size: r.size,
    fileName: r.file_name,
    contentType: r.content_type,
  };
}

/** The attachment links of one 4Degrees deal. */
export async function attachmentLinksForDeal(
  db: D1Database,
  accountId: string,
  fdDealId: string,
): Promise<AttachmentLink[]> {
  const { results } = await db
    .prepare("SELECT * FROM attachment_links WHERE account_id = ? AND fd_deal_id = ? ORDER BY fd_attachment_id")
    .bind(accountId, fdDealId)
    .all();
  return results.map(toLink);
}

/** The link of a 4Degrees attachment id, or null. */
export async function attachmentLinkByFourDegreesId(
  db: D1Database,
  accountId: string,
  fdAttachmentId: string,
): Promise<AttachmentLink | null> {
  const row = await db
    .prepare("SELECT * FROM attachment_links WHERE account_id = ? AND fd_attachment_id = ?")
    .bind(accountId, fdAttachmentId)
    .first();
  return row ? toLink(row) : null;
}

/** Saves a link (idempotent: a retry that saves the same pair again changes nothing). */
export async function saveAttachmentLink(db: D1Database, link: AttachmentLink, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT INTO attachment_links (account_id, fd_deal_id, hl_opportunity_id, fd_attachment_id, hl_file_key, origin, kind,
         content_hash, size, file_name, content_type, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, fd_attachment_id) DO UPDATE SET hl_file_key = excluded.hl_file_key,
         content_hash = excluded.content_hash, updated_at = excluded.updated_at`,
    )
    .bind(
      link.accountId,
      link.fdDealId,
      link.hlOpportunityId,
      link.fdAttachmentId,
      link.hlFileKey,
      link.origin,
      link.kind,
      link.contentHash,
      link.size,
      link.fileName,
      link.contentType,
      now,
    )
    .run();
}

/** Removes a link (both sides are gone, or the delete crossed). */
export async function deleteAttachmentLink(db: D1Database, accountId: string, fdAttachmentId: string): Promise<void> {
  await db
    .prepare("DELETE FROM attachment_links WHERE account_id = ? AND fd_attachment_id = ?")
    .bind(accountId, fdAttachmentId)
    .run();
}

/** Where reconcile's attachment scan resumes: the last 4Degrees deal id compared ('' = the first link). */
export async function getAttachmentScanCursor(db: D1Database, accountId: string): Promise<string> {
  const row = await db
    .prepare("SELECT after FROM attachment_scan_cursors WHERE account_id = ?")
    .bind(accountId)
    .first();
  return row ? z.object({ after: z.string() }).parse(row).after : "";
}

/** Saves the attachment scan cursor ('' wraps around to the first link). */
export async function saveAttachmentScanCursor(
  db: D1Database,
  accountId: string,
  after: string,
  now = Date.now(),
): Promise<void> {
  await db
    .prepare(
      "INSERT INTO attachment_scan_cursors (account_id, after, updated_at) VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET after = excluded.after, updated_at = excluded.updated_at",
    )
    .bind(accountId, after, now)
    .run();
}
