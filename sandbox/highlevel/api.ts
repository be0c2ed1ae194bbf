/**
 * `/highlevel/*`: the sandbox's stand-in for https://services.leadconnectorhq.com.
 *
 * Every request goes through the same gate HighLevel's API has, in this order:
 * bearer token (401 "Invalid token: access token is invalid") → per-app-per-location rate limit
 * (the five `X-RateLimit-*` headers on every authenticated answer, 429 when over) → injected faults
 * → `Version` header (2021-07-28 or the SDK's 2023-02-21) → token class and scope (401 "The token
 * is not authorized for this scope.") → the endpoint, whose bodies are whitelist-validated
 * (422 `property foo should not exist`). Every answer carries a `traceId`.
 *
 * Endpoints and shapes: ../shared/reference/highlevel-api.md and ghl/apps/*.json.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import type { FaultInjector } from "../core/faults.ts";
import { sleep } from "../core/faults.ts";
import type { RateLimiter } from "../core/ratelimit.ts";
import {
  AUTH_CLASS_NOT_ALLOWED,
  GhlError,
  NO_LOCATION_ACCESS,
  REASON,
  SCOPE_NOT_AUTHORIZED,
  enumOf,
  nullableString,
  optBoolean,
  optNumber,
  optString,
  parseBody,
  reqString,
  stringArray,
  unprocessable,
} from "./errors.ts";
import type { AccessToken, OAuthServer } from "./oauth.ts";
import { OAuthError } from "./oauth.ts";
import {
  renderContact,
  renderContactListItem,
  renderCreatedContact,
  renderCustomField,
  renderLostReason,
  renderNote,
  renderOpportunity,
  renderPipeline,
  renderUser,
} from "./render.ts";
import type { HighLevelService } from "./service.ts";
import type { Contact, Opportunity } from "./store.ts";

/** API versions the sandbox accepts: the spec's and the official Node SDK's default. */
export const ACCEPTED_VERSIONS = ["2021-07-28", "2023-02-21"] as const;

export interface ApiOptions {
  service: HighLevelService;
  oauth: OAuthServer;
  limiter: RateLimiter;
  faults: FaultInjector;
  /** Read per request: whether a 429 carries `Retry-After` (unconfirmed for HighLevel; default on). */
  retryAfter: () => boolean;
}

type Vars = { Variables: { traceId: string; token: AccessToken | null } };
type Ctx = Context<Vars>;

/** How a route authenticates: which token classes it takes and which scope it needs. */
interface Guard {
  /** `Location` (sub-account token or PIT), `Company` (agency token), `any`, or `none` (token endpoint). */
  auth: "Location" | "Company" | "any" | "none";
  scope?: string;
  /** Whether the `Version` header is required (every v2 endpoint but `/oauth/token`). */
  version?: boolean;
}

const STATUS_ENUM = ["open", "won", "lost", "abandoned", "all"] as const;

const customFieldInput = z
  .object({
    id: optString("customFields.id"),
    key: optString("customFields.key"),
    field_value: z.unknown().optional(),
  })
  .strict();

const CreateOpportunityBody = z
  .object({
    pipelineId: reqString("pipelineId"),
    locationId: reqString("locationId"),
    name: reqString("name"),
    pipelineStageId: optString("pipelineStageId"),
    status: enumOf("status", STATUS_ENUM),
    contactId: reqString("contactId"),
    monetaryValue: optNumber("monetaryValue"),
    assignedTo: optString("assignedTo"),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
  })
  .strict();

const UpdateOpportunityBody = z
  .object({
    pipelineId: optString("pipelineId"),
    name: optString("name"),
    pipelineStageId: optString("pipelineStageId"),
    status: enumOf("status", STATUS_ENUM).optional(),
    monetaryValue: optNumber("monetaryValue"),
    assignedTo: optString("assignedTo"),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
  })
  .strict();

const StatusBody = z.object({ status: enumOf("status", STATUS_ENUM), lostReasonId: optString("lostReasonId") }).strict();

/**
 * `UpsertOpportunityDto` as the spec has it (followers, isRemoveAllFollowers and
 * followersActionType required), plus `contactId` and `customFields`: the spec omits them, yet an
 * upsert that creates needs a contact, and HighLevel matches an existing opportunity by contact and
 * pipeline. `monetaryValue` is typed `object` in the spec (a generator artefact for a number).
 */
const UpsertBody = z
  .object({
    id: optString("id"),
    pipelineId: reqString("pipelineId"),
    locationId: reqString("locationId"),
    contactId: optString("contactId"),
    followers: stringArray("followers"),
    isRemoveAllFollowers: z.boolean({ error: "isRemoveAllFollowers must be a boolean value" }),
    followersActionType: enumOf("followersActionType", ["add", "remove"] as const),
    name: optString("name"),
    status: enumOf("status", STATUS_ENUM).optional(),
    pipelineStageId: optString("pipelineStageId"),
    monetaryValue: optNumber("monetaryValue"),
    assignedTo: optString("assignedTo"),
    lostReasonId: optString("lostReasonId"),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
  })
  .strict();

const FollowersBody = z.object({ followers: stringArray("followers") }).strict();

const AdvancedSearchBody = z
  .object({
    locationId: reqString("locationId"),
    query: z.string({ error: "query must be a string" }),
    limit: z.number({ error: "limit must be a number conforming to the specified constraints" }).int({ error: "limit must be an integer number" }).min(1, { error: "limit must not be less than 1" }).max(100, { error: "limit must not be greater than 100" }),
    page: z.number({ error: "page must be a number conforming to the specified constraints" }).int({ error: "page must be an integer number" }).min(1, { error: "page must not be less than 1" }),
    searchAfter: stringArray("searchAfter"),
    additionalDetails: z
      .object({
        notes: z.boolean({ error: "additionalDetails.notes must be a boolean value" }),
        tasks: z.boolean({ error: "additionalDetails.tasks must be a boolean value" }),
        calendarEvents: z.boolean({ error: "additionalDetails.calendarEvents must be a boolean value" }),
        unReadConversations: z.boolean({ error: "additionalDetails.unReadConversations must be a boolean value" }),
      }, { error: "additionalDetails must be an object" })
      .strict(),
  })
  .strict();

const NoteBody = z
  .object({ userId: optString("userId"), body: reqString("body"), title: optString("title"), color: optString("color"), pinned: optBoolean("pinned") })
  .strict();

const NoteUpdateBody = z
  .object({ userId: optString("userId"), body: optString("body"), title: optString("title"), color: optString("color"), pinned: optBoolean("pinned") })
  .strict();

/** `CreateContactDto` (ghl/apps/contacts.json): `locationId` required, the rest optional. */
const CreateContactBody = z
  .object({
    firstName: nullableString("firstName"),
    lastName: nullableString("lastName"),
    name: nullableString("name"),
    email: z.email({ error: "email must be an email" }).nullable().optional(),
    locationId: reqString("locationId"),
    gender: optString("gender"),
    phone: nullableString("phone"),
    address1: nullableString("address1"),
    city: nullableString("city"),
    state: nullableString("state"),
    postalCode: optString("postalCode"),
    website: nullableString("website"),
    timezone: nullableString("timezone"),
    dnd: optBoolean("dnd"),
    dndSettings: z.record(z.string(), z.unknown(), { error: "dndSettings must be an object" }).optional(),
    inboundDndSettings: z.record(z.string(), z.unknown(), { error: "inboundDndSettings must be an object" }).optional(),
    tags: stringArray("tags").optional(),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
    source: optString("source"),
    dateOfBirth: z.unknown().optional(),
    country: optString("country"),
    companyName: nullableString("companyName"),
    assignedTo: optString("assignedTo"),
  })
  .strict();

/** `UpdateContactDto` (ghl/apps/contacts.json): all optional, no `locationId` / `companyName` / `gender`. */
const UpdateContactBody = z
  .object({
    firstName: nullableString("firstName"),
    lastName: nullableString("lastName"),
    name: nullableString("name"),
    email: z.email({ error: "email must be an email" }).nullable().optional(),
    phone: nullableString("phone"),
    address1: nullableString("address1"),
    city: nullableString("city"),
    state: nullableString("state"),
    postalCode: optString("postalCode"),
    website: nullableString("website"),
    timezone: nullableString("timezone"),
    dnd: optBoolean("dnd"),
    dndSettings: z.record(z.string(), z.unknown(), { error: "dndSettings must be an object" }).optional(),
    inboundDndSettings: z.record(z.string(), z.unknown(), { error: "inboundDndSettings must be an object" }).optional(),
    tags: stringArray("tags").optional(),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
    source: nullableString("source"),
    dateOfBirth: z.unknown().optional(),
    country: optString("country"),
    assignedTo: nullableString("assignedTo"),
  })
  .strict();

/** Contact fields `POST /contacts/search` filters and sorts on (HighLevel's search field names). */
const CONTACT_SEARCH_FIELDS = ["id", "firstNameLowerCase", "lastNameLowerCase", "fullNameLowerCase", "email", "phone", "companyName", "tags", "assignedTo", "source", "country", "dnd", "dateAdded", "dateUpdated"] as const;
const CONTACT_SORT_FIELDS = ["dateAdded", "dateUpdated", "firstNameLowerCase", "lastNameLowerCase", "email"] as const;
const CONTACT_SEARCH_OPERATORS = ["eq", "not_eq", "contains", "not_contains", "exists", "not_exists"] as const;
/** The deepest result `page` × `pageLimit` reaches; past it, page with `searchAfter` (unconfirmed limit). */
const CONTACT_SEARCH_WINDOW = 10_000;

type ContactFilter = { field: (typeof CONTACT_SEARCH_FIELDS)[number]; operator: (typeof CONTACT_SEARCH_OPERATORS)[number]; value?: unknown } | { group: "AND" | "OR"; filters: ContactFilter[] };

/** One filter, `{field, operator, value}`, or a group `{group: "AND" | "OR", filters}` (nestable). */
const ContactFilterSchema: z.ZodType<ContactFilter, unknown> = z.lazy(() =>
  z
    .object(
      {
        field: enumOf("filters.field", CONTACT_SEARCH_FIELDS).optional(),
        operator: enumOf("filters.operator", CONTACT_SEARCH_OPERATORS).optional(),
        value: z.unknown().optional(),
        group: enumOf("filters.group", ["AND", "OR"] as const).optional(),
        filters: z.array(ContactFilterSchema, { error: "filters.filters must be an array" }).optional(),
      },
      { error: "each value in filters must be an object" },
    )
    .strict()
    .superRefine((f, ctx) => {
      const isGroup = f.group !== undefined || f.filters !== undefined;
      if (isGroup && (f.group === undefined || f.filters === undefined || f.field !== undefined || f.operator !== undefined || f.value !== undefined)) {
        ctx.addIssue({ code: "custom", message: "a filter group takes group and filters only" });
      }
      if (!isGroup && f.field === undefined) ctx.addIssue({ code: "custom", message: "filters.field should not be empty" });
      if (!isGroup && f.operator === undefined) ctx.addIssue({ code: "custom", message: "filters.operator should not be empty" });
    })
    .transform((f) => f as ContactFilter),
);

/** How deep filter groups may nest (the sandbox's limit, so a hostile body cannot exhaust the stack). */
const MAX_FILTER_DEPTH = 5;

/** The nesting depth of `filters` in a search body (iterative: safe on any input). */
function filterDepth(body: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[body, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (!node || typeof node !== "object" || !("filters" in node) || !Array.isArray(node.filters)) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_FILTER_DEPTH) return deepest;
    for (const child of node.filters as unknown[]) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * `POST /contacts/search`. The spec's `SearchBodyV2DTO` lists no properties and its 200 documents no
 * body; this is the shape of HighLevel's "Search Contacts" guide (linked from the spec): `locationId`,
 * `page` + `pageLimit` or `searchAfter`, `query`, `filters` (`{field, operator, value}` or nested
 * `{group, filters}`), `sort` — answered as `{contacts, total}`. Unconfirmed where the guide is silent.
 */
const ContactSearchBody = z
  .object({
    locationId: reqString("locationId"),
    page: z.number({ error: "page must be a number conforming to the specified constraints" }).int({ error: "page must be an integer number" }).min(1, { error: "page must not be less than 1" }).optional(),
    pageLimit: z
      .number({ error: "pageLimit must be a number conforming to the specified constraints" })
      .int({ error: "pageLimit must be an integer number" })
      .min(1, { error: "pageLimit must not be less than 1" })
      .max(500, { error: "pageLimit must not be greater than 500" })
      .optional(),
    searchAfter: z.array(z.union([z.string(), z.number()]), { error: "searchAfter must be an array" }).optional(),
    query: z.string({ error: "query must be a string" }).optional(),
    filters: z.array(ContactFilterSchema, { error: "filters must be an array" }).optional(),
    sort: z
      .array(z.object({ field: enumOf("sort.field", CONTACT_SORT_FIELDS), direction: enumOf("sort.direction", ["asc", "desc"] as const) }).strict(), { error: "sort must be an array" })
      .max(2, { error: "sort must contain no more than 2 elements" })
      .optional(),
  })
  .strict();

const SEARCH_QUERY_KEYS = [
  "q", "location_id", "pipeline_id", "pipeline_stage_id", "contact_id", "status", "assigned_to", "campaignId", "id", "order",
  "endDate", "startAfter", "startAfterId", "date", "country", "page", "limit", "getTasks", "getNotes", "getCalendarEvents",
] as const;

/** Rejects query parameters outside `allowed` (whitelist validation applies to query DTOs too). */
function checkQuery(c: Ctx, allowed: readonly string[]): Record<string, string> {
  const query = c.req.query();
  const unknown = Object.keys(query).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw unprocessable(unknown.map((k) => `property ${k} should not exist`));
  return query;
}

/** A path parameter (always present on the routes that read it). */
function pathParam(c: Ctx, name: string): string {
  return c.req.param(name) ?? "";
}

function intParam(query: Record<string, string>, name: string, dflt: number, min: number, max: number): number {
  const raw = query[name];
  if (raw === undefined || raw === "") return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw unprocessable([`${name} must be a number conforming to the specified constraints`]);
  if (n > max) throw unprocessable([`${name} must not be greater than ${max}`]);
  if (n < min) throw unprocessable([`${name} must not be less than ${min}`]);
  return Math.floor(n);
}

/** `mm-dd-yyyy` → UTC ms at the start of that day. */
function parseDay(name: string, raw: string): number {
  const m = /^(\d{2})-(\d{2})-(\d{4})$/.exec(raw);
  const ms = m ? Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2])) : NaN;
  if (!Number.isFinite(ms)) throw unprocessable([`${name} must be a date in mm-dd-yyyy format`]);
  return ms;
}

/** Creates the `/highlevel` Hono app. */
export function createHighLevelApi(o: ApiOptions): Hono<Vars> {
  const { service, oauth, limiter, faults } = o;
  const store = service.store;
  const app = new Hono<Vars>();

  /** JSON with the request's `traceId` in the body. */
  const send = (c: Ctx, body: Record<string, unknown>, status = 200) => c.json({ ...body, traceId: c.get("traceId") }, status as 200);

  app.use("*", async (c, next) => {
    c.set("traceId", crypto.randomUUID());
    c.set("token", null);
    await next();
  });

  app.onError((err, c) => {
    const traceId = c.get("traceId") ?? crypto.randomUUID();
    if (err instanceof OAuthError && oauth.settings.errorStyle === "oauth2") return c.json({ error: err.code, error_description: err.message }, err.status as 400);
    if (err instanceof GhlError) return c.json(err.body(traceId), err.status as 400);
    // A crash is a sandbox bug: say so loudly, still in HighLevel's shape.
    console.error("highlevel sandbox: unexpected error", err);
    return c.json({ statusCode: 500, message: `sandbox bug: ${err instanceof Error ? err.message : String(err)}`, error: REASON[500], traceId }, 500);
  });

  app.notFound((c) => c.json({ statusCode: 404, message: `Cannot ${c.req.method} ${new URL(c.req.url).pathname.replace(/^\/highlevel/, "")}`, error: "Not Found", traceId: c.get("traceId") }, 404));

  /** The gate every endpoint goes through (see the module comment for the order). */
  const guard = (g: Guard) =>
    async function highLevelGate(c: Ctx, next: () => Promise<void>): Promise<Response | void> {
      let token: AccessToken | null = null;
      if (g.auth !== "none") {
        token = oauth.authenticate(c.req.header("authorization"));
        c.set("token", token);
        const decision = limiter.take(`${token.appKey}|${token.locationId ?? token.companyId}`);
        const headers: Record<string, string> = {
          "X-RateLimit-Limit-Daily": String(decision.dailyLimit ?? ""),
          "X-RateLimit-Daily-Remaining": String(decision.dailyRemaining ?? ""),
          "X-RateLimit-Interval-Milliseconds": String(decision.intervalMs),
          "X-RateLimit-Max": String(decision.limit),
          "X-RateLimit-Remaining": String(decision.remaining),
        };
        for (const [k, v] of Object.entries(headers)) c.header(k, v);
        if (!decision.allowed) {
          if (o.retryAfter()) c.header("Retry-After", String(Math.max(1, Math.ceil(decision.resetInMs / 1000))));
          throw new GhlError(429, "Too Many Requests");
        }
      }
      const fault = faults.forRequest(c.req.method, new URL(c.req.url).pathname.replace(/^\/highlevel/, ""));
      await sleep(fault.delayMs);
      if (fault.kind === "timeout") throw new GhlError(504, "Gateway Timeout");
      if (fault.kind === "error") {
        if (fault.retryAfter !== undefined) c.header("Retry-After", String(fault.retryAfter));
        throw new GhlError(fault.status, REASON[fault.status] ?? "Injected fault");
      }
      if (g.version ?? true) {
        const version = c.req.header("version");
        if (!version) throw new GhlError(400, "Version header was not found");
        if (!(ACCEPTED_VERSIONS as readonly string[]).includes(version)) throw new GhlError(400, `Invalid version header: ${version}`);
      }
      if (token) {
        if (g.auth !== "any" && token.userType !== g.auth) throw new GhlError(401, AUTH_CLASS_NOT_ALLOWED);
        if (g.scope && !token.scopes.includes(g.scope)) throw new GhlError(401, SCOPE_NOT_AUTHORIZED);
      }
      await next();
    };

  const tokenOf = (c: Ctx): AccessToken => c.get("token")!;

  /** 403 unless the token is for `locationId` (a Location token) or its agency (a Company token). */
  const assertLocation = (c: Ctx, locationId: string) => {
    const t = tokenOf(c);
    const ok = t.userType === "Location" ? t.locationId === locationId : store.locations.get(locationId)?.companyId === t.companyId;
    if (!ok) throw new GhlError(403, NO_LOCATION_ACCESS);
  };

  const readJson = async (c: Ctx): Promise<unknown> => {
    const text = await c.req.text();
    if (text.trim() === "") return {};
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new GhlError(400, err instanceof Error ? err.message : "Unexpected token in JSON");
    }
  };

  const opportunityFor = (c: Ctx, id: string): Opportunity => {
    const opp = service.opportunity(id);
    assertLocation(c, opp.locationId);
    return opp;
  };

  const R = { Location: "Location", Company: "Company", any: "any", none: "none" } as const;
  const OPP_READ = { auth: R.Location, scope: "opportunities.readonly" };
  const OPP_WRITE = { auth: R.Location, scope: "opportunities.write" };
  const CONTACT_READ = { auth: R.Location, scope: "contacts.readonly" };
  const CONTACT_WRITE = { auth: R.Location, scope: "contacts.write" };

  // ---------------- opportunities ----------------

  // https://highlevel.stoplight.io/docs/integrations/ (get-lost-reason)
  app.get("/opportunities/lost-reason", guard(OPP_READ), (c) => {
    const q = checkQuery(c, ["locationId", "name", "deleted", "query", "skip", "limit", "getCount"]);
    if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
    assertLocation(c, q.locationId);
    const needle = (q.query ?? q.name ?? "").toLowerCase();
    const all = store.lostReasonsOf(q.locationId).filter((r) => r.name.toLowerCase().includes(needle));
    const skip = intParam(q, "skip", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(q, "limit", 100, 1, 1000);
    return send(c, { lostReasons: all.slice(skip, skip + limit).map(renderLostReason), total: all.length });
  });

  app.get("/opportunities/search", guard(OPP_READ), (c) => {
    const q = checkQuery(c, SEARCH_QUERY_KEYS);
    if (!q.location_id) throw unprocessable(["location_id should not be empty"]);
    assertLocation(c, q.location_id);
    const limit = intParam(q, "limit", 20, 1, 100);
    const page = intParam(q, "page", 1, 1, Number.MAX_SAFE_INTEGER);
    if (q.status !== undefined && !(STATUS_ENUM as readonly string[]).includes(q.status)) throw unprocessable([`status must be one of the following values: ${STATUS_ENUM.join(", ")}`]);
    const order = q.order || "added_desc";
    if (order !== "added_desc" && order !== "added_asc") throw unprocessable(["order must be one of the following values: added_asc, added_desc"]);
    const from = q.date ? parseDay("date", q.date) : null;
    const to = q.endDate ? parseDay("endDate", q.endDate) + 86_400_000 : null;
    const needle = (q.q ?? "").toLowerCase();
    const matches = store
      .opportunitiesOf(q.location_id)
      .filter((opp) => {
        if (q.pipeline_id && opp.pipelineId !== q.pipeline_id) return false;
        if (q.pipeline_stage_id && opp.pipelineStageId !== q.pipeline_stage_id) return false;
        if (q.contact_id && opp.contactId !== q.contact_id) return false;
        if (q.status && q.status !== "all" && opp.status !== q.status) return false;
        if (q.assigned_to && opp.assignedTo !== q.assigned_to) return false;
        if (q.id && opp.id !== q.id) return false;
        const t = Date.parse(opp.createdAt);
        if (from !== null && t < from) return false;
        if (to !== null && t >= to) return false;
        if (needle) {
          const contact = store.contacts.get(opp.contactId);
          const hay = [opp.name, contact && store.contactName(contact), contact?.email, contact?.phone, contact?.companyName].filter(Boolean).join(" ").toLowerCase();
          if (!hay.includes(needle)) return false;
        }
        return true;
      })
      .sort((a, b) => {
        const d = Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id);
        return order === "added_asc" ? d : -d;
      });
    let rest = matches;
    if (q.startAfter) {
      const after = Number(q.startAfter);
      if (!Number.isFinite(after)) throw unprocessable(["startAfter must be a number string"]);
      const afterId = q.startAfterId ?? "";
      rest = matches.filter((opp) => {
        const t = Date.parse(opp.createdAt);
        const cmp = t - after || (afterId ? opp.id.localeCompare(afterId) : 0);
        return order === "added_asc" ? cmp > 0 : cmp < 0;
      });
    } else {
      rest = matches.slice((page - 1) * limit);
    }
    const pageItems = rest.slice(0, limit);
    const more = rest.length > limit;
    const last = pageItems[pageItems.length - 1];
    let nextPageUrl: string | null = null;
    if (more && last) {
      const next = new URL(c.req.url);
      next.searchParams.set("startAfter", String(Date.parse(last.createdAt)));
      next.searchParams.set("startAfterId", last.id);
      next.searchParams.set("page", String(page + 1));
      next.searchParams.set("limit", String(limit));
      nextPageUrl = next.toString();
    }
    return send(c, {
      opportunities: pageItems.map((opp) => renderOpportunity(store, opp, { searchDrift: true })),
      meta: {
        total: matches.length,
        nextPageUrl,
        startAfterId: last?.id ?? null,
        startAfter: last ? Date.parse(last.createdAt) : null,
        currentPage: page,
        nextPage: more ? page + 1 : null,
        prevPage: page > 1 ? page - 1 : null,
      },
      aggregations: {},
    });
  });

  app.post("/opportunities/search", guard(OPP_READ), async (c) => {
    const body = parseBody(AdvancedSearchBody, await readJson(c));
    assertLocation(c, body.locationId);
    const needle = body.query.toLowerCase();
    const matches = store
      .opportunitiesOf(body.locationId)
      .filter((opp) => {
        if (!needle) return true;
        const contact = store.contacts.get(opp.contactId);
        return [opp.name, contact && store.contactName(contact), contact?.email].filter(Boolean).join(" ").toLowerCase().includes(needle);
      })
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id.localeCompare(a.id));
    let rest = matches;
    if (body.searchAfter.length >= 2) {
      const after = Number(body.searchAfter[0]);
      const afterId = body.searchAfter[1]!;
      rest = matches.filter((opp) => (Date.parse(opp.createdAt) - after || opp.id.localeCompare(afterId)) < 0);
    } else {
      rest = matches.slice((body.page - 1) * body.limit);
    }
    return send(c, { opportunities: rest.slice(0, body.limit).map((opp) => renderOpportunity(store, opp, { searchDrift: true })), total: matches.length, aggregations: {} });
  });

  app.get("/opportunities/pipelines", guard(OPP_READ), (c) => {
    const q = checkQuery(c, ["locationId"]);
    if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
    assertLocation(c, q.locationId);
    return send(c, { pipelines: store.pipelinesOf(q.locationId).map(renderPipeline) });
  });

  app.post("/opportunities/upsert", guard(OPP_WRITE), async (c) => {
    const body = parseBody(UpsertBody, await readJson(c));
    assertLocation(c, body.locationId);
    const { followers, isRemoveAllFollowers, followersActionType, ...rest } = body;
    const result = service.upsertOpportunity(rest);
    if (isRemoveAllFollowers) service.removeFollowers(result.opportunity.id, [], true);
    else if (followers.length > 0) {
      if (followersActionType === "add") service.addFollowers(result.opportunity.id, followers);
      else service.removeFollowers(result.opportunity.id, followers, false);
    }
    return send(c, { opportunity: renderOpportunity(store, result.opportunity), new: result.created });
  });

  app.post("/opportunities/:id/followers", guard(OPP_WRITE), async (c) => {
    const body = parseBody(FollowersBody, await readJson(c));
    opportunityFor(c, pathParam(c, "id"));
    const { opportunity, added } = service.addFollowers(pathParam(c, "id"), body.followers);
    return send(c, { followers: [...opportunity.followers], followersAdded: added }, 201);
  });

  app.delete("/opportunities/:id/followers", guard(OPP_WRITE), async (c) => {
    const q = checkQuery(c, ["isRemoveAllFollowers"]);
    const all = q.isRemoveAllFollowers === "true";
    const raw = await readJson(c);
    const body = all && raw && typeof raw === "object" && !("followers" in raw) ? { followers: [] } : parseBody(FollowersBody, raw);
    opportunityFor(c, pathParam(c, "id"));
    const { opportunity, removed } = service.removeFollowers(pathParam(c, "id"), body.followers, all);
    return send(c, { followers: [...opportunity.followers], followersRemoved: removed });
  });

  app.put("/opportunities/:id/status", guard(OPP_WRITE), async (c) => {
    const body = parseBody(StatusBody, await readJson(c));
    opportunityFor(c, pathParam(c, "id"));
    service.setStatus(pathParam(c, "id"), body.status, body.lostReasonId);
    return send(c, { succeded: true });
  });

  app.get("/opportunities/:id", guard(OPP_READ), (c) => send(c, { opportunity: renderOpportunity(store, opportunityFor(c, pathParam(c, "id"))) }));

  app.put("/opportunities/:id", guard(OPP_WRITE), async (c) => {
    const body = parseBody(UpdateOpportunityBody, await readJson(c));
    opportunityFor(c, pathParam(c, "id"));
    return send(c, { opportunity: renderOpportunity(store, service.updateOpportunity(pathParam(c, "id"), body)) });
  });

  app.delete("/opportunities/:id", guard(OPP_WRITE), (c) => {
    opportunityFor(c, pathParam(c, "id"));
    service.deleteOpportunity(pathParam(c, "id"));
    return send(c, { succeded: true });
  });

  // Express (HighLevel's server) routes non-strictly: the spec's `/opportunities/` and Scopes.md's `/opportunities` both work.
  for (const path of ["/opportunities/", "/opportunities"]) {
    app.post(path, guard(OPP_WRITE), async (c) => {
      const body = parseBody(CreateOpportunityBody, await readJson(c));
      assertLocation(c, body.locationId);
      return send(c, { opportunity: renderOpportunity(store, service.createOpportunity(body)) }, 201);
    });
  }

  // ---------------- contacts ----------------

  app.get("/contacts/search/duplicate", guard(CONTACT_READ), (c) => {
    const q = checkQuery(c, ["locationId", "number", "email"]);
    if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
    assertLocation(c, q.locationId);
    const found = service.findDuplicateContact(q.locationId, q.email, q.number);
    return send(c, found ? { contact: renderContact(store, found.contact), matchingField: found.matchingField } : { contact: null });
  });

  for (const path of ["/contacts/", "/contacts"]) {
    app.get(path, guard(CONTACT_READ), (c) => {
      const q = checkQuery(c, ["locationId", "startAfterId", "startAfter", "query", "limit"]);
      if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
      assertLocation(c, q.locationId);
      const limit = intParam(q, "limit", 20, 1, 100);
      const needle = (q.query ?? "").toLowerCase();
      const all = store
        .contactsOf(q.locationId)
        .filter((x) => !needle || [store.contactName(x), x.email, x.phone, x.companyName].filter(Boolean).join(" ").toLowerCase().includes(needle))
        .sort((a, b) => a.dateAdded.localeCompare(b.dateAdded) || a.id.localeCompare(b.id));
      let rest = all;
      if (q.startAfterId) {
        const at = all.findIndex((x) => x.id === q.startAfterId);
        rest = at >= 0 ? all.slice(at + 1) : [];
      }
      const items = rest.slice(0, limit);
      const last = items[items.length - 1];
      return send(c, {
        contacts: items.map((x) => renderContactListItem(store, x)),
        count: all.length,
        meta: { total: all.length, startAfterId: last?.id ?? null, startAfter: last ? Date.parse(last.dateAdded) : null },
      });
    });
    app.post(path, guard(CONTACT_WRITE), async (c) => {
      const body = parseBody(CreateContactBody, await readJson(c));
      assertLocation(c, body.locationId);
      const { gender: _g, dndSettings: _d, inboundDndSettings: _i, dateOfBirth: _b, ...input } = body;
      return send(c, { contact: renderCreatedContact(store, service.createContact(input)) }, 201);
    });
  }

  const contactFor = (c: Ctx) => {
    const contact = service.contact(pathParam(c, "contactId"));
    assertLocation(c, contact.locationId);
    return contact;
  };

  /** A contact's value of a search field (strings compared lower-case, as HighLevel's search index does). */
  const searchValue = (x: Contact, field: (typeof CONTACT_SEARCH_FIELDS)[number]): string | string[] | boolean | null => {
    const name = store.contactName(x);
    switch (field) {
      case "firstNameLowerCase":
        return x.firstName?.toLowerCase() ?? null;
      case "lastNameLowerCase":
        return x.lastName?.toLowerCase() ?? null;
      case "fullNameLowerCase":
        return name ? name.toLowerCase() : null;
      case "tags":
        return x.tags.map((t) => t.toLowerCase());
      case "dnd":
        return x.dnd;
      case "email":
        return x.email?.toLowerCase() ?? null;
      default: {
        const v = x[field];
        return v === null || v === undefined ? null : String(v);
      }
    }
  };

  const matchesFilter = (x: Contact, f: ContactFilter, path: string): boolean => {
    if ("group" in f) return f.group === "AND" ? f.filters.every((g, i) => matchesFilter(x, g, `${path}.filters.${i}`)) : f.filters.some((g, i) => matchesFilter(x, g, `${path}.filters.${i}`));
    const have = searchValue(x, f.field);
    const present = have !== null && have !== "" && !(Array.isArray(have) && have.length === 0);
    if (f.operator === "exists") return present;
    if (f.operator === "not_exists") return !present;
    const wanted = f.value;
    if (f.field === "dnd") {
      if (typeof wanted !== "boolean") throw unprocessable([`${path}.value must be a boolean value`]);
      return f.operator === "eq" || f.operator === "contains" ? have === wanted : have !== wanted;
    }
    const list = Array.isArray(wanted) ? wanted : [wanted];
    if (list.length === 0 || list.some((v) => typeof v !== "string" && typeof v !== "number")) throw unprocessable([`${path}.value must be a string or a list of strings`]);
    const needles = list.map((v) => String(v).toLowerCase());
    const values = Array.isArray(have) ? have : have === null ? [] : [String(have).toLowerCase()];
    const hit = f.operator === "eq" || f.operator === "not_eq" ? needles.some((n) => values.includes(n)) : needles.some((n) => values.some((v) => v.includes(n)));
    return f.operator === "eq" || f.operator === "contains" ? hit : !hit;
  };

  // https://highlevel.stoplight.io/docs/integrations/ (search-contacts-advanced)
  app.post("/contacts/search", guard(CONTACT_READ), async (c) => {
    const raw = await readJson(c);
    if (filterDepth(raw) > MAX_FILTER_DEPTH) throw unprocessable([`filters can be nested at most ${MAX_FILTER_DEPTH} levels deep`]);
    const body = parseBody(ContactSearchBody, raw);
    assertLocation(c, body.locationId);
    const pageLimit = body.pageLimit ?? 20;
    const page = body.page ?? 1;
    if (body.searchAfter === undefined && page * pageLimit > CONTACT_SEARCH_WINDOW) throw unprocessable([`page * pageLimit must not be greater than ${CONTACT_SEARCH_WINDOW}; use searchAfter to go further`]);
    if (body.searchAfter !== undefined && body.page !== undefined && body.page > 1) throw unprocessable(["page and searchAfter can not be used together"]);
    const needle = (body.query ?? "").trim().toLowerCase();
    const sort = body.sort && body.sort.length > 0 ? body.sort : [{ field: "dateAdded" as const, direction: "desc" as const }];
    const key = (x: Contact, field: (typeof CONTACT_SORT_FIELDS)[number]): string | number => {
      if (field === "dateAdded" || field === "dateUpdated") return Date.parse(x[field]);
      return (searchValue(x, field) as string | null) ?? "";
    };
    const compare = (a: Contact, b: Contact): number => {
      for (const s of sort) {
        const ka = key(a, s.field);
        const kb = key(b, s.field);
        const d = typeof ka === "number" && typeof kb === "number" ? ka - kb : String(ka).localeCompare(String(kb));
        if (d !== 0) return s.direction === "asc" ? d : -d;
      }
      return a.id.localeCompare(b.id);
    };
    const matches = store
      .contactsOf(body.locationId)
      .filter((x) => !needle || [store.contactName(x), x.email, x.phone, x.companyName].filter(Boolean).join(" ").toLowerCase().includes(needle))
      .filter((x) => (body.filters ?? []).every((f, i) => matchesFilter(x, f, `filters.${i}`)))
      .sort(compare);
    const cursor = (x: Contact) => [...sort.map((s) => key(x, s.field)), x.id];
    let rest = matches;
    if (body.searchAfter !== undefined) {
      const after = body.searchAfter;
      const afterId = after.at(-1);
      const bad = after.length !== sort.length + 1 || typeof afterId !== "string" || sort.some((s, i) => (s.field === "dateAdded" || s.field === "dateUpdated") && !Number.isFinite(Number(after[i])));
      if (bad) throw unprocessable([`searchAfter must be the searchAfter of a result (${sort.length + 1} values)`]);
      // Strictly after the cursor in the sort order (works even if that contact is gone since).
      rest = matches.filter((x) => {
        for (const [i, s] of sort.entries()) {
          const k = key(x, s.field);
          const d = typeof k === "number" ? k - Number(after[i]) : k.localeCompare(String(after[i]));
          if (d !== 0) return s.direction === "asc" ? d > 0 : d < 0;
        }
        return x.id.localeCompare(afterId as string) > 0;
      });
    } else {
      rest = matches.slice((page - 1) * pageLimit);
    }
    return send(c, {
      contacts: rest.slice(0, pageLimit).map((x) => ({ ...renderContact(store, x), searchAfter: cursor(x) })),
      total: matches.length,
    });
  });

  app.put("/contacts/:contactId", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(UpdateContactBody, await readJson(c));
    const contact = contactFor(c);
    const { dndSettings: _d, inboundDndSettings: _i, dateOfBirth: _b, ...patch } = body;
    return send(c, { succeded: true, contact: renderContact(store, service.updateContact(contact.id, patch)) });
  });

  app.delete("/contacts/:contactId", guard(CONTACT_WRITE), (c) => {
    service.deleteContact(contactFor(c).id);
    return send(c, { succeded: true });
  });

  app.get("/contacts/:contactId/notes", guard(CONTACT_READ), (c) => send(c, { notes: store.notesOf(contactFor(c).id).map(renderNote) }));

  app.post("/contacts/:contactId/notes", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(NoteBody, await readJson(c));
    const contact = contactFor(c);
    return send(c, { note: renderNote(service.createNote(contact.id, body)) }, 201);
  });

  app.get("/contacts/:contactId/notes/:id", guard(CONTACT_READ), (c) => send(c, { note: renderNote(service.note(contactFor(c).id, pathParam(c, "id"))) }));

  app.put("/contacts/:contactId/notes/:id", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(NoteUpdateBody, await readJson(c));
    const contact = contactFor(c);
    return send(c, { note: renderNote(service.updateNote(contact.id, pathParam(c, "id"), body)) });
  });

  app.delete("/contacts/:contactId/notes/:id", guard(CONTACT_WRITE), (c) => {
    const contact = contactFor(c);
    service.deleteNote(contact.id, pathParam(c, "id"));
    return send(c, { succeded: true });
  });

  app.get("/contacts/:contactId", guard(CONTACT_READ), (c) => send(c, { contact: renderContact(store, contactFor(c)) }));

  // ---------------- users, locations, custom fields ----------------

  for (const path of ["/users/", "/users"]) {
    app.get(path, guard({ auth: R.any, scope: "users.readonly" }), (c) => {
      const q = checkQuery(c, ["locationId"]);
      if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
      assertLocation(c, q.locationId);
      return send(c, { users: store.usersOf(q.locationId).map(renderUser) });
    });
  }

  app.get("/users/:userId", guard({ auth: R.any, scope: "users.readonly" }), (c) => {
    const u = store.users.get(pathParam(c, "userId"));
    const t = tokenOf(c);
    if (!u || (t.userType === "Location" ? !u.locationIds.includes(t.locationId!) : u.companyId !== t.companyId)) throw new GhlError(400, "User not found");
    return send(c, renderUser(u));
  });

  app.get("/locations/:locationId/customFields", guard({ auth: R.Location, scope: "locations/customFields.readonly" }), (c) => {
    const q = checkQuery(c, ["model"]);
    const locationId = pathParam(c, "locationId");
    assertLocation(c, locationId);
    // Unless asked for, HighLevel lists contact fields only: pass model=opportunity (or all).
    const model = q.model ?? "contact";
    if (!["contact", "opportunity", "all"].includes(model)) throw unprocessable(["model must be one of the following values: contact, opportunity, all"]);
    return send(c, { customFields: store.customFieldsOf(locationId, model === "all" ? undefined : (model as "contact" | "opportunity")).map(renderCustomField) });
  });

  app.get("/locations/:locationId", guard({ auth: R.any, scope: "locations.readonly" }), (c) => {
    const l = service.location(pathParam(c, "locationId"));
    assertLocation(c, l.id);
    return send(c, { location: { id: l.id, companyId: l.companyId, name: l.name, address: l.address, timezone: l.timezone } });
  });

  // ---------------- OAuth ----------------

  app.post("/oauth/token", guard({ auth: R.none, version: false }), async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      oauth.counters.token++;
      oauth.counters.failed++;
      throw new OAuthError(400, "invalid_request", "Invalid request: content must be application/x-www-form-urlencoded");
    }
    const form = Object.fromEntries(new URLSearchParams(await c.req.text()));
    return c.json(oauth.token(form));
  });

  app.post("/oauth/locationToken", guard({ auth: R.Company, scope: "oauth.write" }), async (c) => {
    const type = c.req.header("content-type") ?? "";
    const form = type.toLowerCase().startsWith("application/x-www-form-urlencoded") ? Object.fromEntries(new URLSearchParams(await c.req.text())) : {};
    return send(c, oauth.locationToken(tokenOf(c), form));
  });

  app.get("/oauth/installedLocations", guard({ auth: R.Company, scope: "oauth.readonly" }), (c) => {
    const q = checkQuery(c, ["skip", "limit", "query", "isInstalled", "companyId", "appId", "versionId", "onTrial", "planId", "locationId"]);
    const missing = (["companyId", "appId"] as const).filter((k) => !q[k]).map((k) => `${k} should not be empty`);
    if (missing.length > 0) throw unprocessable(missing);
    const t = tokenOf(c);
    if (q.companyId !== t.companyId) throw new GhlError(403, "The token does not have access to this company.");
    const company = store.companies.get(t.companyId)!;
    let rows = oauth.installedLocations(company, [...store.locations.values()].filter((l) => l.companyId === company.id));
    if (q.isInstalled !== undefined) rows = rows.filter((r) => r.isInstalled === (q.isInstalled === "true"));
    if (q.locationId) rows = rows.filter((r) => r._id === q.locationId);
    if (q.query) rows = rows.filter((r) => String(r.name).toLowerCase().includes(q.query!.toLowerCase()));
    const skip = intParam(q, "skip", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(q, "limit", 20, 1, 100);
    return send(c, { locations: rows.slice(skip, skip + limit), count: rows.length, installToFutureLocations: false });
  });

  // Last: anything no route above answered (a parent app's notFound would drop the traceId).
  app.all("*", (c) => c.json({ statusCode: 404, message: `Cannot ${c.req.method} ${new URL(c.req.url).pathname.replace(/^\/highlevel/, "")}`, error: "Not Found", traceId: c.get("traceId") }, 404));

  return app;
}
