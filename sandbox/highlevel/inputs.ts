/**
 * What the HighLevel sandbox's service takes: the inputs of opportunity, contact and note writes
 * (as the API and the control API pass them), per-location settings, and custom field resolution.
 */
import { unprocessable } from "./errors.ts";
import type { CustomField } from "./store.ts";

/** Custom field values as the API takes them: `[{id? | key?, field_value}]`. */
export interface CustomFieldInput {
  id?: string | undefined;
  key?: string | undefined;
  field_value?: unknown;
}

export interface OpportunityInput {
  pipelineId: string;
  locationId: string;
  name: string;
  status: string;
  contactId: string;
  pipelineStageId?: string | undefined;
  monetaryValue?: number | undefined;
  assignedTo?: string | undefined;
  source?: string | undefined;
  customFields?: CustomFieldInput[] | undefined;
  lostReasonId?: string | undefined;
  followers?: string[] | undefined;
}

export interface OpportunityPatch {
  pipelineId?: string | undefined;
  name?: string | undefined;
  pipelineStageId?: string | undefined;
  status?: string | undefined;
  monetaryValue?: number | undefined;
  assignedTo?: string | undefined;
  customFields?: CustomFieldInput[] | undefined;
  lostReasonId?: string | undefined;
  source?: string | undefined;
}

export interface ContactInput {
  locationId: string;
  firstName?: string | null | undefined;
  lastName?: string | null | undefined;
  name?: string | null | undefined;
  email?: string | null | undefined;
  phone?: string | null | undefined;
  companyName?: string | null | undefined;
  website?: string | null | undefined;
  address1?: string | null | undefined;
  city?: string | null | undefined;
  state?: string | null | undefined;
  postalCode?: string | null | undefined;
  country?: string | null | undefined;
  timezone?: string | null | undefined;
  source?: string | null | undefined;
  assignedTo?: string | null | undefined;
  tags?: string[] | undefined;
  dnd?: boolean | undefined;
  customFields?: CustomFieldInput[] | undefined;
}

/** `UpdateContactDto` (ghl/apps/contacts.json): every field optional; `null` clears a nullable one. */
export interface ContactPatch {
  firstName?: string | null | undefined;
  lastName?: string | null | undefined;
  name?: string | null | undefined;
  email?: string | null | undefined;
  phone?: string | null | undefined;
  address1?: string | null | undefined;
  city?: string | null | undefined;
  state?: string | null | undefined;
  postalCode?: string | undefined;
  website?: string | null | undefined;
  timezone?: string | null | undefined;
  source?: string | null | undefined;
  country?: string | undefined;
  assignedTo?: string | null | undefined;
  /** Overwrites every tag (the spec says so). */
  tags?: string[] | undefined;
  dnd?: boolean | undefined;
  customFields?: CustomFieldInput[] | undefined;
}

export interface NoteInput {
  body: string;
  userId?: string | undefined;
  title?: string | undefined;
  color?: string | undefined;
  pinned?: boolean | undefined;
}

/** Per-location settings HighLevel keeps under Settings → Opportunities / Contacts. */
export interface LocationSettings {
  /** "Allow duplicate opportunities" (off by default): one opportunity per contact per pipeline. */
  allowDuplicateOpportunities: boolean;
  /** "Allow duplicate contact" (off by default): one contact per email / phone. */
  allowDuplicateContacts: boolean;
}

/** Resolves `[{id|key, field_value}]` against `fields` (the location's fields of `model`), merging into `current`. */
export function resolveCustomFields(
  fields: CustomField[],
  model: "opportunity" | "contact",
  input: CustomFieldInput[],
  current: Array<{ id: string; value: unknown }>,
): Array<{ id: string; value: unknown }> {
  const next = current.map((f) => ({ ...f }));
  const problems: string[] = [];
  input.forEach((item, i) => {
    const key = item.key?.replace(new RegExp(`^${model}\\.`), "");
    const field = item.id
      ? fields.find((f) => f.id === item.id)
      : fields.find((f) => f.fieldKey === `${model}.${key}` || f.fieldKey === key);
    if (!field) {
      problems.push(
        `customFields.${i} refers to an unknown ${model} custom field: ${item.id ?? item.key ?? "(no id or key)"}`,
      );
      return;
    }
    const value = item.field_value;
    const at = next.findIndex((f) => f.id === field.id);
    if (value === undefined || value === null || value === "") {
      if (at >= 0) next.splice(at, 1);
    } else if (at >= 0) next[at] = { id: field.id, value };
    else next.push({ id: field.id, value });
  });
  if (problems.length > 0) throw unprocessable(problems);
  return next;
}
