/**
 * Builds the 4Degrees connector for one account: its API key (D1, or the single-account secret),
 * and every call through that workspace's rate gate (`gateFor(env, "4d", workspaceId)`) in the
 * caller's lane, with the configured budget.
 */
import type { Config } from "../config.ts";
import { fourDegreesLimits, gatedFetch, gateFor, type GateLimits, type Lane } from "../gate/client.ts";
import { AppError } from "../lib/errors.ts";
import {
  credentialsFor,
  saveFourDegreesKey,
  type FourDegreesAccountSummary,
  type FourDegreesCredentials,
} from "../store/fourdegrees-accounts.ts";
import { FourDegreesClient, type GateRunner } from "./client.ts";
import { FourDegreesConnector } from "./connector.ts";
import { FourDegreesError } from "./errors.ts";
import { cachedKeyRow } from "../store/account-config.ts";
import { cachedConfig } from "../store/config-cache.ts";

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
export function workspaceGate(
  env: Env,
  config: Config,
  key: string,
  lane: Lane,
  options: { maxWaitMs?: number } = {},
): GateRunner {
  const gate = gateFor(env, "4d", key);
  const limits = fourDegreesLimitsFrom(config);
  return (doFetch) =>
    gatedFetch(gate, lane, limits, doFetch, options.maxWaitMs === undefined ? {} : { maxWaitMs: options.maxWaitMs });
}

/** The `DealCrm` connector for an account, gated in `lane`. Throws `not_found` when the account has no key. */
export async function fourDegreesConnectorFor(
  env: Env,
  config: Config,
  accountId: string,
  lane: Lane,
): Promise<{ connector: FourDegreesConnector; client: FourDegreesClient; credentials: FourDegreesCredentials }> {
  const credentials = await cachedConfig(`fourdegrees-credentials:${accountId}`, () =>
    cachedKeyRow(env.DB, accountId).then((row) =>
      credentialsFor(env.DB, config.TOKEN_ENCRYPTION_KEY, accountId, config.FOURDEGREES_API_KEY, { row }),
    ),
  );
  const client = new FourDegreesClient({
    baseUrl: config.FOURDEGREES_API_BASE,
    apiKey: credentials.apiKey,
    gate: workspaceGate(env, config, gateKey(credentials), lane),
  });
  return { connector: new FourDegreesConnector(client), client, credentials };
}

/**
 * Pairs an account with a 4Degrees workspace: verifies `apiKey` with `GET /me` and stores it
 * (encrypted) with the workspace and actor 4Degrees named. The only way an account gets its
 * workspace (`fourdegrees_accounts.workspace_id`); the admin API and any bootstrap call this.
 * A key 4Degrees refuses is `bad_request`; a workspace of another account, or another workspace
 * than the account's, is `conflict`.
 */
export async function pairFourDegreesAccount(
  env: Env,
  config: Config,
  input: { accountId: string; accountName: string; apiKey: string },
): Promise<FourDegreesAccountSummary> {
  // One verification call, on a gate keyed by the account (the workspace is what we learn here).
  const connector = new FourDegreesConnector(
    new FourDegreesClient({
      baseUrl: config.FOURDEGREES_API_BASE,
      apiKey: input.apiKey,
      gate: workspaceGate(env, config, `account:${input.accountId}`, "live"),
    }),
  );
  let identity;
  try {
    identity = await connector.whoAmI();
  } catch (err) {
    if (err instanceof FourDegreesError && (err.upstreamStatus === 401 || err.upstreamStatus === 403))
      throw new AppError("bad_request", "4Degrees refused this API key", { cause: err });
    throw err;
  }
  return saveFourDegreesKey(env.DB, config.TOKEN_ENCRYPTION_KEY, {
    accountId: input.accountId,
    accountName: input.accountName,
    apiKey: input.apiKey,
    workspaceId: identity.scopeId,
    actor: identity.actor,
  });
}
