/**
 * Small helpers shared by the worker and node tests.
 */

/**
 * A parsed JSON response body as tests read it: deep property access, the values checked by the
 * assertions themselves. One alias, so a typed body per endpoint can replace it file by file.
 */
// oxlint-disable-next-line typescript/no-explicit-any -- tests assert on the values; a schema per sandbox endpoint would duplicate them
export type JsonBody = any;

/** `Array.prototype.sort`'s default order (by the string form, in UTF-16 code units), spelled out. */
export function ascending(a: unknown, b: unknown): number {
  const x = textOf(a);
  const y = textOf(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return JSON.stringify(v) ?? "";
}
