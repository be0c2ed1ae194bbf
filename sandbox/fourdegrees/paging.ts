/** Cursor paging of the 4Degrees sandbox's lists: opaque cursors over an (sort key, id) order. */
import { fail } from "./errors.ts";
import type { Deal } from "./model.ts";

/** One page of a list and the cursor of the next (null on the last page). */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** Where a page ended: the last item's sort key and id. */
export interface CursorPosition {
  /** Sort key of the last item served. */
  k: string;
  i: string;
}

/** String order by code unit (what the sandbox sorts ids and timestamps by). */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Index of the first deal strictly after the cursor position in (updated_at, id) order. */
export function lowerBoundAfter(sorted: Deal[], pos: CursorPosition): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const d = sorted[mid]!;
    const c = cmp(d.updated_at, pos.k) || cmp(d.id, pos.i);
    if (c <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The opaque `next_cursor` for a position. */
export function encodeCursor(pos: CursorPosition): string {
  return btoa(JSON.stringify(pos)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes an opaque cursor; anything else → 400 `invalid_cursor`. */
export function decodeCursor(raw: string): CursorPosition {
  try {
    const json: unknown = JSON.parse(atob(raw.replace(/-/g, "+").replace(/_/g, "/")));
    if (
      json &&
      typeof json === "object" &&
      "k" in json &&
      "i" in json &&
      typeof json.k === "string" &&
      typeof json.i === "string"
    )
      return { k: json.k, i: json.i };
  } catch {
    // fall through
  }
  throw fail.badRequest("cursor is not a cursor this API returned", "invalid_cursor");
}
