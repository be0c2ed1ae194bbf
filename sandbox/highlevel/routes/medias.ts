/**
 * `/medias/*` (Media Library API: GoHighLevel/highlevel-api-docs apps/medias.json, which the
 * reference folder lacks): upload (multipart, a file or a hosted `fileUrl`), list, delete — Location
 * tokens, scopes `medias.readonly` / `medias.write` — and the download URLs the uploads answer with,
 * served here at `/media-storage/…` (signed, expiring; no token, like a storage URL). Also the
 * custom-field file upload (`POST /locations/{locationId}/customFields/upload`, locations.json,
 * scope `locations/customFields.write`), which stores in the same place outside the library.
 */
import type { Hono } from "hono";
import { GhlError, unprocessable } from "../errors.ts";
import { streamBytes } from "../medias.ts";
import type { MediaFile } from "../store.ts";
import { checkQuery, intParam, pathParam, send, tokenOf } from "./shared.ts";
import type { Ctx, Guard, RouteDeps, Vars } from "./shared.ts";

export const MEDIA_READ: Guard = { auth: "Location", scope: "medias.readonly" };
export const MEDIA_WRITE: Guard = { auth: "Location", scope: "medias.write" };

/** The multipart fields the spec's upload body lists. */
const UPLOAD_FIELDS = ["file", "hosted", "fileUrl", "name", "parentId"] as const;
const SORT_FIELDS = ["createdAt", "updatedAt", "name"] as const;
const LIST_QUERY = [
  "offset",
  "limit",
  "sortBy",
  "sortOrder",
  "type",
  "query",
  "altType",
  "altId",
  "parentId",
  "fetchAll",
];
/** Room for the multipart framing around the file when judging a body by its Content-Length. */
const MULTIPART_SLACK = 1024 * 1024;

/** Whether `raw` is an absolute http(s) URL with a host. */
function isHttpUrl(raw: string): boolean {
  try {
    const u = new URL(raw);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && !/\s/.test(raw);
  } catch {
    return false;
  }
}

/** Reads a multipart body, or answers HighLevel-style: 400 not multipart, 413 declared too large for `limit`. */
async function readMultipart(c: Ctx, limit: number): Promise<FormData> {
  if (!/^multipart\/form-data\b/i.test(c.req.header("content-type") ?? "")) {
    throw new GhlError(400, "Content-Type must be multipart/form-data");
  }
  // Refuse an oversized body before reading it; the exact per-file limit is checked on each file.
  const declared = Number(c.req.header("content-length") ?? "");
  if (Number.isFinite(declared) && declared > limit + MULTIPART_SLACK) throw new GhlError(413, "File too large");
  try {
    return await c.req.formData();
  } catch {
    throw new GhlError(400, "Multipart: Boundary not found");
  }
}

/** Registers the media routes, the custom-field upload and the download route. */
export function registerMediaRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { service, guard, assertLocation } = d;
  const library = service.medias;
  const origin = (c: Ctx) => new URL(c.req.url).origin;

  /** A file as `GET /medias/files` lists it (the spec's example fields, with `_id` as its bulk bodies name it). */
  const renderFile = async (c: Ctx, m: MediaFile) => ({
    _id: m.id,
    altId: m.locationId,
    altType: "location",
    name: m.name,
    ...(m.parentId ? { parentId: m.parentId } : {}),
    type: "file",
    url: await library.url(m, origin(c)),
    path: `/${m.name}`,
    contentType: m.contentType,
    size: m.size,
    hosted: m.hostedUrl !== null,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
  });

  app.post("/medias/upload-file", guard(MEDIA_WRITE), async (c) => {
    const locationId = tokenOf(c).locationId!;
    const form = await readMultipart(c, Math.max(library.settings.maxBytes, library.settings.videoMaxBytes));
    const problems: string[] = [];
    for (const key of new Set(form.keys())) {
      if (!(UPLOAD_FIELDS as readonly string[]).includes(key)) problems.push(`property ${key} should not exist`);
      else if (form.getAll(key).length > 1) problems.push(`${key} must be given once`);
    }
    const file = form.get("file");
    const text = (key: string): string | undefined => {
      const v = form.get(key);
      if (v === null) return undefined;
      if (typeof v !== "string") problems.push(`${key} must be a string`);
      return typeof v === "string" ? v : undefined;
    };
    const hostedRaw = text("hosted");
    if (hostedRaw !== undefined && hostedRaw !== "true" && hostedRaw !== "false") {
      problems.push("hosted must be a boolean value");
    }
    const hosted = hostedRaw === "true";
    const fileUrl = text("fileUrl");
    const name = text("name");
    const parentId = text("parentId");
    if (hosted) {
      if (!fileUrl) problems.push("fileUrl should not be empty");
      else if (!isHttpUrl(fileUrl)) problems.push("fileUrl must be a URL address");
    } else if (file === null || file === "") problems.push("file should not be empty");
    else if (typeof file === "string") problems.push("file must be a file");
    if (problems.length > 0) throw unprocessable(problems);
    if (parentId) throw new GhlError(400, "Parent folder not found");

    if (hosted) {
      const last = new URL(fileUrl!).pathname.split("/").pop() ?? "";
      let fromUrl = last;
      try {
        fromUrl = decodeURIComponent(last);
      } catch {
        // A malformed escape: keep the name as written.
      }
      const m = library.upload({ locationId, name: name || fromUrl || "file", hostedUrl: fileUrl });
      return send(c, { fileId: m.id, url: await library.url(m, origin(c)) });
    }
    const blob = file as File;
    const contentType = blob.type || "application/octet-stream";
    if (blob.size > library.limitFor(contentType)) throw new GhlError(413, "File too large");
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const m = library.upload({ locationId, name: name || blob.name || "file", file: { bytes, contentType } });
    return send(c, { fileId: m.id, url: await library.url(m, origin(c)) });
  });

  app.get("/medias/files", guard(MEDIA_READ), async (c) => {
    const q = checkQuery(c, LIST_QUERY);
    const missing = ["sortBy", "sortOrder", "type", "altType", "altId"].filter((k) => !q[k]);
    if (missing.length > 0) throw unprocessable(missing.map((k) => `${k} should not be empty`));
    const oneOf = (name: string, values: readonly string[]) => {
      if (values.includes(q[name]!)) return;
      throw unprocessable([`${name} must be one of the following values: ${values.join(", ")}`]);
    };
    oneOf("altType", ["location"]);
    oneOf("sortBy", SORT_FIELDS);
    oneOf("sortOrder", ["asc", "desc"]);
    oneOf("type", ["file", "folder"]);
    assertLocation(c, q.altId!);
    const offset = intParam(q, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(q, "limit", 100, 1, 1000);
    const needle = (q.query ?? "").toLowerCase();
    const key = q.sortBy as (typeof SORT_FIELDS)[number];
    // The sandbox has no folders: a folder listing, or a file listing inside a folder, is empty.
    const files =
      q.type === "folder" || q.parentId
        ? []
        : [...d.store.medias.values()]
            .filter((m) => m.inLibrary && m.locationId === q.altId && m.name.toLowerCase().includes(needle))
            .sort(
              (a, b) => (q.sortOrder === "asc" ? 1 : -1) * (a[key].localeCompare(b[key]) || a.id.localeCompare(b.id)),
            );
    const page = q.fetchAll === "true" ? files : files.slice(offset, offset + limit);
    return send(c, { files: await Promise.all(page.map((m) => renderFile(c, m))) });
  });

  app.delete("/medias/:id", guard(MEDIA_WRITE), (c) => {
    const q = checkQuery(c, ["altType", "altId"]);
    const missing = ["altType", "altId"].filter((k) => !q[k]).map((k) => `${k} should not be empty`);
    if (missing.length > 0) throw unprocessable(missing);
    if (q.altType !== "location") throw unprocessable(["altType must be one of the following values: location"]);
    assertLocation(c, q.altId!);
    library.delete(q.altId!, pathParam(c, "id"));
    return send(c, { success: true });
  });

  // Files for FILE_UPLOAD custom fields: each file part (any name but `id` / `maxFiles`) is stored;
  // the answer's URLs go into a field value (`{<uuid>: {meta, url}}` or v3's `{url}`).
  const CF_WRITE: Guard = { auth: "Location", scope: "locations/customFields.write" };
  app.post("/locations/:locationId/customFields/upload", guard(CF_WRITE), async (c) => {
    const locationId = pathParam(c, "locationId");
    assertLocation(c, locationId);
    const form = await readMultipart(c, library.settings.customFieldMaxBytes * 10);
    const problems: string[] = [];
    const single = (key: string): string | undefined => {
      const all = form.getAll(key);
      if (all.length > 1) problems.push(`${key} must be given once`);
      if (all[0] !== undefined && typeof all[0] !== "string") problems.push(`${key} must be a string`);
      return typeof all[0] === "string" ? all[0] : undefined;
    };
    const id = single("id");
    const maxRaw = single("maxFiles");
    const maxFiles = maxRaw === undefined ? undefined : Number(maxRaw);
    if (maxFiles !== undefined && (!Number.isInteger(maxFiles) || maxFiles < 1))
      problems.push("maxFiles must be a positive integer string");
    const files: Array<[string, File]> = [];
    for (const [key, value] of form.entries()) {
      if (key === "id" || key === "maxFiles") continue;
      if (typeof value === "string") problems.push(`property ${key} should not exist`);
      else files.push([key, value]);
    }
    if (files.length === 0) problems.push("at least one file should be given");
    if (maxFiles !== undefined && files.length > maxFiles)
      problems.push(`${files.length} files given, maxFiles is ${maxFiles}`);
    if (problems.length > 0) throw unprocessable(problems);
    if (id !== undefined) {
      const owner = d.store.contacts.get(id) ?? d.store.opportunities.get(id) ?? d.store.customFields.get(id);
      if (!owner || owner.locationId !== locationId)
        throw new GhlError(400, "Contact, opportunity or custom field not found");
    }
    if (files.some(([, f]) => f.size > library.settings.customFieldMaxBytes)) throw new GhlError(413, "File too large");
    const uploadedFiles: Record<string, string> = {};
    const meta: Array<Record<string, unknown>> = [];
    for (const [fieldname, f] of files) {
      const mimetype = f.type || "application/octet-stream";
      const bytes = new Uint8Array(await f.arrayBuffer());
      const name = f.name || fieldname;
      const m = library.upload({
        locationId,
        name,
        file: { bytes, contentType: mimetype },
        customField: { ownerId: id ?? null },
      });
      const url = await library.url(m, origin(c));
      uploadedFiles[fieldname] = url;
      meta.push({ fieldname, originalname: name, encoding: "7bit", mimetype, size: bytes.byteLength, url });
    }
    return send(c, { uploadedFiles, meta });
  });

  // The download URL an upload answers with: no token (a storage URL), the signature and expiry instead.
  app.get("/media-storage/:locationId/:id/:name", async (c) => {
    const checked = await library.verify(pathParam(c, "id"), c.req.query("expires"), c.req.query("signature"));
    if (!("id" in checked)) return c.json({ error: { code: checked.error, message: checked.error } }, checked.status);
    if (checked.locationId !== pathParam(c, "locationId")) {
      return c.json({ error: { code: "NoSuchKey", message: "NoSuchKey" } }, 404);
    }
    const bytes = checked.bytes!;
    return new Response(streamBytes(bytes), {
      headers: {
        "content-type": checked.contentType,
        "content-length": String(bytes.byteLength),
        "content-disposition": `inline; filename*=UTF-8''${encodeURIComponent(checked.name)}`,
        "cache-control": "private, max-age=0",
      },
    });
  });
}
