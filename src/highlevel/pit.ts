/**
 * A HighLevel location connected with a Private Integration Token (PIT) instead of an OAuth
 * install: what `POST /api/bootstrap` (and `npm start`) use to pre-connect the sandbox location.
 *
 * The token is stored exactly as an OAuth install stores an access token — encrypted under the
 * active `TOKEN_ENCRYPTION_KEY` with the token keeper's additional data (`tokenAad`, the one place
 * that label is defined), so the keeper decrypts it like any other connection. Nothing outside the
 * HighLevel/token modules needs to know how that ciphertext is bound to its row.
 */
import type { Config } from "../config.ts";
import { tokenAad } from "../gate/tokens.ts";
import { encryptSecret } from "../lib/crypto.ts";
import { getConnection, locationConnectionId, saveConnectionTokens } from "../store/connections.ts";

/**
 * Long-lived: a PIT does not expire on a schedule (it is rotated by a person); the far expiry keeps
 * the token keeper from trying to refresh it (a PIT has no refresh token).
 */
export const PIT_EXPIRY_MS = 10 * 365 * 86_400_000;

/**
 * Stores (or replaces) the connection of `locationId` with a Private Integration Token. Idempotent;
 * the token version is bumped so the token keeper drops any cached token of the connection.
 * Returns the connection id (`location:{locationId}`).
 */
export async function savePrivateIntegrationConnection(env: Pick<Env, "DB">, config: Pick<Config, "TOKEN_ENCRYPTION_KEY">, input: { locationId: string; token: string; companyId?: string | null; now?: number }): Promise<string> {
  const id = locationConnectionId(input.locationId);
  const existing = await getConnection(env.DB, id);
  const now = input.now ?? Date.now();
  await saveConnectionTokens(
    env.DB,
    {
      id,
      kind: "location",
      locationId: input.locationId,
      companyId: input.companyId ?? existing?.companyId ?? null,
      tokenSource: "refresh",
      scopes: [],
      accessTokenEnc: await encryptSecret(config.TOKEN_ENCRYPTION_KEY, input.token, tokenAad(id, "access")),
      refreshTokenEnc: null,
      keyId: config.TOKEN_ENCRYPTION_KEY[0]?.id ?? "",
      expiresAt: now + PIT_EXPIRY_MS,
      tokenVersion: (existing?.tokenVersion ?? 0) + 1,
      userId: null,
      appId: null,
    },
    now,
  );
  return id;
}
