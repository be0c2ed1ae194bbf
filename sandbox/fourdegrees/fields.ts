/**
 * The 4Degrees sandbox's custom deal fields: a write validated against the pipeline's field
 * definitions (types, exact select options, read-only and required fields), and formula values.
 */
import { fail } from "./errors.ts";
import type { Deal, FieldDef, FieldValue } from "./model.ts";

/** What field validation reads from the workspace. */
export interface FieldLookups {
  field(id: string): FieldDef | undefined;
  fieldsOf(pipelineId: string): FieldDef[];
  hasContact(id: string): boolean;
  hasDeal(id: string): boolean;
}

/** Validates custom field writes against the pipeline's field definitions and merges them. */
export function applyFields(
  w: FieldLookups,
  pipelineId: string,
  base: Record<string, FieldValue>,
  input: Record<string, FieldValue>,
  options: { allowUiOnlyFields?: boolean },
  checkRequired: boolean,
): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = { ...base };
  for (const [fieldId, value] of Object.entries(input)) {
    const def = w.field(fieldId);
    if (!def || def.pipeline_id !== pipelineId)
      throw fail.validation(
        `fields.${fieldId}: no such field in pipeline ${pipelineId} (GET /pipelines/${pipelineId}/fields lists them)`,
        "unknown_custom_field",
      );
    const uiOnly = def.type === "linked_deals" && options.allowUiOnlyFields === true;
    if (def.read_only && !uiOnly)
      throw fail.validation(`fields.${fieldId} (${def.name}) is a read-only ${def.type} field`, "read_only_field");
    if (value === null) {
      delete out[fieldId];
      continue;
    }
    out[fieldId] = checkFieldValue(w, def, value);
  }
  if (checkRequired || Object.keys(input).length > 0) {
    for (const def of w.fieldsOf(pipelineId)) {
      if (def.required && (out[def.id] === undefined || out[def.id] === ""))
        throw fail.validation(`fields.${def.id} (${def.name}) is required`, "required_field_missing");
    }
  }
  return out;
}

/** One field value checked against its definition (selects match exactly, lists are de-duplicated). */
function checkFieldValue(w: FieldLookups, def: FieldDef, value: FieldValue): FieldValue {
  const bad = (expected: string) => fail.validation(`fields.${def.id} (${def.name}) must be ${expected}`);
  switch (def.type) {
    case "text":
      if (typeof value !== "string") throw bad("a string");
      return value;
    case "number":
    case "percentage":
      if (typeof value !== "number" || !Number.isFinite(value)) throw bad("a number");
      return value;
    case "currency":
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw bad("an integer amount in minor units");
      return value;
    case "date":
      if (typeof value !== "string" || !isCalendarDate(value)) throw bad("a date as YYYY-MM-DD");
      return value;
    case "single_select":
      if (typeof value !== "string" || !def.options!.includes(value))
        throw bad(`one of ${def.options!.map((o) => JSON.stringify(o)).join(", ")} (exact match)`);
      return value;
    case "multi_select":
      if (!Array.isArray(value) || value.some((v) => !def.options!.includes(v)))
        throw bad(`a list of ${def.options!.map((o) => JSON.stringify(o)).join(", ")} (exact match)`);
      return dedupe(value);
    case "contact":
      if (typeof value !== "string" || !w.hasContact(value)) throw bad("the id of an existing contact");
      return value;
    case "linked_deals":
      if (!Array.isArray(value) || value.some((v) => !w.hasDeal(v))) throw bad("a list of deal ids");
      return dedupe(value);
    case "formula":
      throw bad("left alone (formula fields are computed)");
  }
}

/** True for a real `YYYY-MM-DD` calendar date. */
export function isCalendarDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
}

/** Formula fields: the sandbox knows one formula, `value / 1000` (the deal value in thousands). */
export function computeFormulas(deal: Deal, defs: FieldDef[]): void {
  for (const def of defs) {
    if (def.type !== "formula") continue;
    if (deal.value === null) delete deal.fields[def.id];
    else deal.fields[def.id] = Math.round(deal.value.amount_minor / 1000) / 100;
  }
}

/** The fields of `fields` that `defs` defines (a deal moved to another pipeline drops the others). */
export function keepFieldsOf(fields: Record<string, FieldValue>, defs: FieldDef[]): Record<string, FieldValue> {
  const ids = new Set(defs.map((d) => d.id));
  return Object.fromEntries(Object.entries(fields).filter(([id]) => ids.has(id)));
}

/** `items` without repeats, first occurrence kept. */
export function dedupe<T>(items: T[]): T[] {
  return [...new Set(items)];
}
