/**
 * What the sync engine needs from one HighLevel location. The HighLevel connector's typed client
 * (src/highlevel/) is adapted to this interface in src/highlevel/adapter.ts; tests can hand the engine
 * any implementation. Shapes are the connector's parsed HighLevel shapes (src/highlevel/schemas.ts):
 * the engine translates them to its canonical record in src/sync/engine/mapping.ts and nowhere else.
 */
import type { CreateOpportunityInput } from "./opportunities.ts";
import type { Contact, Note as HlNote, Opportunity, Pipeline as HlPipeline, User as HlUser } from "./schemas.ts";
import type { Page } from "../domain/port.ts";

export type { Contact, HlNote, HlPipeline, HlUser, Opportunity };

/** A custom field write: `{id, field_value}` (HighLevel's input shape). */
export interface CustomFieldInput {
  id: string;
  field_value: string | number | boolean | string[] | null;
}

/**
 * Body of `POST /opportunities/`: the client's create input, naming its location (the engine works
 * across locations) and writing custom fields by id only.
 */
export interface OpportunityCreate extends Omit<CreateOpportunityInput, "customFields"> {
  locationId: string;
  customFields?: CustomFieldInput[];
}

/** Body of `PUT /opportunities/{id}` (all optional). */
export type OpportunityUpdate = Partial<Omit<OpportunityCreate, "locationId" | "contactId" | "assignedTo">> & {
  contactId?: string;
  /** `null` clears the assignee. */
  assignedTo?: string | null;
};

/** Search filters the engine uses (keeps `location_id` on every page, as the pager must). */
export interface OpportunityQuery {
  pipelineId?: string;
  contactId?: string;
  /** Free-text (`q`): the engine searches by name before any create. */
  query?: string;
  cursor?: string | null;
  limit?: number;
}

/** An opportunity custom field: its HighLevel data type (e.g. `SINGLE_OPTIONS`) and picklist options. */
export interface HlFieldDef {
  id: string;
  name: string;
  dataType: string | null;
  options: string[];
}

/** The HighLevel side of one account, as the engine uses it. */
export interface OpportunityCrm {
  readonly locationId: string;
  /**
   * Opportunities carry the forecast close date natively (`forecastExpectedCloseDate`, read and
   * written): true under API v3. The engine then needs no close-date custom field.
   */
  readonly nativeCloseDate: boolean;
  /** False when the connection lacks `opportunities.write` (read-only sync). */
  canWrite(): Promise<boolean>;
  listPipelines(): Promise<HlPipeline[]>;
  listUsers(): Promise<HlUser[]>;
  /** The location's opportunity custom fields (mapping validation, the default mapping). */
  listCustomFields(): Promise<HlFieldDef[]>;
  /** The location's name (for people; null when HighLevel has none). */
  locationName(): Promise<string | null>;
  /** The opportunity, or `null` on 404. */
  getOpportunity(id: string): Promise<Opportunity | null>;
  searchOpportunities(query: OpportunityQuery): Promise<Page<Opportunity> & { total: number | null }>;
  createOpportunity(body: OpportunityCreate): Promise<Opportunity>;
  updateOpportunity(id: string, body: OpportunityUpdate): Promise<Opportunity>;
  /** Resolves `false` when it was already gone. */
  deleteOpportunity(id: string): Promise<boolean>;
  /** Finds a contact by email (or creates one); without an email, creates one named `name`. */
  ensureContact(input: { email: string | null; name: string }): Promise<Contact>;
  /** The location's contact with this email, else with this phone, else `null` (HighLevel's duplicate search). */
  findContact(query: { email: string | null; phone: string | null }): Promise<Contact | null>;
  /** Creates a contact; a duplicate HighLevel refuses (email or phone in use) resolves to that contact. */
  createContact(input: { name: string | null; email: string | null; phone: string | null }): Promise<Contact>;
  /** `PUT /opportunities/{id}/status`, with the lost reason when `lost`. */
  updateStatus(id: string, status: "open" | "won" | "lost" | "abandoned", lostReasonId?: string): Promise<void>;
  /** The location's lost reasons (cached; `fresh` reloads them, e.g. for an id the cache does not know). */
  listLostReasons(options?: { fresh?: boolean }): Promise<Array<{ id: string; name: string }>>;
  addFollowers(id: string, userIds: string[]): Promise<void>;
  removeFollowers(id: string, userIds: string[]): Promise<void>;
  listNotes(contactId: string): Promise<HlNote[]>;
  /** `userId`: the HighLevel user the note is by (the original author's mapped user). */
  createNote(contactId: string, body: string, userId?: string): Promise<HlNote>;
  updateNote(contactId: string, noteId: string, body: string): Promise<HlNote>;
  /** Resolves `false` when it was already gone. */
  deleteNote(contactId: string, noteId: string): Promise<boolean>;
}
