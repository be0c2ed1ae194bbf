/**
 * What every `/highlevel` route module shares: the Hono variables, the gate's settings, the
 * dependencies api.ts hands each module, and the request helpers (whitelisted query, JSON body,
 * `traceId` answers).
 */
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { GhlError, optString, unprocessable } from "../errors.ts";
import type { AccessToken, OAuthServer } from "../oauth.ts";
import type { HighLevelService } from "../service.ts";
import type { HighLevelStore } from "../store.ts";

/** Which API a request speaks: `v2` (`Version: 2021-07-28` / `2023-02-21`) or `v3` (`Version: v3`). */
export type ApiVersion = "v2" | "v3";

/**
 * The request's `traceId`, once the gate let it through its access token, its API version, and
 * whether it came through the `/v3` path prefix.
 */
export type Vars = {
  Variables: { traceId: string; token: AccessToken | null; apiVersion: ApiVersion; v3Prefix: boolean };
};
export type Ctx = Context<Vars>;

/** How a route authenticates: which token classes it takes and which scope it needs. */
export interface Guard {
  /** `Location` (sub-account token or PIT), `Company` (agency token), `any`, or `none` (token endpoint). */
  auth: "Location" | "Company" | "any" | "none";
  scope?: string;
  /** Whether the `Version` header is required (every v2 endpoint but `/oauth/token`). */
  version?: boolean;
  /** Whether the route also speaks API v3 (`Version: v3`; the routes of ghl/apps/v3/opportunities-v3.json). */
  v3?: boolean;
}

/** What a route module needs to register its routes (built once by `createHighLevelApi`). */
export interface RouteDeps {
  service: HighLevelService;
  store: HighLevelStore;
  oauth: OAuthServer;
  /** The gate in front of a route: token, rate limit, faults, `Version`, token class and scope. */
  guard: (g: Guard) => MiddlewareHandler<Vars>;
  /** 403 unless the token is for `locationId` (a Location token) or its agency (a Company token). */
  assertLocation: (c: Ctx, locationId: string) => void;
}

/** The guards of the opportunity and contact routes (Location tokens, by scope). */
export const OPP_READ: Guard = { auth: "Location", scope: "opportunities.readonly" };
export const OPP_WRITE: Guard = { auth: "Location", scope: "opportunities.write" };
/** The opportunity guards of the routes that also answer API v3. */
export const OPP_READ_V3: Guard = { ...OPP_READ, v3: true };
export const OPP_WRITE_V3: Guard = { ...OPP_WRITE, v3: true };
export const CONTACT_READ: Guard = { auth: "Location", scope: "contacts.readonly" };
export const CONTACT_WRITE: Guard = { auth: "Location", scope: "contacts.write" };

/** A `customFields` entry of an opportunity or contact body. */
export const customFieldInput = z
  .object({
    id: optString("customFields.id"),
    key: optString("customFields.key"),
    field_value: z.unknown().optional(),
  })
  .strict();

/** JSON with the request's `traceId` in the body. */
export function send(c: Ctx, body: Record<string, unknown>, status = 200): Response {
  return c.json({ ...body, traceId: c.get("traceId") }, status as 200);
}

/** The API version the gate settled for this request. */
export function versionOf(c: Ctx): ApiVersion {
  return c.get("apiVersion") ?? "v2";
}

/** The token the gate accepted (only on routes whose guard takes a token). */
export function tokenOf(c: Ctx): AccessToken {
  return c.get("token")!;
}

/** The JSON body (an empty body reads as `{}`); 400 with the parser's message when it is not JSON. */
export async function readJson(c: Ctx): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GhlError(400, err instanceof Error ? err.message : "Unexpected token in JSON");
  }
}

/** Rejects query parameters outside `allowed` (whitelist validation applies to query DTOs too). */
export function checkQuery(c: Ctx, allowed: readonly string[]): Record<string, string> {
  const query = c.req.query();
  const unknown = Object.keys(query).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw unprocessable(unknown.map((k) => `property ${k} should not exist`));
  return query;
}

/** A path parameter (always present on the routes that read it). */
export function pathParam(c: Ctx, name: string): string {
  return c.req.param(name) ?? "";
}

/** An integer query parameter within `[min, max]` (`dflt` when absent), with HighLevel's 422 messages. */
export function intParam(query: Record<string, string>, name: string, dflt: number, min: number, max: number): number {
  const raw = query[name];
  if (raw === undefined || raw === "") return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw unprocessable([`${name} must be a number conforming to the specified constraints`]);
  if (n > max) throw unprocessable([`${name} must not be greater than ${max}`]);
  if (n < min) throw unprocessable([`${name} must not be less than ${min}`]);
  return Math.floor(n);
}
