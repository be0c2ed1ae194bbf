/**
 * Picklist value maps of extra custom fields (`ExtraField.valueMap`): the canonical record holds
 * the 4Degrees option; HighLevel options are translated on the way in and out. A value with no
 * pair is never guessed: the write leaves the field out and says which values were unmapped.
 */
import type { FieldValue } from "../../domain/port.ts";
import type { ExtraField } from "../../domain/mapping-config.ts";

/** A field value translated for one side, or the values that have no pair. */
export type MappedValue = { ok: true; value: FieldValue } | { ok: false; unmapped: string[] };

const each = (v: FieldValue, f: (s: string) => string | undefined): MappedValue => {
  if (v === null || typeof v === "boolean" || typeof v === "number") {
    if (v === null) return { ok: true, value: null };
    const out = f(String(v));
    return out === undefined ? { ok: false, unmapped: [String(v)] } : { ok: true, value: out };
  }
  const values = Array.isArray(v) ? v : [v];
  const unmapped = values.filter((x) => f(x) === undefined);
  if (unmapped.length) return { ok: false, unmapped };
  const mapped = values.map((x) => f(x) ?? x);
  return { ok: true, value: Array.isArray(v) ? mapped : (mapped[0] ?? null) };
};

/** A HighLevel value in canonical (4Degrees) terms; unmapped options stay as they are (and fail on write). */
export function fromHighLevelValue(field: ExtraField, value: FieldValue): FieldValue {
  if (field.valueMap.length === 0) return value;
  const r = each(value, (s) => field.valueMap.find((p) => p.highlevel === s)?.fourdegrees ?? s);
  return r.ok ? r.value : value;
}

/** The HighLevel value for a canonical value. */
export function toHighLevelValue(field: ExtraField, value: FieldValue): MappedValue {
  if (field.valueMap.length === 0) return { ok: true, value };
  return each(value, (s) => field.valueMap.find((p) => p.fourdegrees === s)?.highlevel);
}

/** The 4Degrees value for a canonical value (it must be one of the map's 4Degrees options). */
export function toFourDegreesValue(field: ExtraField, value: FieldValue): MappedValue {
  if (field.valueMap.length === 0) return { ok: true, value };
  return each(value, (s) => (field.valueMap.some((p) => p.fourdegrees === s) ? s : undefined));
}

/** The skip reason for unmapped values. */
export function unmappedReason(field: ExtraField, target: "HighLevel" | "4Degrees", unmapped: string[]): string {
  const from = target === "HighLevel" ? "4Degrees" : "HighLevel";
  return `${from} value ${unmapped.map((u) => `"${u}"`).join(", ")} of field ${field.key} has no ${target} option in the value map`;
}
