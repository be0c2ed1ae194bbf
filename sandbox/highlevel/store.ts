/**
 * The HighLevel sandbox's data: companies (agencies), locations (sub-accounts), users, pipelines
 * with stages, custom fields, lost reasons, contacts, contact notes and opportunities — in memory,
 * with ids shaped like HighLevel's (20-character alphanumerics, UUID stage ids) from a seeded stream.
 *
 * Records are stored in HighLevel's own field names; `views.ts`-style rendering lives in
 * `render.ts` so the API answers exactly the shapes of the official OpenAPI files.
 */
import { SeededRandom } from "../core/random.ts";

export type OpportunityStatus = "open" | "won" | "lost" | "abandoned";
export const OPPORTUNITY_STATUSES = ["open", "won", "lost", "abandoned"] as const;

export interface Company {
  id: string;
  name: string;
}

export interface Location {
  id: string;
  companyId: string;
  name: string;
  address: string;
  timezone: string;
  /** A paused / cancelled sub-account: token refreshes fail with "Location is not active". */
  active: boolean;
}

export interface User {
  id: string;
  companyId: string;
  firstName: string;
  lastName: string;
  email: string;
  phone: string;
  role: "admin" | "user";
  locationIds: string[];
}

export interface Stage {
  id: string;
  name: string;
  position: number;
  showInFunnel: boolean;
  showInPieChart: boolean;
}

export interface Pipeline {
  id: string;
  locationId: string;
  name: string;
  stages: Stage[];
  showInFunnel: boolean;
  showInPieChart: boolean;
}

export type CustomFieldDataType =
  | "TEXT"
  | "LARGE_TEXT"
  | "NUMERICAL"
  | "MONETORY"
  | "DATE"
  | "SINGLE_OPTIONS"
  | "MULTIPLE_OPTIONS"
  | "CHECKBOX"
  | "PHONE"
  | "EMAIL";

export interface CustomField {
  id: string;
  locationId: string;
  name: string;
  /** e.g. `opportunity.expected_close_date` */
  fieldKey: string;
  dataType: CustomFieldDataType;
  model: "opportunity" | "contact";
  position: number;
  placeholder: string;
  picklistOptions?: string[];
}

export interface LostReason {
  id: string;
  locationId: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

export interface Contact {
  id: string;
  locationId: string;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phone: string | null;
  companyName: string | null;
  website: string | null;
  address1: string | null;
  city: string | null;
  state: string | null;
  postalCode: string | null;
  country: string | null;
  timezone: string | null;
  source: string | null;
  assignedTo: string | null;
  tags: string[];
  dnd: boolean;
  customFields: Array<{ id: string; value: unknown }>;
  dateAdded: string;
  dateUpdated: string;
}

export interface Note {
  id: string;
  contactId: string;
  locationId: string;
  body: string;
  userId: string;
  title: string;
  color: string;
  pinned: boolean;
  dateAdded: string;
}

export interface Opportunity {
  id: string;
  locationId: string;
  name: string;
  monetaryValue: number;
  pipelineId: string;
  pipelineStageId: string;
  assignedTo: string | null;
  status: OpportunityStatus;
  source: string;
  lostReasonId: string | null;
  contactId: string;
  customFields: Array<{ id: string; value: unknown }>;
  followers: string[];
  createdAt: string;
  updatedAt: string;
  lastStatusChangeAt: string;
  lastStageChangeAt: string;
  lastActionDate: string;
}

/** Ids shaped like HighLevel's: 20 alphanumerics (Mongo-era ids) and UUIDs for stages. */
export class IdSource {
  #random: SeededRandom;

  constructor(seed: number) {
    this.#random = new SeededRandom(seed);
  }

  /** A 20-character id like `ve9EPM428h8vShlRW1KT`. */
  id(): string {
    return this.#random.string(20);
  }

  /** A v4-shaped UUID (stage ids). */
  uuid(): string {
    return this.#random.uuid();
  }

  /** A lowercase hex string (opaque tokens). */
  hex(length: number): string {
    return this.#random.string(length, "0123456789abcdef");
  }
}

/** All records, by id. */
export class HighLevelStore {
  readonly companies = new Map<string, Company>();
  readonly locations = new Map<string, Location>();
  readonly users = new Map<string, User>();
  readonly pipelines = new Map<string, Pipeline>();
  readonly customFields = new Map<string, CustomField>();
  readonly lostReasons = new Map<string, LostReason>();
  readonly contacts = new Map<string, Contact>();
  readonly notes = new Map<string, Note>();
  readonly opportunities = new Map<string, Opportunity>();

  clear(): void {
    for (const map of [
      this.companies,
      this.locations,
      this.users,
      this.pipelines,
      this.customFields,
      this.lostReasons,
      this.contacts,
      this.notes,
      this.opportunities,
    ])
      map.clear();
  }

  pipelinesOf(locationId: string): Pipeline[] {
    return [...this.pipelines.values()].filter((p) => p.locationId === locationId);
  }

  usersOf(locationId: string): User[] {
    return [...this.users.values()].filter((u) => u.locationIds.includes(locationId));
  }

  customFieldsOf(locationId: string, model?: "opportunity" | "contact"): CustomField[] {
    return [...this.customFields.values()]
      .filter((f) => f.locationId === locationId && (!model || f.model === model))
      .sort((a, b) => a.position - b.position);
  }

  lostReasonsOf(locationId: string): LostReason[] {
    return [...this.lostReasons.values()].filter((r) => r.locationId === locationId);
  }

  opportunitiesOf(locationId: string): Opportunity[] {
    return [...this.opportunities.values()].filter((o) => o.locationId === locationId);
  }

  contactsOf(locationId: string): Contact[] {
    return [...this.contacts.values()].filter((c) => c.locationId === locationId);
  }

  notesOf(contactId: string): Note[] {
    return [...this.notes.values()]
      .filter((n) => n.contactId === contactId)
      .sort((a, b) => b.dateAdded.localeCompare(a.dateAdded) || b.id.localeCompare(a.id));
  }

  /** The stage with `stageId` in `pipelineId`, if any. */
  stage(pipelineId: string, stageId: string): Stage | undefined {
    return this.pipelines.get(pipelineId)?.stages.find((s) => s.id === stageId);
  }

  /** `firstName lastName`, HighLevel's contact `name`. */
  contactName(c: Contact): string {
    return [c.firstName, c.lastName].filter(Boolean).join(" ");
  }
}
