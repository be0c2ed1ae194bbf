/** HighLevel users of a location (assignees), cached in KV (`v1:hl:users:{locationId}`). Scope `users.readonly`. */
import * as z from "zod";
import { cached, writeCache } from "../store/highlevel-cache.ts";
import { kvKeys, kvTtl } from "../store/kv-keys.ts";
import type { HighLevelTransport } from "./http.ts";
import { UserSchema, UsersResponseSchema, type User } from "./schemas.ts";

/** User calls bound to one location. */
export function usersApi(t: HighLevelTransport, kv: KVNamespace) {
  /**
   * Doc: https://marketplace.gohighlevel.com/docs/ghl/users/get-user-by-location
   */
  const fetchUsers = async (): Promise<User[]> =>
    (await t.call({ method: "GET", path: "/users/", query: { locationId: t.locationId }, schema: UsersResponseSchema }))
      .users;
  return {
    /** The location's users (cached). */
    list: (): Promise<User[]> =>
      cached(kv, kvKeys.hlUsers(t.locationId), kvTtl.hlUsers, z.array(UserSchema), fetchUsers),
    /** Reloads from HighLevel and replaces the cache. */
    async refresh(): Promise<User[]> {
      const fresh = await fetchUsers();
      await writeCache(kv, kvKeys.hlUsers(t.locationId), fresh, kvTtl.hlUsers);
      return fresh;
    },
  };
}

export type UsersApi = ReturnType<typeof usersApi>;
