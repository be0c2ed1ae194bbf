/**
 * The console Worker's word to the sync Worker that a request changed cached configuration: the
 * header it sets on such a response, which the sync Worker's hand-over reads, forgets its own
 * configuration cache for, and strips. Why: the sync isolates cache an account's configuration
 * (src/store/config-cache.ts) and the console's writes happen in another Worker; the isolate the
 * request came through then sees the edit at once, as it did when one Worker served both.
 */
export const CONFIG_CHANGED_HEADER = "X-Sync-Config-Changed";
