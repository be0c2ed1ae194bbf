/**
 * A HighLevel location connected with a Private Integration Token (PIT) instead of an OAuth
 * install: what `POST /api/bootstrap` (and `npm start`) use to pre-connect the sandbox location.
 *
 * The token goes through the location's gate (`installTokens`), the one writer of connection
 * tokens: the gate encrypts it, keeps its own copy current and writes D1. A PIT written to D1
 * alone would be shadowed by the gate's copy of an earlier token.
 */
import { tokenGate } from "../gate/client.ts";
import { getConnection, locationConnectionId } from "../store/connections.ts";

/**
 * Long-lived: a PIT does not expire on a schedule (it is rotated by a person); the far expiry keeps
 * the token keeper from trying to refresh it (a PIT has no refresh token).
 */
export const PIT_EXPIRY_MS = 10 * 365 * 86_400_000;

/**
 * Stores (or replaces) the connection of `locationId` with a Private Integration Token. Idempotent;
 * the gate bumps the token version, so a token handed out before is no longer the current one.
 * Returns the connection id (`location:{locationId}`).
 */
export async function savePrivateIntegrationConnection(
  env: Pick<Env, "DB" | "GATE">,
  input: { locationId: string; token: string; companyId?: string | null },
): Promise<string> {
  const id = locationConnectionId(input.locationId);
  const existing = await getConnection(env.DB, id);
  await tokenGate(env, id).installTokens({
    connectionId: id,
    kind: "location",
    locationId: input.locationId,
    companyId: input.companyId ?? existing?.companyId ?? null,
    tokenSource: "refresh",
    accessToken: input.token,
    refreshToken: null,
    expiresInSeconds: PIT_EXPIRY_MS / 1000,
    scopes: [],
    userId: null,
    appId: null,
  });
  return id;
}
