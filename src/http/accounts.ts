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
 * The key itself is never answered or logged.
 */
import { Hono } from "hono";
import { z } from "zod";
import { pairFourDegreesAccount } from "../fourdegrees/wiring.ts";
import { AppError, zodIssues } from "../lib/errors.ts";
import { deleteFourDegreesKey, getFourDegreesAccount } from "../store/fourdegrees-accounts.ts";
import type { AppEnv } from "./context.ts";

/** Account ids are chosen by the operator: short, URL-safe. */
export const AccountIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "account ids are 1–64 characters of A–Z, a–z, 0–9, _ and -");

const Name = z.string().trim().min(1).max(200).optional();
const PutBody = z.union([
  z.object({ apiKey: z.string().trim().min(8, "apiKey looks too short").max(512), name: Name }).strict(),
  z.object({ useSecret: z.literal(true), name: Name }).strict(),
]);

function accountIdParam(raw: string): string {
  const parsed = AccountIdSchema.safeParse(raw);
  if (!parsed.success) throw new AppError("bad_request", parsed.error.issues[0]?.message ?? "invalid account id");
  return parsed.data;
}

export const accounts = new Hono<AppEnv>()
  .put("/accounts/:accountId/fourdegrees", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    const body = PutBody.safeParse(await c.req.json().catch(() => null));
    if (!body.success) throw new AppError("bad_request", "body must be {apiKey, name?} or {useSecret: true, name?}", { details: zodIssues(body.error) });
    const config = c.var.config;
    const apiKey = "apiKey" in body.data ? body.data.apiKey : config.FOURDEGREES_API_KEY;
    if (apiKey === undefined) throw new AppError("bad_request", "useSecret needs the FOURDEGREES_API_KEY secret, which this deployment does not set");
    const saved = await pairFourDegreesAccount(c.env, config, { accountId, accountName: body.data.name ?? accountId, apiKey });
    c.var.log.info({ event: "account.fourdegrees_key_set", account: accountId, workspace: saved.workspaceId, outcome: "ok" });
    return c.json({ account: saved });
  })
  .get("/accounts/:accountId/fourdegrees", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    const saved = await getFourDegreesAccount(c.env.DB, accountId);
    if (saved) return c.json({ account: { ...saved, source: "d1" } });
    if (c.var.config.FOURDEGREES_API_KEY) return c.json({ account: { accountId, source: "secret", keyHint: c.var.config.FOURDEGREES_API_KEY.slice(-4) } });
    throw new AppError("not_found", `account ${accountId} has no 4Degrees API key`);
  })
  .delete("/accounts/:accountId/fourdegrees", async (c) => {
    const accountId = accountIdParam(c.req.param("accountId"));
    if (!(await deleteFourDegreesKey(c.env.DB, accountId))) throw new AppError("not_found", `account ${accountId} has no stored 4Degrees API key`);
    c.var.log.info({ event: "account.fourdegrees_key_deleted", account: accountId, outcome: "ok" });
    return c.body(null, 204);
  });
