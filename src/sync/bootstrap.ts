/**
 * One-call setup of an account (`POST /api/bootstrap`): what `npm start` calls to pre-connect the
 * two sandboxes, and what an operator can call for a first account. Idempotent: calling it again
 * keeps the stored mapping and an existing backfill run.
 *
 * 1. HighLevel: with a location Private Integration Token, stores the location's connection (the
 *    token encrypted the same way an OAuth install stores one); without it, an OAuth install of
 *    the location must already exist.
 * 2. 4Degrees: pairs the account with its workspace through `pairFourDegreesAccount` (the one
 *    writer of an account's workspace) with the given API key, else the single-account
 *    `FOURDEGREES_API_KEY` secret; neither → 400. Its 409 (the account is paired with another
 *    workspace, or the workspace with another account) goes through unchanged.
 * 3. The account pairs the workspace with the location; its mapping is the default built from the
 *    live pipelines (stages matched by name), validated against them.
 * 4. A backfill starts (unless `backfill: false`) so existing records link up or get created.
 */
import * as z from "zod";
import type { Config } from "../config.ts";
import { pairFourDegreesAccount } from "../fourdegrees/wiring.ts";
import { savePrivateIntegrationConnection } from "../highlevel/pit.ts";
import { AppError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import {
  ConflictPolicySchema,
  createAccount,
  DeletePolicySchema,
  getAccount,
  saveMapping,
  updateAccount,
  type Account,
} from "../store/accounts.ts";
import { getBackfill, type BackfillRun } from "../store/backfill-runs.ts";
import { getConnection, locationConnectionId } from "../store/connections.ts";
import { beginBackfill } from "./jobs/backfill.ts";
import { liveConnectors } from "./connectors.ts";
import { liveJobDeps } from "./jobs/deps.ts";
import { MappingSchema, mappingIssues, validateMappingLive, type Mapping } from "../domain/mapping-config.ts";
import { loadLiveStructure, suggestedMapping } from "./structure.ts";

export const BootstrapBody = z
  .object({
    accountId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .default("demo"),
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
    /** Sync attachments through a FILE_UPLOAD field named like "Documents" (docs/sync.md "Attachments"). */
    attachments: z.boolean().default(false),
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

export async function bootstrapAccount(
  env: Env,
  config: Config,
  input: BootstrapInput,
  log: Logger,
): Promise<BootstrapResult> {
  const { accountId } = input;
  const locationId = input.highlevel.locationId;

  if (input.highlevel.privateIntegrationToken) {
    await savePrivateIntegrationConnection(env, { locationId, token: input.highlevel.privateIntegrationToken });
  } else if (!(await getConnection(env.DB, locationConnectionId(locationId)))) {
    throw new AppError(
      "bad_request",
      `HighLevel location ${locationId} is not connected: install the app (GET /oauth/install) or pass highlevel.privateIntegrationToken`,
    );
  }

  // Both branches pair through the one writer of an account's workspace; its 409 goes through.
  const apiKey = input.fourdegrees.apiKey ?? config.FOURDEGREES_API_KEY;
  if (!apiKey)
    throw new AppError(
      "bad_request",
      "no 4Degrees API key: pass fourdegrees.apiKey, or set the FOURDEGREES_API_KEY secret for a single-account deployment",
    );
  const paired = await pairFourDegreesAccount(env, config, { accountId, accountName: input.name, apiKey });

  const before = await getAccount(env.DB, accountId);
  let account: Account;
  if (before?.configured) {
    account = await updateAccount(env.DB, accountId, {
      locations: [...new Set([...before.locations, locationId])],
      ...(input.conflictPolicy ? { conflictPolicy: input.conflictPolicy } : {}),
      ...(input.deletePolicy ? { deletePolicy: input.deletePolicy } : {}),
    });
  } else {
    account = await createAccount(env.DB, {
      id: accountId,
      name: input.name,
      locations: [locationId],
      ...(input.conflictPolicy ? { conflictPolicy: input.conflictPolicy } : {}),
      ...(input.deletePolicy ? { deletePolicy: input.deletePolicy } : {}),
    });
  }

  let mapping = account.mapping;
  if (!mapping) {
    const live = await loadLiveStructure(await liveConnectors(env, config)(account, "live"), account.locations);
    const parsed = MappingSchema.safeParse(suggestedMapping(account, live, { attachments: input.attachments }));
    if (!parsed.success)
      throw new AppError(
        "unprocessable",
        "no default mapping: no 4Degrees pipeline and HighLevel pipeline share a name (PUT /api/accounts/{id}/mapping instead)",
        { details: mappingIssues(parsed.error) },
      );
    const issues = validateMappingLive(parsed.data, live, account.locations);
    if (issues.length > 0)
      throw new AppError("unprocessable", "the default mapping does not validate against the live pipelines", {
        details: issues,
      });
    account = await saveMapping(env.DB, accountId, parsed.data);
    mapping = parsed.data;
  }

  let backfill = await getBackfill(env.DB, accountId);
  if (input.backfill && !backfill)
    backfill = await beginBackfill(env.DB, liveJobDeps(env, liveConnectors(env, config)), accountId);
  log.info({
    event: "sync.bootstrap",
    account: accountId,
    location: locationId,
    workspace: paired.workspaceId,
    outcome: "ok",
    created: !before?.configured,
  });
  return {
    created: !before?.configured,
    account,
    mapping,
    backfill,
    webhooks: {
      highlevel: `${config.PUBLIC_URL}/webhooks/highlevel`,
      fourdegrees: `${config.PUBLIC_URL}/webhooks/4degrees`,
    },
  };
}
