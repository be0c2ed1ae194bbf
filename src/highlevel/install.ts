/**
 * Creating and retiring connections: after the OAuth callback's code exchange, on an `INSTALL`
 * event for an agency that approved a new location, and on `UNINSTALL`. Tokens go straight into
 * the owning gate (`installTokens`), which encrypts and stores them; they are never returned.
 */
import type { Config } from "../config.ts";
import { tokenGate } from "../gate/client.ts";
import type { Logger } from "../lib/log.ts";
import {
  addPendingLocations,
  companyConnectionId,
  getConnection,
  locationConnectionId,
  removePendingLocation,
  removePendingLocationsOf,
  retireConnections,
} from "../store/connections.ts";
import { HighLevelError } from "./errors.ts";
import { mintLocationToken } from "./oauth.ts";
import type { TokenResponse } from "./schemas.ts";

/**
 * Most locations one callback mints tokens for (each is one subrequest; Workers cap those per
 * request). The rest are recorded as pending and minted by the cron (src/highlevel/cron.ts).
 */
export const MAX_LOCATIONS_PER_INSTALL = 40;

/** What an install connected. */
export interface InstallOutcome {
  userType: "Location" | "Company";
  companyId: string | null;
  locations: string[];
  /** Approved locations not connected now (over the cap, or a mint failure): recorded as pending, minted by the cron. */
  pending: string[];
}

const scopesOf = (scope: string) => scope.split(/\s+/).filter(Boolean);

/** Stores the tokens of a code exchange: a location connection, or an agency plus a location token per approved location. */
export async function installFromGrant(
  env: Env,
  config: Config,
  grant: TokenResponse,
  log: Logger,
): Promise<InstallOutcome> {
  if (grant.userType === "Location") {
    if (!grant.locationId)
      throw new HighLevelError("validation", "HighLevel returned a Location token without a locationId");
    const id = locationConnectionId(grant.locationId);
    await tokenGate(env, id).installTokens({
      connectionId: id,
      kind: "location",
      locationId: grant.locationId,
      companyId: grant.companyId,
      tokenSource: "refresh",
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresInSeconds: grant.expires_in,
      scopes: scopesOf(grant.scope),
      userId: grant.userId,
      appId: null,
    });
    log.info({ event: "highlevel.installed", location: grant.locationId, outcome: "ok", user_type: "Location" });
    return { userType: "Location", companyId: grant.companyId, locations: [grant.locationId], pending: [] };
  }
  if (!grant.companyId)
    throw new HighLevelError("validation", "HighLevel returned a Company token without a companyId");
  const companyId = grant.companyId;
  const agencyId = companyConnectionId(companyId);
  await tokenGate(env, agencyId).installTokens({
    connectionId: agencyId,
    kind: "company",
    locationId: null,
    companyId,
    tokenSource: "refresh",
    accessToken: grant.access_token,
    refreshToken: grant.refresh_token,
    expiresInSeconds: grant.expires_in,
    scopes: scopesOf(grant.scope),
    userId: grant.userId,
    appId: null,
  });
  const approved = [...new Set([...(grant.approvedLocations ?? []), ...(grant.locationId ? [grant.locationId] : [])])];
  const locations: string[] = [];
  const pending: string[] = approved.slice(MAX_LOCATIONS_PER_INSTALL);
  const errors: Record<string, string> = {};
  for (const locationId of approved.slice(0, MAX_LOCATIONS_PER_INSTALL)) {
    try {
      await installLocationFromAgency(env, config, companyId, locationId, grant.access_token);
      locations.push(locationId);
    } catch (err) {
      // One location failing must not fail the whole agency install: the cron retries it.
      pending.push(locationId);
      errors[locationId] = err instanceof Error ? err.message : String(err);
      log.warn({ event: "highlevel.install.location_failed", location: locationId, outcome: "retry", error: err });
    }
  }
  // Recorded before the callback answers, so a crash after this point loses no location.
  await addPendingLocations(env.DB, companyId, pending, Date.now(), errors);
  log.info({
    event: "highlevel.installed",
    account: companyId,
    outcome: "ok",
    user_type: "Company",
    locations: locations.length,
    pending: pending.length,
  });
  return { userType: "Company", companyId, locations, pending };
}

/**
 * Mints a location token from the agency and stores it as a location connection whose tokens
 * renew through the agency (`token_source = 'agency'`). Without `agencyAccessToken`, asks the
 * agency's gate for one (INSTALL events for future locations).
 */
export async function installLocationFromAgency(
  env: Env,
  config: Config,
  companyId: string,
  locationId: string,
  agencyAccessToken?: string,
): Promise<void> {
  let token = agencyAccessToken;
  if (token === undefined) {
    const agencyId = companyConnectionId(companyId);
    const result = await tokenGate(env, agencyId).accessToken(agencyId);
    if (!result.ok) throw new HighLevelError(result.category, result.message, { retryAfterMs: result.retryAfterMs });
    token = result.accessToken;
  }
  const minted = await mintLocationToken(config, token, companyId, locationId);
  const id = locationConnectionId(locationId);
  await tokenGate(env, id).installTokens({
    connectionId: id,
    kind: "location",
    locationId,
    companyId,
    tokenSource: "agency",
    accessToken: minted.access_token,
    refreshToken: null,
    expiresInSeconds: minted.expires_in,
    scopes: scopesOf(minted.scope),
    userId: minted.userId,
    appId: minted.appId,
  });
  await removePendingLocation(env.DB, locationId);
}

/** `INSTALL` event: a location approved under an agency we hold a token for gets its connection. */
export async function handleInstallEvent(
  env: Env,
  config: Config,
  event: { companyId?: string | null | undefined; locationId?: string | null | undefined },
  log: Logger,
): Promise<"connected" | "already" | "ignored"> {
  if (!event.locationId || !event.companyId) return "ignored";
  const existing = await getConnection(env.DB, locationConnectionId(event.locationId));
  if (existing && existing.status === "active") return "already";
  const agency = await getConnection(env.DB, companyConnectionId(event.companyId));
  if (!agency || agency.status === "uninstalled") {
    // A location-level install: the OAuth callback creates the connection.
    log.info({
      event: "highlevel.install_event",
      location: event.locationId,
      outcome: "skipped",
      reason: "no agency connection; waiting for the OAuth callback",
    });
    return "ignored";
  }
  await installLocationFromAgency(env, config, event.companyId, event.locationId);
  log.info({ event: "highlevel.install_event", location: event.locationId, outcome: "ok" });
  return "connected";
}

/** `UNINSTALL` event: retires the location's (or the agency's and its locations') connections. */
export async function handleUninstallEvent(
  env: Env,
  event: { companyId?: string | null | undefined; locationId?: string | null | undefined },
  log: Logger,
): Promise<string[]> {
  const retired = await retireConnections(env.DB, {
    locationId: event.locationId ?? null,
    companyId: event.locationId ? null : (event.companyId ?? null),
  });
  for (const id of retired) await tokenGate(env, id).retireTokens(id);
  // Nothing left to mint for an uninstalled location or agency.
  if (event.locationId) await removePendingLocation(env.DB, event.locationId);
  else if (event.companyId) await removePendingLocationsOf(env.DB, event.companyId);
  log.info({
    event: "highlevel.uninstalled",
    location: event.locationId ?? null,
    account: event.companyId ?? null,
    outcome: "ok",
    retired: retired.length,
  });
  return retired;
}
