/**
 * The location's own record (its name, for the console), cached in KV (`v1:hl:location:{id}`).
 * Scope `locations.readonly`.
 */
import * as z from "zod";
import { cached } from "../store/highlevel-cache.ts";
import { kvKeys, kvTtl } from "../store/kv-keys.ts";
import type { HighLevelTransport } from "./http.ts";

const LocationSchema = z.object({ id: z.string(), name: z.string().nullish() }).loose();
const LocationResponseSchema = z.object({ location: LocationSchema }).loose();
const CachedSchema = z.object({ id: z.string(), name: z.string().nullable() });

/** Location calls bound to one location. */
export function locationsApi(t: HighLevelTransport, kv: KVNamespace) {
  return {
    /**
     * The location's id and name (cached).
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/locations/get-location
     */
    get: (): Promise<z.infer<typeof CachedSchema>> =>
      cached(kv, kvKeys.hlLocation(t.locationId), kvTtl.hlLocation, CachedSchema, async () => {
        const { location } = await t.call({
          method: "GET",
          path: `/locations/${encodeURIComponent(t.locationId)}`,
          schema: LocationResponseSchema,
        });
        return { id: location.id, name: location.name ?? null };
      }),
  };
}

export type LocationsApi = ReturnType<typeof locationsApi>;
