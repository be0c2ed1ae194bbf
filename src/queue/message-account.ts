/**
 * What a queue message that will not be processed is filed under: its account (named directly, or
 * through its location, workspace or notification rule) and the webhook receipt it claimed.
 */
import { accountIdForLocation } from "../store/accounts.ts";
import { accountExists, accountForWorkspace } from "../store/fourdegrees-accounts.ts";
import { getRule } from "../store/notifications.ts";
import { accountDatabase, configuredShards } from "../store/shards.ts";
import { QueueMessageSchema, type QueueMessage } from "./messages.ts";

const str = (v: unknown): string | null => (typeof v === "string" && v.length > 0 && v.length <= 200 ? v : null);
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** The account a parsed message concerns: named directly, or through its location, workspace or rule. */
async function accountOfParsed(db: D1Database, msg: QueueMessage): Promise<string | null> {
  switch (msg.kind) {
    case "highlevel.webhook": {
      const locationId = msg.locationId ?? str(msg.body["locationId"]);
      return locationId ? accountIdForLocation(db, locationId) : null;
    }
    case "fourdegrees.webhook":
      return accountForWorkspace(db, msg.workspaceId);
    case "notify.deliver":
      return (await getRule(db, msg.ruleId))?.accountId ?? null;
    default:
      return msg.accountId;
  }
}

/**
 * The existing account a queue message body concerns, or null (the unassigned bucket). A body that
 * fails the schema is read for the same fields (`accountId`, `locationId`, `workspaceId`, at the top
 * or in its `body`), so even a message this version cannot parse lands under its account when it
 * can. Throws when D1 fails (the caller retries).
 */
export async function accountOfMessage(db: D1Database, body: unknown): Promise<string | null> {
  const parsed = QueueMessageSchema.safeParse(body);
  let candidate: string | null;
  if (parsed.success) candidate = await accountOfParsed(db, parsed.data);
  else {
    const top = obj(body);
    const inner = obj(top["body"]);
    const location = str(top["locationId"]) ?? str(inner["locationId"]);
    const workspace = str(top["workspaceId"]) ?? str(inner["workspace_id"]);
    candidate =
      str(top["accountId"]) ??
      (location ? await accountIdForLocation(db, location) : null) ??
      (workspace ? await accountForWorkspace(db, workspace) : null);
  }
  return candidate !== null && (await accountExists(db, candidate)) ? candidate : null;
}

/**
 * The environment a message's handler runs with: `env` itself, unless the message's account is
 * routed to another D1 database (src/store/shards.ts) — then `env` with `DB` that database, so
 * every statement of the handler reads and writes the account's own database. The account is found
 * in the main database (the directory). No shard bound: `env`, without a query.
 */
export async function envForMessage(env: Env, msg: QueueMessage): Promise<Env> {
  if (configuredShards(env).length === 1) return env;
  const accountId = await accountOfParsed(env.DB, msg);
  if (accountId === null) return env;
  const db = await accountDatabase(env, accountId);
  return db === env.DB ? env : { ...env, DB: db };
}

/** The receipt a webhook message claimed, if it is one. */
export function receiptKeyOf(msg: QueueMessage): { provider: "highlevel" | "fourdegrees"; webhookId: string } | null {
  if (msg.kind === "highlevel.webhook") return { provider: "highlevel", webhookId: msg.webhookId };
  if (msg.kind === "fourdegrees.webhook") return { provider: "fourdegrees", webhookId: msg.webhookId };
  return null;
}
