/** HighLevel opportunities (scopes `opportunities.readonly` / `opportunities.write`). */
import { z } from "zod";
import type { HighLevelTransport } from "./http.ts";
import {
  LostReasonsResponseSchema,
  OpportunityEnvelopeSchema,
  SearchResponseSchema,
  SucceededSchema,
  UpsertResponseSchema,
  type Opportunity,
} from "./schemas.ts";

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

/** Custom field input: `{id | key, field_value}`. */
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
}

/** Update body: everything optional. HighLevel rejects unknown properties (422), so send only these. */
export type UpdateOpportunityInput = Partial<Omit<CreateOpportunityInput, "contactId">>;

/** The body without undefined fields (HighLevel's whitelist validation dislikes noise). */
function only(input: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

/** Opportunity calls bound to one location. */
export function opportunitiesApi(t: HighLevelTransport) {
  const api = {
    /**
     * One search page. `cursor` comes from the previous page's `next`; `location_id` and every
     * filter are sent on every page (a pager that drops them returns other records).
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/search-opportunity
     */
    async searchPage(filters: SearchFilters = {}, cursor: SearchPage["next"] = null): Promise<SearchPage> {
      const res = await t.call({
        method: "GET",
        path: "/opportunities/search",
        query: {
          location_id: t.locationId,
          q: filters.q,
          pipeline_id: filters.pipelineId,
          pipeline_stage_id: filters.pipelineStageId,
          contact_id: filters.contactId,
          status: filters.status,
          assigned_to: filters.assignedTo,
          limit: Math.min(100, filters.limit ?? 100),
          startAfter: cursor?.startAfter,
          startAfterId: cursor?.startAfterId,
        },
        schema: SearchResponseSchema,
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
          path: `/opportunities/${encodeURIComponent(id)}`,
          schema: OpportunityEnvelopeSchema,
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
          path: "/opportunities/",
          body: { ...only(input), locationId: t.locationId },
          schema: OpportunityEnvelopeSchema,
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
          path: `/opportunities/${encodeURIComponent(id)}`,
          body: only(input),
          schema: OpportunityEnvelopeSchema,
        })
      ).opportunity;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/update-opportunity-status
     */
    async updateStatus(id: string, status: CreateOpportunityInput["status"], lostReasonId?: string): Promise<void> {
      await t.call({
        method: "PUT",
        path: `/opportunities/${encodeURIComponent(id)}/status`,
        body: only({ status, lostReasonId }),
        schema: SucceededSchema,
      });
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/delete-opportunity
     */
    async delete(id: string): Promise<void> {
      await t.call({ method: "DELETE", path: `/opportunities/${encodeURIComponent(id)}`, schema: SucceededSchema });
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/upsert-opportunity
     */
    async upsert(
      input: CreateOpportunityInput & { id?: string },
    ): Promise<{ opportunity: Opportunity; created: boolean }> {
      const res = await t.call({
        method: "POST",
        path: "/opportunities/upsert",
        body: { ...only(input), locationId: t.locationId },
        schema: UpsertResponseSchema,
      });
      return { opportunity: res.opportunity, created: res.new ?? false };
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/get-lost-reason
     */
    async lostReasons(): Promise<Array<{ id: string; name: string }>> {
      const res = await t.call({
        method: "GET",
        path: "/opportunities/lost-reason",
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
