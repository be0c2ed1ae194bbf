/**
 * Files of an opportunity's FILE_UPLOAD custom field: where a synced attachment lives on HighLevel.
 * A file is uploaded with `POST /locations/{locationId}/customFields/upload` (its URL lasts, as a
 * value stored in a record must) and referenced in the field's value, `{<uuid>: {meta, url}}`
 * (contacts.json `FileField`; v3 also shows a bare `{url, …}`, read here too). docs/sync.md says why
 * not the media library.
 */
import * as z from "zod";
import type { FieldFile, FileDownload, FileUpload } from "../domain/attachments.ts";
import { byteStream, multipartBody } from "../lib/file-stream.ts";
import type { HighLevelTransport } from "./http.ts";
import { HighLevelError } from "./errors.ts";

const Meta = z
  .object({
    originalname: z.string().optional(),
    mimetype: z.string().optional(),
    size: z.number().optional(),
  })
  .loose();
const Entry = z.object({ url: z.string().min(1), meta: Meta.optional() }).loose();

/** The files of a FILE_UPLOAD value. */
export function filesOfValue(value: unknown): FieldFile[] {
  if (!value || typeof value !== "object" || Array.isArray(value)) return [];
  const single = Entry.safeParse(value);
  const entries: Array<[string, z.infer<typeof Entry>]> = single.success
    ? [[single.data.url, single.data]]
    : Object.entries(value).flatMap(([k, v]) => {
        const e = Entry.safeParse(v);
        return e.success ? [[k, e.data] as [string, z.infer<typeof Entry>]] : [];
      });
  return entries.map(([key, e]) => ({
    key,
    url: e.url,
    name: e.meta?.originalname ?? null,
    contentType: e.meta?.mimetype ?? null,
    size: e.meta?.size ?? null,
  }));
}

/** A field value entry for an uploaded file (the `FileField` shape). */
export function fileEntry(key: string, url: string, file: Omit<FileUpload, "body">): Record<string, unknown> {
  return {
    meta: {
      fieldname: key,
      originalname: file.fileName,
      encoding: "7bit",
      mimetype: file.contentType,
      size: file.size,
      uuid: key,
    },
    url,
  };
}

const UploadAnswer = z
  .object({ uploadedFiles: z.record(z.string(), z.string()), meta: z.array(z.unknown()).optional() })
  .loose();

/**
 * Streams one file to the location's custom-field file storage, for opportunity `opportunityId`;
 * resolves its URL. The part is named `key` (the answer's `uploadedFiles` is keyed by part name).
 * Doc: https://marketplace.gohighlevel.com/docs/ghl/locations/upload-file-custom-fields
 */
export async function uploadFieldFile(
  t: HighLevelTransport,
  opportunityId: string,
  key: string,
  file: FileUpload,
): Promise<string> {
  const form = multipartBody([
    { name: "id", value: opportunityId },
    { name: key, fileName: file.fileName, contentType: file.contentType, size: file.size, body: file.body },
  ]);
  const answer = await t.call({
    method: "POST",
    path: `/locations/${encodeURIComponent(t.locationId)}/customFields/upload`,
    schema: UploadAnswer,
    stream: { body: form.body, contentType: form.contentType, length: form.length },
  });
  const url = answer.uploadedFiles[key];
  if (!url) throw new HighLevelError("server", "HighLevel's custom-field upload answered no URL for the file");
  return url;
}

/**
 * Starts the download of a field file. The URL is a storage URL (no token is sent: it is data a
 * HighLevel user can edit, so it never gets our credentials); only http(s) is fetched.
 */
export async function downloadFieldFile(url: string): Promise<FileDownload> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HighLevelError(
      "validation",
      `the file URL in the opportunity's field is not a URL: ${url.slice(0, 200)}`,
    );
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    throw new HighLevelError("validation", `the file URL in the opportunity's field is not http(s)`);
  let res: Response;
  try {
    res = await fetch(parsed, { redirect: "follow" });
  } catch (cause) {
    throw new HighLevelError("network", `HighLevel file download failed: ${String(cause)}`, { cause });
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel();
    const category = res.status >= 500 || res.status === 429 ? "server" : "validation";
    throw new HighLevelError(category, `HighLevel file download answered ${res.status}`, {
      upstreamStatus: res.status,
    });
  }
  const length = res.headers.get("content-length");
  return {
    body: byteStream(res.body),
    size: length !== null && /^\d+$/.test(length) ? Number(length) : null,
    contentType: res.headers.get("content-type"),
  };
}
