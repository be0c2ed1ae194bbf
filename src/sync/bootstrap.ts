/**
 * One-call setup of an account (`POST /api/bootstrap`): what `npm start` calls to pre-connect the
 * two sandboxes, and what an operator can call for a first account. Idempotent: calling it again
 * keeps the stored mapping and an existing backfill run.
 *
 * 1. HighLevel: with a location Private Integration Token, stores the location's connection (the
 *    token encrypted the same way an OAuth install stores one); without it, an OAuth install of
 *    the location must already exist.
 * 2. 4Degrees: with an API key, verifies it (`GET /me`) and stores it for the account; without
 *    it, the single-account `FOURDEGREES_API_KEY` secret is used (and verified).
 * 3. The account pairs the workspace with the location; its mapping is the default built from the
 *    live pipelines (stages matched by name), validated against them.
 * 4. A backfill starts (unless `backfill: false`) so existing records link up or get created.
 */
import { z } from "zod";
import type { Config } from "../config.ts";
import { FourDegreesClient } from "../fourdegrees/client.ts";
import { FourDegreesConnector } from "../fourdegrees/connector.ts";
import { fourDegreesConnectorFor, workspaceGate } from "../fourdegrees/wiring.ts";
import { encryptSecret } from "../lib/crypto.ts";
import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { ConflictPolicySchema, createAccount, DeletePolicySchema, getAccount, saveMapping, updateAccount, type Account } from "../store/accounts.ts";
import { getBackfill, type BackfillRun } from "../store/backfill-runs.ts";
import { getConnection, locationConnectionId, saveConnectionTokens } from "../store/connections.ts";
import { saveFourDegreesKey } from "../store/fourdegrees-accounts.ts";
import { beginBackfill } from "./backfill.ts";
import { liveConnectors } from "./connectors.ts";
import { liveJobDeps } from "./jobs.ts";
import { MappingSchema, mappingIssues, validateMappingLive, type Mapping } from "./mapping-config.ts";
import { loadLiveStructure, suggestedMapping } from "./structure.ts";

export const BootstrapBody = z
  .object({
    accountId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default("demo"),
    name: z.string().trim().min(1).max(200).default("Demo"),
    highlevel: z.object({
      locationId: z.string().min(1).max(200),
      /** A location Private Integration Token (`pit-…`); omit when the location was installed through OAuth. */
      privateIntegrationToken: z.string().min(8).max(500).optional(),
    }),
    fourdegrees: z.object({ apiKey: z.string().min(8).max(512).optional() }).default({}),
    conflictPolicy: ConflictPolicySchema.optional(),
    deletePolicy: DeletePolicySchema.optional(),
    backfill: z.boolean().default(true),
  })
  .strict();
export type BootstrapInput = z.output<typeof BootstrapBody>;

export interface BootstrapResult {
  created: boolean;
  account: Account;
  mapping: Mapping;
  backfill: BackfillRun | null;
  webhooks: { highlevel: string; fourdegrees: string };
}

/** Long-lived: a PIT does not expire on a schedule; the far expiry keeps the token keeper from refreshing it. */
const PIT_EXPIRY_MS = 10 * 365 * 86_400_000;

export async function bootstrapAccount(env: Env, config: Config, input: BootstrapInput, log: Logger): Promise<BootstrapResult> {
  const { accountId } = input;
  const locationId = input.highlevel.locationId;

  if (input.highlevel.privateIntegrationToken) {
    const id = locationConnectionId(locationId);
    const existing = await getConnection(env.DB, id);
    await saveConnectionTokens(env.DB, {
      id,
      kind: "location",
      locationId,
      companyId: existing?.companyId ?? null,
      tokenSource: "refresh",
      scopes: [],
      // The additional data binds the ciphertext to this row, as the token keeper expects.
      accessTokenEnc: await encryptSecret(config.TOKEN_ENCRYPTION_KEY, input.highlevel.privateIntegrationToken, `connection:${id}:access`),
      refreshTokenEnc: null,
      keyId: config.TOKEN_ENCRYPTION_KEY[0]?.id ?? "",
      expiresAt: Date.now() + PIT_EXPIRY_MS,
      tokenVersion: (existing?.tokenVersion ?? 0) + 1,
      userId: null,
      appId: null,
    });
  } else if (!(await getConnection(env.DB, locationConnectionId(locationId)))) {
    throw new AppError("bad_request", `HighLevel location ${locationId} is not connected: install the app (GET /oauth/install) or pass highlevel.privateIntegrationToken`);
  }

  let workspaceId: string;
  if (input.fourdegrees.apiKey) {
    const connector = new FourDegreesConnector(new FourDegreesClient({ baseUrl: config.FOURDEGREES_API_BASE, apiKey: input.fourdegrees.apiKey, gate: workspaceGate(env, config, `account:${accountId}`, "live") }));
    const me = await connector.whoAmI();
    workspaceId = me.scopeId;
    await saveFourDegreesKey(env.DB, config.TOKEN_ENCRYPTION_KEY, { accountId, accountName: input.name, apiKey: input.fourdegrees.apiKey, workspaceId, actor: me.actor });
  } else {
    const { connector } = await fourDegreesConnectorFor(env, config, accountId, "live");
    workspaceId = (await connector.whoAmI()).scopeId;
  }

  const before = await getAccount(env.DB, accountId);
  let account: Account;
  if (before?.configured) {
    account = await updateAccount(env.DB, accountId, {
      workspaceId,
      locations: [...new Set([...before.locations, locationId])],
      ...(input.conflictPolicy ? { conflictPolicy: input.conflictPolicy } : {}),
      ...(input.deletePolicy ? { deletePolicy: input.deletePolicy } : {}),
    });
  } else {
    account = await createAccount(env.DB, {
      id: accountId,
      name: input.name,
      workspaceId,
      locations: [locationId],
      ...(input.conflictPolicy ? { conflictPolicy: input.conflictPolicy } : {}),
      ...(input.deletePolicy ? { deletePolicy: input.deletePolicy } : {}),
    });
  }

  let mapping = account.mapping;
  if (!mapping) {
    const live = await loadLiveStructure(await liveConnectors(env, config)(account, "live"), account.locations);
    const parsed = MappingSchema.safeParse(suggestedMapping(account, live));
    if (!parsed.success) throw new AppError("unprocessable", "no default mapping: no 4Degrees pipeline and HighLevel pipeline share a name (PUT /api/accounts/{id}/mapping instead)", { details: mappingIssues(parsed.error) });
    const issues = validateMappingLive(parsed.data, live, account.locations);
    if (issues.length > 0) throw new AppError("unprocessable", "the default mapping does not validate against the live pipelines", { details: issues });
    account = await saveMapping(env.DB, accountId, parsed.data);
    mapping = parsed.data;
  }

  let backfill = await getBackfill(env.DB, accountId);
  if (input.backfill && !backfill) backfill = await beginBackfill(env.DB, liveJobDeps(env, liveConnectors(env, config)), accountId);
  log.info({ event: "sync.bootstrap", account: accountId, location: locationId, outcome: "ok", created: !before?.configured });
  return {
    created: !before?.configured,
    account,
    mapping,
    backfill,
    webhooks: { highlevel: `${config.PUBLIC_URL}/webhooks/highlevel`, fourdegrees: `${config.PUBLIC_URL}/webhooks/4degrees` },
  };
}
