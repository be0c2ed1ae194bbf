/**
 * The records of the ASSUMED 4Degrees partner contract (../shared/reference/fourdegrees.md) as the
 * sandbox stores and serves them, and the zod schemas of what a client may write.
 *
 * Wire conventions: snake_case, RFC 3339 UTC timestamps, opaque prefixed ids (`deal_…`, `pl_…`,
 * `st_…`, `usr_…`, `note_…`, `ct_…`, `att_…`, `pr_…`, `rem_…`), money as `{amount_minor, currency}`
 * (never floats).
 */
import { z } from "zod";

export type StageKind = "open" | "won" | "lost";
export type ActorType = "user" | "api_key" | "automation";

/** Who made a change; every mutation records one and webhooks carry it. */
export interface Actor {
  type: ActorType;
  id: string;
}

export interface Money {
  amount_minor: number;
  currency: string;
}

export interface Workspace {
  id: string;
  name: string;
  currency: string;
}

export interface User {
  id: string;
  name: string;
  email: string;
  role: "admin" | "member";
}

export interface Stage {
  id: string;
  name: string;
  position: number;
  kind: StageKind;
}

export interface Pipeline {
  id: string;
  name: string;
  stages: Stage[];
}

/** Custom field types of a deal list (formula and linked_deals are read-only, as in 4Degrees). */
export type FieldType =
  | "text"
  | "number"
  | "currency"
  | "percentage"
  | "date"
  | "single_select"
  | "multi_select"
  | "contact"
  | "formula"
  | "linked_deals";

export const READ_ONLY_FIELD_TYPES: ReadonlySet<FieldType> = new Set(["formula", "linked_deals"]);

export interface FieldDef {
  id: string;
  pipeline_id: string;
  name: string;
  type: FieldType;
  read_only: boolean;
  required: boolean;
  /** Options of a single/multi select; values must match one exactly. */
  options?: string[];
}

export type FieldValue = string | number | boolean | null | string[];

export interface Company {
  id: string;
  name: string;
  domain: string | null;
}

export interface Contact {
  id: string;
  name: string;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  phone: string | null;
  company_id: string | null;
  created_at: string;
  updated_at: string;
}

/** A workspace's reason for passing on a deal (HighLevel's "lost reason"); assumed contract. */
export interface PassReason {
  id: string;
  name: string;
}

export interface ExternalRef {
  system: string;
  id: string;
}

/** A deal as served (key order as in the contract). */
export interface Deal {
  id: string;
  version: number;
  name: string;
  pipeline_id: string;
  stage_id: string;
  /** Derived from the stage's kind; read-only. */
  status: StageKind;
  /** Set only while the deal is in a lost-kind stage (cleared when it leaves one). */
  pass_reason_id: string | null;
  pass_reason_text: string | null;
  owner_id: string | null;
  /** The deal team: user ids besides the owner. */
  team_ids: string[];
  value: Money | null;
  expected_close_date: string | null;
  company_id: string | null;
  contact_ids: string[];
  tags: string[];
  fields: Record<string, FieldValue>;
  external_refs: ExternalRef[];
  created_at: string;
  updated_at: string;
  archived_at: string | null;
}

export interface Note {
  id: string;
  deal_id: string;
  body: string;
  author_id: string | null;
  created_at: string;
  updated_at: string;
}

/** A file attached to a deal; `download_url` is signed and expires (null in `attachment.deleted`). */
export interface Attachment {
  id: string;
  deal_id: string;
  file_name: string;
  content_type: string;
  size: number;
  author_id: string | null;
  created_at: string;
  download_url: string | null;
}

/** A reminder on a deal (4Degrees' "Create Reminder" automation action); assumed contract. */
export interface Reminder {
  id: string;
  deal_id: string;
  title: string;
  body: string | null;
  due_at: string;
  assignee_id: string | null;
  created_by: Actor;
  created_at: string;
  completed_at: string | null;
}

/** Deal properties a client may never write (422 `read_only_field`). */
export const DEAL_READ_ONLY_KEYS: ReadonlySet<string> = new Set([
  "id",
  "version",
  "status",
  "created_at",
  "updated_at",
  "archived_at",
]);

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date as YYYY-MM-DD")
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
  }, "is not a calendar date");

/** Money in minor units: an integer and an ISO 4217 code. */
export const MoneySchema = z
  .object({
    amount_minor: z
      .number()
      .int("must be an integer number of minor units (no floats)")
      .min(-9_007_199_254_740_991)
      .max(9_007_199_254_740_991),
    currency: z.string().regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as USD"),
  })
  .strict();

export const FieldValueSchema = z.union([
  z.string().max(10_000),
  z.number(),
  z.boolean(),
  z.null(),
  z.array(z.string().max(1_000)).max(200),
]);

const ExternalRefSchema = z.object({ system: z.string().min(1).max(64), id: z.string().min(1).max(255) }).strict();

const writable = {
  name: z.string().trim().min(1, "must not be empty").max(500),
  pipeline_id: z.string().min(1),
  stage_id: z.string().min(1),
  owner_id: z.string().min(1).nullable(),
  team_ids: z.array(z.string().min(1)).max(50),
  pass_reason_id: z.string().min(1).nullable(),
  pass_reason_text: z.string().trim().min(1, "must not be empty (send null to clear it)").max(1_000).nullable(),
  value: MoneySchema.nullable(),
  expected_close_date: isoDate.nullable(),
  company_id: z.string().min(1).nullable(),
  contact_ids: z.array(z.string().min(1)).max(100),
  tags: z.array(z.string().trim().min(1).max(100)).max(100),
  fields: z.record(z.string(), FieldValueSchema),
  external_refs: z.array(ExternalRefSchema).max(50),
};

/** `POST /deals`. `stage_id` defaults to the pipeline's first stage. */
export const DealCreateSchema = z
  .object({
    ...writable,
    stage_id: writable.stage_id.optional(),
    owner_id: writable.owner_id.optional(),
    team_ids: writable.team_ids.optional(),
    pass_reason_id: writable.pass_reason_id.optional(),
    pass_reason_text: writable.pass_reason_text.optional(),
    value: writable.value.optional(),
    expected_close_date: writable.expected_close_date.optional(),
    company_id: writable.company_id.optional(),
    contact_ids: writable.contact_ids.optional(),
    tags: writable.tags.optional(),
    fields: writable.fields.optional(),
    external_refs: writable.external_refs.optional(),
  })
  .strict();
export type DealCreate = z.output<typeof DealCreateSchema>;

/** `PATCH /deals/{id}`: any subset; `fields` merges by field id (null clears one). */
export const DealPatchSchema = z.object(writable).partial().strict();
export type DealPatch = z.output<typeof DealPatchSchema>;

/** RFC 3339 with an offset; stored and served in UTC. */
const timestamp = z.iso
  .datetime({ offset: true, message: "must be an RFC 3339 timestamp" })
  .transform((s) => new Date(s).toISOString());

/**
 * `POST /deals/{id}/notes`. `author_id` and `created_at` (importing a historical note) need an API
 * key with the `import` scope; without them the author is the acting user (or none) and the time now.
 */
export const NoteCreateSchema = z
  .object({
    body: z.string().trim().min(1, "must not be empty").max(100_000),
    author_id: z.string().min(1).nullable().optional(),
    created_at: timestamp.optional(),
  })
  .strict();
export type NoteCreate = z.output<typeof NoteCreateSchema>;

export const NotePatchSchema = z.object({ body: z.string().trim().min(1, "must not be empty").max(100_000) }).strict();
export type NotePatch = z.output<typeof NotePatchSchema>;

const personName = z.string().trim().min(1, "must not be empty").max(150);

/** `POST /contacts`: `name`, or `first_name`/`last_name` (the name is then built from them). */
export const ContactCreateSchema = z
  .object({
    name: z.string().trim().min(1, "must not be empty").max(300).optional(),
    first_name: personName.nullable().optional(),
    last_name: personName.nullable().optional(),
    email: z.email().max(320).nullable().optional(),
    phone: z
      .string()
      .trim()
      .regex(/^\+?[0-9 ().-]{5,32}$/, "must be a phone number such as +1 415 555 0100")
      .refine((p) => p.replace(/\D/g, "").length >= 5, "must have at least 5 digits")
      .nullable()
      .optional(),
    company_id: z.string().min(1).nullable().optional(),
  })
  .strict()
  .refine((c) => c.name !== undefined || c.first_name || c.last_name, {
    message: "name (or first_name / last_name) is required",
    path: ["name"],
  });
export type ContactCreate = z.output<typeof ContactCreateSchema>;

/** `POST /deals/{id}/reminders`; `assignee_id` defaults to the deal's owner. */
export const ReminderCreateSchema = z
  .object({
    title: z.string().trim().min(1, "must not be empty").max(500),
    body: z.string().trim().max(10_000).nullable().optional(),
    due_at: timestamp,
    assignee_id: z.string().min(1).nullable().optional(),
  })
  .strict();
export type ReminderCreate = z.output<typeof ReminderCreateSchema>;

/** Event types the sandbox emits (the contract's list). */
export const EVENT_TYPES = [
  "deal.created",
  "deal.updated",
  "deal.stage_changed",
  "deal.owner_changed",
  "deal.deleted",
  "note.created",
  "note.updated",
  "note.deleted",
  "attachment.created",
  "attachment.deleted",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A webhook body: `{id, type, created_at, workspace_id, actor, data: {object}, changes}`. */
export interface WebhookEvent {
  id: string;
  type: EventType;
  created_at: string;
  workspace_id: string;
  actor: Actor;
  data: { object: Deal | Note | Attachment };
  changes: Record<string, [unknown, unknown]>;
}
