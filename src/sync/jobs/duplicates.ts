/**
 * Duplicates, decided by an operator (docs/sync.md#duplicates): the matcher's unsure cases as
 * "possible matches" (review-list items whose reason is an ambiguous match, with their candidates),
 * linking a deal and an opportunity by hand (the engine links and merges them), telling them apart
 * (remembered: never suggested or matched again) and unlinking a pair (the link goes, both records
 * stay, and neither syncs again until it is linked by hand).
 */
import { AppError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { Account } from "../../store/accounts.ts";
import { findLink } from "../../store/links.ts";
import { clearRejection, clearUnlinked, deleteLink, markUnlinked, rejectMatch } from "../../store/match-decisions.ts";
import { addReview, listReview, recordEvent, resolveReview, type ReviewItem } from "../../store/sync-events.ts";
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Deal } from "../../domain/port.ts";
import type { Opportunity } from "../../highlevel/port.ts";
import type { ConnectorFactory } from "../connectors.ts";
import { linkAndSync } from "../engine/creates.ts";
import { SyncEngine } from "../engine/engine.ts";
import type { JobResult } from "../engine/types.ts";

/** What these operations need: the account's connectors and a clock. */
export interface DuplicateDeps {
  db: D1Database;
  connectors: ConnectorFactory;
  log: Logger;
  now: () => number;
}

/** One side of a possible match, by name. */
export interface MatchSide {
  id: string;
  name: string | null;
  /** Contact email (HighLevel) or first contact email (4Degrees), when known. */
  email: string | null;
  /** Value in major units, when known. */
  value: number | null;
  /** False when the record could not be read (deleted since). */
  found: boolean;
}

/** A deal the matcher was unsure about, with the opportunities that look like it. */
export interface PossibleMatch {
  deal: MatchSide;
  candidates: MatchSide[];
  reason: string;
  updatedAt: number;
}

/** At most this many possible matches are read from the providers per listing (two reads each + candidates). */
export const POSSIBLE_MATCHES_LIMIT = 25;

/** The candidate opportunity ids of an ambiguous-match review item; empty for other review items. */
export function candidatesOf(item: ReviewItem): string[] {
  const raw = item.detail.candidates;
  return item.side === "fourdegrees" && Array.isArray(raw) ? raw.filter((x): x is string => typeof x === "string") : [];
}

/** The engine of `account` over `mapping` (live lane), for one operator action. */
export async function engineOf(deps: DuplicateDeps, account: Account, mapping: Mapping): Promise<SyncEngine> {
  const c = await deps.connectors(account, "live");
  const { db, log, now } = deps;
  return new SyncEngine(
    { db, fourdegrees: c.fourdegrees, highlevel: c.highlevel, ourActor: c.ourActor, log, now },
    account,
    mapping,
  );
}

async function engineFor(deps: DuplicateDeps, account: Account): Promise<SyncEngine> {
  if (!account.mapping) throw new AppError("conflict", `account ${account.id} has no mapping yet`);
  return engineOf(deps, account, account.mapping);
}

function dealSide(id: string, deal: Deal | null): MatchSide {
  return {
    id,
    name: deal?.name ?? null,
    email: deal?.contacts.find((p) => p.email)?.email ?? null,
    value: deal?.value ? deal.value.amountMinor / 100 : null,
    found: deal !== null && deal.archivedAt === null,
  };
}

function oppSide(id: string, opp: Opportunity | null): MatchSide {
  return {
    id,
    name: opp?.name ?? null,
    email: opp?.contact?.email ?? null,
    value: opp?.monetaryValue ?? null,
    found: opp !== null,
  };
}

/** The possible matches of an account (newest first, at most `POSSIBLE_MATCHES_LIMIT`), both sides read by name. */
export async function listPossibleMatches(deps: DuplicateDeps, account: Account): Promise<PossibleMatch[]> {
  const items = (await listReview(deps.db, account.id, 500))
    .filter((r) => candidatesOf(r).length > 0)
    .slice(0, POSSIBLE_MATCHES_LIMIT);
  if (items.length === 0) return [];
  const c = await deps.connectors(account, "live");
  const location = account.mapping?.pipelines[0]?.highlevelLocationId ?? account.locations[0] ?? "";
  return Promise.all(
    items.map(async (item) => {
      const deal = await c.fourdegrees.getDeal(item.recordId);
      const pair = account.mapping?.pipelines.find((p) => p.fourdegreesPipelineId === deal?.pipeline.id);
      const hl = c.highlevel(pair?.highlevelLocationId ?? location);
      const candidates = await Promise.all(
        candidatesOf(item).map(async (id) => oppSide(id, await hl.getOpportunity(id))),
      );
      return { deal: dealSide(item.recordId, deal), candidates, reason: item.reason, updatedAt: item.updatedAt };
    }),
  );
}

/**
 * Links deal `fdId` and opportunity `hlId` by hand and syncs them through the engine (merge with no
 * base: differences resolve by the account's conflict policy). 404 when a record does not exist,
 * 409 when either is already linked, 400 when the records are not in one mapped pipeline pair.
 */
export async function linkByHand(
  deps: DuplicateDeps,
  account: Account,
  fdId: string,
  hlId: string,
): Promise<JobResult> {
  const engine = await engineFor(deps, account);
  for (const [side, id] of [
    ["fourdegrees", fdId],
    ["highlevel", hlId],
  ] as const) {
    const link = await findLink(deps.db, account.id, side, id);
    if (link) {
      const other = side === "fourdegrees" ? link.hlOpportunityId : link.fdDealId;
      throw new AppError("conflict", `${side} record ${id} is already linked (to ${other}); unlink it first`);
    }
  }
  const deal = await engine.deps.fourdegrees.getDeal(fdId);
  if (!deal || deal.archivedAt) throw new AppError("not_found", `4Degrees deal ${fdId} does not exist`);
  const pair = engine.mapping.pipelines.find((p) => p.fourdegreesPipelineId === deal.pipeline.id);
  if (!pair) throw new AppError("bad_request", `4Degrees deal ${fdId} is not in a mapped pipeline`);
  const opp = await engine.deps.highlevel(pair.highlevelLocationId).getOpportunity(hlId);
  if (!opp) throw new AppError("not_found", `HighLevel opportunity ${hlId} does not exist`);
  if (opp.pipelineId !== pair.highlevelPipelineId)
    throw new AppError("bad_request", `HighLevel opportunity ${hlId} is not in the pipeline paired with the deal's`);
  await clearRejection(deps.db, account.id, fdId, hlId);
  await clearUnlinked(deps.db, account.id, "fourdegrees", fdId);
  await clearUnlinked(deps.db, account.id, "highlevel", hlId);
  const result = await linkAndSync(engine, deal, opp, pair.highlevelLocationId, null);
  // The deal's other candidates are no longer possible matches of it: they sync on their own.
  await settleCandidates(deps, account.id, fdId, () => true);
  await recordEvent(deps.db, {
    accountId: account.id,
    kind: "link",
    direction: result.direction,
    fdId,
    hlId,
    outcome: result.outcome,
    detail: { by: "hand", writes: result.writes, ...(result.reason ? { reason: result.reason } : {}) },
  });
  return result;
}

/**
 * Tells deal `fdId` and opportunity `hlId` apart: remembered, so the pair is never suggested or
 * matched again. The opportunity leaves the deal's candidates; the deal leaves the review list
 * when none remain. Returns the candidates left. 409 when the two are linked (unlink instead).
 */
export async function tellApart(deps: DuplicateDeps, account: Account, fdId: string, hlId: string): Promise<string[]> {
  const link = await findLink(deps.db, account.id, "fourdegrees", fdId);
  if (link?.hlOpportunityId === hlId)
    throw new AppError("conflict", `deal ${fdId} and opportunity ${hlId} are linked: unlink the pair instead`);
  await rejectMatch(deps.db, account.id, fdId, hlId, deps.now());
  const left = await settleCandidates(deps, account.id, fdId, (id) => id === hlId);
  await recordEvent(deps.db, {
    accountId: account.id,
    kind: "link",
    direction: "none",
    fdId,
    hlId,
    outcome: "told_apart",
    detail: { by: "hand", candidatesLeft: left.length },
  });
  return left;
}

/** Drops the candidates `drop` accepts from deal `fdId`'s review item (and their own items); the candidates left. */
async function settleCandidates(
  deps: DuplicateDeps,
  accountId: string,
  fdId: string,
  drop: (oppId: string) => boolean,
): Promise<string[]> {
  const items = await listReview(deps.db, accountId, 500);
  const item = items.find((r) => r.side === "fourdegrees" && r.recordId === fdId);
  const candidates = item ? candidatesOf(item) : [];
  for (const r of items)
    if (r.side === "highlevel" && r.detail.fdDealId === fdId && drop(r.recordId))
      await resolveReview(deps.db, accountId, "highlevel", r.recordId);
  const left = candidates.filter((id) => !drop(id));
  if (item && left.length === 0) await resolveReview(deps.db, accountId, "fourdegrees", fdId);
  else if (item) await addReview(deps.db, { ...item, detail: { ...item.detail, candidates: left } }, deps.now());
  return left;
}

/**
 * Unlinks the pair of deal `fdId`: the link is removed, both records are kept (nothing is deleted
 * on either side), the two are told apart, and neither syncs again until linked by hand. 404 when
 * the deal has no link.
 */
export async function unlinkPair(deps: DuplicateDeps, account: Account, fdId: string): Promise<{ hlId: string }> {
  const link = await findLink(deps.db, account.id, "fourdegrees", fdId);
  if (!link) throw new AppError("not_found", `4Degrees deal ${fdId} has no link`);
  await rejectMatch(deps.db, account.id, fdId, link.hlOpportunityId, deps.now());
  await markUnlinked(deps.db, account.id, "fourdegrees", fdId, deps.now());
  await markUnlinked(deps.db, account.id, "highlevel", link.hlOpportunityId, deps.now());
  await deleteLink(deps.db, account.id, fdId);
  await recordEvent(deps.db, {
    accountId: account.id,
    kind: "link",
    direction: "none",
    fdId,
    hlId: link.hlOpportunityId,
    outcome: "unlinked",
    detail: { by: "hand", state: link.state },
  });
  return { hlId: link.hlOpportunityId };
}
