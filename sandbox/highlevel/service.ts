/**
 * What changes HighLevel data — used both by the public API and by the control API ("as a user in
 * the HighLevel UI would") — and the webhooks every change emits, with HighLevel's real fan-out:
 *
 *   create   → OpportunityCreate + OpportunityUpdate
 *   stage    → OpportunityUpdate + OpportunityStageUpdate
 *   status   → OpportunityUpdate + OpportunityStatusUpdate
 *   value    → OpportunityUpdate + OpportunityMonetaryValueUpdate
 *   assignee → OpportunityUpdate + OpportunityAssignedToUpdate
 *   delete   → OpportunityDelete + OpportunityUpdate (an Update for a record that is gone)
 *   notes    → NoteCreate / NoteUpdate / NoteDelete
 *   contacts → no events (the official event docs have no Contact* events); deleting a contact
 *              deletes its opportunities (with their Delete + Update) and its notes
 *
 * Event bodies (events.ts) follow ghl/webhook-events/*.md; the envelope (`timestamp`, `webhookId`,
 * `appId`, `versionId`) is added by the emitter; the write inputs are in inputs.ts. Referential
 * checks answer 400 with HighLevel-style texts.
 */
import type { Clock } from "../core/clock.ts";
import { GhlError, unprocessable } from "./errors.ts";
import { noteEventBody, opportunityEventBody, type EventSink } from "./events.ts";
import { resolveCustomFields } from "./inputs.ts";
import { MediaLibrary } from "./medias.ts";
import type { ContactInput, ContactPatch, CustomFieldInput, LocationSettings } from "./inputs.ts";
import type { ForecastInput, NoteInput, OpportunityInput, OpportunityPatch, TaskInput } from "./inputs.ts";
import type { Contact, HighLevelStore, IdSource, LostReason, Note, Opportunity, OpportunityStatus } from "./store.ts";
import type { Task } from "./store.ts";
import { OPPORTUNITY_STATUSES } from "./store.ts";

/** Every change to HighLevel data, with the webhooks it emits (the fan-out above). */
export class HighLevelService {
  readonly store: HighLevelStore;
  readonly settings = new Map<string, LocationSettings>();
  /** The media library (uploads emit no webhooks: the reference has no media events). */
  readonly medias: MediaLibrary;
  #ids: IdSource;
  #clock: Clock;
  #emit: EventSink;
  #defaults: LocationSettings;

  constructor(options: {
    store: HighLevelStore;
    ids: IdSource;
    clock: Clock;
    emit: EventSink;
    defaults?: Partial<LocationSettings>;
  }) {
    this.store = options.store;
    this.#ids = options.ids;
    this.#clock = options.clock;
    this.#emit = options.emit;
    this.#defaults = { allowDuplicateOpportunities: false, allowDuplicateContacts: false, ...options.defaults };
    this.medias = new MediaLibrary({ store: this.store, ids: () => this.#ids, clock: this.#clock });
  }

  /** Replaces the id source (after a reset the stream restarts from the seed). */
  setIds(ids: IdSource): void {
    this.#ids = ids;
  }

  settingsOf(locationId: string): LocationSettings {
    let s = this.settings.get(locationId);
    if (!s) {
      s = { ...this.#defaults };
      this.settings.set(locationId, s);
    }
    return s;
  }

  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  // ---------- lookups that answer HighLevel-style errors ----------

  location(locationId: string) {
    const l = this.store.locations.get(locationId);
    if (!l) throw new GhlError(400, "Location not found");
    return l;
  }

  opportunity(id: string): Opportunity {
    const o = this.store.opportunities.get(id);
    if (!o) throw new GhlError(400, "Opportunity not found");
    return o;
  }

  contact(id: string): Contact {
    const c = this.store.contacts.get(id);
    if (!c) throw new GhlError(400, "Contact not found");
    return c;
  }

  note(contactId: string, id: string): Note {
    const n = this.store.notes.get(id);
    if (!n || n.contactId !== contactId) throw new GhlError(400, "Note not found");
    return n;
  }

  task(contactId: string, id: string): Task {
    const t = this.store.tasks.get(id);
    if (!t || t.contactId !== contactId) throw new GhlError(400, "Task not found");
    return t;
  }

  #status(value: string): OpportunityStatus {
    if (!(OPPORTUNITY_STATUSES as readonly string[]).includes(value)) {
      // "all" passes the DTO's enum (it is a search filter) but is not a status a record can have.
      throw unprocessable([`status must be one of the following values: ${OPPORTUNITY_STATUSES.join(", ")}`]);
    }
    return value as OpportunityStatus;
  }

  #checkUser(locationId: string, userId: string, field: string): void {
    const u = this.store.users.get(userId);
    if (!u || !u.locationIds.includes(locationId))
      throw new GhlError(400, `${field} ${userId} is not a user of this location`);
  }

  #checkLostReason(locationId: string, id: string): void {
    const r = this.store.lostReasons.get(id);
    if (!r || r.locationId !== locationId || r.deleted) throw new GhlError(400, "Lost reason not found");
  }

  /** Adds a lost reason to a location (Settings → Opportunities → Lost reasons); names are unique per location. */
  addLostReason(locationId: string, name: string): LostReason {
    this.location(locationId);
    const trimmed = name.trim();
    if (trimmed === "") throw unprocessable(["name should not be empty"]);
    const lower = trimmed.toLowerCase();
    const taken = this.store.lostReasonsOf(locationId).some((r) => !r.deleted && r.name.toLowerCase() === lower);
    if (taken) throw new GhlError(400, `Lost reason ${trimmed} already exists`);
    const now = this.#now();
    const id = this.#ids.id();
    const r: LostReason = { id, locationId, name: trimmed, deleted: false, createdAt: now, updatedAt: now };
    this.store.lostReasons.set(r.id, r);
    return r;
  }

  /** Deletes a lost reason (soft, as the API's `deleted` filter implies); opportunities keep their id. */
  deleteLostReason(id: string): LostReason {
    const r = this.store.lostReasons.get(id);
    if (!r || r.deleted) throw new GhlError(400, "Lost reason not found");
    r.deleted = true;
    r.updatedAt = this.#now();
    return r;
  }

  /** Resolves `[{id|key, field_value}]` against the location's fields of `model`, merging into `current`. */
  #customFields(
    locationId: string,
    model: "opportunity" | "contact",
    input: CustomFieldInput[],
    current: Array<{ id: string; value: unknown }>,
  ): Array<{ id: string; value: unknown }> {
    return resolveCustomFields(this.store.customFieldsOf(locationId, model), model, input, current);
  }

  // ---------- opportunities ----------

  /** Creates an opportunity (API `POST /opportunities/` or a UI user); emits Create + Update. */
  createOpportunity(input: OpportunityInput): Opportunity {
    this.location(input.locationId);
    const pipeline = this.store.pipelines.get(input.pipelineId);
    if (!pipeline || pipeline.locationId !== input.locationId) throw new GhlError(400, "Pipeline not found");
    const status = this.#status(input.status);
    const contact = this.store.contacts.get(input.contactId);
    if (!contact || contact.locationId !== input.locationId) throw new GhlError(400, "Contact not found");
    const stageId = input.pipelineStageId ?? [...pipeline.stages].sort((a, b) => a.position - b.position)[0]?.id;
    if (!stageId || !pipeline.stages.some((s) => s.id === stageId))
      throw new GhlError(400, "Pipeline stage not found in this pipeline");
    if (input.assignedTo) this.#checkUser(input.locationId, input.assignedTo, "assignedTo");
    if (input.lostReasonId) this.#checkLostReason(input.locationId, input.lostReasonId);
    for (const f of input.followers ?? []) this.#checkUser(input.locationId, f, "follower");
    if (!this.settingsOf(input.locationId).allowDuplicateOpportunities) {
      const dup = this.store
        .opportunitiesOf(input.locationId)
        .find((o) => o.contactId === input.contactId && o.pipelineId === input.pipelineId);
      if (dup) throw new GhlError(400, "Can not create duplicate opportunity for the contact.");
    }
    const now = this.#now();
    const o: Opportunity = {
      id: this.#ids.id(),
      locationId: input.locationId,
      name: input.name,
      monetaryValue: input.monetaryValue ?? 0,
      pipelineId: input.pipelineId,
      pipelineStageId: stageId,
      assignedTo: input.assignedTo ?? null,
      status,
      source: input.source ?? "",
      lostReasonId: status === "lost" ? (input.lostReasonId ?? null) : null,
      contactId: input.contactId,
      customFields: this.#customFields(input.locationId, "opportunity", input.customFields ?? [], []),
      followers: [...new Set(input.followers ?? [])],
      createdAt: now,
      updatedAt: now,
      lastStatusChangeAt: now,
      lastStageChangeAt: now,
      lastActionDate: now,
    };
    this.#applyForecast(o, input, now);
    this.store.opportunities.set(o.id, o);
    this.#emit("OpportunityCreate", opportunityEventBody("OpportunityCreate", o));
    this.#emit("OpportunityUpdate", opportunityEventBody("OpportunityUpdate", o));
    return o;
  }

  /**
   * Updates an opportunity; emits Update plus one specific event per changed aspect (stage,
   * status, monetary value, assignee).
   */
  updateOpportunity(id: string, patch: OpportunityPatch): Opportunity {
    const o = this.opportunity(id);
    const before = { ...o };
    let pipelineId = o.pipelineId;
    if (patch.pipelineId !== undefined && patch.pipelineId !== o.pipelineId) {
      const p = this.store.pipelines.get(patch.pipelineId);
      if (!p || p.locationId !== o.locationId) throw new GhlError(400, "Pipeline not found");
      pipelineId = p.id;
    }
    const pipeline = this.store.pipelines.get(pipelineId)!;
    let stageId = patch.pipelineStageId ?? o.pipelineStageId;
    if (patch.pipelineStageId === undefined && pipelineId !== o.pipelineId)
      stageId = [...pipeline.stages].sort((a, b) => a.position - b.position)[0]!.id;
    if (!pipeline.stages.some((s) => s.id === stageId))
      throw new GhlError(400, "Pipeline stage not found in this pipeline");
    const status = patch.status !== undefined ? this.#status(patch.status) : o.status;
    if (patch.assignedTo) this.#checkUser(o.locationId, patch.assignedTo, "assignedTo");
    if (patch.lostReasonId) this.#checkLostReason(o.locationId, patch.lostReasonId);
    const customFields = patch.customFields
      ? this.#customFields(o.locationId, "opportunity", patch.customFields, o.customFields)
      : o.customFields;
    const now = this.#now();
    if (patch.name !== undefined) o.name = patch.name;
    if (patch.monetaryValue !== undefined) o.monetaryValue = patch.monetaryValue;
    if (patch.assignedTo !== undefined) o.assignedTo = patch.assignedTo === "" ? null : patch.assignedTo;
    if (patch.source !== undefined) o.source = patch.source;
    o.pipelineId = pipelineId;
    o.pipelineStageId = stageId;
    o.status = status;
    if (status !== "lost") o.lostReasonId = null;
    else if (patch.lostReasonId !== undefined) o.lostReasonId = patch.lostReasonId;
    o.customFields = customFields;
    this.#applyForecast(o, patch, now);
    o.updatedAt = now;
    o.lastActionDate = now;
    if (before.status !== o.status) o.lastStatusChangeAt = now;
    if (before.pipelineStageId !== o.pipelineStageId) o.lastStageChangeAt = now;
    this.#emitChanges(before, o);
    return o;
  }

  /**
   * Sets API v3's forecast fields given in `input`. A close date moved later counts as a slip
   * (count, days, time); the first date set is the original one. The slippage rules are the
   * sandbox's reading of the v3 file's field descriptions.
   */
  #applyForecast(o: Opportunity, input: ForecastInput, now: string): void {
    const { forecastExpectedCloseDate: date, forecastProbability: probability } = input;
    if (date === undefined && probability === undefined) return;
    o.forecast ??= {
      expectedCloseDate: null,
      originalCloseDate: null,
      slippageCount: 0,
      daysSlipped: 0,
      lastSlippedAt: null,
      probability: null,
    };
    const f = o.forecast;
    if (date !== undefined) {
      if (date !== null && f.expectedCloseDate !== null && date > f.expectedCloseDate) {
        f.slippageCount += 1;
        f.daysSlipped += Math.round((Date.parse(date) - Date.parse(f.expectedCloseDate)) / 86_400_000);
        f.lastSlippedAt = now;
      }
      if (date !== null && f.originalCloseDate === null) f.originalCloseDate = date;
      f.expectedCloseDate = date;
    }
    if (probability !== undefined) f.probability = probability;
  }

  /** `PUT /opportunities/{id}/status`. */
  setStatus(id: string, status: string, lostReasonId?: string): Opportunity {
    return this.updateOpportunity(id, { status, ...(lostReasonId !== undefined ? { lostReasonId } : {}) });
  }

  #emitChanges(before: Opportunity, after: Opportunity): void {
    this.#emit("OpportunityUpdate", opportunityEventBody("OpportunityUpdate", after));
    if (before.pipelineStageId !== after.pipelineStageId || before.pipelineId !== after.pipelineId)
      this.#emit("OpportunityStageUpdate", opportunityEventBody("OpportunityStageUpdate", after));
    if (before.status !== after.status)
      this.#emit("OpportunityStatusUpdate", opportunityEventBody("OpportunityStatusUpdate", after));
    if (before.monetaryValue !== after.monetaryValue)
      this.#emit("OpportunityMonetaryValueUpdate", opportunityEventBody("OpportunityMonetaryValueUpdate", after));
    if (before.assignedTo !== after.assignedTo)
      this.#emit("OpportunityAssignedToUpdate", opportunityEventBody("OpportunityAssignedToUpdate", after));
  }

  /** Deletes an opportunity; emits Delete + Update. */
  deleteOpportunity(id: string): Opportunity {
    const o = this.opportunity(id);
    this.store.opportunities.delete(id);
    this.#emit("OpportunityDelete", opportunityEventBody("OpportunityDelete", o));
    this.#emit("OpportunityUpdate", opportunityEventBody("OpportunityUpdate", o));
    return o;
  }

  /**
   * `POST /opportunities/upsert`: by `id` when given; else, when duplicates are not allowed, the
   * contact's opportunity in the pipeline; else a new one.
   */
  upsertOpportunity(
    input: Partial<OpportunityInput> & { id?: string | undefined; pipelineId: string; locationId: string },
  ): { opportunity: Opportunity; created: boolean } {
    this.location(input.locationId);
    let existing: Opportunity | undefined;
    if (input.id) {
      existing = this.opportunity(input.id);
      if (existing.locationId !== input.locationId) throw new GhlError(400, "Opportunity not found");
    } else if (input.contactId && !this.settingsOf(input.locationId).allowDuplicateOpportunities) {
      existing = this.store
        .opportunitiesOf(input.locationId)
        .find((o) => o.contactId === input.contactId && o.pipelineId === input.pipelineId);
    }
    if (existing) {
      const o = this.updateOpportunity(existing.id, {
        pipelineId: input.pipelineId,
        name: input.name,
        pipelineStageId: input.pipelineStageId,
        status: input.status,
        monetaryValue: input.monetaryValue,
        assignedTo: input.assignedTo,
        lostReasonId: input.lostReasonId,
        customFields: input.customFields,
        forecastExpectedCloseDate: input.forecastExpectedCloseDate,
        forecastProbability: input.forecastProbability,
      });
      return { opportunity: o, created: false };
    }
    const missing = (["contactId", "name"] as const).filter((k) => !input[k]).map((k) => `${k} should not be empty`);
    if (missing.length > 0) throw unprocessable(missing);
    const o = this.createOpportunity({
      ...input,
      contactId: input.contactId!,
      name: input.name!,
      status: input.status ?? "open",
    });
    return { opportunity: o, created: true };
  }

  /** Adds followers (user ids); emits Update when something changed. */
  addFollowers(id: string, followers: string[]): { opportunity: Opportunity; added: string[] } {
    const o = this.opportunity(id);
    for (const f of followers) this.#checkUser(o.locationId, f, "follower");
    const added = [...new Set(followers)].filter((f) => !o.followers.includes(f));
    if (added.length > 0) {
      o.followers.push(...added);
      o.updatedAt = this.#now();
      this.#emit("OpportunityUpdate", opportunityEventBody("OpportunityUpdate", o));
    }
    return { opportunity: o, added };
  }

  /** Removes followers (all of them with `all`); emits Update when something changed. */
  removeFollowers(id: string, followers: string[], all: boolean): { opportunity: Opportunity; removed: string[] } {
    const o = this.opportunity(id);
    const removed = all ? [...o.followers] : o.followers.filter((f) => followers.includes(f));
    if (removed.length > 0) {
      o.followers = o.followers.filter((f) => !removed.includes(f));
      o.updatedAt = this.#now();
      this.#emit("OpportunityUpdate", opportunityEventBody("OpportunityUpdate", o));
    }
    return { opportunity: o, removed };
  }

  // ---------- contacts ----------

  /** Finds the location's contact with this email (case-insensitive) or phone. */
  findDuplicateContact(
    locationId: string,
    email?: string | null,
    phone?: string | null,
  ): { contact: Contact; matchingField: "email" | "phone" } | null {
    const contacts = this.store.contactsOf(locationId);
    if (email) {
      const c = contacts.find((x) => x.email !== null && x.email.toLowerCase() === email.toLowerCase());
      if (c) return { contact: c, matchingField: "email" };
    }
    if (phone) {
      const digits = phone.replace(/[^\d+]/g, "");
      const c = contacts.find((x) => x.phone !== null && x.phone.replace(/[^\d+]/g, "") === digits);
      if (c) return { contact: c, matchingField: "phone" };
    }
    return null;
  }

  /** Creates a contact; refuses a duplicate email / phone unless the location allows duplicates. */
  createContact(input: ContactInput): Contact {
    this.location(input.locationId);
    if (!this.settingsOf(input.locationId).allowDuplicateContacts) {
      const dup = this.findDuplicateContact(input.locationId, input.email, input.phone);
      if (dup)
        throw new GhlError(400, "This location does not allow duplicated contacts.", {
          withReason: false,
          extra: {
            meta: {
              contactName: this.store.contactName(dup.contact),
              contactId: dup.contact.id,
              matchingField: dup.matchingField,
            },
          },
        });
    }
    if (input.assignedTo) this.#checkUser(input.locationId, input.assignedTo, "assignedTo");
    let firstName = input.firstName ?? null;
    let lastName = input.lastName ?? null;
    if (!firstName && !lastName && input.name) {
      const [first, ...rest] = input.name.trim().split(/\s+/);
      firstName = first ?? null;
      lastName = rest.length > 0 ? rest.join(" ") : null;
    }
    const now = this.#now();
    const c: Contact = {
      id: this.#ids.id(),
      locationId: input.locationId,
      firstName,
      lastName,
      email: input.email ? input.email.toLowerCase() : null,
      phone: input.phone ?? null,
      companyName: input.companyName ?? null,
      website: input.website ?? null,
      address1: input.address1 ?? null,
      city: input.city ?? null,
      state: input.state ?? null,
      postalCode: input.postalCode ?? null,
      country: input.country ?? null,
      timezone: input.timezone ?? null,
      source: input.source ?? null,
      assignedTo: input.assignedTo ?? null,
      tags: [...new Set(input.tags ?? [])],
      dnd: input.dnd ?? false,
      customFields: this.#customFields(input.locationId, "contact", input.customFields ?? [], []),
      dateAdded: now,
      dateUpdated: now,
    };
    this.store.contacts.set(c.id, c);
    return c;
  }

  /**
   * `PUT /contacts/{id}`: applies the fields given (tags overwrite); an email or phone another
   * contact of the location has is refused as on create, unless the location allows duplicates.
   * Emits nothing: HighLevel's event docs have no contact events.
   */
  updateContact(id: string, patch: ContactPatch): Contact {
    const c = this.contact(id);
    if (!this.settingsOf(c.locationId).allowDuplicateContacts) {
      const dup = this.findDuplicateContact(c.locationId, patch.email, patch.phone);
      if (dup && dup.contact.id !== c.id) {
        throw new GhlError(400, "This location does not allow duplicated contacts.", {
          withReason: false,
          extra: {
            meta: {
              contactName: this.store.contactName(dup.contact),
              contactId: dup.contact.id,
              matchingField: dup.matchingField,
            },
          },
        });
      }
    }
    if (patch.assignedTo) this.#checkUser(c.locationId, patch.assignedTo, "assignedTo");
    const customFields = patch.customFields
      ? this.#customFields(c.locationId, "contact", patch.customFields, c.customFields)
      : c.customFields;
    const text = (v: string | null | undefined, current: string | null): string | null =>
      v === undefined ? current : v === null || v === "" ? null : v;
    let firstName = text(patch.firstName, c.firstName);
    let lastName = text(patch.lastName, c.lastName);
    if (patch.name && patch.firstName === undefined && patch.lastName === undefined) {
      const [first, ...rest] = patch.name.trim().split(/\s+/);
      firstName = first ?? null;
      lastName = rest.length > 0 ? rest.join(" ") : null;
    }
    c.firstName = firstName;
    c.lastName = lastName;
    if (patch.email !== undefined) c.email = patch.email ? patch.email.toLowerCase() : null;
    c.phone = text(patch.phone, c.phone);
    c.address1 = text(patch.address1, c.address1);
    c.city = text(patch.city, c.city);
    c.state = text(patch.state, c.state);
    c.postalCode = text(patch.postalCode, c.postalCode);
    c.website = text(patch.website, c.website);
    c.timezone = text(patch.timezone, c.timezone);
    c.source = text(patch.source, c.source);
    c.country = text(patch.country, c.country);
    c.assignedTo = text(patch.assignedTo, c.assignedTo);
    if (patch.tags !== undefined) c.tags = [...new Set(patch.tags)];
    if (patch.dnd !== undefined) c.dnd = patch.dnd;
    c.customFields = customFields;
    c.dateUpdated = this.#now();
    return c;
  }

  /**
   * `DELETE /contacts/{id}`: removes the contact, its notes, tasks and opportunities (an opportunity
   * needs a contact); each opportunity goes with the usual Delete + Update events. The cascade is
   * the sandbox's choice — HighLevel does not document it.
   */
  deleteContact(id: string): Contact {
    const c = this.contact(id);
    for (const o of this.store.opportunitiesOf(c.locationId).filter((x) => x.contactId === id))
      this.deleteOpportunity(o.id);
    for (const n of this.store.notesOf(id)) this.store.notes.delete(n.id);
    for (const t of this.store.tasksOf(id)) this.store.tasks.delete(t.id);
    this.store.contacts.delete(id);
    return c;
  }

  // ---------- notes (contact sub-resources) ----------

  /** Adds a note to a contact; emits NoteCreate. */
  createNote(contactId: string, input: NoteInput): Note {
    const c = this.contact(contactId);
    if (input.userId) this.#checkUser(c.locationId, input.userId, "userId");
    const n: Note = {
      id: this.#ids.id(),
      contactId,
      locationId: c.locationId,
      body: input.body,
      userId: input.userId ?? "",
      title: input.title ?? "",
      color: input.color ?? "",
      pinned: input.pinned ?? false,
      dateAdded: this.#now(),
    };
    this.store.notes.set(n.id, n);
    this.#emit("NoteCreate", noteEventBody("NoteCreate", n));
    return n;
  }

  /** Edits a note; emits NoteUpdate. */
  updateNote(contactId: string, id: string, input: Partial<NoteInput>): Note {
    const n = this.note(contactId, id);
    if (input.userId) this.#checkUser(n.locationId, input.userId, "userId");
    if (input.body !== undefined) n.body = input.body;
    if (input.userId !== undefined) n.userId = input.userId;
    if (input.title !== undefined) n.title = input.title;
    if (input.color !== undefined) n.color = input.color;
    if (input.pinned !== undefined) n.pinned = input.pinned;
    this.#emit("NoteUpdate", noteEventBody("NoteUpdate", n));
    return n;
  }

  /** Deletes a note; emits NoteDelete. */
  deleteNote(contactId: string, id: string): Note {
    const n = this.note(contactId, id);
    this.store.notes.delete(id);
    this.#emit("NoteDelete", noteEventBody("NoteDelete", n));
    return n;
  }

  // ---------- tags and tasks (contact sub-resources) ----------

  /** `POST /contacts/{id}/tags`: adds tags (kept once each); answers the contact's tags. */
  addTags(contactId: string, tags: string[]): string[] {
    const c = this.contact(contactId);
    const added = tags.map((t) => t.trim()).filter((t) => t !== "" && !c.tags.includes(t));
    if (added.length > 0) {
      c.tags = [...new Set([...c.tags, ...added])];
      c.dateUpdated = this.#now();
    }
    return [...c.tags];
  }

  /** `DELETE /contacts/{id}/tags`: removes tags (absent ones are ignored); answers the contact's tags. */
  removeTags(contactId: string, tags: string[]): string[] {
    const c = this.contact(contactId);
    const drop = new Set(tags.map((t) => t.trim()));
    if (c.tags.some((t) => drop.has(t))) {
      c.tags = c.tags.filter((t) => !drop.has(t));
      c.dateUpdated = this.#now();
    }
    return [...c.tags];
  }

  /**
   * Adds a task to a contact. Emits nothing: the reference's webhook events have no Task* events.
   * An `assignedTo` that is not a user of the contact's location is refused.
   */
  createTask(contactId: string, input: TaskInput): Task {
    const c = this.contact(contactId);
    if (input.assignedTo) this.#checkUser(c.locationId, input.assignedTo, "assignedTo");
    const now = this.#now();
    const t: Task = {
      id: this.#ids.id(),
      contactId,
      locationId: c.locationId,
      title: input.title,
      body: input.body ?? "",
      assignedTo: input.assignedTo ? input.assignedTo : null,
      dueDate: input.dueDate,
      completed: input.completed,
      dateAdded: now,
      dateUpdated: now,
    };
    this.store.tasks.set(t.id, t);
    return t;
  }

  /** `PUT /contacts/{contactId}/tasks/{taskId}`: applies the fields given (`assignedTo: ""` unassigns). */
  updateTask(contactId: string, id: string, patch: Partial<TaskInput>): Task {
    const t = this.task(contactId, id);
    if (patch.assignedTo) this.#checkUser(t.locationId, patch.assignedTo, "assignedTo");
    if (patch.title !== undefined) t.title = patch.title;
    if (patch.body !== undefined) t.body = patch.body;
    if (patch.dueDate !== undefined) t.dueDate = patch.dueDate;
    if (patch.completed !== undefined) t.completed = patch.completed;
    if (patch.assignedTo !== undefined) t.assignedTo = patch.assignedTo === "" ? null : patch.assignedTo;
    t.dateUpdated = this.#now();
    return t;
  }

  /** Deletes a task. */
  deleteTask(contactId: string, id: string): Task {
    const t = this.task(contactId, id);
    this.store.tasks.delete(id);
    return t;
  }
}
