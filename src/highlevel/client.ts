/**
 * The HighLevel client the sync engine uses: one object per location, every call through the
 * location's gate (rate permit + token), answers parsed with zod, failures thrown as
 * `HighLevelError` (category + `retryable` + `traceId`; `retryAfterMs` on `rate_limited`).
 *
 * ```ts
 * const hl = createHighLevelClient(env, config, locationId, { lane: "live" });
 * const opp = await hl.opportunities.get(id);
 * for await (const page of hl.opportunities.search({ status: "all" })) { ... }
 * ```
 */
import type { Config } from "../config.ts";
import { contactsApi, type ContactsApi } from "./contacts.ts";
import { customFieldsApi, type CustomFieldsApi } from "./custom-fields.ts";
import { HighLevelTransport, type HighLevelClientOptions } from "./http.ts";
import { locationsApi, type LocationsApi } from "./locations.ts";
import { opportunitiesApi, type OpportunitiesApi } from "./opportunities.ts";
import { pipelinesApi, type PipelinesApi } from "./pipelines.ts";
import { tasksApi, type TasksApi } from "./tasks.ts";
import { usersApi, type UsersApi } from "./users.ts";

export type { HighLevelClientOptions } from "./http.ts";
export { HighLevelError, type HighLevelErrorCategory } from "./errors.ts";

/** Every HighLevel surface the sync uses, bound to one location. */
export interface HighLevelClient {
  locationId: string;
  opportunities: OpportunitiesApi;
  pipelines: PipelinesApi;
  /** Contacts and their notes (an opportunity's notes are its contact's). */
  contacts: ContactsApi;
  users: UsersApi;
  customFields: CustomFieldsApi;
  /** A contact's tasks and tags (the automations' actions). */
  tasks: TasksApi;
  /** The location's own record (its name). */
  location: LocationsApi;
}

/** Creates the client for `locationId` (the location must have an installed connection). */
export function createHighLevelClient(
  env: Env,
  config: Config,
  locationId: string,
  options: HighLevelClientOptions = {},
): HighLevelClient {
  const transport = new HighLevelTransport(env, config, locationId, options);
  return {
    locationId,
    opportunities: opportunitiesApi(transport),
    pipelines: pipelinesApi(transport, env.CACHE),
    contacts: contactsApi(transport),
    users: usersApi(transport, env.CACHE),
    customFields: customFieldsApi(transport, env.CACHE),
    tasks: tasksApi(transport),
    location: locationsApi(transport, env.CACHE),
  };
}
