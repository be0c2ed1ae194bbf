/**
 * Who wrote a note and when, for its copy on the other side: the author's user matched across the
 * systems with the engine's user matching (the mapping's user map, then email; never the default
 * owner, who did not write it), named by the mapped user when there is one, else
 * by the author's own name; and the original `created_at`. The copy shows both on a line above
 * its origin tag (notes.ts `tagOrigin`) and the note link keeps them.
 */
import type { Note, User } from "../../domain/port.ts";
import type { Mapping } from "../../domain/mapping-config.ts";
import type { HlNote, HlUser } from "../../highlevel/port.ts";
import { matchUser } from "./mapping.ts";

/** The original author and time of a note, resolved on both sides. */
export interface Attribution {
  /** The name the copy shows (null: unknown author). */
  name: string | null;
  createdAt: string | null;
  /** The author's 4Degrees user (when known there). */
  fdUserId: string | null;
  /** The author's HighLevel user (when known there). */
  hlUserId: string | null;
}

/** The users of both sides the attribution is resolved with. */
export interface People {
  fdUsers: User[];
  hlUsers: HlUser[];
  /** The mapping's user map (absent: users match by email only). */
  userMap?: Pick<Mapping, "users" | "defaultOwner">;
}

const NO_MAP: Pick<Mapping, "users" | "defaultOwner"> = { users: [], defaultOwner: {} };

const hlName = (u: HlUser): string | null =>
  u.name ?? ([u.firstName, u.lastName].filter((s) => s).join(" ") || null) ?? u.email ?? null;

/** The attribution of a 4Degrees note for its HighLevel copy. */
export function attributeFourDegrees(note: Note, people: People): Attribution {
  const author = people.fdUsers.find((u) => u.id === note.authorId);
  const match = author
    ? matchUser(people.userMap ?? NO_MAP, "highlevel", author, people.hlUsers, { useDefault: false })
    : null;
  const mapped = match ? people.hlUsers.find((u) => u.id === match.id) : undefined;
  return {
    name: (mapped ? hlName(mapped) : null) ?? author?.name ?? author?.email ?? null,
    createdAt: note.createdAt,
    fdUserId: author?.id ?? null,
    hlUserId: mapped?.id ?? null,
  };
}

/** The attribution of a HighLevel note for its 4Degrees copy. */
export function attributeHighLevel(note: HlNote, people: People): Attribution {
  const author = people.hlUsers.find((u) => u.id === note.userId);
  const match = author
    ? matchUser(people.userMap ?? NO_MAP, "fourdegrees", author, people.fdUsers, { useDefault: false })
    : null;
  const mapped = match ? people.fdUsers.find((u) => u.id === match.id) : undefined;
  return {
    name: mapped?.name ?? mapped?.email ?? (author ? hlName(author) : null),
    createdAt: note.dateAdded ? normaliseTime(note.dateAdded) : null,
    fdUserId: mapped?.id ?? null,
    hlUserId: author?.id ?? null,
  };
}

/** An RFC 3339 time as `…Z` (what 4Degrees' `created_at` takes), or null when it is not one. */
function normaliseTime(value: string): string | null {
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** The line a copy shows above its origin tag, or null when neither author nor time is known. */
export function attributionLine(a: Pick<Attribution, "name" | "createdAt"> | null | undefined): string | null {
  if (!a || (!a.name && !a.createdAt)) return null;
  return `— by ${(a.name ?? "an unknown author").replace(/[\n·]/g, " ").trim()} · ${a.createdAt ?? "unknown time"}`;
}
