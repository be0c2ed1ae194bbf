/**
 * HighLevel OAuth 2.0: the authorize URL, the code exchange, the refresh grant and agency →
 * location tokens. Plain HTTP + zod; no storage. Who may call `refreshTokens` matters: refresh
 * tokens are single-use, so only the location's Durable Object (src/gate/tokens.ts) calls it.
 * Token calls are not rate-gated: they are rare (one a day per location) and must not queue
 * behind a spent budget.
 */
import * as z from "zod";
import type { Config } from "../config.ts";
import { classifyResponse, HighLevelError } from "./errors.ts";
import {
  LocationTokenResponseSchema,
  TokenResponseSchema,
  type LocationTokenResponse,
  type TokenResponse,
} from "./schemas.ts";

/** The API version header every HighLevel v2 call sends. */
export const HIGHLEVEL_API_VERSION = "2021-07-28";

const READ_SCOPES = ["opportunities.readonly", "contacts.readonly", "users.readonly", "locations.readonly"] as const;
/**
 * `locations/customFields.write` covers the custom-field file upload that synced attachments use
 * (`POST /locations/{locationId}/customFields/upload`; src/highlevel/files.ts).
 */
const WRITE_SCOPES = ["opportunities.write", "contacts.write", "locations/customFields.write"] as const;
/** Custom field definitions (for the close-date mapping) are read through this scope. */
const CUSTOM_FIELD_SCOPE = "locations/customFields.readonly";
/**
 * Agency scope of `POST /oauth/locationToken` (ghl/oauth-docs/Scopes.md): without it an agency-wide
 * install cannot mint a single location token. It grants nothing on a sub-account's own token.
 */
const LOCATION_TOKEN_SCOPE = "oauth.write";

/** Least privilege: read-only scopes unless the Worker is configured to write to HighLevel. */
export function scopesFor(mode: Config["SYNC_MODE"]): string[] {
  const base = [...READ_SCOPES, CUSTOM_FIELD_SCOPE, LOCATION_TOKEN_SCOPE];
  return mode === "two-way" ? [...base, ...WRITE_SCOPES] : base;
}

/** The redirect URI registered with the Marketplace app. */
export function redirectUri(config: Pick<Config, "PUBLIC_URL">): string {
  return `${config.PUBLIC_URL}/oauth/callback`;
}

/**
 * The chooselocation URL (standard `marketplace.gohighlevel.com` or white-label
 * `marketplace.leadconnectorhq.com`, whichever `HIGHLEVEL_MARKETPLACE_BASE` names).
 * Doc: https://marketplace.gohighlevel.com/docs/Authorization/Authorization
 */
export function authorizeUrl(
  config: Pick<Config, "HIGHLEVEL_MARKETPLACE_BASE" | "HIGHLEVEL_CLIENT_ID" | "PUBLIC_URL" | "SYNC_MODE">,
  state: string,
): string {
  const url = new URL(`${config.HIGHLEVEL_MARKETPLACE_BASE}/v2/oauth/chooselocation`);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("redirect_uri", redirectUri(config));
  url.searchParams.set("client_id", config.HIGHLEVEL_CLIENT_ID);
  url.searchParams.set("scope", scopesFor(config.SYNC_MODE).join(" "));
  url.searchParams.set("state", state);
  return url.toString();
}

async function postForm(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; traceHeader: string | null }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json", ...headers },
      body: new URLSearchParams(form).toString(),
    });
  } catch (cause) {
    throw new HighLevelError(
      "network",
      `HighLevel OAuth endpoint unreachable: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  return {
    status: res.status,
    text: await res.text(),
    traceHeader: res.headers.get("x-trace-id") ?? res.headers.get("traceid"),
  };
}

function parseOk<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { message: string } } },
  text: string,
  what: string,
): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HighLevelError("server", `HighLevel ${what} answer was not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new HighLevelError(
      "server",
      `HighLevel ${what} answer did not match the expected shape: ${parsed.error.message.slice(0, 300)}`,
    );
  return parsed.data;
}

/**
 * A 2xx refresh answer that failed the schema but carries a new refresh token: HighLevel has already
 * spent the old one, so the caller must store `refreshToken` (and the access token when usable).
 */
export class RotatedTokenAnswerError extends HighLevelError {
  readonly refreshToken: string;
  readonly accessToken: string | null;
  readonly expiresIn: number | null;

  constructor(message: string, rotated: Pick<RotatedTokenAnswerError, "refreshToken" | "accessToken" | "expiresIn">) {
    super("server", message);
    this.name = "RotatedTokenAnswerError";
    this.refreshToken = rotated.refreshToken;
    this.accessToken = rotated.accessToken;
    this.expiresIn = rotated.expiresIn;
  }
}

/** The fields a malformed refresh answer may still carry usable (each one that fails is dropped, not fatal). */
const RotatedFieldsSchema = z
  .object({
    refresh_token: z.string().min(1),
    access_token: z.string().min(1).optional().catch(undefined),
    expires_in: z.number().positive().optional().catch(undefined),
  })
  .loose();

type OAuthConfig = Pick<
  Config,
  "HIGHLEVEL_API_BASE" | "HIGHLEVEL_CLIENT_ID" | "HIGHLEVEL_CLIENT_SECRET" | "PUBLIC_URL"
>;

/**
 * Exchanges an authorization code for tokens (form-urlencoded).
 * Doc: https://marketplace.gohighlevel.com/docs/ghl/oauth/get-access-token
 */
export async function exchangeCode(
  config: OAuthConfig,
  code: string,
  userType: "Location" | "Company" = "Location",
): Promise<TokenResponse> {
  const { status, text, traceHeader } = await postForm(`${config.HIGHLEVEL_API_BASE}/oauth/token`, {
    client_id: config.HIGHLEVEL_CLIENT_ID,
    client_secret: config.HIGHLEVEL_CLIENT_SECRET,
    grant_type: "authorization_code",
    code,
    user_type: userType,
    redirect_uri: redirectUri(config),
  });
  if (status < 200 || status >= 300) throw classifyResponse(status, text, traceHeader);
  return parseOk(TokenResponseSchema, text, "token");
}

/**
 * Exchanges the code of an install, whichever kind it was. The callback does not say whether the
 * user approved one sub-account or the whole agency, but the token endpoint wants `user_type`:
 * ask for a Location token first and, when HighLevel answers that `user_type` does not fit this
 * code (an agency-wide approval), for a Company token. Assumes, as the sandbox models it, that the
 * mismatched ask is refused before the single-use code is spent.
 */
export async function exchangeInstallCode(config: OAuthConfig, code: string): Promise<TokenResponse> {
  try {
    return await exchangeCode(config, code, "Location");
  } catch (err) {
    if (err instanceof HighLevelError && err.category === "validation" && /user_?type/i.test(err.upstreamMessage))
      return exchangeCode(config, code, "Company");
    throw err;
  }
}

/**
 * Spends a (single-use) refresh token for a new pair. The caller must persist the returned
 * refresh token before using the access token.
 * Doc: https://marketplace.gohighlevel.com/docs/ghl/oauth/get-access-token
 */
export async function refreshTokens(
  config: OAuthConfig,
  refreshToken: string,
  userType: "Location" | "Company",
): Promise<TokenResponse> {
  const { status, text, traceHeader } = await postForm(`${config.HIGHLEVEL_API_BASE}/oauth/token`, {
    client_id: config.HIGHLEVEL_CLIENT_ID,
    client_secret: config.HIGHLEVEL_CLIENT_SECRET,
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    user_type: userType,
    redirect_uri: redirectUri(config),
  });
  if (status < 200 || status >= 300) throw classifyResponse(status, text, traceHeader);
  try {
    return parseOk(TokenResponseSchema, text, "token");
  } catch (err) {
    // The old refresh token is spent once HighLevel answered 2xx: salvage the new one if it is there.
    const rotated = RotatedFieldsSchema.safeParse(safeJson(text));
    if (!rotated.success || !(err instanceof HighLevelError)) throw err;
    const { refresh_token: refreshToken, access_token: accessToken, expires_in: expiresIn } = rotated.data;
    throw new RotatedTokenAnswerError(err.message, {
      refreshToken,
      accessToken: accessToken ?? null,
      expiresIn: expiresIn ?? null,
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Mints a location token from an agency (Company) token. The answer has no refresh token: a new
 * one is minted from the agency token when it expires.
 * Doc: https://marketplace.gohighlevel.com/docs/ghl/oauth/get-location-access-token
 */
export async function mintLocationToken(
  config: OAuthConfig,
  agencyAccessToken: string,
  companyId: string,
  locationId: string,
): Promise<LocationTokenResponse> {
  const { status, text, traceHeader } = await postForm(
    `${config.HIGHLEVEL_API_BASE}/oauth/locationToken`,
    { companyId, locationId },
    { Authorization: `Bearer ${agencyAccessToken}`, Version: HIGHLEVEL_API_VERSION },
  );
  if (status < 200 || status >= 300) throw classifyResponse(status, text, traceHeader);
  return parseOk(LocationTokenResponseSchema, text, "location token");
}
