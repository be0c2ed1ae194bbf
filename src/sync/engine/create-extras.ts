/**
 * The lost reason and deal team of a record just created on the other side (creates.ts): HighLevel's
 * create takes neither, so they follow through `PUT /opportunities/{id}/status` and the followers
 * endpoint; a 4Degrees create takes both in its body. What was carried goes into the pair's first
 * base, so the next merge sees both sides agree.
 */
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Deal, DealContent, Flat } from "../../domain/port.ts";
import type { Opportunity, OpportunityCrm } from "../../highlevel/port.ts";
import { addExtras, addOppExtras, fdExtrasPatch, hlExtrasPlan, teamSkipped } from "./extras.ts";
import type { LookupCache } from "./lookups.ts";
import { allowsTo, directionOf } from "./mapping.ts";
import { same } from "./merge.ts";

const KEYS = ["lostReason", "team"] as const;

/**
 * Writes a new opportunity's lost reason and followers from its 4Degrees deal. Returns the base
 * values to record, the calls made, the opportunity as it is after them, and the team members that
 * did not cross (extras.ts `teamSkipped`).
 */
export async function extrasToNewOpportunity(
  lookups: LookupCache,
  mapping: Mapping,
  hl: OpportunityCrm,
  deal: Deal,
  status: unknown,
  opp: Opportunity,
): Promise<{ base: Flat; calls: number; opp: Opportunity; skipped: Array<{ field: string; reason: string }> }> {
  const ctx = await lookups.extras(hl.locationId, status === "lost");
  const skipped = teamSkipped(mapping, deal, opp, ctx);
  const flats = { fd: { status } as Flat, hl: { status } as Flat };
  addExtras(mapping, deal, opp, flats, null, ctx);
  const keys = new Set<string>(
    KEYS.filter(
      (k) => k in flats.fd && allowsTo(directionOf(mapping, k), "highlevel") && !same(flats.fd[k], flats.hl[k]),
    ),
  );
  const base: Flat = {};
  for (const k of keys) base[k] = flats.fd[k];
  if (keys.size === 0) return { base, calls: 0, opp, skipped };
  const plan = hlExtrasPlan(keys, flats.fd, opp, mapping, ctx);
  let calls = 0;
  if (plan.lostReasonId) {
    await hl.updateStatus(opp.id, "lost", plan.lostReasonId);
    calls++;
  }
  if (plan.followersAdd.length > 0) {
    await hl.addFollowers(opp.id, plan.followersAdd);
    calls++;
  }
  const after = calls > 0 ? ((await hl.getOpportunity(opp.id)) ?? opp) : opp;
  return { base, calls, opp: after, skipped };
}

/**
 * Adds an opportunity's lost reason and followers to the content of its new 4Degrees deal; returns
 * the base values and the followers that did not cross.
 */
export async function extrasToNewDeal(
  lookups: LookupCache,
  mapping: Mapping,
  locationId: string,
  opp: Opportunity,
  status: unknown,
  content: DealContent,
): Promise<{ base: Flat; skipped: Array<{ field: string; reason: string }> }> {
  const ctx = await lookups.extras(locationId, status === "lost", opp.lostReasonId);
  const hlFlat: Flat = { status };
  addOppExtras(mapping, opp, hlFlat, ctx, true);
  const keys = new Set<string>(
    KEYS.filter((k) => k in hlFlat && allowsTo(directionOf(mapping, k), "fourdegrees") && hlFlat[k] !== null),
  );
  if (Array.isArray(hlFlat["team"]) && hlFlat["team"].length === 0) keys.delete("team");
  const { patch } = fdExtrasPatch(keys, hlFlat, { team: [] }, mapping, ctx);
  Object.assign(content, patch);
  const base: Flat = {};
  for (const k of keys) base[k] = hlFlat[k];
  return { base, skipped: teamSkipped(mapping, { team: [] }, opp, ctx) };
}
