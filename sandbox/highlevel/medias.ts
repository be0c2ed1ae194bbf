/**
 * The HighLevel sandbox's media library (Media Library API, GoHighLevel/highlevel-api-docs
 * apps/medias.json): a location's uploaded files with their bytes, hosted files (a URL only), and
 * the signed, expiring download URLs the sandbox itself serves (`GET /highlevel/media-storage/…`).
 *
 * Limits per the official upload description: 25 MB for a file, 500 MB for a video. The sandbox
 * keeps bytes in memory, so the control API can lower both (tests do) and set the URL lifetime.
 */
import type { Clock } from "../core/clock.ts";
import { GhlError } from "./errors.ts";
import type { HighLevelStore, IdSource, MediaFile } from "./store.ts";

/** The documented maxima: "If adding a file, maximum allowed is 25 MB. For video files, … 500 MB." */
export const MEDIA_MAX_BYTES = 25 * 1024 * 1024;
export const MEDIA_VIDEO_MAX_BYTES = 500 * 1024 * 1024;
/** Default life of a download URL: 7 days, the longest a Google Cloud Storage V4 signed URL may live. */
export const MEDIA_URL_LIFETIME_SEC = 7 * 24 * 3600;
/**
 * Custom-field uploads: the 50 MB the forms upload (`/forms/upload-custom-files`) documents; the
 * locations endpoint documents none.
 */
export const CUSTOM_FIELD_FILE_MAX_BYTES = 50 * 1024 * 1024;

export interface MediaSettings {
  maxBytes: number;
  videoMaxBytes: number;
  customFieldMaxBytes: number;
  urlLifetimeSec: number;
}

/** What an upload carries once the multipart body is read. */
export interface MediaUpload {
  locationId: string;
  name: string;
  parentId?: string | undefined;
  /** A file's bytes and type, or a hosted file's URL. */
  file?: { bytes: Uint8Array; contentType: string } | undefined;
  hostedUrl?: string | undefined;
  /** A custom-field upload: not in the library, its own size limit, a URL that does not expire. */
  customField?: { ownerId: string | null } | undefined;
}

const DEFAULTS: MediaSettings = {
  maxBytes: MEDIA_MAX_BYTES,
  videoMaxBytes: MEDIA_VIDEO_MAX_BYTES,
  customFieldMaxBytes: CUSTOM_FIELD_FILE_MAX_BYTES,
  urlLifetimeSec: MEDIA_URL_LIFETIME_SEC,
};

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A location's media files, their limits, and the signing of their download URLs. */
export class MediaLibrary {
  readonly settings: MediaSettings = { ...DEFAULTS };
  #store: HighLevelStore;
  #ids: () => IdSource;
  #clock: Clock;
  #key: Promise<CryptoKey>;

  constructor(options: { store: HighLevelStore; ids: () => IdSource; clock: Clock }) {
    this.#store = options.store;
    this.#ids = options.ids;
    this.#clock = options.clock;
    // A per-process secret: signatures are never asserted, only checked by this sandbox.
    const secret = crypto.getRandomValues(new Uint8Array(32));
    this.#key = crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  }

  /** Back to the documented limits (sandbox reset). */
  resetSettings(): void {
    Object.assign(this.settings, DEFAULTS);
  }

  /** The limit that applies to a file of `contentType`. */
  limitFor(contentType: string): number {
    return contentType.toLowerCase().startsWith("video/") ? this.settings.videoMaxBytes : this.settings.maxBytes;
  }

  /** Stores an upload; 413 "File too large" over the limit for its type (multer's text, which NestJS answers with). */
  upload(input: MediaUpload): MediaFile {
    const limit = input.customField ? this.settings.customFieldMaxBytes : this.limitFor(input.file?.contentType ?? "");
    if (input.file && input.file.bytes.byteLength > limit) {
      throw new GhlError(413, "File too large");
    }
    const now = new Date(this.#clock.now()).toISOString();
    const m: MediaFile = {
      id: this.#ids().id(),
      locationId: input.locationId,
      name: input.name,
      parentId: input.parentId ?? null,
      contentType: input.file?.contentType ?? "application/octet-stream",
      size: input.file?.bytes.byteLength ?? 0,
      hostedUrl: input.hostedUrl ?? null,
      bytes: input.file?.bytes ?? null,
      inLibrary: !input.customField,
      ownerId: input.customField?.ownerId ?? null,
      createdAt: now,
      updatedAt: now,
    };
    this.#store.medias.set(m.id, m);
    return m;
  }

  /** The library file `id` of `locationId`; 400 "File not found" otherwise (HighLevel's not-found style). */
  file(locationId: string, id: string): MediaFile {
    const m = this.#store.medias.get(id);
    if (!m || m.locationId !== locationId || !m.inLibrary) throw new GhlError(400, "File not found");
    return m;
  }

  /** Deletes a file; its download URLs stop working. */
  delete(locationId: string, id: string): MediaFile {
    const m = this.file(locationId, id);
    this.#store.medias.delete(id);
    return m;
  }

  async #signature(id: string, expires: number): Promise<string> {
    return hex(await crypto.subtle.sign("HMAC", await this.#key, new TextEncoder().encode(`${id}\n${expires}`)));
  }

  /**
   * The URL a file is read at: a hosted file's own URL, else a signed sandbox URL under `origin` —
   * expiring for library files, lasting (`expires=0`) for custom-field files, whose URL is stored in
   * a record's field value.
   */
  async url(m: MediaFile, origin: string): Promise<string> {
    if (m.hostedUrl) return m.hostedUrl;
    const expires = m.inLibrary ? Math.floor(this.#clock.now() / 1000) + this.settings.urlLifetimeSec : 0;
    const path = `/highlevel/media-storage/${m.locationId}/${m.id}/${encodeURIComponent(m.name)}`;
    return `${origin}${path}?expires=${expires}&signature=${await this.#signature(m.id, expires)}`;
  }

  /**
   * Checks a download URL's signature and expiry against the sandbox clock; answers the file or
   * why not (`SignatureDoesNotMatch`, `ExpiredToken`, `NoSuchKey` — Cloud Storage's error codes).
   */
  async verify(
    id: string,
    expiresRaw: string | undefined,
    signature: string | undefined,
  ): Promise<MediaFile | { error: string; status: 400 | 403 | 404 }> {
    const expires = Number(expiresRaw);
    const wellFormed = expiresRaw && Number.isInteger(expires) && signature && /^[0-9a-f]{64}$/.test(signature);
    if (!wellFormed) return { error: "SignatureDoesNotMatch", status: 403 };
    const bytes = new Uint8Array(signature.match(/../g)!.map((h) => parseInt(h, 16)));
    const signed = new TextEncoder().encode(`${id}\n${expires}`);
    const ok = await crypto.subtle.verify("HMAC", await this.#key, bytes, signed);
    if (!ok) return { error: "SignatureDoesNotMatch", status: 403 };
    const m = this.#store.medias.get(id);
    if (expires !== 0 && expires * 1000 <= this.#clock.now()) return { error: "ExpiredToken", status: 400 };
    if (!m || !m.bytes) return { error: "NoSuchKey", status: 404 };
    // Only a custom-field file has a lasting URL; a library URL always carries an expiry.
    if (expires === 0 && m.inLibrary) return { error: "SignatureDoesNotMatch", status: 403 };
    return m;
  }
}

/** A file's bytes as a stream of 64 KiB chunks (the answer never copies the whole file again). */
export function streamBytes(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) {
        controller.close();
        return;
      }
      const end = Math.min(at + 65_536, bytes.byteLength);
      controller.enqueue(bytes.subarray(at, end));
      at = end;
    },
  });
}
