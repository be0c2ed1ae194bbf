/**
 * An account's whole sync configuration in one D1 statement: the account (settings, mapping,
 * workspace), its locations with their connection's scopes, its 4Degrees key row and its enabled
 * automation and notification rules. D1 bills each row a statement touches, and a cold isolate's
 * first change used to read these in nine statements, several of them the same row (the key row
 * for the workspace route, the webhook secret and the credentials; the location row for the route
 * and the account). Read together, each row is read once, and every configuration cache entry of
 * the account is filled from that one read (src/store/config-cache.ts `cachedConfigSet`),
 * whichever entry missed first: the 4Degrees ingress's secret, a location's route, the record job's
 * account. docs/benchmarks.md "Storage per change" has the figures.
 *
 * The parts are parsed by their own modules' row parsers, so each answer equals what the separate
 * reads (`getAccount`, `accountIdForLocation`, `accountForWorkspace`, `getConnection(…).scopes`,
 * `listAutomations`/`listRules` of enabled rules, the key row) return.
 */
import * as z from "zod";
import { accountFromRow, type Account } from "./accounts.ts";
import { automationRuleFromRow, type AutomationRule } from "./automations.ts";
import { cachedConfigSet } from "./config-cache.ts";
import { FourDegreesRowSchema, type FourDegreesRow } from "./fourdegrees-accounts.ts";
import { notificationRuleFromRow, type NotificationRule } from "./notifications.ts";

/** The configuration cache's keys (one account's entries, and the two routes to it). */
export const configKeys = {
  account: (id: string) => `account:${id}`,
  ofLocation: (locationId: string) => `account-of-location:${locationId}`,
  ofWorkspace: (workspaceId: string) => `account-of-workspace:${workspaceId}`,
  workspaceRow: (workspaceId: string) => `fourdegrees-workspace:${workspaceId}`,
  keyRow: (id: string) => `fourdegrees-row:${id}`,
  scopes: (locationId: string) => `connection-scopes:${locationId}`,
  automations: (id: string) => `automation-rules:${id}`,
  notifications: (id: string) => `notification-rules:${id}`,
} as const;

/** Everything the sync path reads about one account. */
export interface AccountConfig {
  account: Account;
  /** The 4Degrees key row (sealed key and webhook secret), null when the account has none. */
  keyRow: FourDegreesRow | null;
  /** Each location's connection scopes, null when the location has no connection row. */
  scopes: Map<string, string[] | null>;
  automations: AutomationRule[];
  notifications: NotificationRule[];
}

/** `listAutomations`' limit, which the sync path read through. */
const MAX_AUTOMATIONS = 200;
const AUTOMATION_COLUMNS = ["id", "account_id", "name", "enabled", "rule_json", "created_at", "updated_at"];
const NOTIFICATION_COLUMNS = [
  "id",
  "account_id",
  "name",
  "trigger",
  "params_json",
  "target_kind",
  "target_url_enc",
  "target_hint",
  "signing_secret_enc",
  "key_id",
  "enabled",
  "created_at",
  "updated_at",
];
const jsonRow = (alias: string, columns: string[]) =>
  `json_object(${columns.map((c) => `'${c}', ${alias}.${c}`).join(", ")})`;

/**
 * The statement's columns; `FROM` and `WHERE` depend on the route (each route's row read once).
 * The rules come unordered and are sorted here: an `ORDER BY` in the subquery costs D1 a row read
 * even when the account has no rule. `listAutomations` answers the first 200; so does `configFromRow`.
 */
const COLUMNS = `a.id, a.name, a.status, a.created_at, a.updated_at, f.workspace_id, s.conflict_policy, s.delete_policy,
  s.test_mode, s.read_only, s.delete_guard_max, s.delete_guard_percent, s.mapping_json, s.mapping_version,
  f.account_id AS f_account_id, f.api_key_enc AS f_api_key_enc, f.key_id AS f_key_id, f.key_hint AS f_key_hint,
  f.actor_type AS f_actor_type, f.actor_id AS f_actor_id, f.verified_at AS f_verified_at, f.created_at AS f_created_at,
  f.updated_at AS f_updated_at, f.webhook_secret_enc AS f_webhook_secret_enc,
  (SELECT json_group_array(json_object('location_id', l.location_id, 'scopes', c.scopes)) FROM account_locations l
    LEFT JOIN connections c ON c.id = 'location:' || l.location_id WHERE l.account_id = a.id) AS locations_json,
  (SELECT json_group_array(${jsonRow("r", AUTOMATION_COLUMNS)}) FROM automation_rules r
    WHERE r.account_id = a.id AND r.enabled = 1) AS automations_json,
  (SELECT json_group_array(${jsonRow("n", NOTIFICATION_COLUMNS)}) FROM notification_rules n
    WHERE n.account_id = a.id AND n.enabled = 1) AS notifications_json`;
const JOINS = "LEFT JOIN account_settings s ON s.account_id = a.id";

const SQL = {
  account: `SELECT ${COLUMNS} FROM accounts a ${JOINS} LEFT JOIN fourdegrees_accounts f ON f.account_id = a.id WHERE a.id = ?`,
  workspace: `SELECT ${COLUMNS} FROM fourdegrees_accounts f JOIN accounts a ON a.id = f.account_id ${JOINS} WHERE f.workspace_id = ?`,
  location: `SELECT ${COLUMNS} FROM account_locations lr JOIN accounts a ON a.id = lr.account_id ${JOINS}
    LEFT JOIN fourdegrees_accounts f ON f.account_id = a.id WHERE lr.location_id = ?`,
} as const;

const Extra = z.object({
  f_account_id: z.string().nullable(),
  locations_json: z.string(),
  automations_json: z.string(),
  notifications_json: z.string(),
});
const Location = z.object({ location_id: z.string(), scopes: z.string().nullable() });
const byCreated = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function configFromRow(raw: Record<string, unknown>): AccountConfig {
  const extra = Extra.parse(raw);
  const locations = z.array(Location).parse(JSON.parse(extra.locations_json));
  const account = accountFromRow({ ...raw, locations: locations.map((l) => l.location_id).join(",") });
  const keyRow =
    extra.f_account_id === null
      ? null
      : FourDegreesRowSchema.parse({
          account_id: extra.f_account_id,
          workspace_id: raw["workspace_id"],
          api_key_enc: raw["f_api_key_enc"],
          key_id: raw["f_key_id"],
          key_hint: raw["f_key_hint"],
          actor_type: raw["f_actor_type"],
          actor_id: raw["f_actor_id"],
          verified_at: raw["f_verified_at"],
          created_at: raw["f_created_at"],
          updated_at: raw["f_updated_at"],
          webhook_secret_enc: raw["f_webhook_secret_enc"],
        });
  const rows = (json: string) => z.array(z.unknown()).parse(JSON.parse(json));
  return {
    account,
    keyRow,
    scopes: new Map(
      locations.map((l) => [l.location_id, l.scopes === null ? null : l.scopes.split(/\s+/).filter(Boolean)]),
    ),
    automations: rows(extra.automations_json).map(automationRuleFromRow).sort(byCreated).slice(0, MAX_AUTOMATIONS),
    notifications: rows(extra.notifications_json).map(notificationRuleFromRow).sort(byCreated),
  };
}

/** Reads one account's configuration by its id, its 4Degrees workspace or one of its locations; null: no such account. */
export async function readAccountConfig(
  db: D1Database,
  by: { accountId: string } | { workspaceId: string } | { locationId: string },
): Promise<AccountConfig | null> {
  const [sql, value] =
    "accountId" in by
      ? [SQL.account, by.accountId]
      : "workspaceId" in by
        ? [SQL.workspace, by.workspaceId]
        : [SQL.location, by.locationId];
  const row = await db.prepare(sql).bind(value).first<Record<string, unknown>>();
  return row === null ? null : configFromRow(row);
}

/** Every cache entry one read answers. */
function entriesOf(config: AccountConfig): Map<string, unknown> {
  const id = config.account.id;
  const entries = new Map<string, unknown>([
    [configKeys.account(id), config.account],
    [configKeys.keyRow(id), config.keyRow],
    [configKeys.automations(id), config.automations],
    [configKeys.notifications(id), config.notifications],
  ]);
  for (const [location, scopes] of config.scopes) {
    entries.set(configKeys.ofLocation(location), id);
    entries.set(configKeys.scopes(location), scopes);
  }
  if (config.keyRow) {
    entries.set(configKeys.ofWorkspace(config.keyRow.workspace_id), id);
    entries.set(configKeys.workspaceRow(config.keyRow.workspace_id), config.keyRow);
  }
  return entries;
}

const loadBy =
  (db: D1Database, by: Parameters<typeof readAccountConfig>[1]) => async (): Promise<ReadonlyMap<string, unknown>> => {
    const config = await readAccountConfig(db, by);
    return config ? entriesOf(config) : new Map();
  };

/** The account (cached; its whole configuration is read and kept on a miss). */
export function cachedAccount(db: D1Database, accountId: string): Promise<Account | null> {
  return cachedConfigSet<Account>(configKeys.account(accountId), loadBy(db, { accountId }));
}

/** The id of the account a HighLevel location belongs to (cached). */
export function cachedAccountIdOfLocation(db: D1Database, locationId: string): Promise<string | null> {
  return cachedConfigSet<string>(configKeys.ofLocation(locationId), loadBy(db, { locationId }));
}

/** The id of the account paired with a 4Degrees workspace (cached). */
export function cachedAccountIdOfWorkspace(db: D1Database, workspaceId: string): Promise<string | null> {
  return cachedConfigSet<string>(configKeys.ofWorkspace(workspaceId), loadBy(db, { workspaceId }));
}

/** The 4Degrees key row of the account paired with a workspace (its webhook secret), cached. */
export function cachedWorkspaceKeyRow(db: D1Database, workspaceId: string): Promise<FourDegreesRow | null> {
  return cachedConfigSet<FourDegreesRow>(configKeys.workspaceRow(workspaceId), loadBy(db, { workspaceId }));
}

/** The account's 4Degrees key row (cached), null when it has none. */
export function cachedKeyRow(db: D1Database, accountId: string): Promise<FourDegreesRow | null> {
  return cachedConfigSet<FourDegreesRow>(configKeys.keyRow(accountId), loadBy(db, { accountId }));
}

/** The recorded scopes of a location's connection (cached); null when there is no connection row. */
export function cachedConnectionScopes(db: D1Database, locationId: string): Promise<string[] | null> {
  return cachedConfigSet<string[]>(configKeys.scopes(locationId), loadBy(db, { locationId }));
}

/** The account's enabled automation rules (cached). */
export async function cachedAutomationRules(db: D1Database, accountId: string): Promise<AutomationRule[]> {
  return (await cachedConfigSet<AutomationRule[]>(configKeys.automations(accountId), loadBy(db, { accountId }))) ?? [];
}

/** The account's enabled notification rules (cached). */
export async function cachedNotificationRules(db: D1Database, accountId: string): Promise<NotificationRule[]> {
  return (
    (await cachedConfigSet<NotificationRule[]>(configKeys.notifications(accountId), loadBy(db, { accountId }))) ?? []
  );
}
