/**
 * Records → the JSON HighLevel answers, in the shapes of the official OpenAPI files
 * (ghl/apps/opportunities.json, ghl/apps/contacts.json) and the reference page. Absent values are
 * left out rather than sent as null (the spec types them as plain strings), except where HighLevel
 * is observed to send null (search `meta`).
 */
import type { Contact, CustomField, HighLevelStore, LostReason, Note, Opportunity, Pipeline, User } from "./store.ts";

/** Drops keys whose value is null or undefined. */
function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v;
  return out as Partial<T>;
}

/** The contact summary embedded in an opportunity (`SearchOpportunitiesContactResponseSchema`). */
export function embeddedContact(store: HighLevelStore, contactId: string): Record<string, unknown> | undefined {
  const c = store.contacts.get(contactId);
  if (!c) return undefined;
  return compact({
    id: c.id,
    name: store.contactName(c) || null,
    companyName: c.companyName,
    email: c.email,
    phone: c.phone,
    tags: [...c.tags],
  });
}

/**
 * An opportunity as GET / create / update answer it: custom fields as `{id, fieldValue}`.
 * With `searchDrift`, custom fields come as real search results carry them: `{id, type, fieldValueString}`.
 */
export function renderOpportunity(
  store: HighLevelStore,
  o: Opportunity,
  options: { searchDrift?: boolean } = {},
): Record<string, unknown> {
  const customFields = o.customFields.map((f) =>
    options.searchDrift
      ? { id: f.id, type: "string", fieldValueString: Array.isArray(f.value) ? f.value.join(",") : String(f.value) }
      : { id: f.id, fieldValue: f.value },
  );
  return compact({
    id: o.id,
    name: o.name,
    monetaryValue: o.monetaryValue,
    pipelineId: o.pipelineId,
    pipelineStageId: o.pipelineStageId,
    assignedTo: o.assignedTo,
    status: o.status,
    source: o.source,
    lastStatusChangeAt: o.lastStatusChangeAt,
    lastStageChangeAt: o.lastStageChangeAt,
    lastActionDate: o.lastActionDate,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    contactId: o.contactId,
    locationId: o.locationId,
    contact: embeddedContact(store, o.contactId),
    lostReasonId: o.lostReasonId,
    customFields,
    followers: [...o.followers],
  });
}

/** A pipeline with its stages (`GET /opportunities/pipelines`). */
export function renderPipeline(p: Pipeline): Record<string, unknown> {
  return {
    id: p.id,
    name: p.name,
    stages: [...p.stages]
      .sort((a, b) => a.position - b.position)
      .map((s) => ({
        id: s.id,
        name: s.name,
        position: s.position,
        showInFunnel: s.showInFunnel,
        showInPieChart: s.showInPieChart,
      })),
    showInFunnel: p.showInFunnel,
    showInPieChart: p.showInPieChart,
    locationId: p.locationId,
  };
}

export function renderLostReason(r: LostReason): Record<string, unknown> {
  return { id: r.id, name: r.name, locationId: r.locationId, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

/** A note (`GetNoteSchema`). */
export function renderNote(n: Note): Record<string, unknown> {
  return {
    id: n.id,
    body: n.body,
    userId: n.userId,
    dateAdded: n.dateAdded,
    contactId: n.contactId,
    title: n.title,
    color: n.color,
    pinned: n.pinned,
  };
}

function lower(s: string | null): string | null {
  return s === null ? null : s.toLowerCase();
}

/** A contact as `GET /contacts/{id}` answers it (`GetContectByIdSchema`). */
export function renderContact(store: HighLevelStore, c: Contact): Record<string, unknown> {
  const name = store.contactName(c);
  return compact({
    id: c.id,
    name: name || null,
    locationId: c.locationId,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    emailLowerCase: lower(c.email),
    timezone: c.timezone,
    companyName: c.companyName,
    phone: c.phone,
    dnd: c.dnd,
    type: "lead",
    source: c.source,
    assignedTo: c.assignedTo,
    address1: c.address1,
    city: c.city,
    state: c.state,
    country: c.country,
    postalCode: c.postalCode,
    website: c.website,
    tags: [...c.tags],
    dateAdded: c.dateAdded,
    dateUpdated: c.dateUpdated,
    firstNameLowerCase: lower(c.firstName),
    lastNameLowerCase: lower(c.lastName),
    fullNameLowerCase: name ? name.toLowerCase() : null,
    customFields: c.customFields.map((f) => ({ id: f.id, value: f.value })),
  });
}

/** A contact as `POST /contacts/` answers it (`CreateContactSchema`). */
export function renderCreatedContact(store: HighLevelStore, c: Contact): Record<string, unknown> {
  const { name: _name, ...rest } = renderContact(store, c);
  return { ...rest, deleted: false, bounceEmail: false, unsubscribeEmail: false };
}

/** A contact in `GET /contacts/` results (`ContactsSearchSchema` plus the name fields real answers carry). */
export function renderContactListItem(store: HighLevelStore, c: Contact): Record<string, unknown> {
  return compact({
    id: c.id,
    locationId: c.locationId,
    contactName: store.contactName(c).toLowerCase() || null,
    firstName: c.firstName,
    lastName: c.lastName,
    companyName: c.companyName,
    email: c.email,
    phone: c.phone,
    dnd: c.dnd,
    type: "lead",
    source: c.source,
    assignedTo: c.assignedTo,
    timezone: c.timezone,
    country: c.country,
    dateAdded: c.dateAdded,
    dateUpdated: c.dateUpdated,
    tags: [...c.tags],
    customFields: c.customFields.map((f) => ({ id: f.id, value: f.value })),
    followers: [],
  });
}

/** A user of a location (`GET /users/`). */
export function renderUser(u: User): Record<string, unknown> {
  return {
    id: u.id,
    name: `${u.firstName} ${u.lastName}`,
    firstName: u.firstName,
    lastName: u.lastName,
    email: u.email,
    phone: u.phone,
    extension: "",
    permissions: { opportunitiesEnabled: true, contactsEnabled: true },
    roles: { type: "account", role: u.role, locationIds: [...u.locationIds] },
    deleted: false,
  };
}

/** A custom field definition (`GET /locations/{locationId}/customFields`). */
export function renderCustomField(f: CustomField): Record<string, unknown> {
  return compact({
    id: f.id,
    name: f.name,
    model: f.model,
    fieldKey: f.fieldKey,
    placeholder: f.placeholder,
    dataType: f.dataType,
    position: f.position,
    picklistOptions: f.picklistOptions,
    isAllowedCustomOption: false,
    isMultiFileAllowed: false,
    maxFileLimit: 0,
    locationId: f.locationId,
  });
}
