/**
 * The attachment side of the port: what the engine's attachment sync (src/sync/engine/attachments.ts)
 * needs of each CRM. Files travel as streams with a size, never as whole buffers.
 */
import type { WriteOptions } from "./port.ts";

/** A file attached to a 4Degrees deal (the assumed contract, docs/fourdegrees.md#attachments). */
export interface Attachment {
  id: string;
  dealId: string;
  fileName: string;
  contentType: string;
  size: number;
  authorId: string | null;
  createdAt: string | null;
  /** Signed and expiring: read the attachment again for a fresh one. Null for a deleted one. */
  downloadUrl: string | null;
}

/** A download in progress: the body stream and what the server declared about it. */
export interface FileDownload {
  body: ReadableStream<Uint8Array>;
  /** `Content-Length`, when the server sent one. */
  size: number | null;
  contentType: string | null;
}

/** A file to upload: its stream and its exact size (the stream is metered against it). */
export interface FileUpload {
  fileName: string;
  contentType: string;
  size: number;
  body: ReadableStream<Uint8Array>;
}

/** A deal-flow CRM's attachments. */
export interface DealAttachments {
  listAttachments(dealId: string): Promise<Attachment[]>;
  /** Uploads a file to the deal; the idempotency key makes a retried upload of the same bytes answer the first. */
  uploadAttachment(dealId: string, file: FileUpload, options?: WriteOptions): Promise<Attachment>;
  /** Resolves `false` when it was already gone. */
  deleteAttachment(id: string, options?: WriteOptions): Promise<boolean>;
  /** Starts the download of an attachment's bytes (at its signed URL). */
  download(attachment: Attachment): Promise<FileDownload>;
}

/** One file in a HighLevel FILE_UPLOAD custom field value. */
export interface FieldFile {
  /** The entry's key in the value (HighLevel's uuid), or the url for a bare `{url}` value. */
  key: string;
  url: string;
  name: string | null;
  contentType: string | null;
  size: number | null;
}
