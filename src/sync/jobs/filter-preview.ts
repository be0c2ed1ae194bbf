/**
 * The live count of what a pipeline pair's filter selects, before it is saved: pages the pair's
 * 4Degrees deals and HighLevel opportunities from the providers (not the caches: a count must see
 * today's records) and judges each exactly as the engine will (src/sync/engine/filter.ts) — a
 * linked deal with its opportunity, an unlinked record on its own side. Bounded: at most
 * `PREVIEW_MAX_PAGES` pages of `PREVIEW_PAGE_SIZE` per side (`truncated` says when there is more).
 */
import {
  MappingSchema,
  validateMappingLive,
  type DealFilter,
  type Mapping,
  type MatchKeys,
} from "../../domain/mapping-config.ts";
import type { Deal } from "../../domain/port.ts";
import type { Opportunity } from "../../highlevel/port.ts";
import { AppError } from "../../lib/errors.ts";
import { saveMapping, type Account } from "../../store/accounts.ts";
import { findLink } from "../../store/links.ts";
import { filterVerdict } from "../engine/filter.ts";
import { loadLiveStructure } from "../structure.ts";
import { engineOf, type DuplicateDeps } from "./duplicates.ts";

export const PREVIEW_PAGE_SIZE = 100;
export const PREVIEW_MAX_PAGES = 5;

/** What a filter selects on each side (HighLevel: the opportunities no deal is linked to). */
export interface FilterPreview {
  deals: { selected: number; total: number };
  opportunities: { selected: number; total: number };
  /** Deals and opportunities selected: what a backfill syncs. */
  selected: number;
  /** More records than the bound: the counts cover the first pages only. */
  truncated: boolean;
  /** Up to ten examples of records left out, with the reason (the filter's wording). */
  skippedExamples: Array<{ side: "fourdegrees" | "highlevel"; name: string; reason: string }>;
  source: "providers";
}

/** Counts what `filter` (null: no filter) selects in the mapping's pipeline pair `pairIndex`. */
export async function previewFilter(
  deps: DuplicateDeps,
  account: Account,
  mapping: Mapping,
  pairIndex: number,
  filter: DealFilter | null,
): Promise<FilterPreview> {
  const pair = mapping.pipelines[pairIndex];
  if (!pair) throw new AppError("not_found", `the mapping has no pipeline pair ${pairIndex}`);
  const c = await deps.connectors(account, "live");
  const engine = await engineOf(deps, account, mapping);
  const hl = c.highlevel(pair.highlevelLocationId);
  const users = (await engine.lookups.fourdegrees()).users;
  let truncated = false;

  const opps: Opportunity[] = [];
  let cursor: string | null = null;
  for (let page = 0; ; page++) {
    if (page === PREVIEW_MAX_PAGES) {
      truncated = true;
      break;
    }
    const res = await hl.searchOpportunities({
      pipelineId: pair.highlevelPipelineId,
      cursor,
      limit: PREVIEW_PAGE_SIZE,
    });
    opps.push(...res.items);
    if (!res.nextCursor) break;
    cursor = res.nextCursor;
  }
  const oppById = new Map(opps.map((o) => [o.id, o]));
  const deals: Deal[] = [];
  cursor = null;
  for (let page = 0; ; page++) {
    if (page === PREVIEW_MAX_PAGES) {
      truncated = true;
      break;
    }
    const res = await c.fourdegrees.pageDeals({
      pipelineId: pair.fourdegreesPipelineId,
      cursor,
      limit: PREVIEW_PAGE_SIZE,
    });
    deals.push(...res.items.filter((d) => d.id && !d.archivedAt));
    if (!res.nextCursor) break;
    cursor = res.nextCursor;
  }

  const out: FilterPreview = {
    deals: { selected: 0, total: 0 },
    opportunities: { selected: 0, total: 0 },
    selected: 0,
    truncated,
    skippedExamples: [],
    source: "providers",
  };
  const skip = (side: "fourdegrees" | "highlevel", name: string, reason: string) => {
    if (out.skippedExamples.length < 10) out.skippedExamples.push({ side, name, reason });
  };
  const linkedOpps = new Set<string>();
  for (const deal of deals) {
    const link = await findLink(deps.db, account.id, "fourdegrees", deal.id ?? "");
    const opp = link ? (oppById.get(link.hlOpportunityId) ?? (await hl.getOpportunity(link.hlOpportunityId))) : null;
    if (link) linkedOpps.add(link.hlOpportunityId);
    const t = [
      await engine.translateDeal(deal),
      ...(opp ? [await engine.translateOpp(opp, pair.highlevelLocationId)] : []),
    ];
    const canonical = t.flatMap((x) => (x.ok ? [x.canonical] : []));
    out.deals.total++;
    const why = filterVerdict(filter, { deal, opp, canonical }, users);
    if (why === null) out.deals.selected++;
    else skip("fourdegrees", deal.name, why);
  }
  for (const opp of opps) {
    if (linkedOpps.has(opp.id) || (await findLink(deps.db, account.id, "highlevel", opp.id))) continue;
    const t = await engine.translateOpp(opp, pair.highlevelLocationId);
    out.opportunities.total++;
    const why = filterVerdict(filter, { deal: null, opp, canonical: t.ok ? [t.canonical] : [] }, users);
    if (why === null) out.opportunities.selected++;
    else skip("highlevel", opp.name ?? opp.id, why);
  }
  out.selected = out.deals.selected + out.opportunities.selected;
  return out;
}

/**
 * Saves pipeline pair `pairIndex`'s filter (null: every deal syncs) after checking its stages and
 * owners against the live lists: 404 for an unknown pair, 422 naming a stage or owner that does not exist.
 */
export async function saveFilter(
  deps: DuplicateDeps,
  account: Account,
  pairIndex: number,
  filter: DealFilter | null,
): Promise<Mapping> {
  const mapping = account.mapping;
  if (!mapping) throw new AppError("conflict", `account ${account.id} has no mapping yet`);
  const pair = mapping.pipelines[pairIndex];
  if (!pair) throw new AppError("not_found", `the mapping has no pipeline pair ${pairIndex}`);
  const c = await deps.connectors(account, "live");
  const next = MappingSchema.parse({
    ...mapping,
    pipelines: mapping.pipelines.map((p, i) => (i === pairIndex ? { ...p, filter } : p)),
  });
  const at = `pipelines.${pairIndex}.filter`;
  const issues = validateMappingLive(next, await loadLiveStructure(c, account.locations), account.locations).filter(
    (i) => i.field.startsWith(at),
  );
  const users = await c.fourdegrees.listUsers();
  (filter?.ownerIds ?? []).forEach((id, j) => {
    if (!users.some((u) => u.id === id))
      issues.push({ field: `${at}.ownerIds.${j}`, message: `4Degrees user ${id} does not exist` });
  });
  if (issues.length > 0)
    throw new AppError("unprocessable", `filter: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`, {
      details: issues,
    });
  return (await saveMapping(deps.db, account.id, next)).mapping ?? next;
}

/** Saves how unlinked records are paired with existing ones (`MatchKeysSchema`). 409 without a mapping. */
export async function saveMatchKeys(deps: DuplicateDeps, account: Account, matchKeys: MatchKeys): Promise<Mapping> {
  if (!account.mapping) throw new AppError("conflict", `account ${account.id} has no mapping yet`);
  const next = MappingSchema.parse({ ...account.mapping, matchKeys });
  return (await saveMapping(deps.db, account.id, next)).mapping ?? next;
}
