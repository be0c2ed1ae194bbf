/**
 * The canonical owner (`Canonical.owner` in mapping.ts): `4d:<4Degrees user id>` for a user in the
 * mapping's user map (so a pair of users with different emails compares equal), else the email.
 * A side's default owner that is not in the map stands in for an unmatched user and has no opinion
 * (`undefined`), so the sync never copies the stand-in back over the real owner.
 */
import type { User } from "../../domain/port.ts";
import type { HlUser } from "../../highlevel/port.ts";
import type { Mapping } from "../../domain/mapping-config.ts";

const lower = (s: string | null | undefined): string | null => (s ? s.trim().toLowerCase() : null);

/** The canonical owner of a 4Degrees owner (see `Canonical.owner`). */
export function ownerKeyOfFourDegrees(
  mapping: Mapping,
  owner: { id: string | null; email: string | null } | null,
  users: User[],
): string | null | undefined {
  if (!owner) return null;
  if (owner.id && mapping.users.some((p) => p.fourdegreesUserId === owner.id)) return `4d:${owner.id}`;
  // The default owner stands in for owners the other side could not match: no opinion of its own.
  if (owner.id && owner.id === mapping.defaultOwner.fourdegrees) return undefined;
  return lower(owner.email) ?? lower(users.find((u) => u.id === owner.id)?.email);
}

/** The canonical owner of a HighLevel `assignedTo` (see `Canonical.owner`). */
export function ownerKeyOfHighLevel(mapping: Mapping, assignedTo: string | null | undefined, users: HlUser[]) {
  if (!assignedTo) return null;
  const pair = mapping.users.find((p) => p.highlevelUserId === assignedTo);
  if (pair) return `4d:${pair.fourdegreesUserId}`;
  if (assignedTo === mapping.defaultOwner.highlevel) return undefined;
  return lower(users.find((u) => u.id === assignedTo)?.email);
}

/** The canonical owner as the matcher's input: a mapped 4Degrees user id or an email. */
export function ownerRef(owner: string): { id?: string; email?: string } {
  return owner.startsWith("4d:") ? { id: owner.slice(3) } : { email: owner };
}
