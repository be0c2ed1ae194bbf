/**
 * The port the sync engine uses for a deal-flow CRM (4Degrees today; any deal-list CRM tomorrow).
 *
 * The engine speaks only the shapes below: money as integer minor units + ISO 4217 currency,
 * ISO dates, opaque ids, `externalRefs` to the other side's ids, an opaque `version` for optimistic
 * concurrency and the `actor` of the last change (so the engine can recognise its own writes by
 * comparing it with `DealCrm.whoAmI()`). No provider wire detail crosses this boundary: each
 * connector translates from its own raw schemas (e.g. src/fourdegrees/translate.ts).
 *
 * The shapes are zod schemas because they also travel inside queue messages (CSV import rows).
 */
import * as z from "zod";
import { MoneySchema } from "./money.ts";

/** Who made a change. `integration` is an API key / app (this Worker's own writes look like that). */
export const ActorSchema = z.object({
  type: z.enum(["user", "integration", "automation", "import"]),
  id: z.string().nullable(),
});
export type Actor = z.infer<typeof ActorSchema>;

/** A link to the same record in another system (e.g. `{system: "highlevel", id: "opp_…"}`). */
export const ExternalRefSchema = z.object({ system: z.string().min(1), id: z.string().min(1) });
export type ExternalRef = z.infer<typeof ExternalRefSchema>;

/** Stage kinds every deal-flow CRM can express; `abandoned` exists on HighLevel only. */
export const DealStatusSchema = z.enum(["open", "won", "lost", "abandoned"]);
export type DealStatus = z.infer<typeof DealStatusSchema>;

/** `YYYY-MM-DD` (a calendar date, no time zone). */
export const IsoDateSchema = z.iso.date();
/** An RFC 3339 / ISO 8601 timestamp with offset. */
export const IsoDateTimeSchema = z.iso.datetime({ offset: true });

/**
 * A reference that a source may know by id, by name, or both. API records carry ids; a CSV row only
 * carries names ("Due Diligence"), which the engine resolves through the account's mapping.
 */
export const NamedRefSchema = z.object({ id: z.string().min(1).nullable(), name: z.string().min(1).nullable() });
export type NamedRef = z.infer<typeof NamedRefSchema>;

/** A person referenced by a deal (owner or contact): by id, email or name. */
export const PersonRefSchema = z.object({
  id: z.string().min(1).nullable(),
  email: z.string().min(1).nullable(),
  name: z.string().min(1).nullable(),
});
export type PersonRef = z.infer<typeof PersonRefSchema>;

/** A custom-field value in provider-neutral form. */
export const FieldValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);
export type FieldValue = z.infer<typeof FieldValueSchema>;

/**
 * Why a deal was lost ("passed"): one of the CRM's reasons (`id`), free text, or both. Only a lost
 * deal has one.
 */
export const LostReasonSchema = z.object({ id: z.string().min(1).nullable(), text: z.string().min(1).nullable() });
export type LostReason = z.infer<typeof LostReasonSchema>;

/** The editable content of a deal: what a create takes and what an update patches. */
export const DealContentSchema = z.object({
  name: z.string().min(1),
  pipeline: NamedRefSchema,
  stage: NamedRefSchema,
  status: DealStatusSchema.nullable(),
  owner: PersonRefSchema.nullable(),
  value: MoneySchema.nullable(),
  expectedCloseDate: IsoDateSchema.nullable(),
  companyId: z.string().min(1).nullable(),
  contacts: z.array(PersonRefSchema),
  tags: z.array(z.string()),
  /** Custom fields keyed by the provider's field id (API) or by column header (CSV). */
  fields: z.record(z.string(), FieldValueSchema),
  externalRefs: z.array(ExternalRefSchema),
  /** The lost reason (absent: the source does not say, e.g. a CSV row). */
  lostReason: LostReasonSchema.nullable().optional(),
  /** The deal team besides the owner, by user (absent: the source does not say). */
  team: z.array(PersonRefSchema).optional(),
});
export type DealContent = z.infer<typeof DealContentSchema>;

/** The engine's one deal shape. `id`/`version` are null for a record known only from a file. */
export const DealSchema = DealContentSchema.extend({
  id: z.string().min(1).nullable(),
  /** Opaque optimistic-concurrency token; pass it back as `expectedVersion` on update. */
  version: z.string().min(1).nullable(),
  createdAt: IsoDateTimeSchema.nullable(),
  updatedAt: IsoDateTimeSchema.nullable(),
  archivedAt: IsoDateTimeSchema.nullable(),
  /** Who made the last change, when the source says so. */
  actor: ActorSchema.nullable(),
});
export type Deal = z.infer<typeof DealSchema>;

/** A partial update: only the fields present change. `status` is derived from the stage and is not patchable. */
export type DealPatch = Partial<Omit<DealContent, "status">>;

export const NoteSchema = z.object({
  id: z.string().min(1),
  dealId: z.string().min(1),
  body: z.string(),
  authorId: z.string().nullable(),
  createdAt: IsoDateTimeSchema.nullable(),
  updatedAt: IsoDateTimeSchema.nullable(),
});
export type Note = z.infer<typeof NoteSchema>;

/** A CRM's own list of lost (pass) reasons. */
export const ReasonSchema = z.object({ id: z.string().min(1), name: z.string() });
export type Reason = z.infer<typeof ReasonSchema>;

/** A person record (a deal's contact), with what the other side matches it by. */
export const CrmContactSchema = z.object({
  id: z.string().min(1),
  name: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
});
export type CrmContact = z.infer<typeof CrmContactSchema>;

/** What a contact create takes. */
export type CrmContactInput = Omit<CrmContact, "id">;

/** A note create that keeps the original's author and time (needs the CRM's import permission). */
export interface NoteCreateOptions extends WriteOptions {
  authorId?: string;
  createdAt?: string;
}

export const StageSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  position: z.number().int(),
  kind: z.enum(["open", "won", "lost"]),
});
export type Stage = z.infer<typeof StageSchema>;

export const PipelineSchema = z.object({ id: z.string().min(1), name: z.string(), stages: z.array(StageSchema) });
export type Pipeline = z.infer<typeof PipelineSchema>;

/** A typed custom field of a pipeline (formula and linked-deal fields are read-only). */
export const FieldDefSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  type: z.string().min(1),
  readOnly: z.boolean(),
  options: z.array(z.string()),
});
export type FieldDef = z.infer<typeof FieldDefSchema>;

export const UserSchema = z.object({
  id: z.string().min(1),
  email: z.string().nullable(),
  name: z.string().nullable(),
});
export type User = z.infer<typeof UserSchema>;

/** One page of a paged listing; pass `nextCursor` back to continue, `null` means done. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Options every write takes. */
export interface WriteOptions {
  /**
   * Stable key for this logical write (e.g. from the engine's write ledger), so a retry after a
   * crash replays instead of writing twice. Defaults to a random key per call.
   */
  idempotencyKey?: string;
}

/** What an update does when the record changed since `expectedVersion` was read. */
export type ConflictResolver = (current: Deal, patch: DealPatch) => DealPatch | null;

export interface UpdateDealOptions extends WriteOptions {
  /** The version the patch was computed from; omitted = the connector reads the current one first. */
  expectedVersion?: string;
  /**
   * Called with the re-read record after a version conflict: return the patch to re-apply on top of
   * it, or `null` to give up (the update then resolves to the current record unchanged).
   * Default: re-apply the same patch (it only names the fields the engine means to change).
   */
  onConflict?: ConflictResolver;
}

/** The change kinds a CRM reports. */
export const ChangeTypeSchema = z.enum([
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
export type ChangeType = z.infer<typeof ChangeTypeSchema>;

/**
 * A verified webhook, translated. Treat it as "this record changed": re-read before writing
 * (deliveries are at-least-once and unordered).
 */
export interface ChangeEvent {
  /** The delivery's event id (dedupe key). */
  id: string;
  type: ChangeType;
  occurredAt: string;
  /** The workspace (account scope) the change happened in. */
  scopeId: string;
  actor: Actor | null;
  record:
    | { kind: "deal"; id: string }
    | { kind: "note"; id: string; dealId: string }
    | { kind: "attachment"; id: string; dealId: string };
  /** The record as the event carried it (may be stale; re-read). */
  deal: Deal | null;
  note: Note | null;
  /** Changed fields in neutral names → `[old, new]`, when the source says. */
  changes: Record<string, [unknown, unknown]>;
}

/** The identity this connector writes as: a change whose `actor` equals it is our own echo. */
export interface Identity {
  scopeId: string;
  actor: Actor;
}

/** A reminder on a deal for one of the workspace's users (the automations' `fd_reminder` action). */
export interface Reminder {
  id: string;
  dealId: string;
  title: string;
  body: string;
  /** RFC 3339. */
  dueAt: string;
  assigneeId: string | null;
}

/** What a reminder is created with. */
export interface ReminderInput {
  title: string;
  body: string;
  dueAt: string;
  assigneeId: string | null;
}

/** The connector interface the sync engine uses for a deal-flow CRM. */
export interface DealCrm {
  /** Which workspace the credentials reach and which actor our own writes carry. */
  whoAmI(): Promise<Identity>;
  listPipelines(): Promise<Pipeline[]>;
  listUsers(): Promise<User[]>;
  /** The custom fields of one pipeline. */
  listFields(pipelineId: string): Promise<FieldDef[]>;
  /** One page of deals changed at or after `updatedSince` (all deals when omitted), oldest first. */
  pageDeals(query: {
    updatedSince?: string;
    pipelineId?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<Page<Deal>>;
  /** The deal, or `null` when it does not exist (404). Archived deals are returned with `archivedAt`. */
  getDeal(id: string): Promise<Deal | null>;
  createDeal(content: DealContent, options?: WriteOptions): Promise<Deal>;
  updateDeal(id: string, patch: DealPatch, options?: UpdateDealOptions): Promise<Deal>;
  /** Archives (the CRM's delete). Resolves `false` when the deal was already gone. */
  archiveDeal(id: string, options?: WriteOptions): Promise<boolean>;
  listNotes(dealId: string): Promise<Note[]>;
  createNote(dealId: string, body: string, options?: NoteCreateOptions): Promise<Note>;
  updateNote(noteId: string, body: string, options?: WriteOptions): Promise<Note>;
  /** Resolves `false` when the note was already gone. */
  deleteNote(noteId: string, options?: WriteOptions): Promise<boolean>;
  /** Adds a reminder to a deal (pass an idempotency key: a replayed create answers the first reminder). */
  createReminder(dealId: string, input: ReminderInput, options?: WriteOptions): Promise<Reminder>;
  /** The CRM's lost (pass) reasons. */
  listLostReasons(): Promise<Reason[]>;
  /** The contact, or `null` when it does not exist. */
  getContact(id: string): Promise<CrmContact | null>;
  /** The contact with this email (exact, case-insensitive), else with this phone (digits compared), else `null`. */
  findContact(query: { email: string | null; phone: string | null }): Promise<CrmContact | null>;
  createContact(input: CrmContactInput, options?: WriteOptions): Promise<CrmContact>;
  /** Translates a verified webhook body (as stored in the queue message) into a `ChangeEvent`. */
  parseWebhook(body: unknown): ChangeEvent;
}

/**
 * Verifies a webhook delivery's raw bytes against its headers. Resolves on success and throws an
 * `AppError` (`unauthorized`) otherwise; separate from `DealCrm` because ingress needs no API key.
 */
export interface WebhookVerifier {
  verify(headers: Headers, rawBody: Uint8Array): Promise<void>;
}

/**
 * A canonical record as plain key → value pairs (the merge's and the link's view of one side):
 * what `flatten` in src/sync/engine/mapping.ts makes of a `Canonical`.
 */
export type Flat = Record<string, unknown>;
