/**
 * Which deals sync: a pipeline pair's filter (src/domain/mapping-config.ts `DealFilterSchema`)
 * judged on the records of a pair. A pair is inside when the tag holds on its 4Degrees deal, the
 * HighLevel field on its opportunity, and the stage/owner/value conditions on either side — so the
 * change that moves a pair out of the filter still reaches the other side once, then it stops.
 * Out of the filter means skipped at job time: the link is kept, nothing is deleted
 * (docs/sync.md#which-deals-sync).
 */
import type { DealFilter, Mapping, PipelinePair } from "../../domain/mapping-config.ts";
import type { Deal, User } from "../../domain/port.ts";
import type { Opportunity } from "../../highlevel/port.ts";
import { isUnlinked } from "../../store/match-decisions.ts";
import { customFieldValue, type Canonical, type Translation } from "./mapping.ts";
import { blank, type JobResult } from "./types.ts";

/** One side of a record as the filter sees it. */
export interface FilterSides {
  deal: Deal | null;
  opp: Opportunity | null;
  /** The canonical forms of the sides present. */
  canonical: Canonical[];
}

/** Why a record is outside `filter`, or null when it is inside. `fdUsers` resolve `ownerIds` to emails. */
export function filterVerdict(filter: DealFilter | null, sides: FilterSides, fdUsers: readonly User[]): string | null {
  if (!filter) return null;
  if (filter.fourdegreesTag !== undefined) {
    const want = filter.fourdegreesTag.toLowerCase();
    if (!sides.deal?.tags.some((t) => t.trim().toLowerCase() === want))
      return `no 4Degrees tag "${filter.fourdegreesTag}"`;
  }
  if (filter.highlevelField) {
    const v = sides.opp ? customFieldValue(sides.opp, filter.highlevelField.id) : undefined;
    const text = (Array.isArray(v) ? (v as unknown[]) : [v]).flatMap((x) =>
      typeof x === "string" || typeof x === "number" || typeof x === "boolean" ? [String(x)] : [],
    );
    if (!text.some((t) => t.trim().toLowerCase() === filter.highlevelField?.equals.trim().toLowerCase()))
      return `HighLevel field ${filter.highlevelField.id} is not "${filter.highlevelField.equals}"`;
  }
  const reasons = sides.canonical.map((c) => canonicalVerdict(filter, c, fdUsers));
  if (reasons.length === 0 || reasons.some((r) => r === null)) return null;
  return reasons[0] ?? null;
}

function canonicalVerdict(filter: DealFilter, c: Canonical, fdUsers: readonly User[]): string | null {
  if (filter.stages && filter.stages.length > 0 && (c.stage === null || !filter.stages.includes(c.stage)))
    return c.stage === null ? `the deal is ${c.status}, not in a selected stage` : "not in a selected stage";
  if (filter.ownerIds && filter.ownerIds.length > 0) {
    const emails = new Set(
      fdUsers.filter((u) => filter.ownerIds?.includes(u.id)).map((u) => (u.email ?? "").toLowerCase()),
    );
    if (!c.owner || !emails.has(c.owner.toLowerCase())) return "not owned by a selected owner";
  }
  if (filter.minValue !== undefined && (c.value === null || c.value < Math.round(filter.minValue * 100)))
    return `value below ${filter.minValue}`;
  return null;
}

/** The pipeline pair a canonical record belongs to. */
export function pairOf(mapping: Mapping, canonical: Canonical): PipelinePair | undefined {
  return mapping.pipelines.find((p) => p.fourdegreesPipelineId === canonical.pipeline);
}

/** The activity-trail reason of a record skipped by the filter. */
export function outOfFilterReason(why: string): string {
  return `outside the sync filter (${why}): not synced, nothing deleted`;
}

/** What the filter gate needs of the engine (the `SyncEngine` of the job). */
export interface FilterHost {
  readonly mapping: Mapping;
  readonly db: D1Database;
  readonly account: { id: string };
  readonly lookups: { fourdegrees(): Promise<{ users: User[] }> };
}

/**
 * The skipped result of a record the engine must not sync — unlinked by hand, or outside its
 * pipeline pair's filter — or null when it syncs. `canonical` are the translated sides present;
 * `linked`: the record is a linked pair.
 */
export async function filterGate(
  host: FilterHost,
  sides: FilterSides,
  ids: { fdId: string | null; hlId: string | null },
  linked = false,
): Promise<JobResult | null> {
  // A linked pair was never unlinked by hand (unlinking removes the link; linking clears the mark).
  if (!linked)
    for (const [side, id] of [
      ["fourdegrees", ids.fdId],
      ["highlevel", ids.hlId],
    ] as const)
      if (id && (await isUnlinked(host.db, host.account.id, side, id)))
        return skipped(ids, "unlinked by hand: the record no longer syncs (link it by hand to sync it again)", {
          unlinked: side,
        });
  const first = sides.canonical[0];
  const pair = first ? pairOf(host.mapping, first) : undefined;
  if (!pair?.filter) return null;
  const why = filterVerdict(pair.filter, sides, (await host.lookups.fourdegrees()).users);
  return why === null ? null : skipped(ids, outOfFilterReason(why), { filter: why });
}

function skipped(
  ids: { fdId: string | null; hlId: string | null },
  reason: string,
  detail: Record<string, unknown>,
): JobResult {
  return { ...blank(ids.fdId, ids.hlId), outcome: "skipped", reason, detail };
}

/** What judging an unlinked record needs of the engine: the gate's needs plus translation. */
export interface UnlinkedJudge extends FilterHost {
  translateDeal(deal: Deal): Promise<Translation>;
  translateOpp(opp: Opportunity, locationId: string): Promise<Translation>;
}

/**
 * Whether an unlinked record as listed would be skipped by the engine (unlinked by hand, or outside
 * its pair's filter on its own side): reconcile does not enqueue it, so a record kept out costs no
 * job and no re-read per tick. A record that cannot be translated is not kept out (its job reviews it).
 */
export async function keptOutUnlinked(
  engine: UnlinkedJudge,
  record: { deal: Deal } | { opp: Opportunity; locationId: string },
): Promise<boolean> {
  if (!engine.mapping.pipelines.some((p) => p.filter)) {
    const [side, id] =
      "deal" in record ? (["fourdegrees", record.deal.id] as const) : (["highlevel", record.opp.id] as const);
    return id !== null && (await isUnlinked(engine.db, engine.account.id, side, id));
  }
  const t =
    "deal" in record
      ? await engine.translateDeal(record.deal)
      : await engine.translateOpp(record.opp, record.locationId);
  if (!t.ok) return false;
  const sides: FilterSides =
    "deal" in record
      ? { deal: record.deal, opp: null, canonical: [t.canonical] }
      : { deal: null, opp: record.opp, canonical: [t.canonical] };
  const ids = "deal" in record ? { fdId: record.deal.id, hlId: null } : { fdId: null, hlId: record.opp.id };
  return (await filterGate(engine, sides, ids)) !== null;
}
