/**
 * HighLevel API versions. `HIGHLEVEL_API_VERSION` picks the version of the opportunity and
 * pipeline calls; every other surface (contacts, notes, users, custom fields, OAuth) stays on
 * `2021-07-28`, the only version their official files document.
 */
import type { Config } from "../config.ts";

/** The versions this client speaks. */
export type HighLevelApiVersion = Config["HIGHLEVEL_API_VERSION"];

/** The version of every call outside opportunities and pipelines. */
export const BASE_API_VERSION: HighLevelApiVersion = "2021-07-28";

/**
 * Route prefix of v3 calls. The v3 file's description says "All APIs available via `/v3` route
 * prefix" while its paths and server carry none; the client follows the paths (docs/sync.md).
 */
export const V3_PATH_PREFIX = "";

/** The path of an opportunity or pipeline call in `version`. */
export function versionedPath(version: HighLevelApiVersion, path: string): string {
  return version === "v3" ? `${V3_PATH_PREFIX}${path}` : path;
}

/**
 * Whether opportunities carry the forecast close date and probability natively
 * (`forecastExpectedCloseDate`, `forecastProbability`): only under v3.
 */
export function hasNativeForecast(version: HighLevelApiVersion): boolean {
  return version === "v3";
}
