/**
 * The 4Degrees sandbox's workspace state and every mutation on it. The HTTP API, the control API
 * ("a user in the 4Degrees UI") and the CSV import all write through here, so each change gets the
 * same validation, a new `version`, `updated_at` from the sandbox clock, the actor, and its webhook
 * events.
 *
 * Semantics chosen where the ASSUMED contract leaves room (documented in docs/sandbox.md):
 * - `DELETE /deals/{id}` archives: `archived_at` is set, the deal stays readable (flagged) and is
 *   listed unless `include_archived=false`; writes to an archived deal answer 409 `deal_archived`;
 *   archiving again is a no-op.
 * - A PATCH that changes nothing returns the deal as is: no new version, no webhook.
 * - A deal change emits one event per aspect: `deal.stage_changed` (stage_id, status, pipeline_id,
 *   and the pass reason when it changes with the stage), `deal.owner_changed` (owner_id),
 *   `deal.updated` (everything else, `team_ids` included); each carries the new deal.
 * - A pass reason is only set on a deal in a lost-kind stage, and is cleared when the deal leaves one.
 * - Attachment bytes live in memory; `download_url` is signed by the caller (api.ts), so the store
 *   never needs to know the host the sandbox is served from.
 *
 * Custom field rules live in fields.ts, cursor paging in paging.ts.
 */
import type { Clock } from "../core/clock.ts";
import type { SeededRandom } from "../core/random.ts";
import { FourDegreesError, fail } from "./errors.ts";
import {
  DEAL_READ_ONLY_KEYS,
  READ_ONLY_FIELD_TYPES,
  type Actor,
  type Attachment,
  type Company,
  type Contact,
  type ContactCreate,
  type Deal,
  type DealCreate,
  type DealPatch,
  type EventType,
  type FieldDef,
  type FieldType,
  type Note,
  type NoteCreate,
  type NotePatch,
  type PassReason,
  type Pipeline,
  type Reminder,
  type ReminderCreate,
  type StageKind,
  type User,
  type WebhookEvent,
  type Workspace,
} from "./model.ts";
import { applyFields, computeFormulas, dedupe, keepFieldsOf, type FieldLookups } from "./fields.ts";
import { cmp, decodeCursor, encodeCursor, lowerBoundAfter, type Page } from "./paging.ts";

/** Options of a write. */
export interface WriteOptions {
  /** The `If-Match` version; stale → 409 `version_conflict`. */
  ifMatch?: number;
  /** Control API only: allow writing read-only `linked_deals` fields (the UI links deals). */
  allowUiOnlyFields?: boolean;
}

/** An attachment as stored: the served record (without its URL) and its bytes. */
export interface StoredAttachment {
  record: Omit<Attachment, "download_url">;
  bytes: Uint8Array<ArrayBuffer>;
}

/** What an upload carries once the API layer has parsed and checked the multipart body. */
export interface AttachmentInput {
  file_name: string;
  content_type: string;
  bytes: Uint8Array<ArrayBuffer>;
  /** Import only (the API checks the key's scope); else the acting user, or none. */
  author_id?: string | null;
  created_at?: string;
}

export interface DealListQuery {
  pipelineId?: string;
  /** RFC 3339; deals with `updated_at` at or after it. */
  updatedSince?: string;
  includeArchived?: boolean;
  cursor?: string;
  limit: number;
}

/** The workspace's records and the operations on them. */
export class FourDegreesStore {
  workspace: Workspace;
  readonly users = new Map<string, User>();
  readonly pipelines = new Map<string, Pipeline>();
  readonly fields = new Map<string, FieldDef>();
  readonly companies = new Map<string, Company>();
  readonly contacts = new Map<string, Contact>();
  readonly deals = new Map<string, Deal>();
  readonly notes = new Map<string, Note>();
  readonly passReasons = new Map<string, PassReason>();
  readonly attachments = new Map<string, StoredAttachment>();
  readonly reminders = new Map<string, Reminder>();
  readonly #notesByDeal = new Map<string, string[]>();
  readonly #issued = new Set<string>();
  /** Deals sorted by (updated_at, id) for cursor paging; rebuilt lazily after a write. */
  #sorted: Deal[] | null = null;
  readonly #clock: Clock;
  #random: SeededRandom;
  readonly #emit: (event: WebhookEvent) => void;
  readonly #lookups: FieldLookups = {
    field: (id) => this.fields.get(id),
    fieldsOf: (pipelineId) => this.fieldsOf(pipelineId),
    hasContact: (id) => this.contacts.has(id),
    hasDeal: (id) => this.deals.has(id),
  };

  constructor(options: {
    clock: Clock;
    random: SeededRandom;
    workspace: Workspace;
    emit: (event: WebhookEvent) => void;
  }) {
    this.#clock = options.clock;
    this.#random = options.random;
    this.workspace = options.workspace;
    this.#emit = options.emit;
  }

  /** Clears every record (the workspace itself stays); `random` restarts the id stream. */
  clear(random: SeededRandom): void {
    this.#random = random;
    for (const m of [
      this.users,
      this.pipelines,
      this.fields,
      this.companies,
      this.contacts,
      this.deals,
      this.notes,
      this.#notesByDeal,
    ])
      m.clear();
    for (const m of [this.passReasons, this.attachments, this.reminders]) m.clear();
    this.#issued.clear();
    this.#sorted = null;
  }

  /** Switches the id stream (the demo uses a fixed one so its ids are the same on every run); returns the previous one. */
  swapRandom(random: SeededRandom): SeededRandom {
    const previous = this.#random;
    this.#random = random;
    return previous;
  }

  /** A new opaque id with the given prefix (`deal`, `note`, …), from the seeded stream. */
  newId(prefix: string): string {
    // Two streams (the demo's fixed one and the sandbox seed's) could in theory meet: never reuse an id.
    let id = `${prefix}_${this.#random.string(16)}`;
    while (this.#issued.has(id)) id = `${prefix}_${this.#random.string(16)}`;
    this.#issued.add(id);
    return id;
  }

  nowIso(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  // ── Reference data (demo seeding and the control API) ─────────────────────────────────────────

  addUser(input: { name: string; email: string; role?: "admin" | "member" }): User {
    const email = input.email.trim().toLowerCase();
    if ([...this.users.values()].some((u) => u.email === email))
      throw fail.validation(`A user with email ${email} already exists`, "duplicate_email");
    const user: User = { id: this.newId("usr"), name: input.name, email, role: input.role ?? "member" };
    this.users.set(user.id, user);
    return structuredClone(user);
  }

  addPipeline(input: { name: string; stages: Array<{ name: string; kind: StageKind }> }): Pipeline {
    if (input.stages.length === 0) throw fail.validation("A pipeline needs at least one stage");
    if (!input.stages.some((s) => s.kind === "open")) throw fail.validation("A pipeline needs at least one open stage");
    const names = new Set<string>();
    for (const s of input.stages) {
      if (names.has(s.name)) throw fail.validation(`Stage name "${s.name}" is used twice`);
      names.add(s.name);
    }
    const pipeline: Pipeline = {
      id: this.newId("pl"),
      name: input.name,
      stages: input.stages.map((s, position) => ({ id: this.newId("st"), name: s.name, position, kind: s.kind })),
    };
    this.pipelines.set(pipeline.id, pipeline);
    return structuredClone(pipeline);
  }

  addField(input: {
    pipelineId: string;
    name: string;
    type: FieldType;
    required?: boolean;
    options?: string[];
  }): FieldDef {
    this.#pipeline(input.pipelineId, 404);
    const isSelect = input.type === "single_select" || input.type === "multi_select";
    if (isSelect && (!input.options || input.options.length === 0))
      throw fail.validation(`A ${input.type} field needs options`);
    if (this.fieldsOf(input.pipelineId).some((f) => f.name.toLowerCase() === input.name.toLowerCase()))
      throw fail.validation(`Field "${input.name}" already exists in this pipeline`);
    const field: FieldDef = {
      id: this.newId("fld"),
      pipeline_id: input.pipelineId,
      name: input.name,
      type: input.type,
      read_only: READ_ONLY_FIELD_TYPES.has(input.type),
      required: input.required ?? false,
      ...(isSelect ? { options: [...(input.options ?? [])] } : {}),
    };
    this.fields.set(field.id, field);
    return structuredClone(field);
  }

  addCompany(input: { name: string; domain?: string | null }): Company {
    const company: Company = { id: this.newId("co"), name: input.name, domain: input.domain ?? null };
    this.companies.set(company.id, company);
    return structuredClone(company);
  }

  addContact(input: ContactCreate): Contact {
    const email = input.email ? input.email.trim().toLowerCase() : null;
    if (email && this.findContactByEmail(email))
      throw new FourDegreesError(409, "duplicate_contact", `A contact with email ${email} already exists`);
    if (input.company_id) this.#ref(this.companies, input.company_id, "company");
    const first = input.first_name ?? null;
    const last = input.last_name ?? null;
    const name = input.name ?? [first, last].filter((p) => p).join(" ");
    if (name === "") throw fail.validation("name (or first_name / last_name) is required");
    const now = this.nowIso();
    const contact: Contact = {
      id: this.newId("ct"),
      name,
      first_name: first,
      last_name: last,
      email,
      phone: input.phone ?? null,
      company_id: input.company_id ?? null,
      created_at: now,
      updated_at: now,
    };
    this.contacts.set(contact.id, contact);
    return structuredClone(contact);
  }

  /** Adds a pass reason to the workspace's list (control API and demo; the API only reads them). */
  addPassReason(input: { name: string }): PassReason {
    const name = input.name.trim();
    if (name === "") throw fail.validation("A pass reason needs a name");
    if ([...this.passReasons.values()].some((r) => r.name.toLowerCase() === name.toLowerCase())) {
      throw fail.validation(`Pass reason "${name}" already exists`, "duplicate_pass_reason");
    }
    const reason: PassReason = { id: this.newId("pr"), name };
    this.passReasons.set(reason.id, reason);
    return { ...reason };
  }

  findContactByEmail(email: string): Contact | undefined {
    const wanted = email.trim().toLowerCase();
    for (const c of this.contacts.values()) if (c.email === wanted) return c;
    return undefined;
  }

  fieldsOf(pipelineId: string): FieldDef[] {
    return [...this.fields.values()].filter((f) => f.pipeline_id === pipelineId);
  }

  // ── Reads ──────────────────────────────────────────────────────────────────────────────────────

  getPipeline(id: string): Pipeline {
    return structuredClone(this.#pipeline(id, 404));
  }

  getDeal(id: string): Deal {
    return structuredClone(this.#deal(id));
  }

  /** One page of deals ordered by (updated_at, id), so an `updated_since` scan never skips one. */
  listDeals(query: DealListQuery): Page<Deal> {
    if (query.pipelineId !== undefined) this.#pipeline(query.pipelineId, 404);
    const since = query.updatedSince === undefined ? undefined : new Date(query.updatedSince).toISOString();
    const sorted = this.#sortedDeals();
    let start = 0;
    if (query.cursor !== undefined) {
      const pos = decodeCursor(query.cursor);
      start = lowerBoundAfter(sorted, pos);
    }
    const data: Deal[] = [];
    let i = start;
    for (; i < sorted.length && data.length < query.limit; i++) {
      const d = sorted[i]!;
      if (query.pipelineId !== undefined && d.pipeline_id !== query.pipelineId) continue;
      if (since !== undefined && d.updated_at < since) continue;
      if (query.includeArchived === false && d.archived_at !== null) continue;
      data.push(structuredClone(d));
    }
    const last = data.at(-1);
    const more = last !== undefined && data.length === query.limit && i < sorted.length;
    return { data, next_cursor: more ? encodeCursor({ k: last.updated_at, i: last.id }) : null };
  }

  listNotes(dealId: string, cursor: string | undefined, limit: number): Page<Note> {
    this.#deal(dealId);
    const all = (this.#notesByDeal.get(dealId) ?? [])
      .map((id) => this.notes.get(id)!)
      .sort((a, b) => cmp(a.created_at, b.created_at) || cmp(a.id, b.id));
    let start = 0;
    if (cursor !== undefined) {
      const pos = decodeCursor(cursor);
      start = all.findIndex((n) => cmp(n.created_at, pos.k) > 0 || (n.created_at === pos.k && cmp(n.id, pos.i) > 0));
      if (start < 0) start = all.length;
    }
    const data = all.slice(start, start + limit).map((n) => structuredClone(n));
    const last = data.at(-1);
    return {
      data,
      next_cursor: last && start + limit < all.length ? encodeCursor({ k: last.created_at, i: last.id }) : null,
    };
  }

  notesOf(dealId: string): Note[] {
    return (this.#notesByDeal.get(dealId) ?? []).map((id) => structuredClone(this.notes.get(id)!));
  }

  getNote(id: string): Note {
    return structuredClone(this.#note(id));
  }

  // ── Deal writes ────────────────────────────────────────────────────────────────────────────────

  createDeal(input: DealCreate, actor: Actor, options: WriteOptions = {}): Deal {
    const pipeline = this.#pipeline(input.pipeline_id, 422);
    const stage =
      input.stage_id === undefined
        ? [...pipeline.stages].sort((a, b) => a.position - b.position)[0]!
        : this.#stageOf(pipeline, input.stage_id);
    const now = this.nowIso();
    const passReason = this.#passReason(stage.kind, input.pass_reason_id ?? null, input.pass_reason_text ?? null);
    const deal: Deal = {
      id: this.newId("deal"),
      version: 1,
      name: input.name,
      pipeline_id: pipeline.id,
      stage_id: stage.id,
      status: stage.kind,
      pass_reason_id: passReason.id,
      pass_reason_text: passReason.text,
      owner_id: this.#userRef(input.owner_id ?? null),
      team_ids: this.#teamRefs(input.team_ids ?? []),
      value: input.value ?? null,
      expected_close_date: input.expected_close_date ?? null,
      company_id: this.#companyRef(input.company_id ?? null),
      contact_ids: this.#contactRefs(input.contact_ids ?? []),
      tags: dedupe(input.tags ?? []),
      fields: {},
      external_refs: input.external_refs ?? [],
      created_at: now,
      updated_at: now,
      archived_at: null,
    };
    deal.fields = applyFields(this.#lookups, pipeline.id, {}, input.fields ?? {}, options, true);
    computeFormulas(deal, this.fieldsOf(pipeline.id));
    this.deals.set(deal.id, deal);
    this.#sorted = null;
    this.#event("deal.created", actor, deal, {});
    return structuredClone(deal);
  }

  updateDeal(id: string, patch: DealPatch, actor: Actor, options: WriteOptions = {}): Deal {
    const current = this.#deal(id);
    this.#writable(current, options);
    const next: Deal = structuredClone(current);
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.pipeline_id !== undefined && patch.pipeline_id !== current.pipeline_id) {
      const pipeline = this.#pipeline(patch.pipeline_id, 422);
      if (patch.stage_id === undefined)
        throw fail.validation("Moving a deal to another pipeline needs a stage_id of that pipeline", "stage_required");
      next.pipeline_id = pipeline.id;
    }
    if (patch.stage_id !== undefined) {
      const stage = this.#stageOf(this.#pipeline(next.pipeline_id, 422), patch.stage_id);
      next.stage_id = stage.id;
      next.status = stage.kind;
    }
    if (patch.owner_id !== undefined) next.owner_id = this.#userRef(patch.owner_id);
    if (patch.team_ids !== undefined) next.team_ids = this.#teamRefs(patch.team_ids);
    if (next.status !== "lost") {
      // Leaving a lost stage drops its reason; setting one outside a lost stage is refused below.
      const reason = this.#passReason(next.status, patch.pass_reason_id ?? null, patch.pass_reason_text ?? null);
      next.pass_reason_id = reason.id;
      next.pass_reason_text = reason.text;
    } else {
      const reason = this.#passReason(
        "lost",
        patch.pass_reason_id === undefined ? next.pass_reason_id : patch.pass_reason_id,
        patch.pass_reason_text === undefined ? next.pass_reason_text : patch.pass_reason_text,
      );
      next.pass_reason_id = reason.id;
      next.pass_reason_text = reason.text;
    }
    if (patch.value !== undefined) next.value = patch.value;
    if (patch.expected_close_date !== undefined) next.expected_close_date = patch.expected_close_date;
    if (patch.company_id !== undefined) next.company_id = this.#companyRef(patch.company_id);
    if (patch.contact_ids !== undefined) next.contact_ids = this.#contactRefs(patch.contact_ids);
    if (patch.tags !== undefined) next.tags = dedupe(patch.tags);
    if (patch.external_refs !== undefined) next.external_refs = patch.external_refs;
    const pipelineChanged = next.pipeline_id !== current.pipeline_id;
    const baseFields = pipelineChanged ? keepFieldsOf(next.fields, this.fieldsOf(next.pipeline_id)) : next.fields;
    const fieldPatch = patch.fields ?? {};
    next.fields = applyFields(this.#lookups, next.pipeline_id, baseFields, fieldPatch, options, pipelineChanged);
    computeFormulas(next, this.fieldsOf(next.pipeline_id));

    const changes = diff(current, next);
    if (Object.keys(changes).length === 0) return structuredClone(current);
    next.version = current.version + 1;
    next.updated_at = this.nowIso();
    this.deals.set(id, next);
    this.#sorted = null;
    this.#dealChangeEvents(actor, next, changes);
    return structuredClone(next);
  }

  /** Archives a deal (`DELETE /deals/{id}`); archiving an archived deal changes nothing. */
  archiveDeal(id: string, actor: Actor, options: WriteOptions = {}): Deal {
    const current = this.#deal(id);
    if (current.archived_at !== null) return structuredClone(current);
    this.#writable(current, options);
    const next: Deal = { ...structuredClone(current), version: current.version + 1, archived_at: this.nowIso() };
    next.updated_at = next.archived_at!;
    this.deals.set(id, next);
    this.#sorted = null;
    this.#event("deal.deleted", actor, next, { archived_at: [null, next.archived_at] });
    return structuredClone(next);
  }

  // ── Note writes ────────────────────────────────────────────────────────────────────────────────

  createNote(dealId: string, input: NoteCreate, actor: Actor): Note {
    const deal = this.#deal(dealId);
    this.#writable(deal, {});
    const at = this.#pastOrNow(input.created_at);
    const author = input.author_id !== undefined ? input.author_id : actor.type === "user" ? actor.id : null;
    const note: Note = {
      id: this.newId("note"),
      deal_id: deal.id,
      body: input.body,
      author_id: this.#userRef(author),
      created_at: at,
      updated_at: at,
    };
    this.notes.set(note.id, note);
    const list = this.#notesByDeal.get(deal.id) ?? [];
    list.push(note.id);
    this.#notesByDeal.set(deal.id, list);
    this.#event("note.created", actor, note, {});
    return structuredClone(note);
  }

  updateNote(id: string, patch: NotePatch, actor: Actor): Note {
    const note = this.#note(id);
    this.#writable(this.#deal(note.deal_id), {});
    if (patch.body === note.body) return structuredClone(note);
    const next: Note = { ...note, body: patch.body, updated_at: this.nowIso() };
    this.notes.set(id, next);
    this.#event("note.updated", actor, next, { body: [note.body, next.body] });
    return structuredClone(next);
  }

  deleteNote(id: string, actor: Actor): Note {
    const note = this.#note(id);
    this.#writable(this.#deal(note.deal_id), {});
    this.notes.delete(id);
    const list = this.#notesByDeal.get(note.deal_id) ?? [];
    this.#notesByDeal.set(
      note.deal_id,
      list.filter((n) => n !== id),
    );
    this.#event("note.deleted", actor, note, {});
    return structuredClone(note);
  }

  // ── Attachments ────────────────────────────────────────────────────────────────────────────────

  /** One page of a deal's attachments in (created_at, id) order; readable on an archived deal too. */
  listAttachments(dealId: string, cursor: string | undefined, limit: number): Page<Omit<Attachment, "download_url">> {
    this.#deal(dealId);
    const all = [...this.attachments.values()].map((a) => a.record).filter((a) => a.deal_id === dealId);
    return pageByCreated(all, cursor, limit);
  }

  getAttachment(id: string): StoredAttachment {
    const found = this.attachments.get(id);
    if (!found) throw fail.notFound("attachment", id);
    return found;
  }

  /**
   * Stores an uploaded file and emits `attachment.created`. `id` comes from `newId("att")` and
   * `downloadUrl` is the URL the caller signed for it, so the event carries a working link.
   */
  createAttachment(dealId: string, id: string, input: AttachmentInput, actor: Actor, downloadUrl: string): Attachment {
    const deal = this.#deal(dealId);
    this.#writable(deal, {});
    const author = input.author_id !== undefined ? input.author_id : actor.type === "user" ? actor.id : null;
    const record: Omit<Attachment, "download_url"> = {
      id,
      deal_id: deal.id,
      file_name: input.file_name,
      content_type: input.content_type,
      size: input.bytes.byteLength,
      author_id: this.#userRef(author),
      created_at: this.#pastOrNow(input.created_at),
    };
    this.attachments.set(id, { record, bytes: input.bytes });
    const served: Attachment = { ...record, download_url: downloadUrl };
    this.#event("attachment.created", actor, served, {});
    return structuredClone(served);
  }

  /** Deletes an attachment and its bytes; emits `attachment.deleted` (its object has no URL). */
  deleteAttachment(id: string, actor: Actor): Attachment {
    const { record } = this.getAttachment(id);
    this.#writable(this.#deal(record.deal_id), {});
    this.attachments.delete(id);
    const gone: Attachment = { ...record, download_url: null };
    this.#event("attachment.deleted", actor, gone, {});
    return structuredClone(gone);
  }

  // ── Reminders ──────────────────────────────────────────────────────────────────────────────────

  /** Creates a reminder on a deal; the assignee defaults to the deal's owner. No webhook (none in the contract). */
  createReminder(dealId: string, input: ReminderCreate, actor: Actor): Reminder {
    const deal = this.#deal(dealId);
    this.#writable(deal, {});
    const assignee = input.assignee_id !== undefined ? input.assignee_id : deal.owner_id;
    if (assignee !== null && !this.users.has(assignee))
      throw fail.validation(`assignee_id: no user with id "${assignee}"`, "unknown_user");
    const reminder: Reminder = {
      id: this.newId("rem"),
      deal_id: deal.id,
      title: input.title,
      body: input.body ? input.body : null,
      due_at: input.due_at,
      assignee_id: assignee,
      created_by: { ...actor },
      created_at: this.nowIso(),
      completed_at: null,
    };
    this.reminders.set(reminder.id, reminder);
    return structuredClone(reminder);
  }

  listReminders(dealId: string, cursor: string | undefined, limit: number): Page<Reminder> {
    this.#deal(dealId);
    return pageByCreated(
      [...this.reminders.values()].filter((r) => r.deal_id === dealId),
      cursor,
      limit,
    );
  }

  /** Marks a reminder done, as its assignee would in the UI (control API); done twice changes nothing. */
  completeReminder(id: string): Reminder {
    const reminder = this.reminders.get(id);
    if (!reminder) throw fail.notFound("reminder", id);
    reminder.completed_at ??= this.nowIso();
    return structuredClone(reminder);
  }

  // ── Internals ──────────────────────────────────────────────────────────────────────────────────

  #dealChangeEvents(actor: Actor, deal: Deal, changes: Record<string, [unknown, unknown]>): void {
    const stage: Record<string, [unknown, unknown]> = {};
    const owner: Record<string, [unknown, unknown]> = {};
    const other: Record<string, [unknown, unknown]> = {};
    const stageMoved = "stage_id" in changes;
    for (const [key, change] of Object.entries(changes)) {
      if (key === "stage_id" || key === "status" || key === "pipeline_id") stage[key] = change;
      else if (stageMoved && (key === "pass_reason_id" || key === "pass_reason_text")) stage[key] = change;
      else if (key === "owner_id") owner[key] = change;
      else other[key] = change;
    }
    if (Object.keys(stage).length > 0) this.#event("deal.stage_changed", actor, deal, stage);
    if (Object.keys(owner).length > 0) this.#event("deal.owner_changed", actor, deal, owner);
    if (Object.keys(other).length > 0) this.#event("deal.updated", actor, deal, other);
  }

  #event(
    type: EventType,
    actor: Actor,
    object: Deal | Note | Attachment,
    changes: Record<string, [unknown, unknown]>,
  ): void {
    this.#emit({
      id: this.newId("evt"),
      type,
      created_at: this.nowIso(),
      workspace_id: this.workspace.id,
      actor: { ...actor },
      data: { object: structuredClone(object) },
      changes: structuredClone(changes),
    });
  }

  #writable(deal: Deal, options: WriteOptions): void {
    if (deal.archived_at !== null)
      throw new FourDegreesError(409, "deal_archived", `Deal ${deal.id} is archived and cannot be changed`);
    if (options.ifMatch !== undefined && options.ifMatch !== deal.version) {
      throw new FourDegreesError(
        409,
        "version_conflict",
        `Deal ${deal.id} is at version ${deal.version}; If-Match asked for version ${options.ifMatch}. Re-read it and re-apply your change.`,
      );
    }
  }

  #deal(id: string): Deal {
    const deal = this.deals.get(id);
    if (!deal) throw fail.notFound("deal", id);
    return deal;
  }

  #note(id: string): Note {
    const note = this.notes.get(id);
    if (!note) throw fail.notFound("note", id);
    return note;
  }

  /** A pipeline by id: missing → 404 (a path id) or 422 (a body reference). */
  #pipeline(id: string, status: 404 | 422): Pipeline {
    const pipeline = this.pipelines.get(id);
    if (pipeline) return pipeline;
    throw status === 404
      ? fail.notFound("pipeline", id)
      : fail.validation(`pipeline_id: no pipeline with id "${id}"`, "unknown_pipeline");
  }

  #stageOf(pipeline: Pipeline, stageId: string) {
    const stage = pipeline.stages.find((s) => s.id === stageId);
    if (!stage)
      throw fail.validation(`stage_id: "${stageId}" is not a stage of pipeline ${pipeline.id}`, "unknown_stage");
    return stage;
  }

  #userRef(id: string | null): string | null {
    if (id === null) return null;
    if (!this.users.has(id)) throw fail.validation(`owner_id/author_id: no user with id "${id}"`, "unknown_user");
    return id;
  }

  #teamRefs(ids: string[]): string[] {
    for (const id of ids)
      if (!this.users.has(id)) throw fail.validation(`team_ids: no user with id "${id}"`, "unknown_user");
    return dedupe(ids);
  }

  /** A pass reason for a deal whose stage has `kind`: only a lost stage takes one. */
  #passReason(kind: StageKind, id: string | null, text: string | null): { id: string | null; text: string | null } {
    if (kind !== "lost") {
      if (id !== null || text !== null)
        throw fail.validation(
          "pass_reason_id / pass_reason_text can only be set on a deal in a lost stage",
          "pass_reason_not_allowed",
        );
      return { id: null, text: null };
    }
    if (id !== null && !this.passReasons.has(id))
      throw fail.validation(
        `pass_reason_id: no pass reason with id "${id}" (GET /pass-reasons)`,
        "unknown_pass_reason",
      );
    return { id, text };
  }

  /** An imported `created_at`, which may not lie in the future; absent → now. */
  #pastOrNow(at: string | undefined): string {
    if (at === undefined) return this.nowIso();
    if (Date.parse(at) > this.#clock.now())
      throw fail.validation("created_at must not be in the future", "invalid_created_at");
    return at;
  }

  #companyRef(id: string | null): string | null {
    if (id === null) return null;
    return this.#ref(this.companies, id, "company");
  }

  #contactRefs(ids: string[]): string[] {
    return dedupe(ids.map((id) => this.#ref(this.contacts, id, "contact")));
  }

  #ref(map: Map<string, unknown>, id: string, what: string): string {
    if (!map.has(id)) throw fail.validation(`${what}: no ${what} with id "${id}"`, `unknown_${what}`);
    return id;
  }

  #sortedDeals(): Deal[] {
    this.#sorted ??= [...this.deals.values()].sort((a, b) => cmp(a.updated_at, b.updated_at) || cmp(a.id, b.id));
    return this.#sorted;
  }
}

/** One page of records in (created_at, id) order, with the same cursors as the other lists. */
function pageByCreated<T extends { id: string; created_at: string }>(
  items: T[],
  cursor: string | undefined,
  limit: number,
): Page<T> {
  const all = [...items].sort((a, b) => cmp(a.created_at, b.created_at) || cmp(a.id, b.id));
  let start = 0;
  if (cursor !== undefined) {
    const pos = decodeCursor(cursor);
    start = all.findIndex((x) => cmp(x.created_at, pos.k) > 0 || (x.created_at === pos.k && cmp(x.id, pos.i) > 0));
    if (start < 0) start = all.length;
  }
  const data = all.slice(start, start + limit).map((x) => structuredClone(x));
  const last = data.at(-1);
  return {
    data,
    next_cursor: last && start + limit < all.length ? encodeCursor({ k: last.created_at, i: last.id }) : null,
  };
}

/** Top-level changes between two versions of a deal, as `{field: [old, new]}`. */
function diff(before: Deal, after: Deal): Record<string, [unknown, unknown]> {
  const changes: Record<string, [unknown, unknown]> = {};
  for (const key of Object.keys(after) as Array<keyof Deal>) {
    if (key === "version" || key === "updated_at") continue;
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key]))
      changes[key] = [structuredClone(before[key]), structuredClone(after[key])];
  }
  return changes;
}

/** Deal keys a client may not write, re-exported for the API layer. */
export { DEAL_READ_ONLY_KEYS };
