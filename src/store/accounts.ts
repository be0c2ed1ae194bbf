/**
 * Accounts and their sync settings: `accounts` (0001: id, name, status), `account_settings`
 * (policies, test mode, mapping) and `account_locations` (the HighLevel locations an account pairs
 * with its 4Degrees workspace). Rows are parsed with zod; the mapping JSON is re-validated on every
 * read, so a hand-edited row fails loudly instead of syncing wrongly.
 *
 * The account's 4Degrees workspace has one owner: `fourdegrees_accounts.workspace_id`, written only
 * by `pairFourDegreesAccount` (src/fourdegrees/wiring.ts) after 4Degrees named the key's workspace.
 * This module only reads it (LEFT JOIN); the old `account_settings.workspace_id` column is no
 * longer written or read, so two places can never disagree about which workspace an account is.
 */
import * as z from "zod";
import { AppError } from "../lib/errors.ts";
import { MappingSchema, type Mapping } from "../domain/mapping-config.ts";
import { forgetConfig } from "./config-cache.ts";

export const ConflictPolicySchema = z.enum(["newest", "fourdegrees", "highlevel"]);
export const DeletePolicySchema = z.enum(["propagate", "archive", "ignore"]);

/**
 * The mass-delete guard: more than `maxDeletes` deletes, or more than `maxPercent` % of the
 * account's pairs, from one side within an hour puts the account's further deletes on hold.
 */
export const DeleteGuardSchema = z
  .object({
    maxDeletes: z.number().int().min(1, "maxDeletes must be at least 1").max(100_000),
    maxPercent: z.number().int().min(1, "maxPercent must be 1–100").max(100, "maxPercent must be 1–100"),
  })
  .strict();
export type DeleteGuard = z.infer<typeof DeleteGuardSchema>;
/** The guard's defaults (the columns' defaults in migrations/0118). */
export const DEFAULT_DELETE_GUARD: DeleteGuard = { maxDeletes: 10, maxPercent: 20 };

/** An account as the engine and the admin API see it. */
export interface Account {
  id: string;
  name: string;
  status: "active" | "paused";
  /** The paired 4Degrees workspace (`fourdegrees_accounts`), null until `pairFourDegreesAccount`. */
  workspaceId: string | null;
  locations: string[];
  conflictPolicy: z.infer<typeof ConflictPolicySchema>;
  deletePolicy: z.infer<typeof DeletePolicySchema>;
  testMode: boolean;
  readOnly: boolean;
  /** The mass-delete guard's thresholds (docs/sync.md "Mass-delete guard"). */
  deleteGuard: DeleteGuard;
  mapping: Mapping | null;
  mappingVersion: number;
  /** False when only the `accounts` row exists (e.g. made by the 4Degrees key endpoint). */
  configured: boolean;
  createdAt: number;
  updatedAt: number;
}

const Row = z.object({
  id: z.string(),
  name: z.string(),
  status: z.enum(["active", "paused"]),
  created_at: z.number(),
  updated_at: z.number(),
  workspace_id: z.string().nullable(),
  conflict_policy: ConflictPolicySchema.nullable(),
  delete_policy: DeletePolicySchema.nullable(),
  test_mode: z.number().nullable(),
  read_only: z.number().nullable(),
  delete_guard_max: z.number().nullable(),
  delete_guard_percent: z.number().nullable(),
  mapping_json: z.string().nullable(),
  mapping_version: z.number().nullable(),
  locations: z.string().nullable(),
});

/** An `Account` from a row of `SELECT` below (also src/store/account-config.ts): throws when it does not parse. */
export function accountFromRow(raw: unknown): Account {
  const row = Row.parse(raw);
  let mapping: Mapping | null = null;
  if (row.mapping_json) {
    const parsed = MappingSchema.safeParse(JSON.parse(row.mapping_json));
    if (!parsed.success)
      throw new AppError(
        "internal",
        `account ${row.id}: stored mapping no longer validates (${parsed.error.issues[0]?.message ?? "invalid"})`,
      );
    mapping = parsed.data;
  }
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    workspaceId: row.workspace_id,
    locations: row.locations ? row.locations.split(",").filter(Boolean).sort() : [],
    conflictPolicy: row.conflict_policy ?? "newest",
    deletePolicy: row.delete_policy ?? "archive",
    testMode: row.test_mode === 1,
    readOnly: row.read_only === 1,
    deleteGuard: {
      maxDeletes: row.delete_guard_max ?? DEFAULT_DELETE_GUARD.maxDeletes,
      maxPercent: row.delete_guard_percent ?? DEFAULT_DELETE_GUARD.maxPercent,
    },
    mapping,
    mappingVersion: row.mapping_version ?? 0,
    configured: row.conflict_policy !== null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const SELECT = `SELECT a.id, a.name, a.status, a.created_at, a.updated_at, f.workspace_id, s.conflict_policy, s.delete_policy,
  s.test_mode, s.read_only, s.delete_guard_max, s.delete_guard_percent, s.mapping_json, s.mapping_version,
  (SELECT group_concat(location_id) FROM account_locations l WHERE l.account_id = a.id) AS locations
  FROM accounts a LEFT JOIN account_settings s ON s.account_id = a.id LEFT JOIN fourdegrees_accounts f ON f.account_id = a.id`;

/** Input of `createAccount`. */
export interface NewAccount {
  id: string;
  name: string;
  /**
   * @deprecated Not stored: an account gets its workspace only from `pairFourDegreesAccount`.
   * Accepted (and ignored) so callers written before that change still compile; remove it.
   */
  workspaceId?: string | null;
  locations: string[];
  conflictPolicy?: Account["conflictPolicy"];
  deletePolicy?: Account["deletePolicy"];
  testMode?: boolean;
  readOnly?: boolean;
  deleteGuard?: DeleteGuard;
}

/**
 * Creates an account with its settings and locations in one batch (atomic in D1). Throws
 * `conflict` when the settings row or a location already belongs to an account. The 4Degrees
 * workspace is not set here: pair it with `pairFourDegreesAccount`.
 */
export async function createAccount(db: D1Database, input: NewAccount, now = Date.now()): Promise<Account> {
  forgetConfig();
  try {
    await db.batch([
      // The row may exist already (the 4Degrees key endpoint creates it): adopt it.
      db
        .prepare(
          "INSERT INTO accounts (id, name, status, created_at, updated_at) VALUES (?, ?, 'active', ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
        )
        .bind(input.id, input.name, now, now),
      db
        .prepare(
          `INSERT INTO account_settings (account_id, conflict_policy, delete_policy, test_mode, read_only, delete_guard_max,
           delete_guard_percent, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(
          input.id,
          input.conflictPolicy ?? "newest",
          input.deletePolicy ?? "archive",
          input.testMode ? 1 : 0,
          input.readOnly ? 1 : 0,
          (input.deleteGuard ?? DEFAULT_DELETE_GUARD).maxDeletes,
          (input.deleteGuard ?? DEFAULT_DELETE_GUARD).maxPercent,
          now,
        ),
      ...input.locations.map((loc) =>
        db
          .prepare("INSERT INTO account_locations (location_id, account_id, added_at) VALUES (?, ?, ?)")
          .bind(loc, input.id, now),
      ),
    ]);
  } catch (err) {
    if (err instanceof Error && /UNIQUE|PRIMARY KEY|constraint/i.test(err.message))
      throw new AppError(
        "conflict",
        `account ${input.id} or one of the locations ${input.locations.join(", ")} already belongs to an account`,
        { cause: err },
      );
    throw err;
  }
  const created = await getAccount(db, input.id);
  if (!created) throw new AppError("internal", `account ${input.id} vanished after insert`);
  return created;
}

export async function getAccount(db: D1Database, id: string): Promise<Account | null> {
  const row = await db.prepare(`${SELECT} WHERE a.id = ?`).bind(id).first();
  return row ? accountFromRow(row) : null;
}

/** Like `getAccount`, but a missing account is a `not_found` error. */
export async function requireAccount(db: D1Database, id: string): Promise<Account> {
  const account = await getAccount(db, id);
  if (!account) throw new AppError("not_found", `no account ${id}`);
  return account;
}

export async function listAccounts(db: D1Database): Promise<Account[]> {
  const { results } = await db.prepare(`${SELECT} ORDER BY a.created_at, a.id`).all();
  return results.map(accountFromRow);
}

/** The account a HighLevel location belongs to. */
export async function accountIdForLocation(db: D1Database, locationId: string): Promise<string | null> {
  const row = await db
    .prepare("SELECT account_id FROM account_locations WHERE location_id = ?")
    .bind(locationId)
    .first<{ account_id: string }>();
  return row?.account_id ?? null;
}

/** Settings a caller may change. */
export interface SettingsPatch {
  name?: string;
  conflictPolicy?: Account["conflictPolicy"];
  deletePolicy?: Account["deletePolicy"];
  testMode?: boolean;
  readOnly?: boolean;
  deleteGuard?: DeleteGuard;
  status?: Account["status"];
  locations?: string[];
}

/**
 * The statement that gives an account its `account_settings` row (defaults) when it has none — an
 * `accounts` row made by the 4Degrees key endpoint has no settings yet, and an `UPDATE` of a
 * missing row would change nothing without saying so. Run it first in the same batch.
 */
function ensureSettingsRow(db: D1Database, id: string, now: number): D1PreparedStatement {
  return db
    .prepare("INSERT INTO account_settings (account_id, updated_at) VALUES (?, ?) ON CONFLICT (account_id) DO NOTHING")
    .bind(id, now);
}

/**
 * Changes an account's name, status, settings and locations in one batch. An account without a
 * settings row gets one (with the defaults) before its settings change.
 */
export async function updateAccount(
  db: D1Database,
  id: string,
  patch: SettingsPatch,
  now = Date.now(),
): Promise<Account> {
  forgetConfig();
  await requireAccount(db, id);
  const stmts: D1PreparedStatement[] = [];
  if (patch.name !== undefined || patch.status !== undefined)
    stmts.push(
      db
        .prepare(
          "UPDATE accounts SET name = COALESCE(?, name), status = COALESCE(?, status), updated_at = ? WHERE id = ?",
        )
        .bind(patch.name ?? null, patch.status ?? null, now, id),
    );
  const sets: string[] = [];
  const values: Array<string | number | null> = [];
  if (patch.conflictPolicy !== undefined) {
    sets.push("conflict_policy = ?");
    values.push(patch.conflictPolicy);
  }
  if (patch.deletePolicy !== undefined) {
    sets.push("delete_policy = ?");
    values.push(patch.deletePolicy);
  }
  if (patch.testMode !== undefined) {
    sets.push("test_mode = ?");
    values.push(patch.testMode ? 1 : 0);
  }
  if (patch.readOnly !== undefined) {
    sets.push("read_only = ?");
    values.push(patch.readOnly ? 1 : 0);
  }
  if (patch.deleteGuard !== undefined) {
    sets.push("delete_guard_max = ?", "delete_guard_percent = ?");
    values.push(patch.deleteGuard.maxDeletes, patch.deleteGuard.maxPercent);
  }
  if (sets.length > 0)
    stmts.push(
      ensureSettingsRow(db, id, now),
      db
        .prepare(`UPDATE account_settings SET ${sets.join(", ")}, updated_at = ? WHERE account_id = ?`)
        .bind(...values, now, id),
    );
  if (patch.locations !== undefined) {
    stmts.push(db.prepare("DELETE FROM account_locations WHERE account_id = ?").bind(id));
    for (const loc of patch.locations)
      stmts.push(
        db
          .prepare("INSERT INTO account_locations (location_id, account_id, added_at) VALUES (?, ?, ?)")
          .bind(loc, id, now),
      );
  }
  if (stmts.length > 0) {
    try {
      await db.batch(stmts);
    } catch (err) {
      if (err instanceof Error && /UNIQUE|PRIMARY KEY|constraint/i.test(err.message))
        throw new AppError("conflict", "that location already belongs to another account", { cause: err });
      throw err;
    }
  }
  return requireAccount(db, id);
}

/**
 * Stores a validated mapping; bumps `mapping_version`. An account without a settings row gets one
 * (defaults) in the same batch; a missing account is `not_found`, never a silent no-op.
 */
export async function saveMapping(db: D1Database, id: string, mapping: Mapping, now = Date.now()): Promise<Account> {
  forgetConfig();
  await requireAccount(db, id);
  const res = await db.batch([
    ensureSettingsRow(db, id, now),
    db
      .prepare(
        "UPDATE account_settings SET mapping_json = ?, mapping_version = mapping_version + 1, updated_at = ? WHERE account_id = ?",
      )
      .bind(JSON.stringify(mapping), now, id),
  ]);
  if ((res.at(-1)?.meta.changes ?? 0) === 0)
    throw new AppError("not_found", `no account ${id} (deleted while saving its mapping)`);
  return requireAccount(db, id);
}

/** Deletes an account and everything keyed by it. */
export async function deleteAccount(db: D1Database, id: string): Promise<boolean> {
  forgetConfig();
  const tables = [
    "account_locations",
    "links",
    "tombstones",
    "note_links",
    "attachment_links",
    "write_ledger",
    "pending_records",
    "sync_events",
    "sync_failures",
    "review_items",
    "backfill_runs",
    "reconcile_cursors",
    "link_verify_cursors",
    "attachment_scan_cursors",
    "held_deletes",
    "activity_hourly",
  ];
  const res = await db.batch([
    ...tables.map((t) => db.prepare(`DELETE FROM ${t} WHERE account_id = ?`).bind(id)),
    db.prepare("DELETE FROM account_settings WHERE account_id = ?").bind(id),
    db.prepare("UPDATE connections SET account_id = NULL WHERE account_id = ?").bind(id),
    db.prepare("DELETE FROM accounts WHERE id = ?").bind(id),
  ]);
  return (res.at(-1)?.meta.changes ?? 0) > 0;
}
