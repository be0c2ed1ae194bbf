/**
 * The lookups a job makes: the per-job memo of structure (pipelines, users) every translation
 * needs, and the search for the HighLevel opportunity that already stands for a 4Degrees deal.
 */
import * as z from "zod";
import type { Mapping } from "../../domain/mapping-config.ts";
import type { Deal, Flat, Reason } from "../../domain/port.ts";
import type { Opportunity, OpportunityCrm } from "../../highlevel/port.ts";
import type { Account } from "../../store/accounts.ts";
import { completeWrite, getWrite, type LedgerEntry } from "../../store/ledger.ts";
import { findLink, hasTombstone } from "../../store/links.ts";
import type { ExtrasContext } from "./extras.ts";
import { isRejected } from "../../store/match-decisions.ts";
import { externalIdOf, type Canonical, type FourDegreesContext, type HighLevelContext } from "./mapping.ts";
import type { EngineDeps } from "./types.ts";

/** A connector whose structure lookups are cached (KV) and can be reloaded (src/highlevel/adapter.ts). */
interface Refreshable {
  refreshStructure(): Promise<void>;
}
function refreshable(x: object): x is Refreshable {
  return "refreshStructure" in x && typeof x.refreshStructure === "function";
}

/**
 * Per-job memo of the lookups every translation needs (pipelines, users). Connectors serve them
 * from KV caches; a record naming a stage or user those do not know (added since the cache was
 * filled) reloads them once per job (`ensureFourDegrees` / `ensureHighLevel`).
 */
export class LookupCache {
  #fd: Promise<FourDegreesContext> | null = null;
  #fdRefreshed = false;
  #hl = new Map<string, Promise<HighLevelContext>>();
  readonly #hlRefreshed = new Set<string>();
  readonly #deps: EngineDeps;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
  }

  fourdegrees(): Promise<FourDegreesContext> {
    this.#fd ??= Promise.all([this.#deps.fourdegrees.listPipelines(), this.#deps.fourdegrees.listUsers()]).then(
      ([pipelines, users]) => ({ pipelines, users }),
    );
    return this.#fd;
  }

  /** The 4Degrees lookups, reloaded once when they do not know the deal's stage or owner. */
  async ensureFourDegrees(deal: Deal): Promise<FourDegreesContext> {
    const ctx = await this.fourdegrees();
    const knowsStage =
      deal.stage.id === null || ctx.pipelines.some((p) => p.stages.some((s) => s.id === deal.stage.id));
    const knowsOwner = !deal.owner?.id || deal.owner.email !== null || ctx.users.some((u) => u.id === deal.owner?.id);
    if ((knowsStage && knowsOwner) || this.#fdRefreshed) return ctx;
    this.#fdRefreshed = true;
    const crm = this.#deps.fourdegrees;
    if (!refreshable(crm)) return ctx;
    await crm.refreshStructure();
    this.#fd = null;
    return this.fourdegrees();
  }

  /** The 4Degrees lookups, reloaded once when they do not know user `userId` (a note's author). */
  async ensureFourDegreesUser(userId: string | null): Promise<FourDegreesContext> {
    const ctx = await this.fourdegrees();
    if (!userId || ctx.users.some((u) => u.id === userId) || this.#fdRefreshed) return ctx;
    this.#fdRefreshed = true;
    const crm = this.#deps.fourdegrees;
    if (!refreshable(crm)) return ctx;
    await crm.refreshStructure();
    this.#fd = null;
    return this.fourdegrees();
  }

  /** A location's HighLevel lookups, reloaded once when they do not know user `userId` (a note's author). */
  async ensureHighLevelUser(locationId: string, userId: string | null | undefined): Promise<HighLevelContext> {
    const ctx = await this.highlevel(locationId);
    if (!userId || ctx.users.some((u) => u.id === userId) || this.#hlRefreshed.has(locationId)) return ctx;
    this.#hlRefreshed.add(locationId);
    const port = this.#deps.highlevel(locationId);
    if (!refreshable(port)) return ctx;
    await port.refreshStructure();
    this.#hl.delete(locationId);
    return this.highlevel(locationId);
  }

  /** Reloads each side's users once when a team member or follower is not among them (added since cached). */
  async ensureTeamUsers(deal: Deal, opp: Opportunity, locationId: string): Promise<void> {
    const fd = (await this.fourdegrees()).users;
    const member = deal.team?.find((m) => m.id && !fd.some((u) => u.id === m.id));
    if (member) await this.ensureFourDegreesUser(member.id);
    const hl = (await this.highlevel(locationId)).users;
    const follower = opp.followers.find((id) => !hl.some((u) => u.id === id));
    if (follower) await this.ensureHighLevelUser(locationId, follower);
  }

  /** What extras.ts computes with: both sides' users, and the lost reasons when `lost`. */
  async extras(locationId: string, lost: boolean, knownReasonId?: string | null): Promise<ExtrasContext> {
    const [fd, hl, fdReasons, hlReasons] = await Promise.all([
      this.fourdegrees(),
      this.highlevel(locationId),
      lost ? this.fourdegreesReasons() : null,
      lost ? this.highlevelReasons(locationId, knownReasonId) : null,
    ]);
    return { fdUsers: fd.users, hlUsers: hl.users, fdReasons, hlReasons };
  }

  #fdReasons: Promise<Reason[]> | null = null;
  readonly #hlReasons = new Map<string, Promise<Reason[]>>();

  /** The 4Degrees pass reasons (once per job). */
  fourdegreesReasons(): Promise<Reason[]> {
    this.#fdReasons ??= this.#deps.fourdegrees.listLostReasons();
    return this.#fdReasons;
  }

  /**
   * A location's HighLevel lost reasons (once per job; KV-cached by the connector), reloaded once
   * when they do not know `knownId` (a reason added since the cache was filled).
   */
  async highlevelReasons(locationId: string, knownId?: string | null): Promise<Reason[]> {
    let hit = this.#hlReasons.get(locationId);
    if (!hit) {
      hit = this.#deps.highlevel(locationId).listLostReasons();
      this.#hlReasons.set(locationId, hit);
    }
    const reasons = await hit;
    if (!knownId || reasons.some((r) => r.id === knownId) || this.#hlRefreshed.has(`reasons:${locationId}`))
      return reasons;
    this.#hlRefreshed.add(`reasons:${locationId}`);
    hit = this.#deps.highlevel(locationId).listLostReasons({ fresh: true });
    this.#hlReasons.set(locationId, hit);
    return hit;
  }

  highlevel(locationId: string): Promise<HighLevelContext> {
    let hit = this.#hl.get(locationId);
    if (!hit) {
      const hl = this.#deps.highlevel(locationId);
      hit = hl.listUsers().then((users) => ({ users, nativeCloseDate: hl.nativeCloseDate }));
      this.#hl.set(locationId, hit);
    }
    return hit;
  }

  /** The HighLevel lookups of a location, reloaded once when they do not know the opportunity's assignee. */
  async ensureHighLevel(opp: Opportunity, locationId: string): Promise<HighLevelContext> {
    const ctx = await this.highlevel(locationId);
    if (!opp.assignedTo || ctx.users.some((u) => u.id === opp.assignedTo) || this.#hlRefreshed.has(locationId))
      return ctx;
    this.#hlRefreshed.add(locationId);
    const port = this.#deps.highlevel(locationId);
    if (!refreshable(port)) return ctx;
    await port.refreshStructure();
    this.#hl.delete(locationId);
    return this.highlevel(locationId);
  }
}

/** What finding a deal's opportunity needs of the engine (the `SyncEngine` of the job). */
export interface FindHost {
  readonly deps: EngineDeps;
  readonly account: Account;
  readonly mapping: Mapping;
  readonly db: D1Database;
}

/** The opportunity standing for a deal (with the pair's merge base), several candidates, or the deleted one it stood for. */
export type FoundOpportunity =
  | { kind: "found"; opp: Opportunity; base: Flat | null }
  | { kind: "ambiguous"; candidates: Opportunity[] }
  | { kind: "gone"; oppId: string }
  | null;

/**
 * The HighLevel opportunity that already stands for a 4Degrees deal, in order: a completed
 * ledger create; the deal's own `externalRefs`; a search of the mapped pipeline by name whose
 * external-id custom field holds the deal id (finds a create whose link was never saved); and,
 * in backfill only, the exact name + contact email (several candidates → ambiguous). `gone`:
 * nothing found, and the opportunity the deal's `externalRefs` name no longer exists.
 *
 * `base` is the merge base for the pair. For an opportunity this engine created (ledger, external
 * id) it is the opportunity as created — its current content when nothing changed it since — so
 * the merge sees the 4Degrees edits made after the create (while the link was not saved) as
 * changes that flow to HighLevel. (The deal's current content as base would make the create's
 * older values look like HighLevel changes and overwrite those edits.)
 * When the opportunity changed since, the created content is unknown: `null`, every difference
 * is a conflict resolved by the account's policy.
 */
export async function findOpportunityFor(
  engine: FindHost,
  deal: Deal,
  canonical: Canonical,
  locationId: string,
  backfill: boolean,
  asCreated: (opp: Opportunity) => Promise<Flat | null>,
): Promise<FoundOpportunity> {
  const fdId = deal.id ?? "";
  const hl = engine.deps.highlevel(locationId);
  const prior = await getWrite(engine.db, {
    accountId: engine.account.id,
    targetSide: "highlevel",
    sourceRecord: `fourdegrees:${fdId}`,
    changeHash: "create",
  });
  if (prior?.targetId) {
    const opp = await hl.getOpportunity(prior.targetId);
    if (opp) return { kind: "found", opp, base: await asCreated(opp) };
  }
  let goneRef: string | null = null;
  const keys = engine.mapping.matchKeys;
  const rejected = (oppId: string) => isRejected(engine.db, engine.account.id, fdId, oppId);
  for (const ref of deal.externalRefs) {
    if (ref.system !== "highlevel") continue;
    const other = await findLink(engine.db, engine.account.id, "highlevel", ref.id);
    if (other && other.fdDealId !== fdId) continue;
    if (await rejected(ref.id)) continue;
    // With no match keys, a reference counts only when this engine made the pair.
    if (keys === "none" && !(await ourCreate(engine, ref.id))) continue;
    const opp = await hl.getOpportunity(ref.id);
    if (opp) return { kind: "found", opp, base: null };
    // The opportunity this account paired the deal with (it created the deal from it, or saw it
    // deleted) is gone — the re-read confirms it. A reference from elsewhere (another tool, an
    // earlier installation) is no evidence of a pair and is left alone.
    const ours =
      (await getWrite(engine.db, {
        accountId: engine.account.id,
        targetSide: "fourdegrees",
        sourceRecord: `highlevel:${ref.id}`,
        changeHash: "create",
      })) !== null || (await hasTombstone(engine.db, engine.account.id, "highlevel", ref.id));
    if (ours) goneRef ??= ref.id;
  }
  if (prior && !prior.targetId && !engine.mapping.externalIdFieldId) {
    const unfinished = await findUnfinishedCreate(engine, prior, locationId, asCreated);
    if (unfinished) return unfinished;
  }
  const pair = engine.mapping.pipelines.find((p) => p.fourdegreesPipelineId === canonical.pipeline);
  // Name keys pair records in backfill only; `none` searches the external id only for our own create.
  const byName = backfill && (keys === "name_email" || keys === "name");
  const byExternalId = engine.mapping.externalIdFieldId !== null && (keys !== "none" || prior !== null);
  if (!pair || (!byExternalId && !byName)) return goneRef ? { kind: "gone", oppId: goneRef } : null;
  // After a create that began (ledger row) but never completed, the deal may have been renamed
  // since: search the whole pipeline for the external id, not only the current name.
  const renamedSince = prior !== null;
  const search = await searchPipeline(hl, engine.mapping, {
    pipelineId: pair.highlevelPipelineId,
    query: renamedSince ? null : canonical.name,
    fdId: byExternalId ? fdId : null,
    sameName: (o) => (o.name ?? "").trim() === canonical.name.trim(),
  });
  if (search.hit && !(await rejected(search.hit.id)))
    return { kind: "found", opp: search.hit, base: await asCreated(search.hit) };
  const sameName = search.sameName;
  if (goneRef) return { kind: "gone", oppId: goneRef };
  if (!byName) return null;
  const candidates: Opportunity[] = [];
  for (const o of sameName) {
    if (externalIdOf(o, engine.mapping)) continue; // carries another deal's id
    if (await findLink(engine.db, engine.account.id, "highlevel", o.id)) continue;
    if (keys === "name_email" && canonical.contact && (o.contact?.email ?? "").toLowerCase() !== canonical.contact)
      continue;
    if (await rejected(o.id)) continue;
    candidates.push(o);
  }
  if (candidates.length === 1 && candidates[0])
    return { kind: "found", opp: (await hl.getOpportunity(candidates[0].id)) ?? candidates[0], base: null };
  if (candidates.length > 1) return { kind: "ambiguous", candidates };
  return null;
}

/** Whether this engine created the 4Degrees deal from opportunity `oppId` (its ledger row). */
async function ourCreate(engine: FindHost, oppId: string): Promise<boolean> {
  const write = await getWrite(engine.db, {
    accountId: engine.account.id,
    targetSide: "fourdegrees",
    sourceRecord: `highlevel:${oppId}`,
    changeHash: "create",
  });
  return write !== null;
}

/** What a HighLevel create recorded in the ledger that identifies the opportunity it made. */
const UnfinishedCreateSchema = z
  .object({ pipelineId: z.string().min(1), contactId: z.string().min(1), name: z.string() })
  .loose();
/** HighLevel's clock against ours when comparing an opportunity's `createdAt` with the ledger row. */
const CREATE_CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * With no external-id field to search by, the opportunity a create that began but never completed
 * may have made: in the request's pipeline, for its contact, with its name, created since the create
 * began and linked to no deal. One → found; several → ambiguous (review); none → the create never
 * happened.
 */
async function findUnfinishedCreate(
  engine: FindHost,
  prior: LedgerEntry,
  locationId: string,
  asCreated: (opp: Opportunity) => Promise<Flat | null>,
): Promise<
  { kind: "found"; opp: Opportunity; base: Flat | null } | { kind: "ambiguous"; candidates: Opportunity[] } | null
> {
  const request = UnfinishedCreateSchema.safeParse(prior.request);
  if (!request.success) return null;
  const { pipelineId, contactId, name } = request.data;
  const hl = engine.deps.highlevel(locationId);
  const candidates: Opportunity[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10; page++) {
    const res = await hl.searchOpportunities({ pipelineId, contactId, cursor, limit: 100 });
    for (const o of res.items) {
      if ((o.name ?? "").trim() !== name.trim() || (o.contactId ?? null) !== contactId) continue;
      if (o.createdAt && Date.parse(o.createdAt) < prior.createdAt - CREATE_CLOCK_SKEW_MS) continue;
      if (await findLink(engine.db, engine.account.id, "highlevel", o.id)) continue;
      candidates.push(o);
    }
    if (!res.nextCursor) break;
    cursor = res.nextCursor;
  }
  const [only] = candidates;
  if (candidates.length === 1 && only) {
    const opp = (await hl.getOpportunity(only.id)) ?? only;
    // The create did happen: the ledger now says so, so no later attempt searches again.
    await completeWrite(engine.db, prior, opp.id, engine.deps.now());
    return { kind: "found", opp, base: await asCreated(opp) };
  }
  return candidates.length > 1 ? { kind: "ambiguous", candidates } : null;
}

/**
 * Pages a HighLevel pipeline (up to 10 pages of 100, optionally narrowed by a name query) for the
 * opportunity whose external-id field holds `fdId` — re-read, so it is current — collecting those
 * `sameName` accepts on the way. The one search both the engine and CSV import rows use.
 */
export async function searchPipeline(
  hl: OpportunityCrm,
  mapping: Mapping,
  q: { pipelineId: string; query: string | null; fdId: string | null; sameName: (o: Opportunity) => boolean },
): Promise<{ hit: Opportunity | null; sameName: Opportunity[] }> {
  const sameName: Opportunity[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10; page++) {
    const res = await hl.searchOpportunities({
      pipelineId: q.pipelineId,
      ...(q.query === null ? {} : { query: q.query }),
      cursor,
      limit: 100,
    });
    const hit = q.fdId === null ? undefined : res.items.find((o) => externalIdOf(o, mapping) === q.fdId);
    if (hit) return { hit: (await hl.getOpportunity(hit.id)) ?? hit, sameName };
    sameName.push(...res.items.filter(q.sameName));
    if (!res.nextCursor) break;
    cursor = res.nextCursor;
  }
  return { hit: null, sameName };
}
