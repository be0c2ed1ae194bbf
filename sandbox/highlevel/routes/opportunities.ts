/**
 * `/opportunities/*` (ghl/apps/opportunities.json): lost reasons, both searches, upsert, followers,
 * status, and create / read / update / delete. Every route also speaks API v3
 * (ghl/apps/v3/opportunities-v3.json): native forecast fields, `fieldValue` custom fields,
 * camelCase search parameters, a 0-indexed advanced-search page, `success` beside `succeded`.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { enumOf, optNumber, optString, parseBody, reqString, stringArray, unprocessable } from "../errors.ts";
import { renderLostReason, renderOpportunity } from "../render.ts";
import type { Opportunity } from "../store.ts";
import { checkQuery, customFieldInput, intParam, pathParam, readJson, send, versionOf } from "./shared.ts";
import { OPP_READ_V3, OPP_WRITE_V3 } from "./shared.ts";
import type { Ctx, RouteDeps, Vars } from "./shared.ts";

const STATUS_ENUM = ["open", "won", "lost", "abandoned", "all"] as const;

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

/** A v3 custom field entry (`customFieldsInput{String,Array,Object}SchemaV3`): `fieldValue`, not `field_value`. */
const customFieldInputV3 = z
  .object({
    id: optString("customFields.id"),
    key: optString("customFields.key"),
    fieldValue: z
      .union([z.string(), z.array(z.string()), z.record(z.string(), z.unknown())], {
        error: "customFields.fieldValue must be a string, an array of strings or an object",
      })
      .optional(),
  })
  .strict()
  .transform(({ fieldValue, ...rest }) => ({ ...rest, field_value: fieldValue }));

/** `YYYY-MM-DD` from the formats the v3 file lists for `forecastExpectedCloseDate`; null when not a real date. */
export function parseCloseDate(raw: string): string | null {
  let y: string | undefined, m: string | undefined, d: string | undefined;
  const ymd = /^(\d{4})([/.-])(\d{2})\2(\d{2})$/.exec(raw);
  const mdy = /^(\d{2})([/.-])(\d{2})\2(\d{4})$/.exec(raw);
  const iso = /^(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(raw);
  if (ymd) [y, m, d] = [ymd[1], ymd[3], ymd[4]];
  else if (mdy) [m, d, y] = [mdy[1], mdy[3], mdy[4]];
  else if (iso && Number.isFinite(Date.parse(raw))) [y, m, d] = [iso[1], iso[2], iso[3]];
  if (!y || !m || !d) return null;
  const at = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  const real = at.getUTCFullYear() === Number(y) && at.getUTCMonth() === Number(m) - 1 && at.getUTCDate() === Number(d);
  return real ? `${y}-${m}-${d}` : null;
}

const CLOSE_DATE_FORMATS = "YYYY/MM/DD, MM/DD/YYYY, YYYY-MM-DD, MM-DD-YYYY, YYYY.MM.DD, MM.DD.YYYY or ISO 8601";

/** v3's forecast fields; `""` clears the close date (the sandbox's choice: the file types it as a string). */
const forecastFields = {
  forecastExpectedCloseDate: z
    .string({ error: "forecastExpectedCloseDate must be a string" })
    .transform((v, ctx) => {
      if (v === "") return null;
      const day = parseCloseDate(v);
      if (day === null) {
        ctx.addIssue({ code: "custom", message: `forecastExpectedCloseDate must be a date in ${CLOSE_DATE_FORMATS}` });
      }
      return day;
    })
    .optional(),
  forecastProbability: z
    .number({ error: "forecastProbability must be a number conforming to the specified constraints" })
    .min(0, { error: "forecastProbability must not be less than 0" })
    .max(100, { error: "forecastProbability must not be greater than 100" })
    .optional(),
};

const customFieldsV3 = z.array(customFieldInputV3, { error: "customFields must be an array" }).optional();

/** `CreateDtoV3`. */
const CreateOpportunityBodyV3 = CreateOpportunityBody.omit({ customFields: true })
  .extend({ ...forecastFields, customFields: customFieldsV3 })
  .strict();

/** `UpdateOpportunityDtoV3`. */
const UpdateOpportunityBodyV3 = UpdateOpportunityBody.omit({ customFields: true })
  .extend({ ...forecastFields, customFields: customFieldsV3 })
  .strict();

const StatusBody = z
  .object({ status: enumOf("status", STATUS_ENUM), lostReasonId: optString("lostReasonId") })
  .strict();

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

/**
 * v3's `UpsertOpportunityDto`: v2's plus the forecast fields, with the same errata (`contactId`,
 * `customFields` accepted) and v3's `fieldValue` custom fields.
 */
const UpsertBodyV3 = UpsertBody.omit({ customFields: true })
  .extend({ ...forecastFields, customFields: customFieldsV3 })
  .strict();

const FollowersBody = z.object({ followers: stringArray("followers") }).strict();
/** v3's `FollowersDTO`: "max 10". */
const FollowersBodyV3 = z
  .object({ followers: stringArray("followers").max(10, { error: "followers must contain no more than 10 elements" }) })
  .strict();

const AdvancedSearchBody = z
  .object({
    locationId: reqString("locationId"),
    query: z.string({ error: "query must be a string" }),
    limit: z
      .number({ error: "limit must be a number conforming to the specified constraints" })
      .int({ error: "limit must be an integer number" })
      .min(1, { error: "limit must not be less than 1" })
      .max(100, { error: "limit must not be greater than 100" }),
    page: z
      .number({ error: "page must be a number conforming to the specified constraints" })
      .int({ error: "page must be an integer number" })
      .min(1, { error: "page must not be less than 1" }),
    searchAfter: stringArray("searchAfter"),
    additionalDetails: z
      .object(
        {
          notes: z.boolean({ error: "additionalDetails.notes must be a boolean value" }),
          tasks: z.boolean({ error: "additionalDetails.tasks must be a boolean value" }),
          calendarEvents: z.boolean({ error: "additionalDetails.calendarEvents must be a boolean value" }),
          unReadConversations: z.boolean({ error: "additionalDetails.unReadConversations must be a boolean value" }),
        },
        { error: "additionalDetails must be an object" },
      )
      .strict(),
  })
  .strict();

/** v3's `OpportunitySearchBodyDTO`: the same fields, `page` 0-indexed. */
const AdvancedSearchBodyV3 = AdvancedSearchBody.extend({
  page: z
    .number({ error: "page must be a number conforming to the specified constraints" })
    .int({ error: "page must be an integer number" })
    .min(0, { error: "page must not be less than 0" }),
}).strict();

const SEARCH_QUERY_KEYS = [
  "q",
  "location_id",
  "pipeline_id",
  "pipeline_stage_id",
  "contact_id",
  "status",
  "assigned_to",
  "campaignId",
  "id",
  "order",
  "endDate",
  "startAfter",
  "startAfterId",
  "date",
  "country",
  "page",
  "limit",
  "getTasks",
  "getNotes",
  "getCalendarEvents",
] as const;

/** v3's `GET /opportunities/search` names the filters in camelCase (v2 name → v3 name). */
const V3_SEARCH_NAMES: Record<string, string> = {
  location_id: "locationId",
  pipeline_id: "pipelineId",
  pipeline_stage_id: "pipelineStageId",
  contact_id: "contactId",
  assigned_to: "assignedTo",
};
const SEARCH_QUERY_KEYS_V3 = SEARCH_QUERY_KEYS.map((k) => V3_SEARCH_NAMES[k] ?? k);

/** `mm-dd-yyyy` → UTC ms at the start of that day. */
function parseDay(name: string, raw: string): number {
  const m = /^(\d{2})-(\d{2})-(\d{4})$/.exec(raw);
  const ms = m ? Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2])) : NaN;
  if (!Number.isFinite(ms)) throw unprocessable([`${name} must be a date in mm-dd-yyyy format`]);
  return ms;
}

/**
 * Registers the opportunity routes. Static paths (`/opportunities/search`, `/lost-reason`) come
 * before `/opportunities/:id`, which would match them too (Hono runs the first route registered).
 */
export function registerOpportunityRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { service, store, guard, assertLocation } = d;

  /** The opportunity in the request's API version. */
  const render = (c: Ctx, opp: Opportunity, searchDrift = false) =>
    renderOpportunity(store, opp, versionOf(c) === "v3" ? { version: "v3" } : { searchDrift });
  /** v3's delete / status answer: `success`, with the deprecated `succeded` kept. */
  const done = (c: Ctx) => (versionOf(c) === "v3" ? { succeded: true, success: true } : { succeded: true });

  const opportunityFor = (c: Ctx, id: string): Opportunity => {
    const opp = service.opportunity(id);
    assertLocation(c, opp.locationId);
    return opp;
  };

  // https://highlevel.stoplight.io/docs/integrations/ (get-lost-reason)
  app.get("/opportunities/lost-reason", guard(OPP_READ_V3), (c) => {
    const q = checkQuery(c, ["locationId", "name", "deleted", "query", "skip", "limit", "getCount"]);
    if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
    assertLocation(c, q.locationId);
    const needle = (q.query ?? q.name ?? "").toLowerCase();
    if (q.deleted !== undefined && q.deleted !== "true" && q.deleted !== "false") {
      throw unprocessable(["deleted must be a boolean value"]);
    }
    const deleted = q.deleted === "true";
    const all = store
      .lostReasonsOf(q.locationId)
      .filter((r) => r.deleted === deleted && r.name.toLowerCase().includes(needle));
    const skip = intParam(q, "skip", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(q, "limit", 100, 1, 1000);
    return send(c, { lostReasons: all.slice(skip, skip + limit).map(renderLostReason), total: all.length });
  });

  app.get("/opportunities/search", guard(OPP_READ_V3), (c) => {
    const v3 = versionOf(c) === "v3";
    const raw = checkQuery(c, v3 ? SEARCH_QUERY_KEYS_V3 : SEARCH_QUERY_KEYS);
    // One filter code for both versions: v3's camelCase names read as v2's.
    const q: Record<string, string> = { ...raw };
    if (v3) {
      for (const [v2Name, v3Name] of Object.entries(V3_SEARCH_NAMES)) {
        if (raw[v3Name] !== undefined) q[v2Name] = raw[v3Name];
      }
    }
    if (!q.location_id) throw unprocessable([`${v3 ? "locationId" : "location_id"} should not be empty`]);
    assertLocation(c, q.location_id);
    const limit = intParam(q, "limit", 20, 1, 100);
    const page = intParam(q, "page", 1, 1, Number.MAX_SAFE_INTEGER);
    if (q.status !== undefined && !(STATUS_ENUM as readonly string[]).includes(q.status))
      throw unprocessable([`status must be one of the following values: ${STATUS_ENUM.join(", ")}`]);
    const order = q.order || "added_desc";
    if (order !== "added_desc" && order !== "added_asc")
      throw unprocessable(["order must be one of the following values: added_asc, added_desc"]);
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
          const hay = [
            opp.name,
            contact && store.contactName(contact),
            contact?.email,
            contact?.phone,
            contact?.companyName,
          ]
            .filter(Boolean)
            .join(" ")
            .toLowerCase();
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
      opportunities: pageItems.map((opp) => render(c, opp, true)),
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

  app.post("/opportunities/search", guard(OPP_READ_V3), async (c) => {
    const v3 = versionOf(c) === "v3";
    const body = parseBody(v3 ? AdvancedSearchBodyV3 : AdvancedSearchBody, await readJson(c));
    assertLocation(c, body.locationId);
    const needle = body.query.toLowerCase();
    const matches = store
      .opportunitiesOf(body.locationId)
      .filter((opp) => {
        if (!needle) return true;
        const contact = store.contacts.get(opp.contactId);
        return [opp.name, contact && store.contactName(contact), contact?.email]
          .filter(Boolean)
          .join(" ")
          .toLowerCase()
          .includes(needle);
      })
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id.localeCompare(a.id));
    let rest = matches;
    if (body.searchAfter.length >= 2) {
      const after = Number(body.searchAfter[0]);
      const afterId = body.searchAfter[1]!;
      rest = matches.filter((opp) => (Date.parse(opp.createdAt) - after || opp.id.localeCompare(afterId)) < 0);
    } else {
      // v3's page is 0-indexed ("Page number (0-indexed)"), v2's starts at 1.
      rest = matches.slice((v3 ? body.page : body.page - 1) * body.limit);
    }
    const opportunities = rest.slice(0, body.limit).map((opp) => render(c, opp, true));
    return send(c, { opportunities, total: matches.length, aggregations: {} });
  });

  app.post("/opportunities/upsert", guard(OPP_WRITE_V3), async (c) => {
    const body = parseBody(versionOf(c) === "v3" ? UpsertBodyV3 : UpsertBody, await readJson(c));
    assertLocation(c, body.locationId);
    const { followers, isRemoveAllFollowers, followersActionType, ...rest } = body;
    const result = service.upsertOpportunity(rest);
    if (isRemoveAllFollowers) service.removeFollowers(result.opportunity.id, [], true);
    else if (followers.length > 0) {
      if (followersActionType === "add") service.addFollowers(result.opportunity.id, followers);
      else service.removeFollowers(result.opportunity.id, followers, false);
    }
    return send(c, { opportunity: render(c, result.opportunity), new: result.created });
  });

  app.post("/opportunities/:id/followers", guard(OPP_WRITE_V3), async (c) => {
    const body = parseBody(versionOf(c) === "v3" ? FollowersBodyV3 : FollowersBody, await readJson(c));
    opportunityFor(c, pathParam(c, "id"));
    const { opportunity, added } = service.addFollowers(pathParam(c, "id"), body.followers);
    return send(c, { followers: [...opportunity.followers], followersAdded: added }, 201);
  });

  app.delete("/opportunities/:id/followers", guard(OPP_WRITE_V3), async (c) => {
    const q = checkQuery(c, ["isRemoveAllFollowers"]);
    const all = q.isRemoveAllFollowers === "true";
    const raw = await readJson(c);
    const schema = versionOf(c) === "v3" ? FollowersBodyV3 : FollowersBody;
    const noList = all && raw && typeof raw === "object" && !("followers" in raw);
    const body = noList ? { followers: [] } : parseBody(schema, raw);
    opportunityFor(c, pathParam(c, "id"));
    const { opportunity, removed } = service.removeFollowers(pathParam(c, "id"), body.followers, all);
    return send(c, { followers: [...opportunity.followers], followersRemoved: removed });
  });

  app.put("/opportunities/:id/status", guard(OPP_WRITE_V3), async (c) => {
    const body = parseBody(StatusBody, await readJson(c));
    opportunityFor(c, pathParam(c, "id"));
    service.setStatus(pathParam(c, "id"), body.status, body.lostReasonId);
    return send(c, done(c));
  });

  app.get("/opportunities/:id", guard(OPP_READ_V3), (c) =>
    send(c, { opportunity: render(c, opportunityFor(c, pathParam(c, "id"))) }),
  );

  app.put("/opportunities/:id", guard(OPP_WRITE_V3), async (c) => {
    const body = parseBody(versionOf(c) === "v3" ? UpdateOpportunityBodyV3 : UpdateOpportunityBody, await readJson(c));
    opportunityFor(c, pathParam(c, "id"));
    return send(c, { opportunity: render(c, service.updateOpportunity(pathParam(c, "id"), body)) });
  });

  app.delete("/opportunities/:id", guard(OPP_WRITE_V3), (c) => {
    opportunityFor(c, pathParam(c, "id"));
    service.deleteOpportunity(pathParam(c, "id"));
    return send(c, done(c));
  });

  // Express (HighLevel's server) routes non-strictly: the spec's `/opportunities/` and Scopes.md's `/opportunities` both work.
  for (const path of ["/opportunities/", "/opportunities"]) {
    app.post(path, guard(OPP_WRITE_V3), async (c) => {
      const schema = versionOf(c) === "v3" ? CreateOpportunityBodyV3 : CreateOpportunityBody;
      const body = parseBody(schema, await readJson(c));
      assertLocation(c, body.locationId);
      return send(c, { opportunity: render(c, service.createOpportunity(body)) }, 201);
    });
  }
}
