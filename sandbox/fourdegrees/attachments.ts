/**
 * Deal attachments of the ASSUMED 4Degrees contract: the multipart upload (size cap, content-type
 * allow-list, magic-number check), the signed, expiring `download_url`, and the file host that
 * serves the bytes at it (`/4degrees/files/{id}?expires=&signature=`, no API key: the signature is
 * the credential, as with S3 or GCS signed URLs). Choices are documented in docs/sandbox.md.
 */
import { Hono, type Context } from "hono";
import { toBase64 } from "../core/base64.ts";
import { sleep } from "../core/faults.ts";
import { FourDegreesError, errorBody, fail } from "./errors.ts";
import type { Attachment } from "./model.ts";
import type { AttachmentInput } from "./store.ts";
import type { FourDegreesSandbox } from "./sandbox.ts";

/** Where the file host is mounted (standing in for a storage host such as files.4degrees.ai). */
export const FILES_BASE = "/4degrees/files";
/** 25 MiB: the default cap on one file (`FOURDEGREES_ATTACHMENT_MAX_BYTES`). */
export const DEFAULT_ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024;
/** 15 minutes: how long a `download_url` works (`FOURDEGREES_DOWNLOAD_URL_TTL_SECONDS`). */
export const DEFAULT_DOWNLOAD_URL_TTL_SECONDS = 900;
/** Room for the multipart boundaries and part headers around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/**
 * File types a deal accepts (documents, sheets, slides, images, text, archives); anything else is
 * 415 `unsupported_file_type`. `application/octet-stream` is refused: the uploader must say what it is.
 */
export const ALLOWED_CONTENT_TYPES: ReadonlySet<string> = new Set([
  "application/pdf",
  "application/msword",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "application/vnd.ms-excel",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "application/vnd.ms-powerpoint",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/zip",
  "text/plain",
  "text/csv",
  "text/markdown",
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
]);

/** Leading bytes a file of these types must start with, so a mislabelled file is refused (422). */
const MAGIC: Record<string, number[][]> = {
  "application/pdf": [[0x25, 0x50, 0x44, 0x46]],
  "image/png": [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  "image/jpeg": [[0xff, 0xd8, 0xff]],
  "image/gif": [[0x47, 0x49, 0x46, 0x38]],
  "application/zip": [
    [0x50, 0x4b, 0x03, 0x04],
    [0x50, 0x4b, 0x05, 0x06],
  ],
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": [[0x50, 0x4b, 0x03, 0x04]],
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": [[0x50, 0x4b, 0x03, 0x04]],
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": [[0x50, 0x4b, 0x03, 0x04]],
};

/** An upload's parsed form: the file and the optional import fields. */
export interface ParsedUpload {
  input: AttachmentInput;
  /** Whether the form set `author_id` or `created_at` (needs the `import` scope). */
  overrides: boolean;
}

/**
 * Reads a `multipart/form-data` body with a `file` part, never holding more than the cap: a
 * declared or streamed size past it is 413 before the rest is read.
 */
export async function readUpload(c: Context, maxBytes: number): Promise<ParsedUpload> {
  const contentType = c.req.header("content-type") ?? "";
  if (!/^multipart\/form-data\s*;.*boundary=/i.test(contentType)) {
    throw new FourDegreesError(
      415,
      "unsupported_media_type",
      "Send the file as multipart/form-data with a `file` part",
    );
  }
  const maxBody = maxBytes + MULTIPART_OVERHEAD_BYTES;
  const tooLarge = () => new FourDegreesError(413, "file_too_large", `A file may be at most ${maxBytes} bytes`);
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBody) throw tooLarge();
  let over = false;
  let form: FormData;
  try {
    if (Object.keys(c.req.bodyCache).length > 0) {
      // The Idempotency-Key middleware already read (and capped) the body.
      form = await c.req.formData();
    } else {
      const raw = c.req.raw.body;
      if (raw === null) throw fail.badRequest("The body is empty: send a `file` part", "invalid_multipart");
      const capped = raw.pipeThrough(capStream(maxBody, () => (over = true)));
      form = await new Response(capped, { headers: { "content-type": contentType } }).formData();
    }
  } catch (err) {
    if (over) throw tooLarge();
    if (err instanceof FourDegreesError) throw err;
    throw fail.badRequest("The body is not valid multipart/form-data", "invalid_multipart");
  }
  const file = form.get("file");
  if (file === null || typeof file === "string")
    throw fail.validation("file: a `file` part with the file's bytes is required", "file_required");
  if (file.size > maxBytes) throw tooLarge();
  if (file.size === 0) throw fail.validation("file: the file is empty", "empty_file");
  const type = (file.type || "").split(";")[0]!.trim().toLowerCase();
  if (!ALLOWED_CONTENT_TYPES.has(type)) {
    throw new FourDegreesError(
      415,
      "unsupported_file_type",
      `file: ${type || "a file without a content type"} is not accepted; allowed: ${[...ALLOWED_CONTENT_TYPES].join(", ")}`,
    );
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const magic = MAGIC[type];
  if (magic && !magic.some((sig) => sig.every((b, i) => bytes[i] === b))) {
    throw fail.validation(`file: the bytes are not a ${type} file`, "content_type_mismatch");
  }
  const fileName = cleanFileName(file.name);
  const author = form.get("author_id");
  const createdAt = form.get("created_at");
  const input: AttachmentInput = { file_name: fileName, content_type: type, bytes };
  if (typeof author === "string") input.author_id = author === "" ? null : author;
  if (typeof createdAt === "string") {
    const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(createdAt)
      ? Date.parse(createdAt)
      : NaN;
    if (Number.isNaN(ms)) throw fail.validation("created_at: must be an RFC 3339 timestamp");
    input.created_at = new Date(ms).toISOString();
  }
  return { input, overrides: author !== null || createdAt !== null };
}

/** The last path segment of an upload's name, without control characters; 422 when nothing is left. */
function cleanFileName(raw: string): string {
  // eslint-disable-next-line no-control-regex
  const name = (raw.split(/[\\/]/).pop() ?? "").replace(/[\u0000-\u001f\u007f]/g, "").trim();
  if (name === "" || name === "." || name === "..")
    throw fail.validation("file: the part needs a filename", "invalid_file_name");
  if (name.length > 255) throw fail.validation("file: the filename is longer than 255 characters", "invalid_file_name");
  return name;
}

/** A pass-through stream that errors (and calls `onOver`) once more than `max` bytes went by. */
function capStream(max: number, onOver: () => void): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > max) {
        onOver();
        controller.error(new Error("body over the cap"));
        return;
      }
      controller.enqueue(chunk);
    },
  });
}

async function hmac(key: string, message: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(message));
  return toBase64(mac).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A signed download URL for an attachment on `origin`, valid for the sandbox's TTL from now. */
export async function signedDownloadUrl(sb: FourDegreesSandbox, origin: string, id: string): Promise<string> {
  const expires = Math.floor(sb.clock.now() / 1000) + sb.attachmentSettings.downloadUrlTtlSeconds;
  const signature = await hmac(sb.fileSigningKey, `${id}.${expires}`);
  return `${origin}${FILES_BASE}/${encodeURIComponent(id)}?expires=${expires}&signature=${signature}`;
}

/** A stored attachment as served: the record with a fresh signed URL. */
export async function withDownloadUrl(
  sb: FourDegreesSandbox,
  origin: string,
  record: Omit<Attachment, "download_url">,
): Promise<Attachment> {
  return { ...record, download_url: await signedDownloadUrl(sb, origin, record.id) };
}

/** Constant-time string comparison (the signature is a credential). */
function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The file host: serves an attachment's bytes at its signed URL; 403 for a bad or expired signature. */
export function createFiles(sb: FourDegreesSandbox): Hono {
  const app = new Hono<{ Variables: { requestId: string } }>();
  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? sb.newRequestId();
    if (err instanceof FourDegreesError) {
      return new Response(JSON.stringify(errorBody(err, requestId)), {
        status: err.status,
        headers: { "content-type": "application/json", ...err.headers, "X-Request-Id": requestId },
      });
    }
    console.error("4degrees sandbox files: unexpected error", err);
    return new Response(
      JSON.stringify(
        errorBody(
          { type: "api_error", code: "internal_error", message: "The sandbox hit an unexpected error (a sandbox bug)" },
          requestId,
        ),
      ),
      { status: 500, headers: { "content-type": "application/json", "X-Request-Id": requestId } },
    );
  });
  app.use("*", async function log(c, next) {
    const requestId = sb.newRequestId();
    c.set("requestId", requestId);
    await next();
    // The query (the signature) stays out of the log.
    const path = new URL(c.req.url).pathname.replace("/4degrees", "");
    sb.recordRequest({
      method: c.req.method,
      route: "/files/:id",
      path,
      status: c.res.status,
      requestId,
      idempotencyKey: null,
      ifMatch: null,
      replayed: false,
    });
  });
  app.get("/:id", async (c) => {
    const id = c.req.param("id");
    const expires = c.req.query("expires") ?? "";
    const signature = c.req.query("signature") ?? "";
    const unsigned = new FourDegreesError(
      403,
      "invalid_signature",
      "This download link's signature is not valid: use the download_url the API returned",
    );
    if (!/^\d{1,12}$/.test(expires) || signature === "") throw unsigned;
    if (!sameString(await hmac(sb.fileSigningKey, `${id}.${expires}`), signature)) throw unsigned;
    if (Number(expires) * 1000 <= sb.clock.now()) {
      throw new FourDegreesError(
        403,
        "url_expired",
        `This download link expired at ${new Date(Number(expires) * 1000).toISOString()}: read the attachment again for a fresh one`,
      );
    }
    const fault = sb.faults.forRequest("GET", `/files/${id}`);
    await sleep(fault.delayMs);
    if (fault.kind === "timeout") throw new FourDegreesError(504, "timeout", "The request timed out (sandbox fault)");
    if (fault.kind === "error")
      throw new FourDegreesError(fault.status, "injected_fault", `Injected fault: HTTP ${fault.status} (sandbox)`);
    const stored = sb.store.attachments.get(id);
    if (!stored) throw fail.notFound("attachment", id);
    const { record, bytes } = stored;
    return new Response(bytes, {
      status: 200,
      headers: {
        "content-type": record.content_type,
        "content-length": String(bytes.byteLength),
        "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(record.file_name)}`,
        "cache-control": "private, no-store",
        "X-Request-Id": c.get("requestId"),
      },
    });
  });
  app.all("*", (c) => {
    throw new FourDegreesError(404, "route_not_found", `No route ${c.req.method} ${new URL(c.req.url).pathname}`);
  });
  return new Hono().route("/", app);
}
