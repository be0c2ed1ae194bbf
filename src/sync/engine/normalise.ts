/** Normalisations that keep both sides' values comparable (each prevents a ping-pong write). */
import type { FieldValue } from "../../domain/port.ts";

/** A HighLevel date custom field (ISO string, `YYYY-MM-DD`, or epoch ms) as `YYYY-MM-DD`. */
export function normaliseDate(value: unknown): string | null {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  const ms =
    typeof value === "number"
      ? value
      : typeof value === "string"
        ? /^\d+$/.test(value)
          ? Number(value)
          : Date.parse(value)
        : value instanceof Date
          ? value.getTime()
          : NaN;
  if (!Number.isFinite(ms)) return null;
  return new Date(ms).toISOString().slice(0, 10);
}

/** A custom field value in neutral form (arrays of strings, scalars, or null). */
export function normaliseFieldValue(value: unknown): FieldValue {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map((v) => String(v));
  return JSON.stringify(value);
}
