/** Pure checks of a linked pair's two reads against its link: out of order, unchanged, what changed. */
import { sha256 } from "../../lib/hash.ts";
import type { Deal, Flat } from "../../domain/port.ts";
import type { Opportunity } from "../../highlevel/port.ts";
import { sameFlat, type MergeResult } from "./merge.ts";
import type { PairChange } from "./types.ts";
import type { Link, SideName } from "../../store/links.ts";

/** Out of order: a read older than what was already synced is never merged (the reason, or null). */
export function staleRead(link: Link, deal: Deal, opp: Opportunity): string | null {
  const staleFd = link.fdVersion !== null && deal.version !== null && Number(deal.version) < Number(link.fdVersion);
  const staleHl =
    link.hlUpdatedAt !== null && opp.updatedAt && Date.parse(opp.updatedAt) < Date.parse(link.hlUpdatedAt);
  return staleFd || staleHl ? `stale read of ${staleFd ? "4Degrees" : "HighLevel"} (older than the last sync)` : null;
}

/** Both sides are exactly as last synced (`version` and `updatedAt` equal to the link's). */
export function unchangedSinceSync(link: Link, deal: Deal, opp: Opportunity): boolean {
  return (
    link.fdVersion !== null &&
    deal.version === link.fdVersion &&
    link.hlUpdatedAt !== null &&
    opp.updatedAt === link.hlUpdatedAt
  );
}

/**
 * The change team notifications hear of, when a known pair's synced state moved (`base` non-empty
 * and different from the merge); null for a pair just found (its "before" is unknown) or no move.
 */
export async function pairChangeOf(
  link: Link,
  base: Flat | null,
  result: MergeResult,
  name: string,
  deal: Deal,
  opp: Opportunity,
): Promise<PairChange | null> {
  if (!base || Object.keys(base).length === 0 || sameFlat(base, result.merged)) return null;
  const source: SideName =
    result.toHighLevel.size > 0
      ? "fourdegrees"
      : result.toFourDegrees.size > 0
        ? "highlevel"
        : Date.parse(deal.updatedAt ?? "") >= Date.parse(opp.updatedAt ?? "")
          ? "fourdegrees"
          : "highlevel";
  return {
    source,
    changeId: `${link.syncedAt}:${await sha256(JSON.stringify(result.merged))}`,
    name,
    fdId: link.fdDealId,
    hlId: link.hlOpportunityId,
    before: base,
    after: result.merged,
  };
}
