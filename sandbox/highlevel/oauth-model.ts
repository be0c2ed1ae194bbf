/**
 * The HighLevel sandbox's OAuth vocabulary: the app, the settings, the scopes, the tokens, codes and
 * installations the OAuth server (oauth.ts) keeps, and its error.
 */
import { GhlError } from "./errors.ts";

/** The token classes: a sub-account (Location) or an agency (Company). */
export type UserType = "Location" | "Company";

/** The Marketplace app the sandbox plays the other side of (client id / secret from settings). */
export interface AppConfig {
  clientId: string;
  clientSecret: string;
  /** The app id HighLevel puts in webhooks (`appId`) and tokens. */
  appId: string;
  versionId: string;
  /** Registered redirect URIs; `null` accepts any absolute http(s) URL. */
  redirectUris: string[] | null;
}

/** The token endpoints' lifetimes and error style (the control API changes them). */
export interface OAuthSettings {
  /** Access token lifetime (HighLevel: 86399 s). */
  accessTokenLifetimeSec: number;
  /** Refresh token lifetime (HighLevel: a year, renewed on each use). */
  refreshTokenLifetimeSec: number;
  /** Authorization code lifetime (unconfirmed; short). */
  codeLifetimeSec: number;
  /** Error body style of the token endpoints. */
  errorStyle: "nest" | "oauth2";
}

export const DEFAULT_OAUTH_SETTINGS: OAuthSettings = {
  accessTokenLifetimeSec: 86_399,
  refreshTokenLifetimeSec: 365 * 86_400,
  codeLifetimeSec: 600,
  errorStyle: "nest",
};

/** Scopes a PIT or an authorization gets when none are asked for: every endpoint the sandbox serves. */
export const ALL_SCOPES = [
  "opportunities.readonly",
  "opportunities.write",
  "contacts.readonly",
  "contacts.write",
  "users.readonly",
  "locations.readonly",
  "locations/customFields.readonly",
  "locations/customFields.write",
  "medias.readonly",
  "medias.write",
  "oauth.readonly",
  "oauth.write",
] as const;

/** An access token (OAuth or PIT) the API accepts. */
export interface AccessToken {
  token: string;
  kind: "oauth" | "pit";
  userType: UserType;
  companyId: string;
  /** Set for Location tokens and PITs. */
  locationId: string | null;
  scopes: string[];
  /** Rate-limit identity of the caller: the app's client id, or the PIT's own id. */
  appKey: string;
  userId: string;
  /** Sandbox ms; `null` = never (PITs). */
  expiresAt: number | null;
  revoked: boolean;
  approvedLocations: string[];
  /** PITs: a display name. */
  name?: string;
}

/** A refresh token: single use, rotated on every refresh. */
export interface RefreshToken {
  token: string;
  userType: UserType;
  companyId: string;
  locationId: string | null;
  scopes: string[];
  userId: string;
  approvedLocations: string[];
  expiresAt: number;
  used: boolean;
  revoked: boolean;
}

/** An authorization code from the choose-location page (single use). */
export interface AuthCode {
  code: string;
  redirectUri: string | null;
  companyId: string;
  /** `null` for an agency-level (Company) install. */
  locationId: string | null;
  approvedLocations: string[];
  scopes: string[];
  userId: string;
  expiresAt: number;
  used: boolean;
}

/** An app installation (for `GET /oauth/installedLocations` and UNINSTALL). */
export interface Installation {
  companyId: string;
  locationId: string | null;
  installedAt: string;
  scopes: string[];
}

/** How many calls each token endpoint got (tests assert "exactly one refresh"). */
export interface TokenCounters {
  /** Every `POST /oauth/token` call. */
  token: number;
  authorizationCode: number;
  refreshToken: number;
  /** Token endpoint calls answered with an error. */
  failed: number;
  locationToken: number;
}

/** A token endpoint failure, rendered in the configured style. */
export class OAuthError extends GhlError {
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(status, message);
    this.code = code;
  }
}
