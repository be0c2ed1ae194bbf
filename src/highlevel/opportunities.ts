/** HighLevel opportunities (scopes `opportunities.readonly` / `opportunities.write`). */
import * as z from "zod";
import type { HighLevelTransport } from "./http.ts";
import { LostReasonsResponseSchema, OpportunityAnswers, SucceededSchema, type Opportunity } from "./schemas.ts";
import { hasNativeForecast, versionedPath } from "./version.ts";

/** Filters of GET /opportunities/search (besides `location_id`, which the client adds). */
export interface SearchFilters {
  q?: string;
  pipelineId?: string;
  pipelineStageId?: string;
  contactId?: string;
  status?: "open" | "won" | "lost" | "abandoned" | "all";
  assignedTo?: string;
  /** Page size, max 100. */
  limit?: number;
}

/** A page of search results and the cursor to the next one (null at the end). */
export interface SearchPage {
  opportunities: Opportunity[];
  total: number | null;
  next: { startAfter: string; startAfterId: string } | null;
}

/** Custom field input: `{id | key, field_value}` (sent as v3's `fieldValue` under v3). */
export type CustomFieldInput = { id: string; field_value: unknown } | { key: string; field_value: unknown };

/** Create body (required fields per the spec). */
export interface CreateOpportunityInput {
  pipelineId: string;
  name: string;
  status: "open" | "won" | "lost" | "abandoned";
  contactId: string;
  pipelineStageId?: string;
  monetaryValue?: number;
  assignedTo?: string;
  customFields?: CustomFieldInput[];
  /** v3 only: the forecast close date (`YYYY-MM-DD`); `null` clears it. */
  forecastExpectedCloseDate?: string | null;
  /** v3 only: the forecast win probability (0–100). */
  forecastProbability?: number;
}

/** Update body: everything optional. HighLevel rejects unknown properties (422), so send only these. */
export type UpdateOpportunityInput = Partial<Omit<CreateOpportunityInput, "contactId">>;

/** The body without undefined fields (HighLevel's whitelist validation dislikes noise). */
function only(input: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

/**
 * A create/update/upsert body in the transport's version: v3 names a custom field's value
 * `fieldValue` and clears the close date with `""`; `2021-07-28` has no forecast fields, so
 * sending one there is a programming error (the adapter only sets them under v3).
 */
function wireBody(t: HighLevelTransport, input: object): Record<string, unknown> {
  const body = only(input);
  const v3 = hasNativeForecast(t.apiVersion);
  if (!v3 && ("forecastExpectedCloseDate" in body || "forecastProbability" in body))
    throw new Error("forecast fields need HIGHLEVEL_API_VERSION=v3");
  if (v3 && body["forecastExpectedCloseDate"] === null) body["forecastExpectedCloseDate"] = "";
  const fields = body["customFields"];
  if (v3 && Array.isArray(fields))
    body["customFields"] = fields.map((f: Record<string, unknown>) => {
      const { field_value, ...rest } = f;
      return { ...rest, fieldValue: field_value };
    });
  return body;
}

/** Opportunity calls bound to one location, in the configured API version. */
export function opportunitiesApi(t: HighLevelTransport) {
  const version = t.apiVersion;
  const answers = OpportunityAnswers[version];
  const path = (p: string) => versionedPath(version, p);
  // v3 names the search filters in camelCase (`locationId`, …); 2021-07-28 in snake_case.
  const v3 = version === "v3";
  const api = {
    /**
     * One search page. `cursor` comes from the previous page's `next`; `location_id` and every
     * filter are sent on every page (a pager that drops them returns other records).
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/search-opportunity
     */
    async searchPage(filters: SearchFilters = {}, cursor: SearchPage["next"] = null): Promise<SearchPage> {
      const res = await t.call({
        method: "GET",
        path: path("/opportunities/search"),
        version,
        query: {
          [v3 ? "locationId" : "location_id"]: t.locationId,
          q: filters.q,
          [v3 ? "pipelineId" : "pipeline_id"]: filters.pipelineId,
          [v3 ? "pipelineStageId" : "pipeline_stage_id"]: filters.pipelineStageId,
          [v3 ? "contactId" : "contact_id"]: filters.contactId,
          status: filters.status,
          [v3 ? "assignedTo" : "assigned_to"]: filters.assignedTo,
          limit: Math.min(100, filters.limit ?? 100),
          startAfter: cursor?.startAfter,
          startAfterId: cursor?.startAfterId,
        },
        schema: answers.search,
      });
      const meta = res.meta;
      const hasMore =
        Boolean(meta?.startAfterId) &&
        meta?.startAfter !== undefined &&
        meta?.startAfter !== null &&
        res.opportunities.length > 0 &&
        (meta?.nextPage !== null || Boolean(meta?.nextPageUrl));
      return {
        opportunities: res.opportunities,
        total: meta?.total ?? null,
        next:
          hasMore && meta?.startAfterId
            ? { startAfter: String(meta.startAfter), startAfterId: meta.startAfterId }
            : null,
      };
    },

    /** Every page of a search, one page at a time (checkpoint `page.next` to resume). */
    async *search(filters: SearchFilters = {}, cursor: SearchPage["next"] = null): AsyncGenerator<SearchPage> {
      let next = cursor;
      const seen = new Set<string>();
      for (;;) {
        const page = await api.searchPage(filters, next);
        yield page;
        if (!page.next) return;
        const key = `${page.next.startAfter}:${page.next.startAfterId}`;
        // A cursor that does not move would loop forever: stop instead.
        if (seen.has(key)) return;
        seen.add(key);
        next = page.next;
      }
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/get-opportunity
     */
    async get(id: string): Promise<Opportunity> {
      return (
        await t.call({
          method: "GET",
          path: path(`/opportunities/${encodeURIComponent(id)}`),
          version,
          schema: answers.envelope,
        })
      ).opportunity;
    },

    /**
     * Answers 201. Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/create-opportunity
     */
    async create(input: CreateOpportunityInput): Promise<Opportunity> {
      return (
        await t.call({
          method: "POST",
          path: path("/opportunities/"),
          version,
          body: { ...wireBody(t, input), locationId: t.locationId },
          schema: answers.envelope,
        })
      ).opportunity;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/update-opportunity
     */
    async update(id: string, input: UpdateOpportunityInput): Promise<Opportunity> {
      return (
        await t.call({
          method: "PUT",
          path: path(`/opportunities/${encodeURIComponent(id)}`),
          version,
          body: wireBody(t, input),
          schema: answers.envelope,
        })
      ).opportunity;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/update-opportunity-status
     */
    async updateStatus(id: string, status: CreateOpportunityInput["status"], lostReasonId?: string): Promise<void> {
      await t.call({
        method: "PUT",
        path: path(`/opportunities/${encodeURIComponent(id)}/status`),
        version,
        body: only({ status, lostReasonId }),
        schema: SucceededSchema,
      });
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/delete-opportunity
     */
    async delete(id: string): Promise<void> {
      await t.call({
        method: "DELETE",
        path: path(`/opportunities/${encodeURIComponent(id)}`),
        version,
        schema: SucceededSchema,
      });
    },

    /**
     * Updates the opportunity `id`, or creates one. Without `id` HighLevel matches nothing when the
     * location allows duplicates, and the contact's opportunity in the pipeline when it does not —
     * which is why the engine does not create through it (docs/sync.md "HighLevel API v3").
     * The spec requires the followers triple; an empty `add` leaves followers as they are.
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/upsert-opportunity
     */
    async upsert(
      input: CreateOpportunityInput & { id?: string },
    ): Promise<{ opportunity: Opportunity; created: boolean }> {
      const res = await t.call({
        method: "POST",
        path: path("/opportunities/upsert"),
        version,
        body: {
          ...wireBody(t, input),
          locationId: t.locationId,
          followers: [],
          isRemoveAllFollowers: false,
          followersActionType: "add",
        },
        schema: answers.upsert,
      });
      return { opportunity: res.opportunity, created: res.new ?? false };
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/get-lost-reason
     */
    async lostReasons(): Promise<Array<{ id: string; name: string }>> {
      const res = await t.call({
        method: "GET",
        path: path("/opportunities/lost-reason"),
        version,
        query: { locationId: t.locationId },
        schema: LostReasonsResponseSchema,
      });
      return res.lostReasons.map((r) => ({ id: r.id, name: r.name }));
    },
  };
  return api;
}

export type OpportunitiesApi = ReturnType<typeof opportunitiesApi>;
/** Re-exported for callers that validate their own inputs. */
export const OpportunityStatusSchema = z.enum(["open", "won", "lost", "abandoned"]);
