/**
 * Every KV key this Worker writes, in one place. KV holds read-mostly caches only: it is
 * eventually consistent (a write can take ~60 s to be seen elsewhere) and has no compare-and-set,
 * so nothing that must be exact (idempotency, OAuth `state`, tokens) lives here — those are in D1
 * or a Durable Object. Keys are versioned: bump the version when a value's shape changes, and old
 * values simply expire. KV's minimum TTL is 60 s.
 *
 * | prefix                              | value                                  | TTL    | writer |
 * |-------------------------------------|----------------------------------------|--------|--------|
 * | `v1:health:probe`                   | never written (read probe)             | —      | src/store/health.ts |
 * | `v1:hl:pipelines:{locationId}`      | HighLevel pipelines with their stages  | 10 min | src/store/highlevel-cache.ts |
 * | `v1:hl:users:{locationId}`          | HighLevel users of the location        | 1 h    | src/store/highlevel-cache.ts |
 * | `v1:hl:customfields:{locationId}`   | opportunity custom field definitions   | 1 h    | src/store/highlevel-cache.ts |
 * | `v1:hl:lostreasons:{locationId}`    | the location's opportunity lost reasons | 10 min | src/store/highlevel-cache.ts |
 * | `v1:4d:pipelines:{workspace}`       | 4Degrees pipelines with their stages   | 10 min | src/store/fourdegrees-cache.ts |
 * | `v1:4d:users:{workspace}`           | 4Degrees users of the workspace        | 1 h    | src/store/fourdegrees-cache.ts |
 * | `v1:4d:fields:{workspace}:{pipeline}` | a 4Degrees pipeline's custom fields  | 1 h    | src/store/fourdegrees-cache.ts |
 *
 * `{workspace}` is the 4Degrees gate key: the workspace id, or `account:{id}` before it is known.
 */

/** KV's minimum `expirationTtl`, in seconds. */
export const KV_MIN_TTL_SECONDS = 60;

/** Key builders; the only place a KV key string is spelled. */
export const kvKeys = {
  healthProbe: () => "v1:health:probe",
  hlPipelines: (locationId: string) => `v1:hl:pipelines:${locationId}`,
  hlUsers: (locationId: string) => `v1:hl:users:${locationId}`,
  hlCustomFields: (locationId: string) => `v1:hl:customfields:${locationId}`,
  hlLocation: (locationId: string) => `v1:hl:location:${locationId}`,
  hlLostReasons: (locationId: string) => `v1:hl:lostreasons:${locationId}`,
  fdPipelines: (workspace: string) => `v1:4d:pipelines:${workspace}`,
  fdUsers: (workspace: string) => `v1:4d:users:${workspace}`,
  fdFields: (workspace: string, pipelineId: string) => `v1:4d:fields:${workspace}:${pipelineId}`,
} as const;

/** TTLs in seconds, each at least KV's minimum. */
export const kvTtl = {
  hlPipelines: 600,
  hlUsers: 3600,
  hlCustomFields: 3600,
  hlLocation: 86_400,
  hlLostReasons: 600,
  fdPipelines: 600,
  fdUsers: 3600,
  fdFields: 3600,
} as const satisfies Record<string, number>;
