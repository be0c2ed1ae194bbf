/**
 * Admin API (mounted under `/api`, behind `adminAuth`): an account's 4Degrees API key.
 *
 * - `PUT /api/accounts/{accountId}/fourdegrees` `{apiKey, name?}`: checks the key with 4Degrees
 *   (`GET /me`, which also names the workspace), stores it encrypted, creates the account when new.
 *   `{useSecret: true, name?}` does the same with the `FOURDEGREES_API_KEY` secret (a single-account
 *   deployment), so its workspace is recorded too.
 *
 * Which 4Degrees workspace an account is: this endpoint is its only writer (`fourdegrees_accounts.
 * workspace_id`, proven by `GET /me` with the account's key); everything else reads it
 * (`getFourDegreesAccount`, `accountForWorkspace`). An account keeps its workspace: a key of another
 * workspace is a 409 until the key is deleted (its links point at that workspace's deals).
 * - `GET /api/accounts/{accountId}/fourdegrees`: the workspace, a 4-character hint, when verified.
 * - `DELETE /api/accounts/{accountId}/fourdegrees`: forgets the key.
 * - `PUT /api/accounts/{accountId}/fourdegrees/webhook-secret` `{secret: "whsec_…"}`: the
 *   workspace's own webhook signing secret (stored encrypted); from then on only it verifies the
 *   workspace's deliveries. `DELETE` on the same path goes back to the global
 *   `FOURDEGREES_WEBHOOK_SECRET`. Needs the account's stored key (it names the workspace).
 * The key and the secret are never answered or logged.
 */
import { Hono, type Context } from "hono";
import * as z from "zod";
import { webhookKeyBytes } from "../fourdegrees/webhook.ts";
import { pairFourDegreesAccount } from "../fourdegrees/wiring.ts";
import { AppError, zodIssues } from "../lib/errors.ts";
import {
  deleteFourDegreesKey,
  getFourDegreesAccount,
  setFourDegreesWebhookSecret,
} from "../store/fourdegrees-accounts.ts";
import type { AppEnv } from "./context.ts";
import { requestScope } from "./scope.ts";
import { forgetWorkspaceSecret } from "./webhooks-fourdegrees.ts";

/** Account ids are chosen by the operator: short, URL-safe. */
export const AccountIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "account ids are 1–64 characters of A–Z, a–z, 0–9, _ and -");

const Name = z.string().trim().min(1).max(200).optional();
const PutBody = z.union([
  z.object({ apiKey: z.string().trim().min(8, "apiKey looks too short").max(512), name: Name }).strict(),
  z.object({ useSecret: z.literal(true), name: Name }).strict(),
]);

/** A Standard Webhooks secret as 4Degrees shows it: `whsec_` and the base64 of at least 16 bytes. */
const WebhookSecretBody = z
  .object({
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, "secret must be whsec_<base64>, as 4Degrees shows it")
      .refine((s) => {
        try {
          return webhookKeyBytes(s).length >= 16;
        } catch {
          return false;
        }
      }, "secret must decode to at least 16 bytes"),
  })
  .strict();

function accountIdParam(raw: string): string {
  const parsed = AccountIdSchema.safeParse(raw);
  if (!parsed.success) throw new AppError("bad_request", parsed.error.issues[0]?.message ?? "invalid account id");
  return parsed.data;
}

export const accounts = new Hono<AppEnv>()
  .put("/accounts/:accountId/fourdegrees", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    const body = PutBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success)
      throw new AppError("bad_request", "body must be {apiKey, name?} or {useSecret: true, name?}", {
        details: zodIssues(body.error),
      });
    const config = c.var.config;
    // The deployment's own key would pair a HighLevel user's account with the operator's workspace.
    if (!("apiKey" in body.data) && requestScope(c).kind !== "operator")
      throw new AppError("forbidden", "useSecret is for the operator only: enter the workspace's API key");
    const apiKey = "apiKey" in body.data ? body.data.apiKey : config.FOURDEGREES_API_KEY;
    if (apiKey === undefined)
      throw new AppError(
        "bad_request",
        "useSecret needs the FOURDEGREES_API_KEY secret, which this deployment does not set",
      );
    const saved = await pairFourDegreesAccount(c.env, config, {
      accountId,
      accountName: body.data.name ?? accountId,
      apiKey,
    });
    c.var.log.info({
      event: "account.fourdegrees_key_set",
      account: accountId,
      workspace: saved.workspaceId,
      outcome: "ok",
    });
    return c.json({ account: saved });
  })
  .get("/accounts/:accountId/fourdegrees", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    const saved = await getFourDegreesAccount(c.env.DB, accountId);
    if (saved) return c.json({ account: { ...saved, source: "d1" } });
    if (c.var.config.FOURDEGREES_API_KEY)
      return c.json({ account: { accountId, source: "secret", keyHint: c.var.config.FOURDEGREES_API_KEY.slice(-4) } });
    throw new AppError("not_found", `account ${accountId} has no 4Degrees API key`);
  })
  .delete("/accounts/:accountId/fourdegrees", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    if (!(await deleteFourDegreesKey(c.env.DB, accountId)))
      throw new AppError("not_found", `account ${accountId} has no stored 4Degrees API key`);
    c.var.log.info({ event: "account.fourdegrees_key_deleted", account: accountId, outcome: "ok" });
    return c.body(null, 204);
  })
  .put("/accounts/:accountId/fourdegrees/webhook-secret", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    const body = WebhookSecretBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success) {
      throw new AppError("bad_request", 'body must be {secret: "whsec_…"}', { details: zodIssues(body.error) });
    }
    return c.json({ account: await setWebhookSecret(c, accountId, body.data.secret) });
  })
  .delete("/accounts/:accountId/fourdegrees/webhook-secret", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    return c.json({ account: await setWebhookSecret(c, accountId, null) });
  });

/** Stores (or clears) the account's workspace webhook secret; answers the summary, never the secret. */
async function setWebhookSecret(c: Context<AppEnv>, accountId: string, secret: string | null) {
  const stored = await setFourDegreesWebhookSecret(c.env.DB, c.var.config.TOKEN_ENCRYPTION_KEY, accountId, secret);
  const saved = stored ? await getFourDegreesAccount(c.env.DB, accountId) : null;
  if (!saved) {
    const hint = `PUT /api/accounts/${accountId}/fourdegrees first (its key names the workspace)`;
    throw new AppError("not_found", `account ${accountId} has no stored 4Degrees API key: ${hint}`);
  }
  forgetWorkspaceSecret(saved.workspaceId);
  const event = `account.fourdegrees_webhook_secret_${secret === null ? "cleared" : "set"}`;
  c.var.log.info({ event, account: accountId, workspace: saved.workspaceId, outcome: "ok" });
  return saved;
}
