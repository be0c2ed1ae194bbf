/**
 * The 4Degrees partner API as the project ASSUMES it (../shared/reference/fourdegrees.md), mounted
 * at `/4degrees/v1` (standing in for https://api.4degrees.ai/v1).
 *
 * Attachment bytes are served by the file host in attachments.ts, at the signed `download_url`.
 *
 * Every request passes, in order: request id → bearer API key (401) → per-key rate window (429
 * with `Retry-After`; `X-RateLimit-*` on every answer) → seeded/scripted faults → write scope (403)
 * → `Idempotency-Key` replay (writes) → the handler. Errors are always the envelope
 * `{"error": {type, code, message, request_id}}`.
 */
import { Hono, type Context } from "hono";
import { routePath } from "hono/route";
import { z } from "zod";
import { sleep } from "../core/faults.ts";
import { FourDegreesError, errorBody, fail } from "./errors.ts";
import { readUpload, signedDownloadUrl, withDownloadUrl } from "./attachments.ts";
import {
  ContactCreateSchema,
  DealCreateSchema,
  DealPatchSchema,
  DEAL_READ_ONLY_KEYS,
  NoteCreateSchema,
  NotePatchSchema,
  ReminderCreateSchema,
  type Actor,
  type Deal,
} from "./model.ts";
import { importCsv, MAX_CSV_BYTES } from "./csv-import.ts";
import type { ApiKeyRecord, FourDegreesSandbox } from "./sandbox.ts";

/** The base path this app is mounted at. */
export const API_BASE = "/4degrees/v1";

const MAX_JSON_BYTES = 1_000_000;
const WRITE_METHODS = new Set(["POST", "PATCH", "PUT", "DELETE"]);

type Env = { Variables: { requestId: string; apiKey: ApiKeyRecord; actor: Actor } };

const ListQuery = z.object({
  limit: z.coerce
    .number()
    .int("limit must be an integer")
    .min(1, "limit must be at least 1")
    .max(100, "limit must be at most 100")
    .default(25),
  cursor: z.string().min(1).optional(),
});

const DealListQuery = ListQuery.extend({
  pipeline_id: z.string().min(1).optional(),
  updated_since: z.iso.datetime({ offset: true, message: "updated_since must be an RFC 3339 timestamp" }).optional(),
  include_archived: z.enum(["true", "false"], { message: "include_archived must be true or false" }).optional(),
});

const ContactListQuery = ListQuery.extend({ email: z.string().min(1).optional() });

/** Builds the API app over one 4Degrees sandbox. */
export function createApi(sb: FourDegreesSandbox): Hono {
  const app = new Hono<Env>();

  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? sb.newRequestId();
    if (err instanceof FourDegreesError) {
      return jsonResponse(errorBody(err, requestId), err.status, { ...err.headers, "X-Request-Id": requestId });
    }
    console.error("4degrees sandbox: unexpected error", err);
    return jsonResponse(
      errorBody(
        { type: "api_error", code: "internal_error", message: "The sandbox hit an unexpected error (a sandbox bug)" },
        requestId,
      ),
      500,
      { "X-Request-Id": requestId },
    );
  });

  // Request id and the request log/counters.
  app.use("*", async function requestLog(c, next) {
    const requestId = sb.newRequestId();
    c.set("requestId", requestId);
    c.header("X-Request-Id", requestId);
    await next();
    // After next(), the route index points at the handler that answered (a middleware when it threw).
    const pattern = routePath(c).replace(API_BASE, "");
    sb.recordRequest({
      method: c.req.method,
      route: pattern.endsWith("*") ? new URL(c.req.url).pathname.replace(API_BASE, "") : pattern,
      path: new URL(c.req.url).pathname.replace(API_BASE, "") + new URL(c.req.url).search,
      status: c.res.status,
      requestId,
      idempotencyKey: c.req.header("idempotency-key") ?? null,
      ifMatch: c.req.header("if-match") ?? null,
      replayed: c.res.headers.get("idempotent-replayed") === "true",
    });
  });

  // Bearer API key.
  app.use("*", async function apiKeyAuth(c, next) {
    const header = c.req.header("authorization");
    if (!header)
      throw new FourDegreesError(401, "missing_api_key", "Send the workspace API key as Authorization: Bearer <key>");
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const key = match ? sb.apiKeys.get(match[1]!) : undefined;
    if (!key) throw new FourDegreesError(401, "invalid_api_key", "The API key is not valid for this workspace");
    c.set("apiKey", key);
    c.set("actor", { type: "api_key", id: key.id });
    await next();
  });

  // Rate limit per API key, headers on every answer.
  app.use("*", async function rateLimit(c, next) {
    const decision = sb.limiter.take(c.get("apiKey").id);
    const resetSeconds = Math.max(0, Math.ceil(decision.resetInMs / 1000));
    const headers = {
      "X-RateLimit-Limit": String(decision.limit),
      "X-RateLimit-Remaining": String(decision.remaining),
      "X-RateLimit-Reset": String(resetSeconds),
    };
    if (!decision.allowed) {
      throw new FourDegreesError(
        429,
        "rate_limited",
        `Rate limit of ${decision.limit} requests per ${decision.intervalMs / 1000} s exceeded for this API key`,
        { ...headers, "Retry-After": String(Math.max(1, resetSeconds)) },
      );
    }
    await next();
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  });

  // Seeded and scripted faults.
  app.use("*", async function faults(c, next) {
    // Scripted rules match the path below the base (`^/deals/`), as HighLevel's match `^/opportunities/`.
    const fault = sb.faults.forRequest(c.req.method, new URL(c.req.url).pathname.replace(API_BASE, "") || "/");
    await sleep(fault.delayMs);
    if (fault.kind === "timeout") throw new FourDegreesError(504, "timeout", "The request timed out (sandbox fault)");
    if (fault.kind === "error") {
      const retryAfter: Record<string, string> =
        fault.retryAfter !== undefined
          ? { "Retry-After": String(fault.retryAfter) }
          : fault.status === 429
            ? { "Retry-After": "1" }
            : {};
      throw new FourDegreesError(
        fault.status,
        fault.status === 429 ? "rate_limited" : "injected_fault",
        `Injected fault: HTTP ${fault.status} (sandbox)`,
        retryAfter,
      );
    }
    await next();
  });

  // Write scope and idempotent replay.
  app.use("*", async function idempotency(c, next) {
    if (!WRITE_METHODS.has(c.req.method)) return next();
    if (!c.get("apiKey").scopes.includes("write"))
      throw new FourDegreesError(403, "insufficient_scope", "This API key is read-only");
    const key = c.req.header("idempotency-key");
    if (key === undefined) return next();
    if (key.length < 1 || key.length > 255)
      throw fail.badRequest("Idempotency-Key must be 1 to 255 characters", "invalid_idempotency_key");
    // A digest, not the body: an upload may be 25 MiB and the record lives 24 h.
    const ctx = c as Context<Env>;
    const digest = await bodyDigest(ctx, await readBytes(ctx, MAX_CSV_BYTES));
    const fingerprint = `${c.req.method} ${new URL(c.req.url).pathname}\n${digest}`;
    const slot = `${c.get("apiKey").id}:${key}`;
    const prior = sb.idempotency.lookup(slot);
    if (prior?.state === "in_flight")
      throw new FourDegreesError(
        409,
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed",
      );
    if (prior) {
      if (prior.fingerprint !== fingerprint)
        throw fail.validation(
          "This Idempotency-Key was used with a different request (method, path or body) in the last 24 hours",
          "idempotency_key_reused",
        );
      return new Response(prior.body, {
        status: prior.status,
        headers: { ...prior.headers, "Idempotent-Replayed": "true", "X-Request-Id": c.get("requestId") },
      });
    }
    sb.idempotency.begin(slot, fingerprint);
    try {
      await next();
    } finally {
      const res = c.res;
      if (res.status >= 200 && res.status < 300) {
        const text = await res.clone().text();
        const headers: Record<string, string> = {};
        for (const name of ["content-type", "etag", "location"]) {
          const v = res.headers.get(name);
          if (v !== null) headers[name] = v;
        }
        sb.idempotency.complete(slot, { status: res.status, body: text, headers });
      } else {
        sb.idempotency.abandon(slot);
      }
    }
  });

  // ── Workspace ──────────────────────────────────────────────────────────────────────────────────
  app.get("/me", (c) => {
    const key = c.get("apiKey");
    return c.json({
      workspace: { id: sb.store.workspace.id, name: sb.store.workspace.name },
      actor: c.get("actor"),
      api_key: { id: key.id, name: key.name, scopes: key.scopes },
    });
  });
  app.get("/users", (c) => c.json({ data: [...sb.store.users.values()] }));
  app.get("/pipelines", (c) => c.json({ data: [...sb.store.pipelines.values()] }));
  app.get("/pipelines/:id/fields", (c) => {
    const id = c.req.param("id");
    sb.store.getPipeline(id);
    return c.json({ data: sb.store.fieldsOf(id) });
  });
  app.post("/pipelines/:id/import", async (c) => {
    const id = c.req.param("id");
    sb.store.getPipeline(id);
    const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (!["text/csv", "application/csv", "text/plain"].includes(type))
      throw new FourDegreesError(415, "unsupported_media_type", "Send the deal list as text/csv");
    const text = await readBody(c, MAX_CSV_BYTES);
    return c.json(importCsv(sb.store, id, text, c.get("actor")));
  });

  // ── Deals ──────────────────────────────────────────────────────────────────────────────────────
  app.get("/deals", (c) => {
    const q = parseQuery(DealListQuery, c);
    return c.json(
      sb.store.listDeals({
        limit: q.limit,
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
        ...(q.pipeline_id !== undefined ? { pipelineId: q.pipeline_id } : {}),
        ...(q.updated_since !== undefined ? { updatedSince: q.updated_since } : {}),
        ...(q.include_archived !== undefined ? { includeArchived: q.include_archived === "true" } : {}),
      }),
    );
  });
  app.get("/deals/:id", (c) => dealResponse(c, sb.store.getDeal(c.req.param("id"))));
  app.post("/deals", async (c) => {
    const input = parseDealBody(DealCreateSchema, await readJson(c));
    return dealResponse(c, sb.store.createDeal(input, c.get("actor")), 201);
  });
  app.patch("/deals/:id", async (c) => {
    const ifMatch = parseIfMatch(c.req.header("if-match"));
    const patch = parseDealBody(DealPatchSchema, await readJson(c));
    return dealResponse(
      c,
      sb.store.updateDeal(c.req.param("id"), patch, c.get("actor"), ifMatch === undefined ? {} : { ifMatch }),
    );
  });
  app.delete("/deals/:id", (c) => {
    const ifMatch = parseIfMatch(c.req.header("if-match"));
    return dealResponse(
      c,
      sb.store.archiveDeal(c.req.param("id"), c.get("actor"), ifMatch === undefined ? {} : { ifMatch }),
    );
  });

  // ── Notes ──────────────────────────────────────────────────────────────────────────────────────
  app.get("/deals/:id/notes", (c) => {
    const q = parseQuery(ListQuery, c);
    return c.json(sb.store.listNotes(c.req.param("id"), q.cursor, q.limit));
  });
  app.post("/deals/:id/notes", async (c) => {
    const input = parseBody(NoteCreateSchema, await readJson(c));
    if (input.author_id !== undefined || input.created_at !== undefined) requireImportScope(c);
    return c.json(sb.store.createNote(c.req.param("id"), input, c.get("actor")), 201);
  });
  app.patch("/notes/:id", async (c) => {
    const input = parseBody(NotePatchSchema, await readJson(c));
    return c.json(sb.store.updateNote(c.req.param("id"), input, c.get("actor")));
  });
  app.delete("/notes/:id", (c) => {
    const note = sb.store.deleteNote(c.req.param("id"), c.get("actor"));
    return c.json({ id: note.id, deleted: true });
  });

  // ── Attachments (assumed contract) ─────────────────────────────────────────────────────────────
  const origin = (c: Context<Env>) => new URL(c.req.url).origin;
  app.get("/deals/:id/attachments", async (c) => {
    const q = parseQuery(ListQuery, c);
    const page = sb.store.listAttachments(c.req.param("id"), q.cursor, q.limit);
    return c.json({
      data: await Promise.all(page.data.map((a) => withDownloadUrl(sb, origin(c), a))),
      next_cursor: page.next_cursor,
    });
  });
  app.post("/deals/:id/attachments", async (c) => {
    const dealId = c.req.param("id");
    // A missing deal is a 404 before the upload is read.
    sb.store.getDeal(dealId);
    const upload = await readUpload(c, sb.attachmentSettings.maxBytes);
    if (upload.overrides) requireImportScope(c);
    const id = sb.store.newId("att");
    const url = await signedDownloadUrl(sb, origin(c), id);
    return c.json(sb.store.createAttachment(dealId, id, upload.input, c.get("actor"), url), 201);
  });
  app.get("/attachments/:id", async (c) =>
    c.json(await withDownloadUrl(sb, origin(c), sb.store.getAttachment(c.req.param("id")).record)),
  );
  app.delete("/attachments/:id", (c) => {
    const attachment = sb.store.deleteAttachment(c.req.param("id"), c.get("actor"));
    return c.json({ id: attachment.id, deleted: true });
  });

  // ── Pass reasons and reminders (assumed contract) ──────────────────────────────────────────────
  app.get("/pass-reasons", (c) => c.json({ data: [...sb.store.passReasons.values()] }));
  app.get("/deals/:id/reminders", (c) => {
    const q = parseQuery(ListQuery, c);
    return c.json(sb.store.listReminders(c.req.param("id"), q.cursor, q.limit));
  });
  app.post("/deals/:id/reminders", async (c) => {
    const input = parseBody(ReminderCreateSchema, await readJson(c));
    return c.json(sb.store.createReminder(c.req.param("id"), input, c.get("actor")), 201);
  });

  // ── Contacts and companies (sandbox extension: the contract's deals reference them) ────────────
  app.get("/contacts", (c) => {
    const q = parseQuery(ContactListQuery, c);
    const email = q.email?.trim().toLowerCase();
    const all = [...sb.store.contacts.values()]
      .filter((ct) => email === undefined || ct.email === email)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const start = q.cursor === undefined ? 0 : all.findIndex((ct) => ct.id > decodeIdCursor(q.cursor!));
    const from = start < 0 ? all.length : start;
    const data = all.slice(from, from + q.limit);
    return c.json({ data, next_cursor: from + q.limit < all.length && data.length > 0 ? btoa(data.at(-1)!.id) : null });
  });
  app.get("/contacts/:id", (c) => {
    const contact = sb.store.contacts.get(c.req.param("id"));
    if (!contact) throw fail.notFound("contact", c.req.param("id"));
    return c.json(contact);
  });
  app.post("/contacts", async (c) =>
    c.json(sb.store.addContact(parseBody(ContactCreateSchema, await readJson(c))), 201),
  );
  app.get("/companies/:id", (c) => {
    const company = sb.store.companies.get(c.req.param("id"));
    if (!company) throw fail.notFound("company", c.req.param("id"));
    return c.json(company);
  });

  app.all("*", (c) => {
    throw new FourDegreesError(404, "route_not_found", `No route ${c.req.method} ${new URL(c.req.url).pathname}`);
  });

  // The host mounts plain `Hono` apps; the typed request variables stay inside this one.
  return new Hono().route("/", app);
}

function jsonResponse(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function dealResponse(c: Context<Env>, deal: Deal, status: 200 | 201 = 200): Response {
  c.header("ETag", `"${deal.version}"`);
  return c.json(deal, status);
}

async function sha256Hex(data: ArrayBuffer | Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What makes two requests "the same" for `Idempotency-Key`: the bytes, except for multipart bodies,
 * whose random boundary differs on every retry — there the parts (names, values, file digests) count.
 */
async function bodyDigest(c: Context<Env>, bytes: ArrayBuffer): Promise<string> {
  if (/^multipart\/form-data/i.test(c.req.header("content-type") ?? "")) {
    try {
      const form = await c.req.formData();
      const parts: string[] = [];
      for (const [name, value] of form.entries()) {
        parts.push(
          typeof value === "string"
            ? `${name}=${JSON.stringify(value)}`
            : `${name}=file:${JSON.stringify(value.name)}:${value.type}:${await sha256Hex(await value.arrayBuffer())}`,
        );
      }
      // The handler reads this same form: parse the upload once.
      (c.req.bodyCache as { formData?: Promise<FormData> }).formData = Promise.resolve(form);
      return sha256Hex(new TextEncoder().encode(parts.join("\n")) as Uint8Array<ArrayBuffer>);
    } catch {
      // Not parseable: the raw bytes are the fingerprint, and the handler answers 400.
    }
  }
  return sha256Hex(bytes);
}

/** Setting `author_id` / `created_at` (an import of history) needs a key with the `import` scope. */
function requireImportScope(c: Context<Env>): void {
  if (!c.get("apiKey").scopes.includes("import")) {
    throw new FourDegreesError(
      403,
      "insufficient_scope",
      "Setting author_id or created_at needs an API key with the import scope; leave them out and they default",
    );
  }
}

/**
 * Reads the raw body as bytes once, refusing it with 413 as soon as it passes `maxBytes` (a
 * chunked body has no length to check first). Later reads (text, form data) reuse these bytes.
 */
async function readBytes(c: Context<Env>, maxBytes: number): Promise<ArrayBuffer> {
  const tooLarge = () => new FourDegreesError(413, "payload_too_large", `The body is larger than ${maxBytes} bytes`);
  if (Number(c.req.header("content-length") ?? "0") > maxBytes) throw tooLarge();
  const raw = c.req.raw.body;
  if (raw === null || Object.keys(c.req.bodyCache).length > 0) return c.req.arrayBuffer();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = (raw as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  // Hono's body cache is where its text()/formData() look first, so they convert these bytes.
  const buffer = bytes.buffer;
  (c.req.bodyCache as { arrayBuffer?: Promise<ArrayBuffer> }).arrayBuffer = Promise.resolve(buffer);
  return buffer;
}

/** Reads the raw body once (Hono caches it), refusing oversized ones with 413. */
async function readBody(c: Context<Env>, maxBytes: number): Promise<string> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes)
    throw new FourDegreesError(413, "payload_too_large", `The body is larger than ${maxBytes} bytes`);
  const text = await c.req.text();
  if (text.length > maxBytes)
    throw new FourDegreesError(413, "payload_too_large", `The body is larger than ${maxBytes} bytes`);
  return text;
}

/** Parses a JSON object body: wrong content type 415, malformed 400. */
async function readJson(c: Context<Env>): Promise<Record<string, unknown>> {
  const type = (c.req.header("content-type") ?? "application/json").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json" && !type.endsWith("+json"))
    throw new FourDegreesError(415, "unsupported_media_type", "Send JSON with Content-Type: application/json");
  const text = await readBody(c, MAX_JSON_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw fail.badRequest("The body is not valid JSON", "invalid_json");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw fail.badRequest("The body must be a JSON object", "invalid_json");
  return json as Record<string, unknown>;
}

/** Deal bodies: read-only and unknown properties get their own codes before the schema runs. */
function parseDealBody<T extends z.ZodObject>(schema: T, body: Record<string, unknown>): z.output<T> {
  const readOnly = Object.keys(body).filter((k) => DEAL_READ_ONLY_KEYS.has(k));
  if (readOnly.length > 0)
    throw fail.validation(
      `${readOnly.join(", ")} ${readOnly.length === 1 ? "is" : "are"} read-only${readOnly.includes("status") ? " (status follows the stage's kind: move the deal to a won or lost stage)" : ""}`,
      "read_only_field",
    );
  const known = new Set(Object.keys(schema.shape));
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw fail.validation(`Unknown field${unknown.length === 1 ? "" : "s"}: ${unknown.join(", ")}`, "unknown_field");
  return parseBody(schema, body);
}

function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === "unrecognized_keys")
    throw fail.validation(
      `Unknown field${issue.keys.length === 1 ? "" : "s"}: ${issue.keys.join(", ")}`,
      "unknown_field",
    );
  const path = issue.path.map(String).join(".");
  throw fail.validation(path ? `${path}: ${issue.message}` : issue.message);
}

function parseQuery<T extends z.ZodType>(schema: T, c: Context<Env>): z.output<T> {
  const result = schema.safeParse(c.req.query());
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw fail.badRequest(issue.message, "invalid_parameter");
}

/** `If-Match: "3"` (or `3`, or `W/"3"`) → 3; absent → undefined; anything else → 400. */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (!m) throw fail.badRequest('If-Match must be a deal version, e.g. If-Match: "3"', "invalid_if_match");
  return Number(m[1]);
}

function decodeIdCursor(cursor: string): string {
  try {
    return atob(cursor);
  } catch {
    throw fail.badRequest("cursor is not a cursor this API returned", "invalid_cursor");
  }
}
