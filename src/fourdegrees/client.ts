/**
 * The 4Degrees HTTP client for the ASSUMED partner contract (docs/fourdegrees.md). Every call:
 * `Authorization: Bearer <workspace API key>`, JSON, a response parsed with zod, and the request
 * run through the account's rate gate (`GateRunner`, normally `gatedFetch` on the 4Degrees
 * workspace's gate). Every write carries an `Idempotency-Key` that stays the same across this
 * client's own retries, so a retried write replays instead of writing twice.
 *
 * Retries here are short and in-process: network errors and 5xx (twice, 250/500 ms) and a 429
 * whose `Retry-After` is at most `maxInlineWaitMs`. Anything longer becomes a retryable
 * `FourDegreesError`, which a queue consumer turns into a delayed retry — a Worker should not
 * sleep for seconds.
 */
import * as z from "zod";
import { errorFromResponse, FourDegreesError, parseRetryAfter } from "./errors.ts";
import {
  enveloped,
  paged,
  RawDeal,
  type RawDealCreate,
  type RawDealPatch,
  RawField,
  RawMe,
  RawContact,
  RawNote,
  RawPassReason,
  RawPipeline,
  RawReminder,
  RawUser,
  RawAttachment,
} from "./schemas.ts";
import type { FileDownload, FileUpload } from "../domain/attachments.ts";
import { byteStream, multipartBody } from "../lib/file-stream.ts";

/** Runs one HTTP attempt under the account's rate gate (acquire → fetch → report). */
export type GateRunner = (doFetch: () => Promise<Response>) => Promise<Response>;

/** A gate that lets everything through (single calls in tools and tests without a budget). */
export const passThroughGate: GateRunner = (doFetch) => doFetch();

export interface FourDegreesClientOptions {
  /** e.g. `https://api.4degrees.ai/v1` (config `FOURDEGREES_API_BASE`), without a trailing slash. */
  baseUrl: string;
  apiKey: string;
  gate: GateRunner;
  /** Longest 429 `Retry-After` honoured in-process; longer ones throw (default 2000 ms). */
  maxInlineWaitMs?: number;
  /** Extra attempts after a network error or 5xx (default 2). */
  retries?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Makes an idempotency key for a write that was not given one. */
  newIdempotencyKey?: () => string;
}

interface RequestSpec<S extends z.ZodType> {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  schema: S;
  /** Required on writes. */
  idempotencyKey?: string;
  ifMatch?: number;
  /** Answer `null` instead of throwing on 404. */
  allow404?: boolean;
  /** Short description for error messages, e.g. "GET /deals/{id}". */
  what: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Raw 4Degrees API client; the connector (connector.ts) translates its answers to the port. */
export class FourDegreesClient {
  readonly #baseUrl: string;
  readonly #apiKey: string;
  readonly #gate: GateRunner;
  readonly #maxInlineWaitMs: number;
  readonly #retries: number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #newKey: () => string;

  constructor(options: FourDegreesClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#gate = options.gate;
    this.#maxInlineWaitMs = options.maxInlineWaitMs ?? 2_000;
    this.#retries = options.retries ?? 2;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#newKey = options.newIdempotencyKey ?? (() => crypto.randomUUID());
  }

  /** A fresh idempotency key (for callers that need one before the call). */
  newIdempotencyKey(): string {
    return this.#newKey();
  }

  // Assumed contract: GET /me → {workspace: {id, name}, actor: {type: "api_key", id}} (docs/fourdegrees.md#me)
  me(): Promise<RawMe> {
    return this.#request({ method: "GET", path: "/me", schema: enveloped(RawMe), what: "GET /me" });
  }

  // Assumed contract: GET /users → {data: [{id, email, name}]} (docs/fourdegrees.md#endpoints)
  async listUsers(): Promise<RawUser[]> {
    return this.#all((cursor) =>
      this.#request({ method: "GET", path: "/users", query: { cursor }, schema: paged(RawUser), what: "GET /users" }),
    );
  }

  // Assumed contract: GET /pipelines → {data: [{id, name, stages: [{id, name, position, kind}]}]} (docs/fourdegrees.md#endpoints)
  async listPipelines(): Promise<RawPipeline[]> {
    return this.#all((cursor) =>
      this.#request({
        method: "GET",
        path: "/pipelines",
        query: { cursor },
        schema: paged(RawPipeline),
        what: "GET /pipelines",
      }),
    );
  }

  // Assumed contract: GET /pipelines/{id}/fields → {data: [{id, name, type, read_only, options}]} (docs/fourdegrees.md#endpoints)
  async listFields(pipelineId: string): Promise<RawField[]> {
    const path = `/pipelines/${encodeURIComponent(pipelineId)}/fields`;
    return this.#all((cursor) =>
      this.#request({
        method: "GET",
        path,
        query: { cursor },
        schema: paged(RawField),
        what: "GET /pipelines/{id}/fields",
      }),
    );
  }

  // Assumed contract: GET /deals?pipeline_id=&updated_since=&cursor=&limit= → {data, next_cursor}, limit ≤ 100 (docs/fourdegrees.md#paging)
  async listDeals(query: {
    pipelineId?: string;
    updatedSince?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<{ data: RawDeal[]; next_cursor: string | null }> {
    const limit = Math.min(100, Math.max(1, query.limit ?? 100));
    const page = await this.#request({
      method: "GET",
      path: "/deals",
      query: {
        pipeline_id: query.pipelineId,
        updated_since: query.updatedSince,
        cursor: query.cursor ?? undefined,
        limit,
      },
      schema: paged(RawDeal),
      what: "GET /deals",
    });
    return { data: page.data, next_cursor: page.next_cursor ?? null };
  }

  // Assumed contract: GET /deals/{id} → deal; 404 when unknown (docs/fourdegrees.md#endpoints)
  getDeal(id: string): Promise<RawDeal | null> {
    return this.#request({
      method: "GET",
      path: `/deals/${encodeURIComponent(id)}`,
      schema: enveloped(RawDeal),
      allow404: true,
      what: "GET /deals/{id}",
    });
  }

  // Assumed contract: POST /deals with Idempotency-Key → 201 deal (docs/fourdegrees.md#writes)
  createDeal(body: RawDealCreate, idempotencyKey: string = this.#newKey()): Promise<RawDeal> {
    return this.#request({
      method: "POST",
      path: "/deals",
      body,
      schema: enveloped(RawDeal),
      idempotencyKey,
      what: "POST /deals",
    });
  }

  /**
   * PATCH with `If-Match: "<version>"`; a stale version answers 409 `version_conflict`, thrown as a
   * `FourDegreesError` whose `isVersionConflict` is true (the connector re-reads and re-applies).
   */
  // Assumed contract: PATCH /deals/{id} with If-Match + Idempotency-Key → deal | 409 version_conflict (docs/fourdegrees.md#versions)
  updateDeal(
    id: string,
    patch: RawDealPatch,
    version: number,
    idempotencyKey: string = this.#newKey(),
  ): Promise<RawDeal> {
    return this.#request({
      method: "PATCH",
      path: `/deals/${encodeURIComponent(id)}`,
      body: patch,
      ifMatch: version,
      schema: enveloped(RawDeal),
      idempotencyKey,
      what: "PATCH /deals/{id}",
    });
  }

  /** Archives; resolves `false` when the deal was already gone (404). */
  // Assumed contract: DELETE /deals/{id} (archive) with Idempotency-Key → 200 deal | 204 (docs/fourdegrees.md#endpoints)
  async archiveDeal(id: string, idempotencyKey: string = this.#newKey()): Promise<boolean> {
    const out = await this.#request({
      method: "DELETE",
      path: `/deals/${encodeURIComponent(id)}`,
      schema: DELETED,
      allow404: true,
      idempotencyKey,
      what: "DELETE /deals/{id}",
    });
    return out !== null;
  }

  // Assumed contract: GET /deals/{id}/notes → {data, next_cursor} (docs/fourdegrees.md#endpoints)
  async listNotes(dealId: string): Promise<RawNote[]> {
    const path = `/deals/${encodeURIComponent(dealId)}/notes`;
    return this.#all((cursor) =>
      this.#request({ method: "GET", path, query: { cursor }, schema: paged(RawNote), what: "GET /deals/{id}/notes" }),
    );
  }

  // Assumed contract: POST /deals/{id}/notes {body} with Idempotency-Key → 201 note (docs/fourdegrees.md#endpoints)
  // With `author_id` / `created_at` the key needs the `import` scope (docs/fourdegrees.md#imports).
  createNote(
    dealId: string,
    body: string,
    idempotencyKey: string = this.#newKey(),
    history: { author_id?: string; created_at?: string } = {},
  ): Promise<RawNote> {
    return this.#request({
      method: "POST",
      path: `/deals/${encodeURIComponent(dealId)}/notes`,
      body: { body, ...history },
      schema: enveloped(RawNote),
      idempotencyKey,
      what: "POST /deals/{id}/notes",
    });
  }

  // Assumed contract: PATCH /notes/{id} {body} with Idempotency-Key → note (docs/fourdegrees.md#endpoints)
  updateNote(noteId: string, body: string, idempotencyKey: string = this.#newKey()): Promise<RawNote> {
    return this.#request({
      method: "PATCH",
      path: `/notes/${encodeURIComponent(noteId)}`,
      body: { body },
      schema: enveloped(RawNote),
      idempotencyKey,
      what: "PATCH /notes/{id}",
    });
  }

  // Assumed contract: DELETE /notes/{id} with Idempotency-Key → 200 | 204 (docs/fourdegrees.md#endpoints)
  async deleteNote(noteId: string, idempotencyKey: string = this.#newKey()): Promise<boolean> {
    const out = await this.#request({
      method: "DELETE",
      path: `/notes/${encodeURIComponent(noteId)}`,
      schema: DELETED,
      allow404: true,
      idempotencyKey,
      what: "DELETE /notes/{id}",
    });
    return out !== null;
  }

  // Assumed contract: POST /deals/{id}/reminders {title, body, due_at, assignee_id} with Idempotency-Key
  // → 201 reminder (docs/fourdegrees.md#reminders)
  createReminder(
    dealId: string,
    input: { title: string; body: string; due_at: string; assignee_id: string | null },
    idempotencyKey: string = this.#newKey(),
  ): Promise<RawReminder> {
    return this.#request({
      method: "POST",
      path: `/deals/${encodeURIComponent(dealId)}/reminders`,
      body: input,
      schema: enveloped(RawReminder),
      idempotencyKey,
      what: "POST /deals/{id}/reminders",
    });
  }

  // Assumed contract: GET /deals/{id}/attachments → {data, next_cursor} (docs/fourdegrees.md#attachments)
  async listAttachments(dealId: string): Promise<RawAttachment[]> {
    const path = `/deals/${encodeURIComponent(dealId)}/attachments`;
    return this.#all((cursor) =>
      this.#request({
        method: "GET",
        path,
        query: { cursor },
        schema: paged(RawAttachment),
        what: "GET /deals/{id}/attachments",
      }),
    );
  }

  // Assumed contract: GET /pass-reasons → {data: [{id, name}]} (docs/fourdegrees.md#pass-reasons)
  async listPassReasons(): Promise<RawPassReason[]> {
    return this.#all((cursor) =>
      this.#request({
        method: "GET",
        path: "/pass-reasons",
        query: { cursor },
        schema: paged(RawPassReason),
        what: "GET /pass-reasons",
      }),
    );
  }

  /**
   * Streams a file to the deal as `multipart/form-data` (one attempt: a stream cannot be re-sent, so
   * a failure is the job's to retry with a fresh download and the same idempotency key).
   */
  // Assumed contract: POST /deals/{id}/attachments multipart `file` with Idempotency-Key → 201 (docs/fourdegrees.md#attachments)
  async uploadAttachment(dealId: string, file: FileUpload, idempotencyKey: string): Promise<RawAttachment> {
    const form = multipartBody([
      { name: "file", fileName: file.fileName, contentType: file.contentType, size: file.size, body: file.body },
    ]);
    const url = `${this.#baseUrl}/deals/${encodeURIComponent(dealId)}/attachments`;
    const what = "POST /deals/{id}/attachments";
    let response: Response;
    try {
      response = await this.#gate(() =>
        fetch(url, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${this.#apiKey}`,
            Accept: "application/json",
            "Content-Type": form.contentType,
            "Content-Length": String(form.length),
            "Idempotency-Key": idempotencyKey,
          },
          body: form.body.pipeThrough(new FixedLengthStream(form.length)),
        }),
      );
    } catch (err) {
      if (err instanceof FourDegreesError || (err instanceof Error && err.name === "RateLimitedError")) throw err;
      throw new FourDegreesError("upstream_unavailable", `4Degrees ${what} failed: ${String(err)}`, {
        retryable: true,
        upstreamStatus: 0,
        cause: err,
      });
    }
    const text = await response.text();
    if (!response.ok)
      throw errorFromResponse(response.status, text, parseRetryAfter(response.headers.get("Retry-After")), what);
    const parsed = enveloped(RawAttachment).safeParse(text === "" ? null : JSON.parse(text));
    if (!parsed.success)
      throw new FourDegreesError(
        "internal",
        `4Degrees ${what} answered a shape the assumed contract does not describe`,
        {
          retryable: false,
          upstreamStatus: response.status,
          cause: parsed.error,
        },
      );
    return parsed.data;
  }

  // Assumed contract: DELETE /attachments/{id} with Idempotency-Key → {id, deleted: true} (docs/fourdegrees.md#attachments)
  async deleteAttachment(id: string, idempotencyKey: string = this.#newKey()): Promise<boolean> {
    const out = await this.#request({
      method: "DELETE",
      path: `/attachments/${encodeURIComponent(id)}`,
      schema: DELETED,
      allow404: true,
      idempotencyKey,
      what: "DELETE /attachments/{id}",
    });
    return out !== null;
  }

  /**
   * Starts a download at a signed `download_url` (no API key: the signature is the credential).
   * A non-2xx is thrown (an expired link is 403: the job retries with a freshly listed URL).
   */
  // Assumed contract: GET <download_url> → the bytes with Content-Length (docs/fourdegrees.md#attachments)
  async download(downloadUrl: string): Promise<FileDownload> {
    let response: Response;
    try {
      response = await fetch(downloadUrl);
    } catch (err) {
      throw new FourDegreesError("upstream_unavailable", `4Degrees file download failed: ${String(err)}`, {
        retryable: true,
        upstreamStatus: 0,
        cause: err,
      });
    }
    if (!response.ok || response.body === null) {
      const text = await response.text();
      throw errorFromResponse(response.status, text, null, "GET download_url");
    }
    const length = response.headers.get("content-length");
    return {
      body: byteStream(response.body),
      size: length !== null && /^\d+$/.test(length) ? Number(length) : null,
      contentType: response.headers.get("content-type"),
    };
  }

  // Assumed contract: GET /contacts/{id} → contact | 404 (docs/fourdegrees.md#contacts)
  getContact(id: string): Promise<RawContact | null> {
    return this.#request({
      method: "GET",
      path: `/contacts/${encodeURIComponent(id)}`,
      schema: enveloped(RawContact),
      allow404: true,
      what: "GET /contacts/{id}",
    });
  }

  // Assumed contract: GET /contacts?email=&cursor=&limit= → {data, next_cursor}; no email = every contact (docs/fourdegrees.md#contacts)
  pageContacts(query: { email?: string; cursor?: string; limit?: number }): Promise<{
    data: RawContact[];
    next_cursor?: string | null | undefined;
  }> {
    return this.#request({
      method: "GET",
      path: "/contacts",
      query,
      schema: paged(RawContact),
      what: "GET /contacts",
    });
  }

  // Assumed contract: POST /contacts {name, email?, phone?} with Idempotency-Key → 201 contact; 409 duplicate_contact (docs/fourdegrees.md#contacts)
  createContact(
    body: { name?: string; email?: string; phone?: string },
    idempotencyKey: string = this.#newKey(),
  ): Promise<RawContact> {
    return this.#request({
      method: "POST",
      path: "/contacts",
      body,
      schema: enveloped(RawContact),
      idempotencyKey,
      what: "POST /contacts",
    });
  }

  /** Follows `next_cursor` to the end (small collections only: users, pipelines, fields, notes). */
  async #all<T>(
    page: (cursor: string | undefined) => Promise<{ data: T[]; next_cursor?: string | null | undefined }>,
  ): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 1_000; pages++) {
      const p = await page(cursor);
      out.push(...p.data);
      if (!p.next_cursor || p.next_cursor === cursor) return out;
      cursor = p.next_cursor;
    }
    throw new FourDegreesError("internal", "4Degrees paging did not end after 1000 pages", {
      retryable: false,
      upstreamStatus: 200,
    });
  }

  async #request<S extends z.ZodType>(spec: RequestSpec<S> & { allow404: true }): Promise<z.output<S> | null>;
  async #request<S extends z.ZodType>(spec: RequestSpec<S>): Promise<z.output<S>>;
  async #request<S extends z.ZodType>(spec: RequestSpec<S>): Promise<z.output<S> | null> {
    const url = new URL(this.#baseUrl + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { Authorization: `Bearer ${this.#apiKey}`, Accept: "application/json" };
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    if (spec.idempotencyKey !== undefined) headers["Idempotency-Key"] = spec.idempotencyKey;
    if (spec.ifMatch !== undefined) headers["If-Match"] = `"${spec.ifMatch}"`;
    const init: RequestInit = {
      method: spec.method,
      headers,
      ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
    };

    let transientFailures = 0;
    let rateLimitWaits = 0;
    for (;;) {
      let response: Response;
      try {
        response = await this.#gate(() => fetch(url, init));
      } catch (err) {
        if (err instanceof FourDegreesError || (err instanceof Error && err.name === "RateLimitedError")) throw err;
        if (transientFailures < this.#retries) {
          await this.#sleep(250 * 2 ** transientFailures++);
          continue;
        }
        throw new FourDegreesError(
          "upstream_unavailable",
          `4Degrees ${spec.what} failed: ${err instanceof Error ? err.message : String(err)}`,
          { retryable: true, upstreamStatus: 0, cause: err },
        );
      }

      if (response.ok) {
        if (response.status === 204) return spec.schema.parse(null);
        const text = await response.text();
        let json: unknown;
        try {
          json = text === "" ? null : JSON.parse(text);
        } catch (cause) {
          throw new FourDegreesError(
            "internal",
            `4Degrees ${spec.what} answered ${response.status} with a body that is not JSON`,
            { retryable: false, upstreamStatus: response.status, cause },
          );
        }
        const parsed = spec.schema.safeParse(json);
        if (!parsed.success) {
          const where = parsed.error.issues
            .slice(0, 3)
            .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
            .join("; ");
          throw new FourDegreesError(
            "internal",
            `4Degrees ${spec.what} answered a shape the assumed contract does not describe (${where})`,
            { retryable: false, upstreamStatus: response.status, cause: parsed.error },
          );
        }
        return parsed.data;
      }

      const text = await response.text();
      if (response.status === 404 && spec.allow404) return null;
      const retryAfterMs = parseRetryAfter(response.headers.get("Retry-After"));
      if (response.status === 429) {
        const wait = retryAfterMs ?? 1_000;
        if (wait <= this.#maxInlineWaitMs && rateLimitWaits < 2) {
          rateLimitWaits++;
          await this.#sleep(wait);
          continue;
        }
      } else if ((response.status >= 500 || response.status === 408) && transientFailures < this.#retries) {
        await this.#sleep(250 * 2 ** transientFailures++);
        continue;
      }
      throw errorFromResponse(response.status, text, retryAfterMs, spec.what);
    }
  }
}

/** Answer of a delete: whatever body (the archived record, `{deleted: true}`) or 204 → `true`. */
const DELETED = z.unknown().transform(() => true as const);
