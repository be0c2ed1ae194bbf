/**
 * HighLevel's OAuth 2.0 as documented (ghl/oauth-docs/Authorization.md, ghl/apps/oauth.json and the
 * reference page): authorization codes from the choose-location page, `POST /oauth/token`
 * (form-urlencoded; authorization_code | refresh_token; user_type Location | Company) issuing
 * expiring access tokens and **single-use rotating refresh tokens**, `POST /oauth/locationToken`
 * (agency token → location token), plus Location Private Integration Tokens (`pit-…`).
 *
 * Error texts are those of the OAuth server HighLevel runs (node-oauth2-server; the v3 spec quotes
 * them: "Invalid grant: refresh token is invalid", "Location is not active"), wrapped NestJS-style
 * `{statusCode, message, error}` — or RFC 6749 `{error, error_description}` when the error style is
 * set to `oauth2` (the wrapper is not pinned down by a primary source).
 */
import type { Clock } from "../core/clock.ts";
import { GhlError, INVALID_TOKEN } from "./errors.ts";
import { ALL_SCOPES, DEFAULT_OAUTH_SETTINGS, OAuthError } from "./oauth-model.ts";
import type { AccessToken, AppConfig, AuthCode, Installation, OAuthSettings } from "./oauth-model.ts";
import type { RefreshToken, TokenCounters, UserType } from "./oauth-model.ts";
import type { Company, HighLevelStore, IdSource, Location } from "./store.ts";

// The vocabulary lives in oauth-model.ts; importers of the server get it here too.
export { ALL_SCOPES, DEFAULT_OAUTH_SETTINGS, OAuthError } from "./oauth-model.ts";
export type { AccessToken, AppConfig, Installation, OAuthSettings, TokenCounters, UserType } from "./oauth-model.ts";

function base64url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The OAuth side of HighLevel: codes, tokens, PITs and installations (see the module comment). */
export class OAuthServer {
  readonly app: AppConfig;
  settings: OAuthSettings;
  readonly counters: TokenCounters = { token: 0, authorizationCode: 0, refreshToken: 0, failed: 0, locationToken: 0 };
  readonly accessTokens = new Map<string, AccessToken>();
  readonly installations = new Map<string, Installation>();
  #refresh = new Map<string, RefreshToken>();
  #codes = new Map<string, AuthCode>();
  #store: HighLevelStore;
  #clock: Clock;
  #ids: IdSource;
  #onInstall: (i: Installation, userId: string) => void;

  constructor(options: {
    app: AppConfig;
    settings?: Partial<OAuthSettings>;
    store: HighLevelStore;
    clock: Clock;
    ids: IdSource;
    onInstall: (i: Installation, userId: string) => void;
  }) {
    this.app = options.app;
    this.settings = { ...DEFAULT_OAUTH_SETTINGS, ...options.settings };
    this.#store = options.store;
    this.#clock = options.clock;
    this.#ids = options.ids;
    this.#onInstall = options.onInstall;
  }

  setIds(ids: IdSource): void {
    this.#ids = ids;
  }

  reset(): void {
    this.accessTokens.clear();
    this.installations.clear();
    this.#refresh.clear();
    this.#codes.clear();
    this.resetCounters();
  }

  resetCounters(): void {
    for (const k of Object.keys(this.counters) as Array<keyof TokenCounters>) this.counters[k] = 0;
  }

  /** Whether `uri` is a redirect URI this app registered. */
  redirectAllowed(uri: string): boolean {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return false;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return false;
    return this.app.redirectUris === null || this.app.redirectUris.includes(uri);
  }

  #jwtLike(payload: Record<string, unknown>): string {
    return `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify(payload))}.${base64url(this.#ids.hex(43))}`;
  }

  #issueAccess(grant: {
    userType: UserType;
    companyId: string;
    locationId: string | null;
    scopes: string[];
    userId: string;
    approvedLocations: string[];
  }): AccessToken {
    const now = this.#clock.now();
    const exp = now + this.settings.accessTokenLifetimeSec * 1000;
    const token = this.#jwtLike({
      authClass: grant.userType,
      authClassId: grant.userType === "Location" ? grant.locationId : grant.companyId,
      source: "INTEGRATION",
      sourceId: this.app.clientId,
      channel: "OAUTH",
      primaryAuthClassId: grant.userType === "Location" ? grant.locationId : grant.companyId,
      oauthMeta: {
        scopes: grant.scopes,
        client: this.app.appId,
        versionId: this.app.versionId,
        clientKey: this.app.clientId,
      },
      iat: Math.floor(now / 1000),
      exp: Math.floor(exp / 1000),
      jti: this.#ids.id(),
    });
    const record: AccessToken = {
      token,
      kind: "oauth",
      ...grant,
      appKey: this.app.clientId,
      expiresAt: exp,
      revoked: false,
    };
    this.accessTokens.set(token, record);
    return record;
  }

  #issueRefresh(grant: {
    userType: UserType;
    companyId: string;
    locationId: string | null;
    scopes: string[];
    userId: string;
    approvedLocations: string[];
  }): RefreshToken {
    const now = this.#clock.now();
    const token = this.#jwtLike({
      authClass: grant.userType,
      authClassId: grant.userType === "Location" ? grant.locationId : grant.companyId,
      source: "INTEGRATION",
      sourceId: this.app.clientId,
      channel: "OAUTH",
      iat: Math.floor(now / 1000),
      exp: Math.floor((now + this.settings.refreshTokenLifetimeSec * 1000) / 1000),
      jti: this.#ids.id(),
    });
    const record: RefreshToken = {
      token,
      ...grant,
      expiresAt: now + this.settings.refreshTokenLifetimeSec * 1000,
      used: false,
      revoked: false,
    };
    this.#refresh.set(token, record);
    return record;
  }

  #tokenResponse(access: AccessToken, refresh: RefreshToken | null): Record<string, unknown> {
    return {
      access_token: access.token,
      token_type: "Bearer",
      expires_in: this.settings.accessTokenLifetimeSec,
      ...(refresh ? { refresh_token: refresh.token } : {}),
      scope: access.scopes.join(" "),
      userType: access.userType,
      ...(access.locationId ? { locationId: access.locationId } : {}),
      companyId: access.companyId,
      ...(access.userType === "Company" ? { approvedLocations: [...access.approvedLocations] } : {}),
      userId: access.userId,
      isBulkInstallation: access.userType === "Company" && access.approvedLocations.length > 1,
    };
  }

  // ---------- authorization (choose-location page) ----------

  /**
   * The user approved the app for a location (or, with `locationId: null`, for the whole agency):
   * records the installation (INSTALL event) and returns a single-use, short-lived code.
   */
  authorize(input: {
    companyId: string;
    locationId: string | null;
    scopes: string[];
    redirectUri: string | null;
    userId?: string;
  }): string {
    const company = this.#store.companies.get(input.companyId);
    if (!company) throw new GhlError(400, "Company not found");
    const approved = input.locationId
      ? [input.locationId]
      : [...this.#store.locations.values()].filter((l) => l.companyId === company.id).map((l) => l.id);
    const userId =
      input.userId ??
      [...this.#store.users.values()].find((u) => u.companyId === company.id && u.role === "admin")?.id ??
      this.#ids.id();
    const code = this.#ids.hex(40);
    this.#codes.set(code, {
      code,
      redirectUri: input.redirectUri,
      companyId: company.id,
      locationId: input.locationId,
      approvedLocations: approved,
      scopes: input.scopes,
      userId,
      expiresAt: this.#clock.now() + this.settings.codeLifetimeSec * 1000,
      used: false,
    });
    const key = input.locationId ?? `company:${company.id}`;
    const installation: Installation = {
      companyId: company.id,
      locationId: input.locationId,
      installedAt: new Date(this.#clock.now()).toISOString(),
      scopes: input.scopes,
    };
    const fresh = !this.installations.has(key);
    this.installations.set(key, installation);
    if (fresh) this.#onInstall(installation, userId);
    return code;
  }

  // ---------- POST /oauth/token ----------

  /** One `POST /oauth/token` with its form fields; answers the token JSON or throws an OAuthError. */
  token(form: Record<string, string>): Record<string, unknown> {
    this.counters.token++;
    try {
      return this.#token(form);
    } catch (err) {
      this.counters.failed++;
      throw err;
    }
  }

  #token(form: Record<string, string>): Record<string, unknown> {
    const { client_id: clientId, client_secret: clientSecret, grant_type: grantType } = form;
    if (!grantType) throw new OAuthError(400, "invalid_request", "Missing parameter: grant_type");
    if (!["authorization_code", "refresh_token", "client_credentials"].includes(grantType))
      throw new OAuthError(400, "unsupported_grant_type", "Unsupported grant type: grant_type is invalid");
    if (!clientId || !clientSecret)
      throw new OAuthError(400, "invalid_client", "Invalid client: cannot retrieve client credentials");
    if (clientId !== this.app.clientId || clientSecret !== this.app.clientSecret)
      throw new OAuthError(401, "invalid_client", "Invalid client: client is invalid");
    const userType = form.user_type ?? "Location";
    if (userType !== "Location" && userType !== "Company")
      throw new OAuthError(400, "invalid_request", "Invalid parameter: user_type");
    if (grantType === "authorization_code") {
      this.counters.authorizationCode++;
      return this.#exchangeCode(form, userType);
    }
    if (grantType === "refresh_token") {
      this.counters.refreshToken++;
      return this.#refreshGrant(form, userType);
    }
    throw new OAuthError(400, "unauthorized_client", "Unauthorized client: grant_type is invalid");
  }

  #exchangeCode(form: Record<string, string>, userType: UserType): Record<string, unknown> {
    if (!form.code) throw new OAuthError(400, "invalid_request", "Missing parameter: code");
    const code = this.#codes.get(form.code);
    if (!code || code.used) throw new OAuthError(400, "invalid_grant", "Invalid grant: authorization code is invalid");
    if (code.expiresAt <= this.#clock.now())
      throw new OAuthError(400, "invalid_grant", "Invalid grant: authorization code has expired");
    if (form.redirect_uri !== undefined && code.redirectUri !== null && form.redirect_uri !== code.redirectUri)
      throw new OAuthError(400, "invalid_request", "Invalid request: redirect_uri is invalid");
    if (userType === "Location" && code.locationId === null)
      throw new OAuthError(400, "invalid_request", "Invalid parameter: user_type");
    code.used = true;
    const grant = {
      userType,
      companyId: code.companyId,
      locationId: userType === "Location" ? code.locationId : null,
      scopes: code.scopes,
      userId: code.userId,
      approvedLocations: code.approvedLocations,
    };
    return this.#tokenResponse(this.#issueAccess(grant), this.#issueRefresh(grant));
  }

  #refreshGrant(form: Record<string, string>, userType: UserType): Record<string, unknown> {
    if (!form.refresh_token) throw new OAuthError(400, "invalid_request", "Missing parameter: refresh_token");
    const rt = this.#refresh.get(form.refresh_token);
    if (!rt || rt.used || rt.revoked)
      throw new OAuthError(400, "invalid_grant", "Invalid grant: refresh token is invalid");
    if (rt.expiresAt <= this.#clock.now())
      throw new OAuthError(400, "invalid_grant", "Invalid grant: refresh token has expired");
    if (form.user_type !== undefined && userType !== rt.userType)
      throw new OAuthError(400, "invalid_request", "Invalid parameter: user_type");
    // A paused / cancelled sub-account: the same refresh token works again once it is active.
    if (rt.locationId) {
      const location = this.#store.locations.get(rt.locationId);
      if (!location || !location.active) throw new OAuthError(400, "invalid_request", "Location is not active");
    }
    rt.used = true;
    const grant = {
      userType: rt.userType,
      companyId: rt.companyId,
      locationId: rt.locationId,
      scopes: rt.scopes,
      userId: rt.userId,
      approvedLocations: rt.approvedLocations,
    };
    return this.#tokenResponse(this.#issueAccess(grant), this.#issueRefresh(grant));
  }

  // ---------- POST /oauth/locationToken ----------

  /** Agency (Company) token → a Location token for one of its approved locations. */
  locationToken(agency: AccessToken, form: Record<string, string>): Record<string, unknown> {
    this.counters.locationToken++;
    const problems: string[] = [];
    if (!form.companyId) problems.push("companyId should not be empty");
    if (!form.locationId) problems.push("locationId should not be empty");
    if (problems.length > 0) throw new GhlError(422, problems);
    if (form.companyId !== agency.companyId) throw new GhlError(400, "Company id does not match the token");
    const location = this.#store.locations.get(form.locationId!);
    if (!location || location.companyId !== agency.companyId) throw new GhlError(400, "Location not found");
    if (!agency.approvedLocations.includes(location.id))
      throw new GhlError(400, "This app is not installed on the location");
    if (!location.active) throw new GhlError(400, "Location is not active");
    const grant = {
      userType: "Location" as const,
      companyId: agency.companyId,
      locationId: location.id,
      scopes: agency.scopes,
      userId: agency.userId,
      approvedLocations: [location.id],
    };
    const access = this.#issueAccess(grant);
    const refresh = this.#issueRefresh(grant);
    return {
      access_token: access.token,
      token_type: "Bearer",
      expires_in: this.settings.accessTokenLifetimeSec,
      refresh_token: refresh.token,
      scope: access.scopes.join(" "),
      userType: "Location",
      companyId: access.companyId,
      locationId: location.id,
      userId: access.userId,
      appId: this.app.appId,
      versionId: this.app.versionId,
    };
  }

  // ---------- API authentication ----------

  /** The token behind an `Authorization: Bearer …` header, or 401 "Invalid token". */
  authenticate(header: string | undefined): AccessToken {
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const record = m ? this.accessTokens.get(m[1]!) : undefined;
    if (!record || record.revoked || (record.expiresAt !== null && record.expiresAt <= this.#clock.now()))
      throw new GhlError(401, INVALID_TOKEN);
    return record;
  }

  // ---------- helpers for the control API and in-process tests ----------

  /** Creates a Location Private Integration Token (`pit-<uuid>`), as Settings → Private Integrations does. */
  createPit(input: { locationId: string; scopes?: string[]; name?: string; token?: string }): AccessToken {
    const location = this.#store.locations.get(input.locationId);
    if (!location) throw new GhlError(400, "Location not found");
    const token = input.token ?? `pit-${this.#ids.uuid()}`;
    if (!/^pit-[0-9a-f-]{36}$/.test(token))
      throw new GhlError(400, "A private integration token looks like pit-<uuid>");
    const record: AccessToken = {
      token,
      kind: "pit",
      userType: "Location",
      companyId: location.companyId,
      locationId: location.id,
      scopes: input.scopes ?? [...ALL_SCOPES].filter((s) => !s.startsWith("oauth.")),
      appKey: `pit:${token.slice(4, 12)}`,
      userId: "",
      expiresAt: null,
      revoked: false,
      approvedLocations: [location.id],
      name: input.name ?? "Sandbox private integration",
    };
    this.accessTokens.set(token, record);
    return record;
  }

  /**
   * A ready connection for tests: approve + exchange in one step, without counting a token call.
   * Returns the token JSON the token endpoint would have answered.
   */
  connect(input: {
    locationId?: string;
    companyId?: string;
    userType?: UserType;
    scopes?: string[];
  }): Record<string, unknown> {
    const location = input.locationId ? this.#store.locations.get(input.locationId) : undefined;
    if (input.locationId && !location) throw new GhlError(400, "Location not found");
    const companyId = location?.companyId ?? input.companyId;
    if (!companyId || !this.#store.companies.has(companyId)) throw new GhlError(400, "Company not found");
    const userType = input.userType ?? (location ? "Location" : "Company");
    if (userType === "Location" && !location) throw new GhlError(400, "A Location connection needs a locationId");
    const code = this.authorize({
      companyId,
      locationId: userType === "Location" ? location!.id : (location?.id ?? null),
      scopes: input.scopes ?? [...ALL_SCOPES],
      redirectUri: null,
    });
    const saved = { ...this.counters };
    try {
      return this.#exchangeCode({ code }, userType);
    } finally {
      Object.assign(this.counters, saved);
    }
  }

  /** Makes every access token of a location (or all) expire now. */
  expireAccessTokens(locationId?: string): number {
    let n = 0;
    for (const t of this.accessTokens.values()) {
      if (t.kind === "oauth" && (!locationId || t.locationId === locationId)) {
        t.expiresAt = this.#clock.now();
        n++;
      }
    }
    return n;
  }

  /** Revokes one token (access, refresh or PIT). */
  revoke(token: string): boolean {
    const a = this.accessTokens.get(token);
    if (a) a.revoked = true;
    const r = this.#refresh.get(token);
    if (r) r.revoked = true;
    return Boolean(a || r);
  }

  /** Uninstalls the app from a location (or an agency): revokes its tokens; returns the installation. */
  uninstall(target: { locationId?: string; companyId?: string }): Installation | null {
    const key = target.locationId ?? `company:${target.companyId}`;
    const installation = this.installations.get(key) ?? null;
    this.installations.delete(key);
    for (const t of this.accessTokens.values())
      if (
        t.kind === "oauth" &&
        (target.locationId ? t.locationId === target.locationId : t.companyId === target.companyId)
      )
        t.revoked = true;
    for (const r of this.#refresh.values())
      if (target.locationId ? r.locationId === target.locationId : r.companyId === target.companyId) r.revoked = true;
    return installation;
  }

  /** `GET /oauth/installedLocations` rows for an agency. */
  installedLocations(company: Company, locations: Location[]): Array<Record<string, unknown>> {
    const agencyWide = this.installations.get(`company:${company.id}`);
    return locations.map((l) => {
      const inst = this.installations.get(l.id) ?? agencyWide;
      return {
        _id: l.id,
        name: l.name,
        address: l.address,
        isInstalled: Boolean(inst),
        ...(inst ? { installedAt: inst.installedAt, versionId: this.app.versionId } : {}),
      };
    });
  }
}
