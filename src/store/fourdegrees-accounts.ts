/**
 * D1 `fourdegrees_accounts`: the 4Degrees workspace API key of each account, encrypted with
 * `encryptSecret` (AES-256-GCM) under additional data `fourdegrees_account:{accountId}`, so a
 * ciphertext copied into another row does not decrypt. The plaintext key leaves this module only
 * inside `FourDegreesCredentials`, never in a summary.
 *
 * A single-account deployment may give the key as the `FOURDEGREES_API_KEY` secret instead: then
 * `credentialsFor` falls back to it for an account without a row.
 *
 * The row may also hold the workspace's own webhook signing secret (`webhook_secret_enc`, sealed the
 * same way under `fourdegrees_webhook_secret:{accountId}`); without one the global
 * `FOURDEGREES_WEBHOOK_SECRET` verifies the workspace's deliveries.
 */
import * as z from "zod";
import { decryptSecret, encryptSecret, needsReencryption, type EncryptionKey } from "../lib/crypto.ts";
import { AppError } from "../lib/errors.ts";
import { forgetConfig } from "./config-cache.ts";

const aad = (accountId: string) => `fourdegrees_account:${accountId}`;
const webhookAad = (accountId: string) => `fourdegrees_webhook_secret:${accountId}`;

/** A `fourdegrees_accounts` row (also read whole by src/store/account-config.ts). */
export const FourDegreesRowSchema = z.object({
  account_id: z.string(),
  workspace_id: z.string(),
  api_key_enc: z.string(),
  key_id: z.string(),
  key_hint: z.string(),
  actor_type: z.string().nullable(),
  actor_id: z.string().nullable(),
  verified_at: z.number(),
  created_at: z.number(),
  updated_at: z.number(),
  webhook_secret_enc: z.string().nullable(),
});

/** A parsed `fourdegrees_accounts` row (sealed secrets, never shown). */
export type FourDegreesRow = z.infer<typeof FourDegreesRowSchema>;

/** What may be shown about an account's 4Degrees key (never the key). */
export interface FourDegreesAccountSummary {
  accountId: string;
  workspaceId: string;
  keyHint: string;
  actor: { type: string; id: string | null } | null;
  verifiedAt: number;
  updatedAt: number;
  /** Which secret verifies the workspace's webhooks: its own, or the global one. Never the secret. */
  webhookSecret: "workspace" | "global";
}

/** What a connector needs to call 4Degrees for an account. */
export interface FourDegreesCredentials {
  accountId: string;
  apiKey: string;
  /** Known once the key was verified (`GET /me`); null for the secret fallback until then. */
  workspaceId: string | null;
  source: "d1" | "secret";
  /** Who the key writes as (`GET /me` at verification), from the same row; absent for the secret fallback. */
  actor?: { type: string; id: string | null } | null;
}

function summary(row: z.infer<typeof FourDegreesRowSchema>): FourDegreesAccountSummary {
  return {
    accountId: row.account_id,
    workspaceId: row.workspace_id,
    keyHint: row.key_hint,
    actor: row.actor_type ? { type: row.actor_type, id: row.actor_id } : null,
    verifiedAt: row.verified_at,
    updatedAt: row.updated_at,
    webhookSecret: row.webhook_secret_enc === null ? "global" : "workspace",
  };
}

async function readRow(db: D1Database, accountId: string): Promise<z.infer<typeof FourDegreesRowSchema> | null> {
  const row = await db.prepare("SELECT * FROM fourdegrees_accounts WHERE account_id = ?").bind(accountId).first();
  return row === null ? null : FourDegreesRowSchema.parse(row);
}

/** True when the `accounts` row exists. */
export async function accountExists(db: D1Database, accountId: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 AS x FROM accounts WHERE id = ?").bind(accountId).first()) !== null;
}

/**
 * Stores (or replaces) an account's verified 4Degrees key. Creates the `accounts` row when it does
 * not exist yet (named `accountName`). Throws `conflict` when the workspace already belongs to
 * another account (one workspace, one account), or when the account is already paired with another
 * workspace (its links point at that workspace's deals: delete the key first to re-pair).
 *
 * This is the only writer of "which 4Degrees workspace an account is"; readers use
 * `getFourDegreesAccount(…).workspaceId` and `accountForWorkspace`.
 */
export async function saveFourDegreesKey(
  db: D1Database,
  keys: readonly EncryptionKey[],
  input: {
    accountId: string;
    accountName: string;
    apiKey: string;
    workspaceId: string;
    actor: { type: string; id: string | null } | null;
    now?: number;
  },
): Promise<FourDegreesAccountSummary> {
  forgetConfig();
  const now = input.now ?? Date.now();
  const owner = await db
    .prepare("SELECT account_id FROM fourdegrees_accounts WHERE workspace_id = ?")
    .bind(input.workspaceId)
    .first<{ account_id: string }>();
  if (owner && owner.account_id !== input.accountId)
    throw new AppError(
      "conflict",
      `4Degrees workspace ${input.workspaceId} is already paired with account ${owner.account_id}`,
    );
  const current = await readRow(db, input.accountId);
  if (current && current.workspace_id !== input.workspaceId)
    throw new AppError(
      "conflict",
      `account ${input.accountId} is paired with 4Degrees workspace ${current.workspace_id}, and this key belongs to ${input.workspaceId}; delete the account's key first to pair it with another workspace`,
    );
  const sealed = await encryptSecret(keys, input.apiKey, aad(input.accountId));
  const keyId = keys[0]?.id ?? "";
  const conflict = (cause?: unknown) =>
    new AppError(
      "conflict",
      `4Degrees workspace ${input.workspaceId} or account ${input.accountId} is already paired otherwise (changed meanwhile); re-read and retry`,
      cause === undefined ? {} : { cause },
    );
  const write = db.batch([
    db
      .prepare(
        "INSERT INTO accounts (id, name, status, created_at, updated_at) VALUES (?, ?, 'active', ?, ?) ON CONFLICT (id) DO NOTHING",
      )
      .bind(input.accountId, input.accountName, now, now),
    db
      .prepare(
        `INSERT INTO fourdegrees_accounts (account_id, workspace_id, api_key_enc, key_id, key_hint, actor_type, actor_id, verified_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8)
         ON CONFLICT (account_id) DO UPDATE SET api_key_enc = ?3, key_id = ?4, key_hint = ?5, actor_type = ?6, actor_id = ?7, verified_at = ?8, updated_at = ?8
         WHERE fourdegrees_accounts.workspace_id = ?2`,
      )
      .bind(
        input.accountId,
        input.workspaceId,
        sealed,
        keyId,
        input.apiKey.slice(-4),
        input.actor?.type ?? null,
        input.actor?.id ?? null,
        now,
      ),
  ]);
  // The checks above can race a concurrent PUT: UNIQUE (workspace_id) and the upsert's WHERE settle it.
  await write.catch((err: unknown) => {
    throw err instanceof Error && /UNIQUE|constraint/i.test(err.message) ? conflict(err) : err;
  });
  const row = await readRow(db, input.accountId);
  if (!row) throw new AppError("internal", "4Degrees key row vanished after writing it");
  if (row.workspace_id !== input.workspaceId) throw conflict();
  return summary(row);
}

/** The token-free view of an account's 4Degrees key, or null. */
export async function getFourDegreesAccount(
  db: D1Database,
  accountId: string,
): Promise<FourDegreesAccountSummary | null> {
  const row = await readRow(db, accountId);
  return row ? summary(row) : null;
}

/** The account a 4Degrees workspace belongs to (webhook routing), or null. */
export async function accountForWorkspace(db: D1Database, workspaceId: string): Promise<string | null> {
  const row = await db
    .prepare("SELECT account_id FROM fourdegrees_accounts WHERE workspace_id = ?")
    .bind(workspaceId)
    .first<{ account_id: string }>();
  return row?.account_id ?? null;
}

/**
 * Sets (or, with null, clears) the webhook signing secret of an account's workspace, sealed with
 * the active key. Resolves false when the account has no 4Degrees row (its workspace is unknown).
 */
export async function setFourDegreesWebhookSecret(
  db: D1Database,
  keys: readonly EncryptionKey[],
  accountId: string,
  secret: string | null,
  now: number = Date.now(),
): Promise<boolean> {
  forgetConfig();
  const sealed = secret === null ? null : await encryptSecret(keys, secret, webhookAad(accountId));
  const res = await db
    .prepare("UPDATE fourdegrees_accounts SET webhook_secret_enc = ?, updated_at = ? WHERE account_id = ?")
    .bind(sealed, now, accountId)
    .run();
  return res.meta.changes > 0;
}

/**
 * The webhook signing secret of a workspace (decrypted), or null when the workspace is unknown or
 * has none (then the global secret applies).
 */
export async function webhookSecretForWorkspace(
  db: D1Database,
  keys: readonly EncryptionKey[],
  workspaceId: string,
): Promise<string | null> {
  const row = await db
    .prepare("SELECT account_id, webhook_secret_enc FROM fourdegrees_accounts WHERE workspace_id = ?")
    .bind(workspaceId)
    .first();
  if (row === null) return null;
  const parsed = z.object({ account_id: z.string(), webhook_secret_enc: z.string().nullable() }).parse(row);
  return webhookSecretOf(keys, parsed);
}

/** The decrypted webhook secret of a workspace's row (null: none, the global one applies). */
export async function webhookSecretOf(
  keys: readonly EncryptionKey[],
  row: { account_id: string; webhook_secret_enc: string | null } | null,
): Promise<string | null> {
  const sealed = row?.webhook_secret_enc ?? null;
  return row === null || sealed === null ? null : decryptSecret(keys, sealed, webhookAad(row.account_id));
}

/** Removes an account's key; resolves whether there was one. */
export async function deleteFourDegreesKey(db: D1Database, accountId: string): Promise<boolean> {
  forgetConfig();
  const res = await db.prepare("DELETE FROM fourdegrees_accounts WHERE account_id = ?").bind(accountId).run();
  return res.meta.changes > 0;
}

/**
 * The API key to use for an account: its D1 row (decrypted; re-encrypted with the active key
 * when an older key sealed it), else the `FOURDEGREES_API_KEY` secret, else `not_found`. `preread`
 * is the account's row read already (the configuration cache's), so it is not read again.
 */
export async function credentialsFor(
  db: D1Database,
  keys: readonly EncryptionKey[],
  accountId: string,
  fallbackApiKey: string | undefined,
  preread?: { row: FourDegreesRow | null },
): Promise<FourDegreesCredentials> {
  const row = preread ? preread.row : await readRow(db, accountId);
  if (row) {
    const apiKey = await decryptSecret(keys, row.api_key_enc, aad(accountId));
    if (needsReencryption(keys, row.api_key_enc)) {
      const resealed = await encryptSecret(keys, apiKey, aad(accountId));
      await db
        .prepare("UPDATE fourdegrees_accounts SET api_key_enc = ?, key_id = ? WHERE account_id = ? AND api_key_enc = ?")
        .bind(resealed, keys[0]?.id ?? "", accountId, row.api_key_enc)
        .run();
    }
    const actor = row.actor_type ? { type: row.actor_type, id: row.actor_id } : null;
    return { accountId, apiKey, workspaceId: row.workspace_id, source: "d1", actor };
  }
  if (fallbackApiKey) return { accountId, apiKey: fallbackApiKey, workspaceId: null, source: "secret" };
  throw new AppError(
    "not_found",
    `account ${accountId} has no 4Degrees API key (PUT /api/accounts/${accountId}/fourdegrees, or the FOURDEGREES_API_KEY secret)`,
  );
}
