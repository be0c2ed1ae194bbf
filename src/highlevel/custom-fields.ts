/**
 * Opportunity custom field definitions of a location, cached in KV
 * (`v1:hl:customfields:{locationId}`). Needed to map a 4Degrees close date onto a custom field
 * (v2 opportunities have no close date). Scope `locations/customFields.readonly`.
 */
import * as z from "zod";
import { cached, writeCache } from "../store/highlevel-cache.ts";
import { kvKeys, kvTtl } from "../store/kv-keys.ts";
import type { HighLevelTransport } from "./http.ts";
import { CustomFieldDefinitionSchema, CustomFieldsResponseSchema, type CustomFieldDefinition } from "./schemas.ts";

/** Custom field calls bound to one location. */
export function customFieldsApi(t: HighLevelTransport, kv: KVNamespace) {
  /**
   * Doc: https://marketplace.gohighlevel.com/docs/ghl/locations/get-custom-fields
   */
  const fetchFields = async (): Promise<CustomFieldDefinition[]> =>
    (
      await t.call({
        method: "GET",
        path: `/locations/${encodeURIComponent(t.locationId)}/customFields`,
        query: { model: "opportunity" },
        schema: CustomFieldsResponseSchema,
      })
    ).customFields;
  return {
    /** Opportunity custom fields (cached). */
    list: (): Promise<CustomFieldDefinition[]> =>
      cached(
        kv,
        kvKeys.hlCustomFields(t.locationId),
        kvTtl.hlCustomFields,
        z.array(CustomFieldDefinitionSchema),
        fetchFields,
      ),
    /** Reloads from HighLevel and replaces the cache. */
    async refresh(): Promise<CustomFieldDefinition[]> {
      const fresh = await fetchFields();
      await writeCache(kv, kvKeys.hlCustomFields(t.locationId), fresh, kvTtl.hlCustomFields);
      return fresh;
    },
  };
}

export type CustomFieldsApi = ReturnType<typeof customFieldsApi>;
