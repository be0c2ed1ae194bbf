/**
 * Builds the 4Degrees connector for one account: its API key (D1, or the single-account secret),
 * and every call through that workspace's rate gate (`gateFor(env, "4d", workspaceId)`) in the
 * caller's lane, with the configured budget.
 */
import type { Config } from "../config.ts";
import { fourDegreesLimits, gatedFetch, gateFor, type GateLimits, type Lane } from "../gate/client.ts";
import { credentialsFor, type FourDegreesCredentials } from "../store/fourdegrees-accounts.ts";
import { FourDegreesClient, type GateRunner } from "./client.ts";
import { FourDegreesConnector } from "./connector.ts";

/** The configured 4Degrees budget per workspace (`FOURDEGREES_RATE_PER_SECOND`, `FOURDEGREES_CONCURRENCY`). */
export function fourDegreesLimitsFrom(config: Config): GateLimits {
  return fourDegreesLimits(config.FOURDEGREES_RATE_PER_SECOND, config.FOURDEGREES_CONCURRENCY);
}

/**
 * The gate key of an account's 4Degrees calls: its workspace id, or (secret fallback before the
 * workspace is known) the account id — either way one budget per API key, which is what 4Degrees
 * limits (assumed contract: requests per second per key).
 */
export function gateKey(credentials: FourDegreesCredentials): string {
  return credentials.workspaceId ?? `account:${credentials.accountId}`;
}

/** A `GateRunner` on the workspace's gate in `lane`. */
export function workspaceGate(env: Env, config: Config, key: string, lane: Lane, options: { maxWaitMs?: number } = {}): GateRunner {
  const gate = gateFor(env, "4d", key);
  const limits = fourDegreesLimitsFrom(config);
  return (doFetch) => gatedFetch(gate, lane, limits, doFetch, options.maxWaitMs === undefined ? {} : { maxWaitMs: options.maxWaitMs });
}

/** The `DealCrm` connector for an account, gated in `lane`. Throws `not_found` when the account has no key. */
export async function fourDegreesConnectorFor(env: Env, config: Config, accountId: string, lane: Lane): Promise<{ connector: FourDegreesConnector; client: FourDegreesClient; credentials: FourDegreesCredentials }> {
  const credentials = await credentialsFor(env.DB, config.TOKEN_ENCRYPTION_KEY, accountId, config.FOURDEGREES_API_KEY);
  const client = new FourDegreesClient({ baseUrl: config.FOURDEGREES_API_BASE, apiKey: credentials.apiKey, gate: workspaceGate(env, config, gateKey(credentials), lane) });
  return { connector: new FourDegreesConnector(client), client, credentials };
}
