/**
 * The token keeper inside a HighLevel location's (or agency's) `AccountGate` Durable Object.
 *
 * Refresh tokens are single-use and rotate: two concurrent refreshes burn the connection for
 * good. So every refresh for a connection happens here, one in flight at a time (concurrent
 * callers await the same promise), and the new pair is written to the DO's SQLite storage (and
 * then D1) before anyone gets the new access token. The DO's output gate also holds every RPC
 * answer until that storage write is durable.
 *
 * Failures: "Invalid grant" → `needs_reconnect` (no retry loop: later calls fail fast until a
 * reinstall); "Location is not active" → `backoff` with a growing delay, same refresh token kept;
 * `invalid_client` (the app's own secret is wrong, the grant is fine) → the refresh token is kept,
 * the deployment-wide `highlevel_client_rejected` condition opens (one alert) and closes on the
 * first refresh that works; network/5xx → nothing changes, the caller retries. A 2xx answer that
 * fails the schema but carries a new refresh token has that token stored (the old one is spent).
 *
 * Results cross the RPC boundary as plain objects (`TokenResult`), because custom error classes
 * do not survive Workers RPC; src/highlevel/http.ts turns a failure back into a `HighLevelError`.
 */
import * as z from "zod";
import type { Config } from "../config.ts";
import { decryptSecret, encryptSecret } from "../lib/crypto.ts";
import type { Logger } from "../lib/log.ts";
import { HighLevelError, isInvalidClient, type HighLevelErrorCategory } from "../highlevel/errors.ts";
import { mintLocationToken, refreshTokens, RotatedTokenAnswerError } from "../highlevel/oauth.ts";
import { clearAppCondition, HIGHLEVEL_CLIENT_REJECTED, raiseAppCondition } from "../store/app-status.ts";
import {
  companyConnectionId,
  getConnection,
  saveConnectionTokens,
  setConnectionStatus,
  type Connection,
} from "../store/connections.ts";

/** Refresh on use when the access token has less than this left. */
export const REFRESH_MARGIN_MS = 10 * 60 * 1000;
/** First delay after "Location is not active"; doubles per failure up to `MAX_BACKOFF_MS`. */
export const INACTIVE_BACKOFF_MS = 5 * 60 * 1000;
export const MAX_BACKOFF_MS = 6 * 60 * 60 * 1000;
/** Retry hint while HighLevel refuses the client credentials: jobs come back soon after the secret is fixed. */
export const CLIENT_REJECTED_RETRY_MS = 60 * 1000;

/** What a caller gets from the keeper. Never logged. */
export type TokenResult =
  | { ok: true; accessToken: string; expiresAt: number; scopes: string[]; version: number }
  | { ok: false; category: HighLevelErrorCategory; message: string; retryAfterMs: number | null };

/** Tokens as plain text, handed over once by the OAuth callback (or an INSTALL event). */
export interface InstallGrant {
  connectionId: string;
  kind: "location" | "company";
  locationId: string | null;
  companyId: string | null;
  tokenSource: "refresh" | "agency";
  accessToken: string;
  refreshToken: string | null;
  expiresInSeconds: number;
  scopes: string[];
  userId: string | null;
  appId: string | null;
}

/** Mints an agency token for a company (the company's own gate, reached over RPC). */
export type AgencyTokenSource = (companyConnectionId: string) => Promise<TokenResult>;

const StateSchema = z.object({
  kind: z.enum(["location", "company"]),
  locationId: z.string().nullable(),
  companyId: z.string().nullable(),
  tokenSource: z.enum(["refresh", "agency"]),
  scopes: z.array(z.string()),
  accessEnc: z.string(),
  refreshEnc: z.string().nullable(),
  keyId: z.string(),
  expiresAt: z.number(),
  version: z.number(),
  status: z.enum(["active", "needs_reconnect", "backoff", "uninstalled"]),
  lastError: z.string().nullable(),
  retryAt: z.number().nullable(),
  failures: z.number(),
  userId: z.string().nullable(),
  appId: z.string().nullable(),
  /** D1 is behind the DO (a D1 write failed); re-sync on next use. */
  d1Dirty: z.boolean(),
});
type State = z.infer<typeof StateSchema>;

/** The additional data that binds a token ciphertext to its connection row. */
export const tokenAad = (connectionId: string, which: "access" | "refresh") => `connection:${connectionId}:${which}`;
const aad = tokenAad;

/** Storage and collaborators the keeper needs (the DO provides them; tests may fake the clock). */
export interface TokenKeeperDeps {
  sql: SqlStorage;
  db: D1Database;
  config: Config;
  log: Logger;
  agencyToken: AgencyTokenSource;
  now?: () => number;
}

export class TokenKeeper {
  private readonly deps: TokenKeeperDeps;
  private readonly inflight = new Map<string, Promise<TokenResult>>();

  constructor(deps: TokenKeeperDeps) {
    this.deps = deps;
    deps.sql.exec("CREATE TABLE IF NOT EXISTS tokens (connection_id TEXT PRIMARY KEY, state TEXT NOT NULL)");
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private read(connectionId: string): State | null {
    const row = this.deps.sql
      .exec<{ state: string }>("SELECT state FROM tokens WHERE connection_id = ?", connectionId)
      .toArray()[0];
    if (!row) return null;
    const parsed = StateSchema.safeParse(JSON.parse(row.state));
    return parsed.success ? parsed.data : null;
  }

  private write(connectionId: string, state: State): void {
    this.deps.sql.exec(
      "INSERT INTO tokens (connection_id, state) VALUES (?, ?) ON CONFLICT (connection_id) DO UPDATE SET state = excluded.state",
      connectionId,
      JSON.stringify(state),
    );
  }

  /** The DO's copy, else the D1 row (after a DO storage loss or for rows written before the DO). */
  private async load(connectionId: string): Promise<State | null> {
    const local = this.read(connectionId);
    if (local) return local;
    const row = await getConnection(this.deps.db, connectionId);
    if (!row) return null;
    const state = fromRow(row);
    if (state) this.write(connectionId, state);
    return state;
  }

  private async syncD1(connectionId: string, state: State): Promise<void> {
    try {
      await saveConnectionTokens(
        this.deps.db,
        {
          id: connectionId,
          kind: state.kind,
          locationId: state.locationId,
          companyId: state.companyId,
          tokenSource: state.tokenSource,
          scopes: state.scopes,
          accessTokenEnc: state.accessEnc,
          refreshTokenEnc: state.refreshEnc,
          keyId: state.keyId,
          expiresAt: state.expiresAt,
          tokenVersion: state.version,
          userId: state.userId,
          appId: state.appId,
        },
        this.now(),
      );
      if (state.d1Dirty) this.write(connectionId, { ...state, d1Dirty: false });
    } catch (err) {
      // The DO copy is durable and authoritative for tokens; D1 catches up on the next use.
      this.write(connectionId, { ...state, d1Dirty: true });
      this.deps.log.error({
        event: "highlevel.token.d1_sync_failed",
        record: connectionId,
        error: err,
        outcome: "retry",
      });
    }
  }

  private async sealed(
    connectionId: string,
    access: string,
    refresh: string | null,
  ): Promise<{ accessEnc: string; refreshEnc: string | null; keyId: string }> {
    const keys = this.deps.config.TOKEN_ENCRYPTION_KEY;
    return {
      accessEnc: await encryptSecret(keys, access, aad(connectionId, "access")),
      refreshEnc: refresh === null ? null : await encryptSecret(keys, refresh, aad(connectionId, "refresh")),
      keyId: keys[0]?.id ?? "",
    };
  }

  /** Stores a freshly installed grant (replacing any previous tokens) and returns its expiry. */
  async install(grant: InstallGrant): Promise<{ expiresAt: number; version: number }> {
    const previous = this.read(grant.connectionId) ?? (await this.load(grant.connectionId));
    const enc = await this.sealed(grant.connectionId, grant.accessToken, grant.refreshToken);
    const state: State = {
      kind: grant.kind,
      locationId: grant.locationId,
      companyId: grant.companyId,
      tokenSource: grant.tokenSource,
      scopes: grant.scopes,
      ...enc,
      expiresAt: this.now() + grant.expiresInSeconds * 1000,
      version: (previous?.version ?? 0) + 1,
      status: "active",
      lastError: null,
      retryAt: null,
      failures: 0,
      userId: grant.userId,
      appId: grant.appId,
      d1Dirty: false,
    };
    this.write(grant.connectionId, state);
    await this.syncD1(grant.connectionId, state);
    return { expiresAt: state.expiresAt, version: state.version };
  }

  /**
   * A usable access token. Refreshes (single-flight) when it expires within `minValidityMs`, or
   * when `rejected` is the current token (HighLevel answered 401 to it: refresh once; a caller
   * holding an older token just gets the current one).
   */
  async accessToken(
    connectionId: string,
    opts: { rejected?: string; minValidityMs?: number } = {},
  ): Promise<TokenResult> {
    const state = await this.load(connectionId);
    if (!state) return fail("reconnect", `No HighLevel connection ${connectionId}: install the app for this location`);
    const blocked = this.blocked(state);
    if (blocked) return blocked;
    if (state.d1Dirty) await this.syncD1(connectionId, state);
    const current = await this.open(connectionId, state);
    const now = this.now();
    const margin = opts.minValidityMs ?? REFRESH_MARGIN_MS;
    const rejectedCurrent = opts.rejected !== undefined && opts.rejected === current.accessToken;
    if (state.status === "backoff" && state.retryAt !== null && state.retryAt > now) {
      // Backing off after "Location is not active": use the old token while it is accepted.
      if (!rejectedCurrent && state.expiresAt > now) return current;
      return fail(
        "server",
        `HighLevel location inactive; retrying after ${new Date(state.retryAt).toISOString()}`,
        state.retryAt - now,
      );
    }
    if (!rejectedCurrent && state.expiresAt - now > margin) return current;
    const result = await this.refresh(connectionId);
    // A proactive refresh that failed transiently still leaves a valid token to use.
    if (
      !result.ok &&
      !rejectedCurrent &&
      (result.category === "server" || result.category === "network") &&
      state.expiresAt > now
    )
      return current;
    return result;
  }

  private blocked(state: State): TokenResult | null {
    if (state.status === "needs_reconnect")
      return fail(
        "reconnect",
        `HighLevel connection needs a reinstall: ${state.lastError ?? "refresh token rejected"}`,
      );
    if (state.status === "uninstalled") return fail("reconnect", "HighLevel app was uninstalled for this connection");
    return null;
  }

  private async open(connectionId: string, state: State): Promise<Extract<TokenResult, { ok: true }>> {
    const accessToken = await decryptSecret(
      this.deps.config.TOKEN_ENCRYPTION_KEY,
      state.accessEnc,
      aad(connectionId, "access"),
    );
    return { ok: true, accessToken, expiresAt: state.expiresAt, scopes: state.scopes, version: state.version };
  }

  /** Refreshes now (single-flight): concurrent callers share one `/oauth/token` call. */
  refresh(connectionId: string): Promise<TokenResult> {
    let pending = this.inflight.get(connectionId);
    if (!pending) {
      pending = this.doRefresh(connectionId).finally(() => this.inflight.delete(connectionId));
      this.inflight.set(connectionId, pending);
    }
    return pending;
  }

  private async doRefresh(connectionId: string): Promise<TokenResult> {
    const state = await this.load(connectionId);
    if (!state) return fail("reconnect", `No HighLevel connection ${connectionId}`);
    const blocked = this.blocked(state);
    if (blocked) return blocked;
    const log = this.deps.log.child({ record: connectionId, location: state.locationId });
    const started = this.now();
    try {
      let access: string;
      let refresh: string | null;
      let expiresIn: number;
      let scopes = state.scopes;
      if (state.tokenSource === "agency") {
        if (!state.companyId) return fail("reconnect", `Connection ${connectionId} has no agency to mint tokens from`);
        const agency = await this.deps.agencyToken(companyConnectionId(state.companyId));
        if (!agency.ok) return agency;
        const minted = await mintLocationToken(
          this.deps.config,
          agency.accessToken,
          state.companyId,
          state.locationId ?? "",
        );
        access = minted.access_token;
        refresh = null;
        expiresIn = minted.expires_in;
        if (minted.scope) scopes = minted.scope.split(/\s+/).filter(Boolean);
      } else {
        if (!state.refreshEnc) return fail("reconnect", `Connection ${connectionId} has no refresh token`);
        const refreshToken = await decryptSecret(
          this.deps.config.TOKEN_ENCRYPTION_KEY,
          state.refreshEnc,
          aad(connectionId, "refresh"),
        );
        const grant = await refreshTokens(
          this.deps.config,
          refreshToken,
          state.kind === "company" ? "Company" : "Location",
        );
        access = grant.access_token;
        refresh = grant.refresh_token;
        expiresIn = grant.expires_in;
        if (grant.scope) scopes = grant.scope.split(/\s+/).filter(Boolean);
      }
      const enc = await this.sealed(connectionId, access, refresh);
      const next: State = {
        ...state,
        ...enc,
        scopes,
        expiresAt: this.now() + expiresIn * 1000,
        version: state.version + 1,
        status: "active",
        lastError: null,
        retryAt: null,
        failures: 0,
        d1Dirty: false,
      };
      // The new refresh token is durable in the DO before anything else happens (the old one is spent).
      this.write(connectionId, next);
      await this.syncD1(connectionId, next);
      log.info({
        event: "highlevel.token.refreshed",
        outcome: "ok",
        duration_ms: this.now() - started,
        token_version: next.version,
      });
      if (state.tokenSource === "refresh") await this.clientAccepted(log);
      return { ok: true, accessToken: access, expiresAt: next.expiresAt, scopes, version: next.version };
    } catch (err) {
      if (err instanceof RotatedTokenAnswerError) return this.keepRotated(connectionId, state, err, log);
      if (!(err instanceof HighLevelError)) throw err;
      return this.refreshFailed(connectionId, state, err, log);
    }
  }

  /** The client credentials worked: closes an open `highlevel_client_rejected` condition. */
  private async clientAccepted(log: Logger): Promise<void> {
    const closed = await clearAppCondition(this.deps.db, HIGHLEVEL_CLIENT_REJECTED).catch((e: unknown) => {
      log.error({ event: "highlevel.app_status_failed", error: e, outcome: "failed" });
      return null;
    });
    if (!closed) return;
    const reason = "the token endpoint accepts the client credentials again";
    log.info({ event: "highlevel.app_recovered", outcome: "ok", reason, since: closed.since });
  }

  /** Stores the new refresh token of a malformed 2xx answer (and its access token when usable). */
  private async keepRotated(
    connectionId: string,
    state: State,
    err: RotatedTokenAnswerError,
    log: Logger,
  ): Promise<TokenResult> {
    const now = this.now();
    const fresh =
      err.accessToken !== null && err.expiresIn !== null
        ? { token: err.accessToken, expiresAt: now + err.expiresIn * 1000 }
        : null;
    const access = fresh?.token ?? (await this.open(connectionId, state)).accessToken;
    const enc = await this.sealed(connectionId, access, err.refreshToken);
    const next: State = {
      ...state,
      ...enc,
      expiresAt: fresh?.expiresAt ?? state.expiresAt,
      version: state.version + 1,
      status: "active",
      lastError: fresh ? null : err.message,
      retryAt: null,
      failures: 0,
      d1Dirty: false,
    };
    this.write(connectionId, next);
    await this.syncD1(connectionId, next);
    const outcome = fresh ? "ok" : "retry";
    log.warn({ event: "highlevel.token.malformed_answer", outcome, reason: err.message, token_version: next.version });
    if (state.tokenSource === "refresh") await this.clientAccepted(log);
    if (fresh) {
      return {
        ok: true,
        accessToken: fresh.token,
        expiresAt: fresh.expiresAt,
        scopes: state.scopes,
        version: next.version,
      };
    }
    return fail("server", `${err.message}; the new refresh token is stored and the next refresh uses it`);
  }

  /** `invalid_client`: the app's secret is wrong, not the grant, so the unspent refresh token stays. */
  private async clientRejected(
    connectionId: string,
    state: State,
    err: HighLevelError,
    log: Logger,
  ): Promise<TokenResult> {
    const now = this.now();
    const reason =
      `HighLevel refused this app's client credentials (${err.upstreamMessage}): ` +
      "check HIGHLEVEL_CLIENT_ID and HIGHLEVEL_CLIENT_SECRET";
    this.write(connectionId, { ...state, lastError: reason });
    const status = { lastError: reason, retryAt: state.retryAt, now };
    await setConnectionStatus(this.deps.db, connectionId, state.status, status).catch((e: unknown) =>
      log.error({ event: "highlevel.token.d1_status_failed", error: e, outcome: "failed" }),
    );
    const opened = await raiseAppCondition(this.deps.db, HIGHLEVEL_CLIENT_REJECTED, reason, now).catch((e: unknown) => {
      log.error({ event: "highlevel.app_status_failed", error: e, outcome: "failed" });
      return false;
    });
    const trace_id = err.traceId;
    // One alert per episode: only the call that opened the condition raises it.
    if (opened) log.error({ event: "highlevel.app_misconfigured", outcome: "failed", reason, trace_id, alert: true });
    else log.warn({ event: "highlevel.token.client_rejected", outcome: "retry", reason, trace_id });
    const recovery = "The refresh token is kept; the connection recovers on the first refresh after the fix";
    return fail("server", `${reason}. ${recovery}`, CLIENT_REJECTED_RETRY_MS);
  }

  private async refreshFailed(
    connectionId: string,
    state: State,
    err: HighLevelError,
    log: Logger,
  ): Promise<TokenResult> {
    const now = this.now();
    const status = err.upstreamStatus;
    if ((status === 400 || status === 401) && isInvalidClient(err.upstreamMessage)) {
      return this.clientRejected(connectionId, state, err, log);
    }
    if (err.category === "reconnect" || (err.category === "auth" && state.tokenSource === "refresh")) {
      const next: State = { ...state, status: "needs_reconnect", lastError: err.message, retryAt: null };
      this.write(connectionId, next);
      await setConnectionStatus(this.deps.db, connectionId, "needs_reconnect", { lastError: err.message, now }).catch(
        (e: unknown) => log.error({ event: "highlevel.token.d1_status_failed", error: e, outcome: "failed" }),
      );
      log.error({
        event: "highlevel.needs_reconnect",
        outcome: "failed",
        reason: err.upstreamMessage,
        trace_id: err.traceId,
        alert: true,
      });
      return fail(
        "reconnect",
        `HighLevel rejected the refresh token; the connection needs a reinstall (${err.upstreamMessage || err.message})`,
      );
    }
    if (err.category === "server" && err.upstreamStatus === 400) {
      // "Location is not active": keep the same refresh token, try again later with backoff.
      const delay = Math.min(MAX_BACKOFF_MS, INACTIVE_BACKOFF_MS * 2 ** state.failures);
      const next: State = {
        ...state,
        status: "backoff",
        lastError: err.message,
        retryAt: now + delay,
        failures: state.failures + 1,
      };
      this.write(connectionId, next);
      await setConnectionStatus(this.deps.db, connectionId, "backoff", {
        lastError: err.message,
        retryAt: now + delay,
        now,
      }).catch((e: unknown) => log.error({ event: "highlevel.token.d1_status_failed", error: e, outcome: "failed" }));
      log.warn({
        event: "highlevel.token.backoff",
        outcome: "retry",
        reason: err.upstreamMessage,
        delay_ms: delay,
        trace_id: err.traceId,
      });
      return fail("server", err.message, delay);
    }
    log.warn({
      event: "highlevel.token.refresh_failed",
      outcome: "retry",
      category: err.category,
      reason: err.upstreamMessage,
      trace_id: err.traceId,
    });
    return fail(err.category, err.message, err.retryAfterMs);
  }

  /** Cron: refreshes when the token expires within `withinMs` (and a backoff has elapsed). */
  async refreshIfDue(connectionId: string, withinMs: number): Promise<"refreshed" | "fresh" | "failed"> {
    const state = await this.load(connectionId);
    if (!state || this.blocked(state)) return "failed";
    const now = this.now();
    if (state.status === "backoff" && state.retryAt !== null && state.retryAt > now) return "fresh";
    if (state.expiresAt - now > withinMs) return "fresh";
    const result = await this.refresh(connectionId);
    return result.ok ? "refreshed" : "failed";
  }

  /** Forgets the tokens after an UNINSTALL. */
  retire(connectionId: string): void {
    const state = this.read(connectionId);
    if (state) this.write(connectionId, { ...state, status: "uninstalled", lastError: "uninstalled" });
  }

  /** Token-free status (tests, console). */
  status(
    connectionId: string,
  ): { status: State["status"]; expiresAt: number; version: number; retryAt: number | null } | null {
    const state = this.read(connectionId);
    return state
      ? { status: state.status, expiresAt: state.expiresAt, version: state.version, retryAt: state.retryAt }
      : null;
  }
}

function fail(category: HighLevelErrorCategory, message: string, retryAfterMs: number | null = null): TokenResult {
  return { ok: false, category, message, retryAfterMs };
}

function fromRow(row: Connection): State | null {
  if (!row.accessTokenEnc || !row.keyId || row.expiresAt === null) return null;
  return {
    kind: row.kind,
    locationId: row.locationId,
    companyId: row.companyId,
    tokenSource: row.tokenSource,
    scopes: row.scopes,
    accessEnc: row.accessTokenEnc,
    refreshEnc: row.refreshTokenEnc,
    keyId: row.keyId,
    expiresAt: row.expiresAt,
    version: row.tokenVersion,
    status: row.status,
    lastError: row.lastError,
    retryAt: row.retryAt,
    failures: 0,
    userId: row.userId,
    appId: row.appId,
    d1Dirty: false,
  };
}
