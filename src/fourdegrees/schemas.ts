/**
 * Raw zod schemas of the ASSUMED 4Degrees partner contract (docs/fourdegrees.md; 4Degrees publishes
 * no API). They describe the wire and stay inside src/fourdegrees: the engine never sees them.
 *
 * Where the assumed contract leaves a detail open (is a single object wrapped in `{data}`?), the
 * schema accepts both forms, so the connector keeps working whichever way 4Degrees settles it.
 */
import * as z from "zod";

const timestamp = z.iso.datetime({ offset: true });
const date = z.iso.date();

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `{data: X}` or a bare `X`, always parsed as `X` (records have an `id`; the wrapper has none). */
export function enveloped<T extends z.ZodType>(schema: T) {
  return z.preprocess((raw) => (isObject(raw) && "data" in raw && !("id" in raw) ? raw["data"] : raw), schema);
}

/** `{data: [...], next_cursor}` (absent or null = last page); a bare array is one page. */
export function paged<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (raw) => (Array.isArray(raw) ? { data: raw, next_cursor: null } : raw),
    z.object({ data: z.array(item), next_cursor: z.string().min(1).nullable().optional() }),
  );
}

/** Money: `{amount_minor: integer, currency: "USD"}` — never floats. */
export const RawMoney = z.object({ amount_minor: z.number().int(), currency: z.string().regex(/^[A-Z]{3}$/) });
export type RawMoney = z.infer<typeof RawMoney>;

/** Who made a change (every mutation records one; webhooks carry it). */
export const RawActor = z.object({
  type: z.enum(["user", "api_key", "automation"]),
  id: z.string().nullable().optional(),
});
export type RawActor = z.infer<typeof RawActor>;

export const RawExternalRef = z.object({ system: z.string().min(1), id: z.string().min(1) });

export const RawFieldValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);

/** `GET /deals/{id}` and friends. `status` is derived from the stage's kind (read-only). */
export const RawDeal = z.object({
  id: z.string().min(1),
  version: z.number().int().nonnegative(),
  name: z.string(),
  pipeline_id: z.string().min(1),
  stage_id: z.string().min(1),
  status: z.enum(["open", "won", "lost"]),
  owner_id: z.string().nullable().optional(),
  value: RawMoney.nullable().optional(),
  expected_close_date: date.nullable().optional(),
  company_id: z.string().nullable().optional(),
  contact_ids: z.array(z.string()).optional(),
  tags: z.array(z.string()).optional(),
  fields: z.record(z.string(), RawFieldValue).optional(),
  external_refs: z.array(RawExternalRef).optional(),
  created_at: timestamp,
  updated_at: timestamp,
  archived_at: timestamp.nullable().optional(),
  /** Only on a deal in a lost-kind stage (docs/fourdegrees.md#pass-reasons). */
  pass_reason_id: z.string().nullable().optional(),
  pass_reason_text: z.string().nullable().optional(),
  /** The deal team besides the owner (docs/fourdegrees.md#team). */
  team_ids: z.array(z.string()).optional(),
  /** The actor of the last change, when the API includes it on reads. */
  actor: RawActor.nullable().optional(),
});
export type RawDeal = z.infer<typeof RawDeal>;

/** Body of `POST /deals`. */
export type RawDealCreate = {
  name: string;
  pipeline_id: string;
  stage_id: string;
  owner_id?: string | null;
  value?: RawMoney | null;
  expected_close_date?: string | null;
  company_id?: string | null;
  contact_ids?: string[];
  tags?: string[];
  fields?: Record<string, z.infer<typeof RawFieldValue>>;
  external_refs?: Array<{ system: string; id: string }>;
  pass_reason_id?: string | null;
  pass_reason_text?: string | null;
  team_ids?: string[];
};

/** Body of `PATCH /deals/{id}`: any subset of the create body. */
export type RawDealPatch = Partial<RawDealCreate>;

export const RawNote = z.object({
  id: z.string().min(1),
  deal_id: z.string().min(1),
  body: z.string(),
  author_id: z.string().nullable().optional(),
  created_at: timestamp,
  updated_at: timestamp.nullable().optional(),
});
export type RawNote = z.infer<typeof RawNote>;

/** Assumed contract: a deal's reminder (docs/fourdegrees.md#reminders). */
export const RawReminder = z.object({
  id: z.string().min(1),
  deal_id: z.string().min(1),
  title: z.string(),
  body: z.string().nullable().optional(),
  due_at: timestamp,
  assignee_id: z.string().nullable().optional(),
});
export type RawReminder = z.infer<typeof RawReminder>;
/** `GET /pass-reasons` (docs/fourdegrees.md#pass-reasons). */
export const RawPassReason = z.object({ id: z.string().min(1), name: z.string() });
export type RawPassReason = z.infer<typeof RawPassReason>;

/** `GET /contacts/{id}` (docs/fourdegrees.md#contacts). */
export const RawContact = z.object({
  id: z.string().min(1),
  name: z.string().nullable().optional(),
  first_name: z.string().nullable().optional(),
  last_name: z.string().nullable().optional(),
  email: z.string().nullable().optional(),
  phone: z.string().nullable().optional(),
});
export type RawContact = z.infer<typeof RawContact>;

export const RawStage = z.object({
  id: z.string().min(1),
  name: z.string(),
  position: z.number().int(),
  kind: z.enum(["open", "won", "lost"]),
});

export const RawPipeline = z.object({ id: z.string().min(1), name: z.string(), stages: z.array(RawStage) });
export type RawPipeline = z.infer<typeof RawPipeline>;

export const RawUser = z.object({
  id: z.string().min(1),
  email: z.string().nullable().optional(),
  name: z.string().nullable().optional(),
});
export type RawUser = z.infer<typeof RawUser>;

/** `GET /pipelines/{id}/fields`: typed fields; formula and linked-deal fields are read-only. */
export const RawField = z.object({
  id: z.string().min(1),
  name: z.string(),
  type: z.string().min(1),
  read_only: z.boolean().optional(),
  options: z
    .array(z.union([z.string(), z.object({ id: z.string().optional(), name: z.string() }).transform((o) => o.name)]))
    .optional(),
});
export type RawField = z.infer<typeof RawField>;

/** `GET /me`: the workspace the key belongs to and the actor our writes carry. */
export const RawMe = z.object({
  workspace: z.object({ id: z.string().min(1), name: z.string().optional() }),
  actor: RawActor,
});
export type RawMe = z.infer<typeof RawMe>;

/** The error envelope: `{"error": {type, code, message, request_id}}`. */
export const RawErrorEnvelope = z.object({
  error: z.object({
    type: z.string().optional(),
    code: z.string().optional(),
    message: z.string().optional(),
    request_id: z.string().optional(),
  }),
});

/** A deal attachment (assumed extension, docs/fourdegrees.md#attachments); `download_url` is signed, expiring. */
export const RawAttachment = z.object({
  id: z.string().min(1),
  deal_id: z.string().min(1),
  file_name: z.string(),
  content_type: z.string(),
  size: z.number().int().nonnegative(),
  author_id: z.string().nullable().optional(),
  created_at: timestamp,
  download_url: z.string().nullable().optional(),
});
export type RawAttachment = z.infer<typeof RawAttachment>;

/** A webhook's event types. */
export const RawEventType = z.enum([
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
]);

/**
 * A webhook body: `{id, type, created_at, workspace_id, actor, data: {object}, changes}`.
 * `data.object` is validated against the deal/note schema by the translator, not here, so ingress
 * can accept (and the engine re-read) an event whose object a future API version extended.
 */
export const RawWebhookEnvelope = z.object({
  id: z.string().min(1),
  type: RawEventType,
  created_at: timestamp,
  workspace_id: z.string().min(1),
  actor: RawActor.nullable().optional(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
  changes: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])).optional(),
});
export type RawWebhookEnvelope = z.infer<typeof RawWebhookEnvelope>;
