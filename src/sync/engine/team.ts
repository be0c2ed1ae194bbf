/**
 * The deal team ↔ HighLevel followers, matched through the user map: a member crosses when its
 * user has a partner on the other side by the engine's user matching (`matchUser`: the mapping's
 * user map, then the same email; never the default owner) and that partner matches back to it,
 * so the pairing is one-to-one and two users mapped by hand with different emails cross. The
 * canonical team is the sorted `4d:<4Degrees user id>` of the members that cross; the others stay
 * on their side, are never compared, and are reported (`teamSkips`). A snapshot from when teams
 * compared as emails is read in this form (`upgradeTeamBase`). See docs/sync.md "Followers ↔ team".
 */
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Flat, PersonRef, User } from "../../domain/port.ts";
import type { HlUser } from "../../highlevel/port.ts";
import { matchUser } from "./mapping.ts";

/** Who crosses: each 4Degrees user id with its HighLevel user id, and back. */
export interface TeamIndex {
  hlOf: ReadonlyMap<string, string>;
  fdOf: ReadonlyMap<string, string>;
  fdUsers: readonly User[];
  hlUsers: readonly HlUser[];
}

const lower = (s: string | null | undefined): string | null => (s ? s.trim().toLowerCase() : null);
const KEY = "4d:";
const keyOf = (fdUserId: string): string => `${KEY}${fdUserId}`;

/** The one-to-one pairing of the users of both sides that can be team members on both. */
export function teamIndex(
  mapping: Pick<Mapping, "users" | "defaultOwner">,
  fdUsers: readonly User[],
  hlUsers: readonly HlUser[],
): TeamIndex {
  const claimed = new Set(mapping.users.map((p) => p.highlevelUserId));
  const tentative = new Map<string, { hl: string; byMap: boolean }>();
  for (const u of fdUsers) {
    const m = matchUser(mapping, "highlevel", u, hlUsers, { useDefault: false });
    // An email match onto a HighLevel user the map gives to someone else is not this user's partner.
    if (!m || (m.via === "email" && claimed.has(m.id))) continue;
    tentative.set(u.id, { hl: m.id, byMap: m.via === "map" });
  }
  const back = new Map<string, { fd: string; byMap: boolean }>();
  for (const [fd, t] of tentative) {
    const seen = back.get(t.hl);
    if (!seen || (t.byMap && !seen.byMap)) back.set(t.hl, { fd, byMap: t.byMap });
  }
  const hlOf = new Map<string, string>();
  const fdOf = new Map<string, string>();
  for (const [fd, t] of tentative)
    if (back.get(t.hl)?.fd === fd) {
      hlOf.set(fd, t.hl);
      fdOf.set(t.hl, fd);
    }
  return { hlOf, fdOf, fdUsers, hlUsers };
}

/** A 4Degrees team member's user id (a member named by email only is found by it). */
function memberId(m: PersonRef, index: TeamIndex): string | null {
  if (m.id) return m.id;
  const email = lower(m.email);
  return email ? (index.fdUsers.find((u) => lower(u.email) === email)?.id ?? null) : null;
}

const sorted = (keys: Iterable<string>): string[] => [...new Set(keys)].sort();

/** The canonical team of a 4Degrees deal team. */
export function dealTeamKeys(team: readonly PersonRef[], index: TeamIndex): string[] {
  return sorted(
    team.flatMap((m) => {
      const id = memberId(m, index);
      return id && index.hlOf.has(id) ? [keyOf(id)] : [];
    }),
  );
}

/** The canonical team of a HighLevel opportunity's followers. */
export function followerKeys(followers: readonly string[], index: TeamIndex): string[] {
  return sorted(
    followers.flatMap((h) => {
      const fd = index.fdOf.get(h);
      return fd ? [keyOf(fd)] : [];
    }),
  );
}

const fdIdOfKey = (key: unknown): string | null =>
  typeof key === "string" && key.startsWith(KEY) ? key.slice(KEY.length) : null;

/** The follower calls that make `followers` show the canonical team `want` (non-crossing followers stay). */
export function followerCalls(
  want: readonly unknown[],
  followers: readonly string[],
  index: TeamIndex,
): { add: string[]; remove: string[] } {
  const wanted = new Set(want.flatMap((k) => fdIdOfKey(k) ?? []));
  const add = [...wanted].flatMap((fd) => {
    const hl = index.hlOf.get(fd);
    return hl && !followers.includes(hl) ? [hl] : [];
  });
  const remove = followers.filter((h) => {
    const fd = index.fdOf.get(h);
    return fd !== undefined && !wanted.has(fd);
  });
  return { add, remove };
}

/** The 4Degrees team that shows the canonical team `want`: members that do not cross are kept. */
export function teamPatch(want: readonly unknown[], current: readonly PersonRef[], index: TeamIndex): PersonRef[] {
  const kept = current.filter((m) => {
    const id = memberId(m, index);
    return !id || !index.hlOf.has(id);
  });
  const members = [...new Set(want.flatMap((k) => fdIdOfKey(k) ?? []))].map((id) => {
    const user = index.fdUsers.find((u) => u.id === id);
    return { id, email: user?.email ?? null, name: user?.name ?? null };
  });
  return [...kept, ...members];
}

const fdLabel = (u: User | undefined, id: string): string =>
  u ? (u.name ? `${u.name}${u.email ? ` (${u.email})` : ""}` : u.email || id) : `unknown user ${id}`;
const hlLabel = (u: HlUser | undefined, id: string): string => {
  if (!u) return `unknown user ${id}`;
  const name = u.name ?? ([u.firstName, u.lastName].filter((s) => s).join(" ") || null);
  return name ? `${name}${u.email ? ` (${u.email})` : ""}` : (u.email ?? id);
};

/**
 * Why members of either side do not cross (the job's `skipped` detail in the Activity trail): a
 * user the user map does not pair and no user of the other side shares the email of. Deleted
 * HighLevel users are nobody to map and are not reported.
 */
export function teamSkips(
  team: readonly PersonRef[] | undefined,
  followers: readonly string[],
  index: TeamIndex,
): Array<{ field: string; reason: string }> {
  const out: Array<{ field: string; reason: string }> = [];
  for (const m of team ?? []) {
    const id = memberId(m, index);
    if (id && index.hlOf.has(id)) continue;
    const user = id ? index.fdUsers.find((u) => u.id === id) : undefined;
    out.push({
      field: "team",
      reason: `4Degrees team member ${fdLabel(user, id ?? m.email ?? "?")} has no HighLevel user in the user map (nor one with the same email): not a follower there`,
    });
  }
  for (const h of followers) {
    if (index.fdOf.has(h)) continue;
    const user = index.hlUsers.find((u) => u.id === h);
    if (user?.deleted) continue;
    out.push({
      field: "team",
      reason: `HighLevel follower ${hlLabel(user, h)} has no 4Degrees user in the user map (nor one with the same email): not on the 4Degrees deal team`,
    });
  }
  return out;
}

/**
 * A snapshot's team in the canonical form. A team snapshotted as emails (users then matched by
 * email only) names, for a member whose partner has the same email, exactly whether that member
 * was synced: it becomes their key. A pair mapped by hand with different emails could not be in
 * such a snapshot: it counts as synced when both sides hold it now (no change), else the side that
 * holds it added it. An email whose user no longer crosses is dropped (it is compared no more).
 */
export function upgradeTeamBase(base: Flat, flats: { fd: Flat; hl: Flat }, index: TeamIndex): Flat {
  const old = base["team"];
  if (!Array.isArray(old) || old.every((e) => fdIdOfKey(e) !== null)) return base;
  const oldEmails = new Set(old.flatMap((e) => (fdIdOfKey(e) === null && typeof e === "string" ? [lower(e)] : [])));
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((k): k is string => typeof k === "string") : []);
  const fd = new Set(list(flats.fd["team"]));
  const hl = new Set(list(flats.hl["team"]));
  const team: string[] = old.flatMap((e) => (fdIdOfKey(e) !== null ? [e as string] : []));
  for (const [fdId, hlId] of index.hlOf) {
    const email = lower(index.fdUsers.find((u) => u.id === fdId)?.email);
    const sameEmail = email !== null && email === lower(index.hlUsers.find((u) => u.id === hlId)?.email);
    const key = keyOf(fdId);
    if (sameEmail ? oldEmails.has(email) : fd.has(key) && hl.has(key)) team.push(key);
  }
  return { ...base, team: sorted(team) };
}
