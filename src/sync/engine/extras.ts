/**
 * The parts of a pair that need both sides' reference data to compare: the lost reason (HighLevel
 * lost reasons ↔ 4Degrees pass reasons, through `mapping.lostReasons` or equal names) and the deal
 * team (HighLevel followers ↔ 4Degrees `team`, through the users). They are added to both flat
 * records in one step (`addExtras`) so the merge compares them like any field, and written by
 * `hlExtrasPlan` / `fdExtrasPatch`. See docs/sync.md "Lost reasons and the deal team".
 *
 * Canonical values: a lost reason is `fd:<4Degrees pass reason id>` when it resolves to one, else
 * `text:<reason>`; null when the record is not lost or has none; absent when the side cannot tell
 * (a HighLevel reason id the location does not list, or a HighLevel `lost` without a reason, which
 * is what an unmapped 4Degrees reason becomes there). A team is the sorted `4d:<4Degrees user id>`
 * of the members whose user crosses through the user map (team.ts; others are kept on their side,
 * never compared, and reported by `teamSkipped`).
 */
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Deal, DealPatch, Flat, Reason, User } from "../../domain/port.ts";
import type { HlUser, Opportunity } from "../../highlevel/port.ts";
import {
  dealTeamKeys,
  followerCalls,
  followerKeys,
  teamIndex,
  teamPatch,
  teamSkips,
  upgradeTeamBase,
  type TeamIndex,
} from "./team.ts";

/** The reference data both sides' extras are computed with. */
export interface ExtrasContext {
  fdUsers: User[];
  hlUsers: HlUser[];
  /** Loaded only for a pair with a lost side (null otherwise: reasons are not compared then). */
  fdReasons: Reason[] | null;
  hlReasons: Reason[] | null;
}

const lower = (s: string | null | undefined): string | null => (s ? s.trim().toLowerCase() : null);
const byName = (reasons: Reason[], name: string): Reason | undefined =>
  reasons.find((r) => lower(r.name) === lower(name));

/** A reason text as canonical: the 4Degrees pass reason of that name when there is one. */
function textReason(text: string, ctx: ExtrasContext): string {
  const fd = ctx.fdReasons ? byName(ctx.fdReasons, text) : undefined;
  return fd ? `fd:${fd.id}` : `text:${text.trim()}`;
}

/** The canonical lost reason of a 4Degrees deal whose canonical status is `status`. */
export function dealLostReason(deal: Deal, status: unknown, ctx: ExtrasContext): string | null | undefined {
  if (status !== "lost" || !deal.lostReason) return null;
  if (deal.lostReason.id) return `fd:${deal.lostReason.id}`;
  return deal.lostReason.text ? textReason(deal.lostReason.text, ctx) : null;
}

/** The canonical lost reason of a HighLevel opportunity whose canonical status is `status`. */
export function oppLostReason(
  opp: Opportunity,
  status: unknown,
  mapping: Mapping,
  ctx: ExtrasContext,
): string | null | undefined {
  if (status !== "lost") return null;
  // Lost without a reason: HighLevel cannot hold a text reason, so it does not contradict one.
  if (!opp.lostReasonId) return undefined;
  const pair = mapping.lostReasons.find((p) => p.highlevel === opp.lostReasonId);
  if (pair) return `fd:${pair.fourdegrees}`;
  const reason = ctx.hlReasons?.find((r) => r.id === opp.lostReasonId);
  return reason ? textReason(reason.name, ctx) : undefined;
}

const indexes = new WeakMap<ExtrasContext, { mapping: Mapping; index: TeamIndex }>();

/** How the team members of both sides cross (team.ts), built once per context and mapping. */
function teamOf(ctx: ExtrasContext, mapping: Mapping): TeamIndex {
  const hit = indexes.get(ctx);
  if (hit?.mapping === mapping) return hit.index;
  const index = teamIndex(mapping, ctx.fdUsers, ctx.hlUsers);
  indexes.set(ctx, { mapping, index });
  return index;
}

/** Why team members of a pair do not cross (the job's `skipped` detail); none when the team is not synced. */
export function teamSkipped(
  mapping: Mapping,
  deal: Pick<Deal, "team">,
  opp: Pick<Opportunity, "followers">,
  ctx: ExtrasContext,
): Array<{ field: string; reason: string }> {
  if (mapping.directions.team === "off" || deal.team === undefined) return [];
  return teamSkips(deal.team, opp.followers, teamOf(ctx, mapping));
}

/**
 * Adds `lostReason` and `team` to both flat records of a pair. When the last-synced `base` has no
 * value for one of them yet (a pair created before, or just now), the side that has none is taken
 * as unchanged, so the other side's value fills it instead of being cleared.
 */
export function addExtras(
  mapping: Mapping,
  deal: Deal,
  opp: Opportunity,
  flats: { fd: Flat; hl: Flat },
  base: Flat | null,
  ctx: ExtrasContext,
): Flat | null {
  // Not lost: no reason on either side (kept in the base as null, so a stale reason never lingers).
  if (flats.fd["status"] !== "lost") flats.fd["lostReason"] = null;
  else if (ctx.fdReasons && ctx.hlReasons) {
    const f = dealLostReason(deal, flats.fd["status"], ctx);
    if (f !== undefined) flats.fd["lostReason"] = f;
  }
  const index = teamOf(ctx, mapping);
  if (deal.team) flats.fd["team"] = dealTeamKeys(deal.team, index);
  addOppExtras(mapping, opp, flats.hl, ctx, deal.team !== undefined);
  if (!base) return base;
  let out = upgradeTeamBase(base, flats, index);
  for (const key of ["lostReason", "team"] as const) {
    if (key in base || !(key in flats.fd) || !(key in flats.hl)) continue;
    const empty = (v: unknown) => v === null || (Array.isArray(v) && v.length === 0);
    const seed = empty(flats.hl[key]) ? flats.hl[key] : empty(flats.fd[key]) ? flats.fd[key] : undefined;
    if (seed !== undefined) out = { ...out, [key]: seed };
  }
  return out;
}

/**
 * Adds the HighLevel side's `lostReason` and (with `team`) `team` to its flat record: what
 * `addExtras` does for a pair, and what checking HighLevel's answer to our write needs.
 */
export function addOppExtras(mapping: Mapping, opp: Opportunity, hl: Flat, ctx: ExtrasContext, team: boolean): void {
  if (hl["status"] !== "lost") hl["lostReason"] = null;
  else if (ctx.fdReasons && ctx.hlReasons) {
    const h = oppLostReason(opp, hl["status"], mapping, ctx);
    if (h !== undefined) hl["lostReason"] = h;
  }
  if (team) hl["team"] = followerKeys(opp.followers, teamOf(ctx, mapping));
}

/** What a HighLevel write does besides `PUT /opportunities/{id}`. */
export interface HlExtrasPlan {
  /** The lost reason to send with a `lost` status (undefined: none). */
  lostReasonId?: string;
  /** Whether the status call must be made for the reason alone (status unchanged, reason changed). */
  reasonOnly: boolean;
  followersAdd: string[];
  followersRemove: string[];
  skipped: Array<{ field: string; reason: string }>;
}

/** The HighLevel lost reason id for a canonical reason, if the location has one. */
function hlReasonFor(value: string, mapping: Mapping, ctx: ExtrasContext): string | undefined {
  const reasons = ctx.hlReasons ?? [];
  if (value.startsWith("fd:")) {
    const fdId = value.slice(3);
    const pair = mapping.lostReasons.find((p) => p.fourdegrees === fdId);
    if (pair) return pair.highlevel;
    const name = ctx.fdReasons?.find((r) => r.id === fdId)?.name;
    return name ? byName(reasons, name)?.id : undefined;
  }
  return byName(reasons, value.slice(5))?.id;
}

/** The readable text of a canonical reason. */
export function reasonText(value: string, ctx: ExtrasContext): string {
  if (value.startsWith("text:")) return value.slice(5);
  return ctx.fdReasons?.find((r) => r.id === value.slice(3))?.name ?? value.slice(3);
}

/**
 * The status/reason and follower calls a HighLevel write needs for the merged `keys`. An unmapped
 * reason sets the status without a reason (HighLevel has no free-text reason) and says so in `skipped`.
 */
export function hlExtrasPlan(
  keys: ReadonlySet<string>,
  merged: Flat,
  opp: Opportunity,
  mapping: Mapping,
  ctx: ExtrasContext,
): HlExtrasPlan {
  const plan: HlExtrasPlan = { reasonOnly: false, followersAdd: [], followersRemove: [], skipped: [] };
  const reason = merged["lostReason"];
  if (keys.has("lostReason") && merged["status"] === "lost" && typeof reason === "string") {
    const id = hlReasonFor(reason, mapping, ctx);
    if (id) plan.lostReasonId = id;
    else
      plan.skipped.push({
        field: "lostReason",
        reason: `no HighLevel lost reason for "${reasonText(reason, ctx)}"; the status is set without one`,
      });
    plan.reasonOnly = !keys.has("status") && id !== undefined && id !== opp.lostReasonId;
  }
  if (keys.has("team") && Array.isArray(merged["team"])) {
    const calls = followerCalls(merged["team"], opp.followers, teamOf(ctx, mapping));
    plan.followersAdd.push(...calls.add);
    plan.followersRemove.push(...calls.remove);
  }
  return plan;
}

/**
 * The 4Degrees patch part for the merged `keys`: the pass reason (only on a lost deal: 4Degrees
 * refuses one elsewhere and clears it on leaving a lost stage) and the team (members whose user
 * HighLevel does not know are kept).
 */
export function fdExtrasPatch(
  keys: ReadonlySet<string>,
  merged: Flat,
  deal: Pick<Deal, "team">,
  mapping: Mapping,
  ctx: ExtrasContext,
): { patch: Pick<DealPatch, "lostReason" | "team">; skipped: Array<{ field: string; reason: string }> } {
  const patch: Pick<DealPatch, "lostReason" | "team"> = {};
  const skipped: Array<{ field: string; reason: string }> = [];
  const reason = merged["lostReason"];
  if (keys.has("lostReason") && merged["status"] === "lost") {
    if (typeof reason !== "string") patch.lostReason = null;
    else if (reason.startsWith("fd:")) patch.lostReason = { id: reason.slice(3), text: null };
    else patch.lostReason = { id: null, text: reason.slice(5).slice(0, 1_000) };
  }
  if (keys.has("team") && Array.isArray(merged["team"]))
    patch.team = teamPatch(merged["team"], deal.team ?? [], teamOf(ctx, mapping));
  return { patch, skipped };
}

/** Whether either side of a pair is lost (the lost reasons are only loaded then). */
export function pairIsLost(fd: Flat, hl: Flat, base: Flat | null): boolean {
  return fd["status"] === "lost" || hl["status"] === "lost" || base?.["status"] === "lost";
}
