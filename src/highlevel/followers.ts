/**
 * HighLevel opportunity followers and lost reasons (scope `opportunities.write` / `.readonly`):
 * followers change through their own endpoints, never through `PUT /opportunities/{id}`; lost
 * reasons are cached in KV per location like pipelines (`v1:hl:lostreasons:{locationId}`).
 */
import * as z from "zod";
import { cached, writeCache } from "../store/highlevel-cache.ts";
import { kvKeys, kvTtl } from "../store/kv-keys.ts";
import type { HighLevelTransport } from "./http.ts";
import type { OpportunitiesApi } from "./opportunities.ts";

const FollowersAnswer = z.object({ followers: z.array(z.string()).nullish() }).loose();
const ReasonList = z.array(z.object({ id: z.string(), name: z.string() }));

/** Follower calls and the cached lost reasons of one location. */
export function followersApi(t: HighLevelTransport, kv: KVNamespace, opportunities: OpportunitiesApi) {
  const path = (id: string) => `/opportunities/${encodeURIComponent(id)}/followers`;
  return {
    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/add-followers-opportunity
     */
    async add(id: string, followers: string[]): Promise<void> {
      await t.call({ method: "POST", path: path(id), body: { followers }, schema: FollowersAnswer });
    },
    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/remove-followers-opportunity
     */
    async remove(id: string, followers: string[]): Promise<void> {
      await t.call({ method: "DELETE", path: path(id), body: { followers }, schema: FollowersAnswer });
    },
    /** The location's lost reasons (`GET /opportunities/lost-reason`, cached; `fresh` reloads the cache). */
    async lostReasons(fresh = false): Promise<Array<{ id: string; name: string }>> {
      const key = kvKeys.hlLostReasons(t.locationId);
      if (!fresh) return cached(kv, key, kvTtl.hlLostReasons, ReasonList, () => opportunities.lostReasons());
      const reasons = await opportunities.lostReasons();
      await writeCache(kv, key, reasons, kvTtl.hlLostReasons);
      return reasons;
    },
  };
}
