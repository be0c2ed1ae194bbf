/**
 * The sync engine's core: one job = one record (a deal pair, or the notes of a pair). It re-reads
 * both sides (events only say "this changed"), translates them to canonical, merges against the
 * last-synced snapshot, and writes each side at most once, recording every write in the ledger.
 *
 * Exactly-once effects, step by step:
 * 1. a create is preceded by a lookup (stored link → ledger row → the HighLevel custom field that
 *    carries the 4Degrees id, searched in the mapped pipeline by name), so a retry after a crash
 *    between "created" and "link saved" finds the first create;
 * 2. 4Degrees writes carry the ledger key as `Idempotency-Key` (a replay answers the first write);
 * 3. updates are naturally idempotent: after a crash the re-read shows the write already applied,
 *    the merge sees both sides equal and writes nothing.
 *
 * Out of order: a re-read older than the snapshot's `updatedAt` / `version` (a lagging replica, a
 * stale page) is never merged — the job retries shortly instead.
 */
import { z } from "zod";
import type { Logger } from "../lib/log.ts";
import type { Account } from "../store/accounts.ts";
import { beginWrite, completeWrite, getWrite, ledgerIdempotencyKey, type LedgerKey } from "../store/ledger.ts";
import type { LedgerEntry } from "../store/ledger.ts";
import {
  addTombstone,
  deleteNoteLink,
  findLink,
  hasTombstone,
  linksForContact,
  markLinkDeleted,
  noteLinksForDeal,
  saveLink,
  saveNoteLink,
  type Link,
  type RecordExpectedEcho,
  type SideName,
} from "../store/links.ts";
import { addReview, recordEvent, resolveReview } from "../store/sync-events.ts";
import { expectedEchoOf } from "./highlevel-echo.ts";
import type { HlNote, Opportunity, OpportunityCrm } from "./highlevel-port.ts";
import {
  externalIdOf,
  flatten,
  fromDeal,
  fromOpportunity,
  toDealContent,
  toDealPatch,
  toOpportunityCreate,
  toOpportunityUpdate,
  unflatten,
  type Canonical,
  type Flat,
  type FourDegreesContext,
  type HighLevelContext,
  type Translation,
} from "./mapping.ts";
import type { Mapping } from "./mapping-config.ts";
import { merge, same, type Conflict, type Side } from "./merge.ts";
import { DealContentSchema, type Actor, type Deal, type DealCrm, type Note } from "./port.ts";

/** The connectors and helpers one job uses. Built per batch by src/sync/connectors.ts (or a test). */
export interface EngineDeps {
  db: D1Database;
  fourdegrees: DealCrm;
  /** The HighLevel side of one of the account's locations. */
  highlevel(locationId: string): OpportunityCrm;
  /** The actor our 4Degrees writes carry (`whoAmI`), for echo recognition; null when unknown. */
  ourActor: Actor | null;
  log: Logger;
  now(): number;
  /** Test hooks (crash simulation). */
  hooks?: { afterCreate?(target: SideName, id: string): void | Promise<void> };
}

/** What one job did. */
export interface JobResult {
  outcome: "ok" | "noop" | "echo" | "skipped" | "review" | "retry" | "test_mode" | "deleted";
  direction: "to_highlevel" | "to_fourdegrees" | "both" | "none";
  fdId: string | null;
  hlId: string | null;
  /** Write calls made (and, in test mode, that would have been made). */
  writes: Array<{ side: SideName; op: string; id: string | null; fields?: string[] }>;
  conflicts: Conflict[];
  reason?: string;
  /** Delay for `retry`. */
  retryAfterSeconds?: number;
  detail?: Record<string, unknown>;
  /**
   * The pair's synced state moved (base → merged, or a new pair): what team notifications are told.
   * `changeId` is the base snapshot's time plus a hash of the new state — the same for every retry
   * of one change (the base only moves once the change is recorded), different for the next one.
   */
  change?: PairChange;
}

/** One recorded change of a pair's canonical state (see `JobResult.change`). */
export interface PairChange {
  source: SideName;
  changeId: string;
  name: string;
  fdId: string | null;
  hlId: string | null;
  /** The last-synced snapshot; null for a pair created by this job. */
  before: Flat | null;
  after: Flat;
}

/** Two flat records hold the same values on every key either has. */
function sameFlat(a: Flat, b: Flat): boolean {
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (!same(a[k], b[k])) return false;
  return true;
}

/** What a HighLevel create recorded in the ledger that identifies the opportunity it made. */
const UnfinishedCreateSchema = z
  .object({ pipelineId: z.string().min(1), contactId: z.string().min(1), name: z.string() })
  .loose();
/** HighLevel's clock against ours when comparing an opportunity's `createdAt` with the ledger row. */
const CREATE_CLOCK_SKEW_MS = 5 * 60 * 1000;

const blank = (fdId: string | null, hlId: string | null): JobResult => ({ outcome: "noop", direction: "none", fdId, hlId, writes: [], conflicts: [] });

function directionOf(writes: JobResult["writes"]): JobResult["direction"] {
  const hl = writes.some((w) => w.side === "highlevel");
  const fd = writes.some((w) => w.side === "fourdegrees");
  return hl && fd ? "both" : hl ? "to_highlevel" : fd ? "to_fourdegrees" : "none";
}

/** SHA-256 hex of a string (ledger change hashes, note body hashes). */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 32);
}

/** A connector whose structure lookups are cached (KV) and can be reloaded (src/sync/connectors.ts). */
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
    this.#fd ??= Promise.all([this.#deps.fourdegrees.listPipelines(), this.#deps.fourdegrees.listUsers()]).then(([pipelines, users]) => ({ pipelines, users }));
    return this.#fd;
  }

  /** The 4Degrees lookups, reloaded once when they do not know the deal's stage or owner. */
  async ensureFourDegrees(deal: Deal): Promise<FourDegreesContext> {
    const ctx = await this.fourdegrees();
    const knowsStage = deal.stage.id === null || ctx.pipelines.some((p) => p.stages.some((s) => s.id === deal.stage.id));
    const knowsOwner = !deal.owner?.id || deal.owner.email !== null || ctx.users.some((u) => u.id === deal.owner?.id);
    if ((knowsStage && knowsOwner) || this.#fdRefreshed) return ctx;
    this.#fdRefreshed = true;
    const crm = this.#deps.fourdegrees;
    if (!refreshable(crm)) return ctx;
    await crm.refreshStructure();
    this.#fd = null;
    return this.fourdegrees();
  }

  highlevel(locationId: string): Promise<HighLevelContext> {
    let hit = this.#hl.get(locationId);
    if (!hit) {
      hit = this.#deps.highlevel(locationId).listUsers().then((users) => ({ users }));
      this.#hl.set(locationId, hit);
    }
    return hit;
  }

  /** The HighLevel lookups of a location, reloaded once when they do not know the opportunity's assignee. */
  async ensureHighLevel(opp: Opportunity, locationId: string): Promise<HighLevelContext> {
    const ctx = await this.highlevel(locationId);
    if (!opp.assignedTo || ctx.users.some((u) => u.id === opp.assignedTo) || this.#hlRefreshed.has(locationId)) return ctx;
    this.#hlRefreshed.add(locationId);
    const port = this.#deps.highlevel(locationId);
    if (!refreshable(port)) return ctx;
    await port.refreshStructure();
    this.#hl.delete(locationId);
    return this.highlevel(locationId);
  }
}

/** The engine for one account (settings + mapping) over one set of connectors. */
export class SyncEngine {
  readonly deps: EngineDeps;
  readonly account: Account;
  readonly mapping: Mapping;
  readonly lookups: LookupCache;
  readonly #canWrite = new Map<string, Promise<boolean>>();

  constructor(deps: EngineDeps, account: Account, mapping: Mapping, lookups?: LookupCache) {
    this.deps = deps;
    this.account = account;
    this.mapping = mapping;
    this.lookups = lookups ?? new LookupCache(deps);
  }

  get db(): D1Database {
    return this.deps.db;
  }

  /** Whether HighLevel may be written for this location: account not read-only, scope granted. */
  async highLevelWritable(locationId: string): Promise<boolean> {
    if (this.account.readOnly) return false;
    let hit = this.#canWrite.get(locationId);
    if (!hit) {
      hit = this.deps.highlevel(locationId).canWrite();
      this.#canWrite.set(locationId, hit);
    }
    return hit;
  }

  /** The location of a HighLevel record: the link's, the hint's, or the only one the account has. */
  #locationFor(link: Link | null, hint: string | null | undefined): string | null {
    return link?.hlLocationId ?? hint ?? (this.account.locations.length === 1 ? (this.account.locations[0] ?? null) : null);
  }

  // ───────────────────────────── deals ─────────────────────────────

  /** Syncs the deal pair of one record (either side). */
  /**
   * `options.sourceFirst` (live webhook jobs): re-read the side the event came from first, and
   * when it is exactly as last synced (`version` / `updatedAt` equal to the link's) stop there as
   * an echo — the event brought nothing new (typically the webhook of our own write), so the other
   * side is not read either: one read per echo instead of two. A change on the other side has its
   * own event and job. Reconcile and forced (replay) jobs always read both sides: they may be
   * about the other side (a record gone, a lost webhook).
   */
  async syncDeal(side: SideName, recordId: string, locationHint?: string | null, options: { sourceFirst?: boolean } = {}): Promise<JobResult> {
    const fdIdHint = side === "fourdegrees" ? recordId : null;
    const hlIdHint = side === "highlevel" ? recordId : null;
    if (await hasTombstone(this.db, this.account.id, side, recordId)) return { ...blank(fdIdHint, hlIdHint), outcome: "skipped", reason: "tombstoned: the record was deleted" };
    const link = await findLink(this.db, this.account.id, side, recordId);
    if (link?.state === "deleted") return { ...blank(link.fdDealId, link.hlOpportunityId), outcome: "skipped", reason: `the pair was deleted on ${link.deletedSide ?? "one side"}; a late event does not resurrect it` };
    const locationId = this.#locationFor(link, locationHint);
    if (!locationId) return { ...blank(fdIdHint, hlIdHint), outcome: "skipped", reason: "no HighLevel location is known for this record" };
    const hl = this.deps.highlevel(locationId);

    const fdId = link?.fdDealId ?? fdIdHint;
    const hlId = link?.hlOpportunityId ?? hlIdHint;
    const readDeal = () => (fdId ? this.deps.fourdegrees.getDeal(fdId) : Promise.resolve(null));
    const readOpp = () => (hlId ? hl.getOpportunity(hlId) : Promise.resolve(null));
    let deal: Deal | null;
    let opp: Opportunity | null;
    if (options.sourceFirst && link?.state === "active") {
      // The one re-read of the changed record; it is reused by the echo check, the merge and the write.
      if (side === "fourdegrees") {
        deal = await readDeal();
        if (deal && !deal.archivedAt && link.fdVersion !== null && deal.version === link.fdVersion) return this.#echo(link, deal);
        opp = await readOpp();
      } else {
        opp = await readOpp();
        if (opp && link.hlUpdatedAt !== null && opp.updatedAt === link.hlUpdatedAt) return this.#echo(link, null);
        deal = await readDeal();
      }
    } else [deal, opp] = await Promise.all([readDeal(), readOpp()]);
    const dealGone = fdId !== null && (deal === null || deal.archivedAt !== null);
    const oppGone = hlId !== null && opp === null;

    if (link) {
      if (dealGone) return this.#applyDelete(link, "fourdegrees");
      if (oppGone) return this.#applyDelete(link, "highlevel");
      if (!deal || !opp) return { ...blank(fdId, hlId), outcome: "skipped", reason: "linked record missing" };
      return this.#syncLinked(link, deal, opp, locationId);
    }
    if (side === "fourdegrees") {
      if (!deal || dealGone) {
        await addTombstone(this.db, this.account.id, "fourdegrees", recordId, this.deps.now());
        return { ...blank(recordId, null), outcome: "skipped", reason: "the deal is gone (confirmed by re-read) and was never linked" };
      }
      return this.fromFourDegrees(deal, locationId);
    }
    if (!opp) {
      await addTombstone(this.db, this.account.id, "highlevel", recordId, this.deps.now());
      return { ...blank(null, recordId), outcome: "skipped", reason: "the opportunity is gone (confirmed by re-read) and was never linked" };
    }
    return this.fromHighLevel(opp, locationId);
  }

  /**
   * Whether HighLevel's answer to our update shows exactly `expected` — the opportunity as we read
   * it with the fields we wrote set to what we wrote. HighLevel has no
   * If-Match: a user's edit of another field between our read and our write is kept by HighLevel
   * and shows up in the answer, whose `updatedAt` then covers it. Recording that `updatedAt` with
   * the base of our read would make the user's own webhook — and reconcile — look like an echo of
   * our write, and the edit would never reach 4Degrees. When the answer differs from the merge
   * (or cannot be translated), the link keeps the `updatedAt` of our read instead, so the next event
   * or reconcile re-reads and merges it; the cost of a false difference is one read.
   */
  async #answerIsOurs(answer: Opportunity, locationId: string, expected: Flat): Promise<boolean> {
    const t = await this.#translateOpp(answer, locationId);
    if (!t.ok) return false;
    return sameFlat(flatten(t.canonical), expected);
  }

  /** The event's side is exactly as last synced: nothing to do (see `syncDeal`'s `sourceFirst`). */
  #echo(link: Link, deal: Deal | null): JobResult {
    const ours = this.deps.ourActor && deal?.actor?.type === this.deps.ourActor.type && deal.actor.id === this.deps.ourActor.id;
    return { ...blank(link.fdDealId, link.hlOpportunityId), outcome: "echo", reason: ours ? "last 4Degrees change was our own write" : "no change since the last sync" };
  }

  async #translateDeal(deal: Deal): Promise<Translation> {
    return fromDeal(deal, this.mapping, await this.lookups.ensureFourDegrees(deal));
  }

  async #translateOpp(opp: Opportunity, locationId: string): Promise<Translation> {
    return fromOpportunity(opp, locationId, this.mapping, await this.lookups.ensureHighLevel(opp, locationId));
  }

  /** Puts a record on the review list with an alert event. */
  async #review(side: SideName, recordId: string, reason: string, detail: Record<string, unknown>, ids: { fdId: string | null; hlId: string | null }): Promise<JobResult> {
    const isNew = await addReview(this.db, { accountId: this.account.id, side, recordId, reason, detail }, this.deps.now());
    if (isNew) await recordEvent(this.db, { accountId: this.account.id, kind: "alert", direction: null, fdId: ids.fdId, hlId: ids.hlId, outcome: "review", detail: { reason, ...detail } });
    return { ...blank(ids.fdId, ids.hlId), outcome: "review", reason };
  }

  async #syncLinked(link: Link, deal: Deal, opp: Opportunity, locationId: string, options: { base?: Flat | null } = {}): Promise<JobResult> {
    const ids = { fdId: link.fdDealId, hlId: link.hlOpportunityId };
    // Out of order: never merge a read older than what was already synced.
    const staleFd = link.fdVersion !== null && deal.version !== null && Number(deal.version) < Number(link.fdVersion);
    const staleHl = link.hlUpdatedAt !== null && opp.updatedAt && Date.parse(opp.updatedAt) < Date.parse(link.hlUpdatedAt);
    if (staleFd || staleHl) return { ...blank(ids.fdId, ids.hlId), outcome: "retry", reason: `stale read of ${staleFd ? "4Degrees" : "HighLevel"} (older than the last sync)`, retryAfterSeconds: 5 };

    // Echo: nothing changed on either side since our last sync (typically the webhook of our own write).
    if (options.base === undefined && link.fdVersion !== null && deal.version === link.fdVersion && link.hlUpdatedAt !== null && opp.updatedAt === link.hlUpdatedAt) {
      const ours = this.deps.ourActor && deal.actor?.type === this.deps.ourActor.type && deal.actor.id === this.deps.ourActor.id;
      return { ...blank(ids.fdId, ids.hlId), outcome: "echo", reason: ours ? "last 4Degrees change was our own write" : "no change since the last sync" };
    }

    const fdT = await this.#translateDeal(deal);
    if (!fdT.ok) return this.#review("fourdegrees", deal.id ?? link.fdDealId, fdT.reason, fdT.detail, ids);
    const hlT = await this.#translateOpp(opp, locationId);
    if (!hlT.ok) return this.#review("highlevel", opp.id, hlT.reason, hlT.detail, ids);
    const fdFlat = flatten(fdT.canonical);
    const hlFlat = flatten(hlT.canonical);
    const writable = await this.highLevelWritable(locationId);
    const result = merge({
      base: options.base === undefined ? link.base : options.base,
      fourdegrees: fdFlat,
      highlevel: hlFlat,
      fourdegreesUpdatedAt: deal.updatedAt,
      highlevelUpdatedAt: opp.updatedAt ?? null,
      policy: this.account.conflictPolicy,
      mapping: this.mapping,
      readOnly: writable ? new Set() : new Set<Side>(["highlevel"]),
    });
    const merged = unflatten(result.merged);
    const out: JobResult = { ...blank(ids.fdId, ids.hlId), conflicts: result.conflicts };

    if (this.account.testMode) {
      if (result.toHighLevel.size > 0) out.writes.push({ side: "highlevel", op: "update", id: opp.id, fields: [...result.toHighLevel] });
      if (result.toFourDegrees.size > 0) out.writes.push({ side: "fourdegrees", op: "update", id: link.fdDealId, fields: [...result.toFourDegrees] });
      out.outcome = "test_mode";
      out.direction = directionOf(out.writes);
      out.detail = { diff: this.#diff(result.toHighLevel, result.toFourDegrees, fdFlat, hlFlat, result.merged) };
      return out;
    }

    let newDeal = deal;
    let newOpp = opp;
    /** The HighLevel `updatedAt` the link records: the write's answer, unless the answer shows an edit we did not make. */
    let hlUpdatedAt = opp.updatedAt ?? null;
    /** Recorded only with `hlUpdatedAt` = the answer's (the answer is exactly our read plus our write). */
    let expectEcho: RecordExpectedEcho | null = null;
    let contactId = link.hlContactId ?? opp.contactId ?? null;
    const skipped: Array<{ field: string; reason: string }> = [];
    if (result.toHighLevel.size > 0) {
      const hl = this.deps.highlevel(locationId);
      if (result.toHighLevel.has("contact") && merged.contact) contactId = (await hl.ensureContact({ email: merged.contact, name: merged.name })).id;
      const users = await this.lookups.highlevel(locationId);
      const build = toOpportunityUpdate(result.toHighLevel, merged, this.mapping, { ...users, currentStageId: opp.pipelineStageId, ...(contactId ? { contactId } : {}) });
      skipped.push(...build.skipped);
      if (Object.keys(build.body).length > 0) {
        const key: LedgerKey = { accountId: this.account.id, targetSide: "highlevel", sourceRecord: `fourdegrees:${link.fdDealId}`, changeHash: await sha256(JSON.stringify([build.body, opp.updatedAt ?? null])) };
        const begun = await beginWrite(this.db, key, "update", this.deps.now());
        if (begun.entry.state === "done") {
          // Applied before a crash: the re-read already shows it.
        } else {
          const writeStartedAt = this.deps.now();
          newOpp = await hl.updateOpportunity(opp.id, build.body);
          await completeWrite(this.db, key, opp.id, this.deps.now());
          const expected: Flat = { ...hlFlat };
          for (const k of result.toHighLevel) expected[k] = result.merged[k];
          if (await this.#answerIsOurs(newOpp, locationId, expected)) {
            hlUpdatedAt = newOpp.updatedAt ?? null;
            // The webhooks HighLevel sends for this write, acked without a read (src/sync/highlevel-echo.ts, "Expected echoes").
            expectEcho = { echo: expectedEchoOf(opp, newOpp, this.deps.now()), ifSyncedAt: link.syncedAt, unlessDirtySince: writeStartedAt };
          }
          out.writes.push({ side: "highlevel", op: "update", id: opp.id, fields: [...result.toHighLevel] });
        }
      }
    }
    if (result.toFourDegrees.size > 0) {
      const build = toDealPatch(result.toFourDegrees, merged, this.mapping, await this.lookups.fourdegrees());
      skipped.push(...build.skipped);
      if (Object.keys(build.body).length > 0) {
        const key: LedgerKey = { accountId: this.account.id, targetSide: "fourdegrees", sourceRecord: `highlevel:${opp.id}`, changeHash: await sha256(JSON.stringify([build.body, deal.version])) };
        await beginWrite(this.db, key, "update", this.deps.now());
        let conflicted = false;
        newDeal = await this.deps.fourdegrees.updateDeal(link.fdDealId, build.body, {
          idempotencyKey: ledgerIdempotencyKey(key),
          ...(deal.version ? { expectedVersion: deal.version } : {}),
          // The deal changed after our read: do not overwrite blindly; the newer change re-runs this job.
          onConflict: () => {
            conflicted = true;
            return null;
          },
        });
        if (conflicted) return { ...out, outcome: "retry", reason: "4Degrees deal changed during the sync (version conflict)", retryAfterSeconds: 2 };
        await completeWrite(this.db, key, link.fdDealId, this.deps.now());
        out.writes.push({ side: "fourdegrees", op: "update", id: link.fdDealId, fields: [...result.toFourDegrees] });
      }
    }

    await saveLink(
      this.db,
      {
        accountId: this.account.id,
        fdDealId: link.fdDealId,
        hlOpportunityId: link.hlOpportunityId,
        hlLocationId: locationId,
        hlContactId: newOpp.contactId ?? contactId,
        base: result.merged,
        fdUpdatedAt: newDeal.updatedAt,
        fdVersion: newDeal.version,
        hlUpdatedAt,
        expectEcho,
      },
      this.deps.now(),
    );
    await resolveReview(this.db, this.account.id, "fourdegrees", link.fdDealId);
    await resolveReview(this.db, this.account.id, "highlevel", link.hlOpportunityId);
    // A regular sync of a known pair (not a pair just found, whose "before" is unknown) whose state moved.
    const base = options.base === undefined ? link.base : null;
    if (base && Object.keys(base).length > 0 && !sameFlat(base, result.merged)) {
      const source: SideName = result.toHighLevel.size > 0 ? "fourdegrees" : result.toFourDegrees.size > 0 ? "highlevel" : Date.parse(deal.updatedAt ?? "") >= Date.parse(opp.updatedAt ?? "") ? "fourdegrees" : "highlevel";
      out.change = { source, changeId: `${link.syncedAt}:${await sha256(JSON.stringify(result.merged))}`, name: merged.name, fdId: link.fdDealId, hlId: link.hlOpportunityId, before: base, after: result.merged };
    }
    for (const c of result.conflicts)
      await recordEvent(this.db, { accountId: this.account.id, kind: "conflict", direction: c.winner === "fourdegrees" ? "to_highlevel" : c.winner === "highlevel" ? "to_fourdegrees" : "none", fdId: link.fdDealId, hlId: link.hlOpportunityId, outcome: `${c.winner}_wins`, detail: { ...c, policy: this.account.conflictPolicy } });
    out.direction = directionOf(out.writes);
    out.outcome = out.writes.length > 0 ? "ok" : "noop";
    out.detail = { changed: { to_highlevel: [...result.toHighLevel], to_fourdegrees: [...result.toFourDegrees] }, ...(skipped.length ? { skipped } : {}), ...(writable ? {} : { readOnly: "HighLevel is read-only for this account: syncing HighLevel → 4Degrees only" }) };
    return out;
  }

  #diff(toHl: Set<string>, toFd: Set<string>, fd: Flat, hl: Flat, merged: Flat): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const k of toHl) out[`highlevel.${k}`] = { from: hl[k] ?? null, to: merged[k] ?? null };
    for (const k of toFd) out[`fourdegrees.${k}`] = { from: fd[k] ?? null, to: merged[k] ?? null };
    return out;
  }

  /**
   * A 4Degrees deal with no link: find its opportunity (crash recovery, prior link, backfill
   * match) or create one. `backfill` adds the name + contact-email match; ambiguity → review.
   */
  async fromFourDegrees(deal: Deal, locationId: string, options: { backfill?: boolean } = {}): Promise<JobResult> {
    const fdId = deal.id ?? "";
    const t = await this.#translateDeal(deal);
    if (!t.ok) return this.#review("fourdegrees", fdId, t.reason, t.detail, { fdId, hlId: null });
    const pair = this.mapping.pipelines.find((p) => p.fourdegreesPipelineId === t.canonical.pipeline);
    const pairLocation = pair?.highlevelLocationId ?? locationId;
    const hl = this.deps.highlevel(pairLocation);
    const found = await this.findOpportunityFor(deal, t.canonical, pairLocation, options.backfill ?? false);
    if (found?.kind === "found") return this.#linkAndSync(deal, found.opp, pairLocation, found.base);
    if (found?.kind === "gone") {
      // The deal stands for an opportunity that was deleted before their link was saved (e.g. a
      // crash after creating the deal, then a user deleted the opportunity): a delete, applied per
      // the account's policy like any confirmed delete — never a new opportunity resurrecting it.
      if (await findLink(this.db, this.account.id, "highlevel", found.oppId)) return { ...blank(fdId, found.oppId), outcome: "skipped", reason: `HighLevel opportunity ${found.oppId} is linked elsewhere` };
      const link: Link = { accountId: this.account.id, fdDealId: fdId, hlOpportunityId: found.oppId, hlLocationId: pairLocation, hlContactId: null, state: "active", base: {}, fdUpdatedAt: null, fdVersion: null, hlUpdatedAt: null, syncedAt: this.deps.now(), deletedSide: null };
      if (!this.account.testMode) await saveLink(this.db, link, this.deps.now());
      return this.#applyDelete(link, "highlevel");
    }
    if (found?.kind === "ambiguous") {
      for (const c of found.candidates) await addReview(this.db, { accountId: this.account.id, side: "highlevel", recordId: c.id, reason: `ambiguous match: several HighLevel opportunities look like 4Degrees deal ${fdId}`, detail: { fdDealId: fdId } }, this.deps.now());
      return this.#review("fourdegrees", fdId, `ambiguous match: ${found.candidates.length} HighLevel opportunities named "${t.canonical.name}"${t.canonical.contact ? ` with contact ${t.canonical.contact}` : ""}; link one by hand`, { candidates: found.candidates.map((c) => c.id) }, { fdId, hlId: null });
    }
    if (!(await this.highLevelWritable(pairLocation))) return { ...blank(fdId, null), outcome: "skipped", reason: "HighLevel is read-only for this account (HighLevel → 4Degrees only): the deal is not created there" };
    if (this.account.testMode) return { ...blank(fdId, null), outcome: "test_mode", direction: "to_highlevel", writes: [{ side: "highlevel", op: "create", id: null }], detail: { create: t.canonical } };

    const key: LedgerKey = { accountId: this.account.id, targetSide: "highlevel", sourceRecord: `fourdegrees:${fdId}`, changeHash: "create" };
    const contact = await hl.ensureContact({ email: t.canonical.contact ?? null, name: t.canonical.name });
    const build = toOpportunityCreate(t.canonical, this.mapping, { ...(await this.lookups.highlevel(pairLocation)), contactId: contact.id, fdDealId: fdId });
    // The request is kept with the ledger row: a retry after a crash finds this create by it (findOpportunityFor).
    await beginWrite(this.db, key, "create", this.deps.now(), build.body);
    const opp = await hl.createOpportunity(build.body);
    await this.deps.hooks?.afterCreate?.("highlevel", opp.id);
    await completeWrite(this.db, key, opp.id, this.deps.now());
    const writes: JobResult["writes"] = [{ side: "highlevel", op: "create", id: opp.id }];
    const linked = await this.#writeExternalRef(deal, opp.id);
    if (linked !== deal) writes.push({ side: "fourdegrees", op: "link", id: fdId });
    const base = flatten(t.canonical);
    for (const s of build.skipped) base[s.field] = null;
    await saveLink(this.db, { accountId: this.account.id, fdDealId: fdId, hlOpportunityId: opp.id, hlLocationId: pairLocation, hlContactId: opp.contactId ?? contact.id, base, fdUpdatedAt: linked.updatedAt, fdVersion: linked.version, hlUpdatedAt: opp.updatedAt ?? null }, this.deps.now());
    await resolveReview(this.db, this.account.id, "fourdegrees", fdId);
    const change: PairChange = { source: "fourdegrees", changeId: "create", name: t.canonical.name, fdId, hlId: opp.id, before: null, after: base };
    return { ...blank(fdId, opp.id), outcome: "ok", direction: "to_highlevel", writes, change, ...(build.skipped.length ? { detail: { skipped: build.skipped } } : {}) };
  }

  /** Records the HighLevel id on the 4Degrees deal (`externalRefs`), once. */
  async #writeExternalRef(deal: Deal, oppId: string): Promise<Deal> {
    if (!deal.id || deal.externalRefs.some((r) => r.system === "highlevel" && r.id === oppId)) return deal;
    const key: LedgerKey = { accountId: this.account.id, targetSide: "fourdegrees", sourceRecord: `highlevel:${oppId}`, changeHash: "link" };
    await beginWrite(this.db, key, "link", this.deps.now());
    // `expectedVersion` from the deal in hand spares the connector a re-read; if the deal changed
    // since, the refs are recomputed on the current deal (its other refs kept).
    const withRef = (d: Deal) => [...d.externalRefs.filter((r) => r.system !== "highlevel"), { system: "highlevel", id: oppId }];
    const updated = await this.deps.fourdegrees.updateDeal(
      deal.id,
      { externalRefs: withRef(deal) },
      { idempotencyKey: ledgerIdempotencyKey(key), ...(deal.version ? { expectedVersion: deal.version } : {}), onConflict: (current) => ({ externalRefs: withRef(current) }) },
    );
    await completeWrite(this.db, key, deal.id, this.deps.now());
    return updated;
  }

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
   * older values look like HighLevel changes and overwrite those edits: chaos seed 20's stale value.)
   * When the opportunity changed since, the created content is unknown: `null`, every difference
   * is a conflict resolved by the account's policy.
   */
  async findOpportunityFor(deal: Deal, canonical: Canonical, locationId: string, backfill: boolean): Promise<{ kind: "found"; opp: Opportunity; base: Flat | null } | { kind: "ambiguous"; candidates: Opportunity[] } | { kind: "gone"; oppId: string } | null> {
    const fdId = deal.id ?? "";
    const hl = this.deps.highlevel(locationId);
    const prior = await getWrite(this.db, { accountId: this.account.id, targetSide: "highlevel", sourceRecord: `fourdegrees:${fdId}`, changeHash: "create" });
    if (prior?.targetId) {
      const opp = await hl.getOpportunity(prior.targetId);
      if (opp) return { kind: "found", opp, base: await this.#asCreatedOpp(opp, locationId) };
    }
    let goneRef: string | null = null;
    for (const ref of deal.externalRefs) {
      if (ref.system !== "highlevel") continue;
      const other = await findLink(this.db, this.account.id, "highlevel", ref.id);
      if (other && other.fdDealId !== fdId) continue;
      const opp = await hl.getOpportunity(ref.id);
      if (opp) return { kind: "found", opp, base: null };
      // The opportunity this account paired the deal with (it created the deal from it, or saw it
      // deleted) is gone — the re-read confirms it. A reference from elsewhere (another tool, an
      // earlier installation) is no evidence of a pair and is left alone.
      const ours =
        (await getWrite(this.db, { accountId: this.account.id, targetSide: "fourdegrees", sourceRecord: `highlevel:${ref.id}`, changeHash: "create" })) !== null ||
        (await hasTombstone(this.db, this.account.id, "highlevel", ref.id));
      if (ours) goneRef ??= ref.id;
    }
    if (prior && !prior.targetId && !this.mapping.externalIdFieldId) {
      const unfinished = await this.#findUnfinishedCreate(prior, locationId);
      if (unfinished) return unfinished;
    }
    const pair = this.mapping.pipelines.find((p) => p.fourdegreesPipelineId === canonical.pipeline);
    if (!pair || (!this.mapping.externalIdFieldId && !backfill)) return goneRef ? { kind: "gone", oppId: goneRef } : null;
    const sameName: Opportunity[] = [];
    let cursor: string | null = null;
    // After a create that began (ledger row) but never completed, the deal may have been renamed
    // since: search the whole pipeline for the external id, not only the current name.
    const renamedSince = prior !== null;
    for (let page = 0; page < 10; page++) {
      const res = await hl.searchOpportunities({ pipelineId: pair.highlevelPipelineId, ...(renamedSince ? {} : { query: canonical.name }), cursor, limit: 100 });
      const hit = res.items.find((o) => externalIdOf(o, this.mapping) === fdId);
      if (hit) {
        const opp = (await hl.getOpportunity(hit.id)) ?? hit;
        return { kind: "found", opp, base: await this.#asCreatedOpp(opp, locationId) };
      }
      sameName.push(...res.items.filter((o) => (o.name ?? "").trim() === canonical.name.trim()));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    if (goneRef) return { kind: "gone", oppId: goneRef };
    if (!backfill) return null;
    const candidates: Opportunity[] = [];
    for (const o of sameName) {
      if (externalIdOf(o, this.mapping)) continue; // carries another deal's id
      if (await findLink(this.db, this.account.id, "highlevel", o.id)) continue;
      if (canonical.contact && (o.contact?.email ?? "").toLowerCase() !== canonical.contact) continue;
      candidates.push(o);
    }
    if (candidates.length === 1 && candidates[0]) return { kind: "found", opp: (await hl.getOpportunity(candidates[0].id)) ?? candidates[0], base: null };
    if (candidates.length > 1) return { kind: "ambiguous", candidates };
    return null;
  }

  /**
   * With no external-id field to search by, the opportunity a create that began but never completed
   * may have made: in the request's pipeline, for its contact, with its name, created since the create
   * began and linked to no deal. One → found; several → ambiguous (review); none → the create never
   * happened.
   */
  async #findUnfinishedCreate(
    prior: LedgerEntry,
    locationId: string,
  ): Promise<
    { kind: "found"; opp: Opportunity; base: Flat | null } | { kind: "ambiguous"; candidates: Opportunity[] } | null
  > {
    const request = UnfinishedCreateSchema.safeParse(prior.request);
    if (!request.success) return null;
    const { pipelineId, contactId, name } = request.data;
    const hl = this.deps.highlevel(locationId);
    const candidates: Opportunity[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res = await hl.searchOpportunities({ pipelineId, contactId, cursor, limit: 100 });
      for (const o of res.items) {
        if ((o.name ?? "").trim() !== name.trim() || (o.contactId ?? null) !== contactId) continue;
        if (o.createdAt && Date.parse(o.createdAt) < prior.createdAt - CREATE_CLOCK_SKEW_MS) continue;
        if (await findLink(this.db, this.account.id, "highlevel", o.id)) continue;
        candidates.push(o);
      }
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    const [only] = candidates;
    if (candidates.length === 1 && only) {
      const opp = (await hl.getOpportunity(only.id)) ?? only;
      // The create did happen: the ledger now says so, so no later attempt searches again.
      await completeWrite(this.db, prior, opp.id, this.deps.now());
      return { kind: "found", opp, base: await this.#asCreatedOpp(opp, locationId) };
    }
    return candidates.length > 1 ? { kind: "ambiguous", candidates } : null;
  }

  /**
   * The canonical content of an opportunity this engine created, when it is still as created
   * (`updatedAt` = `createdAt`); `null` when it changed since (or cannot be translated).
   */
  async #asCreatedOpp(opp: Opportunity, locationId: string): Promise<Flat | null> {
    if (!opp.createdAt || opp.updatedAt !== opp.createdAt) return null;
    const t = await this.#translateOpp(opp, locationId);
    return t.ok ? flatten(t.canonical) : null;
  }

  /** The canonical content of a deal this engine created, when it is still as created (`updatedAt` = `createdAt`); else `null`. */
  async #asCreatedDeal(deal: Deal): Promise<Flat | null> {
    if (!deal.createdAt || deal.updatedAt !== deal.createdAt) return null;
    const t = await this.#translateDeal(deal);
    return t.ok ? flatten(t.canonical) : null;
  }

  /** Links an existing pair (found, not created) and merges it; `base` as the merge base. */
  async #linkAndSync(deal: Deal, opp: Opportunity, locationId: string, base: Flat | null): Promise<JobResult> {
    const fdId = deal.id ?? "";
    const other = await findLink(this.db, this.account.id, "highlevel", opp.id);
    if (other && other.fdDealId !== fdId) return this.#review("fourdegrees", fdId, `HighLevel opportunity ${opp.id} is already linked to 4Degrees deal ${other.fdDealId}`, { opportunityId: opp.id }, { fdId, hlId: opp.id });
    const link: Link = {
      accountId: this.account.id,
      fdDealId: fdId,
      hlOpportunityId: opp.id,
      hlLocationId: locationId,
      hlContactId: opp.contactId ?? null,
      state: "active",
      base: base ?? {},
      fdUpdatedAt: null,
      fdVersion: null,
      hlUpdatedAt: null,
      syncedAt: this.deps.now(),
      deletedSide: null,
    };
    await saveLink(this.db, link, this.deps.now());
    const res = await this.#syncLinked(link, deal, opp, locationId, { base });
    if (!deal.externalRefs.some((r) => r.system === "highlevel" && r.id === opp.id) && !this.account.testMode) {
      const fresh = await this.deps.fourdegrees.getDeal(fdId);
      if (fresh) {
        const linked = await this.#writeExternalRef(fresh, opp.id);
        const saved = await findLink(this.db, this.account.id, "fourdegrees", fdId);
        if (saved) await saveLink(this.db, { ...saved, fdUpdatedAt: linked.updatedAt, fdVersion: linked.version }, this.deps.now());
        res.writes.push({ side: "fourdegrees", op: "link", id: fdId });
      }
    }
    res.detail = { ...res.detail, linked: "existing pair found" };
    return res;
  }

  /** A HighLevel opportunity with no link: find its deal or create one. */
  async fromHighLevel(opp: Opportunity, locationId: string): Promise<JobResult> {
    const t = await this.#translateOpp(opp, locationId);
    if (!t.ok) return this.#review("highlevel", opp.id, t.reason, t.detail, { fdId: null, hlId: opp.id });
    // The 4Degrees id in the external-id field, else a completed ledger create.
    const claimed = externalIdOf(opp, this.mapping);
    const prior = await getWrite(this.db, { accountId: this.account.id, targetSide: "fourdegrees", sourceRecord: `highlevel:${opp.id}`, changeHash: "create" });
    for (const candidate of [claimed, prior?.targetId ?? null]) {
      if (!candidate) continue;
      const tombstoned = await hasTombstone(this.db, this.account.id, "fourdegrees", candidate);
      const deal = tombstoned ? null : await this.deps.fourdegrees.getDeal(candidate);
      // Ours (created from this opportunity): the merge base is the deal as created, if still so.
      const ours = candidate === prior?.targetId || deal?.externalRefs.some((r) => r.system === "highlevel" && r.id === opp.id) === true;
      if (deal && !deal.archivedAt) return this.#linkAndSync(deal, opp, locationId, ours ? await this.#asCreatedDeal(deal) : null);
      // The deal this opportunity stands for (its external-id field, or our create) was deleted —
      // confirmed by a re-read now or when it was tombstoned — before their link was saved (e.g. a
      // crash after the create, then the user archived the deal): the pair's delete, per the
      // account's policy. Never a new deal resurrecting it, never an opportunity left behind.
      const existing = await findLink(this.db, this.account.id, "fourdegrees", candidate);
      if (existing && existing.hlOpportunityId !== opp.id) return { ...blank(candidate, opp.id), outcome: "skipped", reason: `the 4Degrees deal ${candidate} it was linked to is deleted` };
      const link: Link = { accountId: this.account.id, fdDealId: candidate, hlOpportunityId: opp.id, hlLocationId: locationId, hlContactId: opp.contactId ?? null, state: "active", base: {}, fdUpdatedAt: null, fdVersion: null, hlUpdatedAt: null, syncedAt: this.deps.now(), deletedSide: null };
      if (!this.account.testMode) await saveLink(this.db, link, this.deps.now());
      return this.#applyDelete(link, "fourdegrees");
    }
    if (this.account.testMode) return { ...blank(null, opp.id), outcome: "test_mode", direction: "to_fourdegrees", writes: [{ side: "fourdegrees", op: "create", id: null }], detail: { create: t.canonical } };
    const key: LedgerKey = { accountId: this.account.id, targetSide: "fourdegrees", sourceRecord: `highlevel:${opp.id}`, changeHash: "create" };
    const build = toDealContent(t.canonical, this.mapping, { ...(await this.lookups.fourdegrees()), hlOpportunityId: opp.id });
    const begun = await beginWrite(this.db, key, "create", this.deps.now(), build.body);
    // The ledger key is the Idempotency-Key: a retry after a crash replays the first create — if it
    // sends the first request unchanged (4Degrees answers 422 to a reused key with another body), so
    // a retry re-sends the recorded request even when the opportunity changed since.
    const first = begun.fresh ? null : DealContentSchema.safeParse(begun.entry.request);
    const deal = await this.deps.fourdegrees.createDeal(first?.success ? first.data : build.body, { idempotencyKey: ledgerIdempotencyKey(key) });
    await this.deps.hooks?.afterCreate?.("fourdegrees", deal.id ?? "");
    await completeWrite(this.db, key, deal.id, this.deps.now());
    const writes: JobResult["writes"] = [{ side: "fourdegrees", op: "create", id: deal.id }];
    let hlAfter = opp;
    if (this.mapping.externalIdFieldId && deal.id && (await this.highLevelWritable(locationId))) {
      hlAfter = await this.deps.highlevel(locationId).updateOpportunity(opp.id, { customFields: [{ id: this.mapping.externalIdFieldId, field_value: deal.id }] });
      writes.push({ side: "highlevel", op: "link", id: opp.id });
    }
    if (!begun.fresh && deal.id) {
      // An earlier attempt began this create: the answer may be the replay of its create (the
      // Idempotency-Key), i.e. the deal as created then, while the opportunity may have changed
      // since. Merge the current records with the deal as created as the base, so those changes
      // flow to 4Degrees instead of the replayed content being taken for the pair's state.
      const created = await this.#translateDeal(deal);
      const current = await this.deps.fourdegrees.getDeal(deal.id);
      if (created.ok && current && !current.archivedAt) {
        const res = await this.#linkAndSync(current, hlAfter, locationId, flatten(created.canonical));
        res.writes.unshift(...writes);
        res.direction = directionOf(res.writes);
        if (res.outcome === "noop") res.outcome = "ok";
        return res;
      }
    }
    const base = flatten(t.canonical);
    for (const s of build.skipped) base[s.field] = null;
    await saveLink(this.db, { accountId: this.account.id, fdDealId: deal.id ?? "", hlOpportunityId: opp.id, hlLocationId: locationId, hlContactId: opp.contactId ?? null, base, fdUpdatedAt: deal.updatedAt, fdVersion: deal.version, hlUpdatedAt: hlAfter.updatedAt ?? null }, this.deps.now());
    await resolveReview(this.db, this.account.id, "highlevel", opp.id);
    const change: PairChange = { source: "highlevel", changeId: "create", name: t.canonical.name, fdId: deal.id, hlId: opp.id, before: null, after: base };
    return { ...blank(deal.id, opp.id), outcome: "ok", direction: "to_fourdegrees", writes, change };
  }

  // ───────────────────────────── deletes ─────────────────────────────

  /**
   * Applies a delete confirmed by a re-read (404, or a 4Degrees archive) per the account's policy:
   * `propagate` deletes (HighLevel) / archives (4Degrees) the other side, `archive` closes the
   * HighLevel opportunity as lost / archives the 4Degrees deal, `ignore` only unlinks. The pair
   * becomes a tombstone either way, so a stray update after the delete does not resurrect it.
   */
  async #applyDelete(link: Link, gone: SideName): Promise<JobResult> {
    const ids = { fdId: link.fdDealId, hlId: link.hlOpportunityId };
    const out: JobResult = { ...blank(ids.fdId, ids.hlId), outcome: "deleted" };
    const policy = this.account.deletePolicy;
    const otherWritable = gone === "fourdegrees" ? await this.highLevelWritable(link.hlLocationId) : true;
    const writes: JobResult["writes"] = [];
    if (policy !== "ignore" && otherWritable) {
      if (gone === "fourdegrees") writes.push(policy === "propagate" ? { side: "highlevel", op: "delete", id: link.hlOpportunityId } : { side: "highlevel", op: "close_lost", id: link.hlOpportunityId });
      else writes.push({ side: "fourdegrees", op: "archive", id: link.fdDealId });
    }
    if (this.account.testMode) return { ...out, outcome: "test_mode", writes, direction: directionOf(writes), detail: { deleted: gone, policy } };
    for (const w of writes) {
      const key: LedgerKey = { accountId: this.account.id, targetSide: w.side, sourceRecord: `${gone}:${gone === "fourdegrees" ? link.fdDealId : link.hlOpportunityId}`, changeHash: `delete:${w.op}` };
      const begun = await beginWrite(this.db, key, w.op, this.deps.now());
      if (begun.entry.state === "done") continue;
      if (w.op === "delete") await this.deps.highlevel(link.hlLocationId).deleteOpportunity(link.hlOpportunityId);
      else if (w.op === "close_lost") await this.deps.highlevel(link.hlLocationId).updateOpportunity(link.hlOpportunityId, { status: "lost" });
      else await this.deps.fourdegrees.archiveDeal(link.fdDealId, { idempotencyKey: ledgerIdempotencyKey(key) });
      await completeWrite(this.db, key, w.id, this.deps.now());
    }
    const now = this.deps.now();
    await addTombstone(this.db, this.account.id, gone, gone === "fourdegrees" ? link.fdDealId : link.hlOpportunityId, now);
    if (writes.some((w) => w.op === "delete" || w.op === "archive")) await addTombstone(this.db, this.account.id, gone === "fourdegrees" ? "highlevel" : "fourdegrees", gone === "fourdegrees" ? link.hlOpportunityId : link.fdDealId, now);
    await markLinkDeleted(this.db, this.account.id, link.fdDealId, gone, now);
    await recordEvent(this.db, { accountId: this.account.id, kind: "delete", direction: directionOf(writes), fdId: ids.fdId, hlId: ids.hlId, outcome: policy, detail: { deleted: gone, policy, writes } });
    return { ...out, writes, direction: directionOf(writes), detail: { deleted: gone, policy } };
  }

  // ───────────────────────────── notes ─────────────────────────────

  /**
   * Syncs the notes of one pair (by 4Degrees deal id, or every pair of a HighLevel contact).
   * HighLevel notes live on the opportunity's contact; a contact shared by several linked
   * opportunities cannot say which deal an untagged note belongs to, so those are left alone.
   */
  async syncNotes(side: SideName, recordId: string): Promise<JobResult> {
    if (side === "fourdegrees") {
      const link = await findLink(this.db, this.account.id, "fourdegrees", recordId);
      if (!link || link.state !== "active" || !link.hlContactId) return { ...blank(recordId, null), outcome: "skipped", reason: "the deal has no active link with a HighLevel contact yet" };
      const shared = (await linksForContact(this.db, this.account.id, link.hlContactId)).length > 1;
      return this.#syncNotesOf(link, shared);
    }
    const links = await linksForContact(this.db, this.account.id, recordId);
    if (links.length === 0) return { ...blank(null, null), outcome: "skipped", reason: `no active link uses HighLevel contact ${recordId}` };
    const total: JobResult = { ...blank(links[0]?.fdDealId ?? null, links[0]?.hlOpportunityId ?? null) };
    for (const link of links) {
      const r = await this.#syncNotesOf(link, links.length > 1);
      total.writes.push(...r.writes);
      if (r.outcome === "test_mode") total.outcome = "test_mode";
    }
    if (total.outcome !== "test_mode") total.outcome = total.writes.length > 0 ? "ok" : "noop";
    total.direction = directionOf(total.writes);
    return total;
  }

  /**
   * Whether the notes of a linked 4Degrees deal differ from what was last synced — a note on one
   * side that is not on the other, an edit, a delete, or note-link bookkeeping a job would do.
   * Runs the notes sync in plan-only mode (two list calls, no writes): what reconcile uses to
   * catch a note whose webhook was lost, marking the pair's notes dirty only when it differs (so
   * a converged account stays quiet).
   */
  async notesDiffer(fdDealId: string): Promise<boolean> {
    const link = await findLink(this.db, this.account.id, "fourdegrees", fdDealId);
    if (!link || link.state !== "active" || !link.hlContactId || this.mapping.notes === "off") return false;
    const shared = (await linksForContact(this.db, this.account.id, link.hlContactId)).length > 1;
    const planned = await this.#syncNotesOf(link, shared, { plan: true });
    return planned.writes.length > 0 || (planned.detail?.["bookkeeping"] ?? 0) !== 0;
  }

  async #syncNotesOf(link: Link, sharedContact: boolean, options: { plan?: boolean } = {}): Promise<JobResult> {
    const contactId = link.hlContactId ?? "";
    const hl = this.deps.highlevel(link.hlLocationId);
    const writable = this.mapping.notes !== "off" && (await this.highLevelWritable(link.hlLocationId));
    const toHl = writable && (this.mapping.notes === "both" || this.mapping.notes === "to_highlevel");
    const toFd = this.mapping.notes === "both" || this.mapping.notes === "to_fourdegrees";
    const deletes = this.account.deletePolicy !== "ignore";
    const [fdNotes, hlNotes, links] = await Promise.all([this.deps.fourdegrees.listNotes(link.fdDealId), hl.listNotes(contactId), noteLinksForDeal(this.db, this.account.id, link.fdDealId)]);
    const out: JobResult = { ...blank(link.fdDealId, link.hlOpportunityId) };
    // Test mode and plan-only runs compute every write and make none.
    const test = this.account.testMode || options.plan === true;
    /** Note-link changes (saves, deletes, hash refreshes) this run made or, when `test`, would make. */
    let bookkeeping = 0;
    const now = () => this.deps.now();
    const byFd = new Map(fdNotes.map((n) => [n.id, n]));
    const byHl = new Map(hlNotes.map((n) => [n.id, n]));
    const linkedFd = new Set(links.map((l) => l.fdNoteId));
    const linkedHl = new Set(links.map((l) => l.hlNoteId));
    // Notes linked to other deals of a shared contact are not ours to judge.
    if (sharedContact) {
      const others = await this.#noteIdsOfOtherPairs(contactId, link.fdDealId);
      for (const id of others) byHl.delete(id);
    }

    for (const nl of links) {
      const f = byFd.get(nl.fdNoteId);
      const h = byHl.get(nl.hlNoteId);
      if (!f && !h) {
        bookkeeping++;
        if (!test) await deleteNoteLink(this.db, this.account.id, nl.fdNoteId);
        continue;
      }
      if (!f || !h) {
        // Deleted on one side (the listing is the confirming re-read).
        if (deletes && ((!f && toHl) || (!h && toFd))) {
          out.writes.push(!f ? { side: "highlevel", op: "delete_note", id: nl.hlNoteId } : { side: "fourdegrees", op: "delete_note", id: nl.fdNoteId });
          if (!test) {
            if (!f) await hl.deleteNote(contactId, nl.hlNoteId);
            else await this.deps.fourdegrees.deleteNote(nl.fdNoteId, { idempotencyKey: `sync:${this.account.id}:note-delete:${nl.fdNoteId}` });
          }
        }
        bookkeeping++;
        if (!test) await deleteNoteLink(this.db, this.account.id, nl.fdNoteId);
        continue;
      }
      const fBody = stripOrigin(f.body).text;
      const hBody = stripOrigin(h.body).text;
      const fh = await sha256(fBody);
      const hh = await sha256(hBody);
      if (fh === hh) {
        if (fh !== nl.bodyHash) bookkeeping++;
        if (fh !== nl.bodyHash && !test) await saveNoteLink(this.db, { ...nl, bodyHash: fh }, now());
        continue;
      }
      const fdChanged = fh !== nl.bodyHash;
      const hlChanged = hh !== nl.bodyHash;
      let winner: SideName | null = fdChanged && !hlChanged ? "fourdegrees" : hlChanged && !fdChanged ? "highlevel" : null;
      if (winner === null) {
        const policy = this.account.conflictPolicy;
        winner = policy === "newest" ? (Date.parse(f.updatedAt ?? f.createdAt ?? "") >= Date.parse(h.dateAdded ?? "") ? "fourdegrees" : "highlevel") : policy;
        if (!options.plan) await recordEvent(this.db, { accountId: this.account.id, kind: "conflict", direction: winner === "fourdegrees" ? "to_highlevel" : "to_fourdegrees", fdId: link.fdDealId, hlId: link.hlOpportunityId, outcome: `${winner}_wins`, detail: { field: "note", fdNoteId: f.id, hlNoteId: h.id, policy } });
      }
      if (winner === "fourdegrees" && toHl) {
        out.writes.push({ side: "highlevel", op: "update_note", id: h.id });
        if (!test) await hl.updateNote(contactId, h.id, tagOrigin(fBody, "fourdegrees", f.id));
        if (!test) await saveNoteLink(this.db, { ...nl, bodyHash: fh }, now());
      } else if (winner === "highlevel" && toFd) {
        out.writes.push({ side: "fourdegrees", op: "update_note", id: f.id });
        if (!test) await this.deps.fourdegrees.updateNote(f.id, tagOrigin(hBody, "highlevel", h.id), { idempotencyKey: `sync:${this.account.id}:note:${f.id}:${hh}` });
        if (!test) await saveNoteLink(this.db, { ...nl, bodyHash: hh }, now());
      }
    }

    // Unlinked 4Degrees notes: ours (tagged) → link; theirs → copy to HighLevel.
    for (const f of fdNotes) {
      if (linkedFd.has(f.id)) continue;
      const { text, origin } = stripOrigin(f.body);
      if (origin?.side === "highlevel") {
        if (byHl.has(origin.id)) bookkeeping++;
        if (!test && byHl.has(origin.id)) await saveNoteLink(this.db, { accountId: this.account.id, fdNoteId: f.id, hlNoteId: origin.id, fdDealId: link.fdDealId, hlContactId: contactId, origin: "highlevel", bodyHash: await sha256(text) }, now());
        continue;
      }
      const tagged = hlNotes.find((h) => stripOrigin(h.body).origin?.id === f.id);
      if (tagged) {
        bookkeeping++;
        if (!test) await saveNoteLink(this.db, { accountId: this.account.id, fdNoteId: f.id, hlNoteId: tagged.id, fdDealId: link.fdDealId, hlContactId: contactId, origin: "fourdegrees", bodyHash: await sha256(text) }, now());
        continue;
      }
      if (!toHl) continue;
      out.writes.push({ side: "highlevel", op: "create_note", id: null });
      if (test) continue;
      const key: LedgerKey = { accountId: this.account.id, targetSide: "highlevel", sourceRecord: `fourdegrees:note:${f.id}`, changeHash: "create" };
      const begun = await beginWrite(this.db, key, "create_note", now());
      let hlNoteId = begun.entry.state === "done" ? begun.entry.targetId : null;
      if (!hlNoteId) {
        const created = await hl.createNote(contactId, tagOrigin(text, "fourdegrees", f.id));
        await this.deps.hooks?.afterCreate?.("highlevel", created.id);
        hlNoteId = created.id;
        await completeWrite(this.db, key, hlNoteId, now());
      }
      await saveNoteLink(this.db, { accountId: this.account.id, fdNoteId: f.id, hlNoteId, fdDealId: link.fdDealId, hlContactId: contactId, origin: "fourdegrees", bodyHash: await sha256(text) }, now());
    }

    // Unlinked HighLevel notes: ours (tagged) → link above; theirs → copy to 4Degrees (not on a shared contact).
    for (const h of byHl.values()) {
      if (linkedHl.has(h.id)) continue;
      const { text, origin } = stripOrigin(h.body);
      if (origin) continue; // a copy of a 4Degrees note: linked (or about to be) by the loop above
      if (fdNotes.some((f) => stripOrigin(f.body).origin?.id === h.id)) continue;
      if (sharedContact || !toFd) continue;
      out.writes.push({ side: "fourdegrees", op: "create_note", id: null });
      if (test) continue;
      const key: LedgerKey = { accountId: this.account.id, targetSide: "fourdegrees", sourceRecord: `highlevel:note:${h.id}`, changeHash: "create" };
      const begun = await beginWrite(this.db, key, "create_note", now(), tagOrigin(text, "highlevel", h.id));
      // A retry re-sends the first attempt's body with the same key (a replay needs the identical
      // request); the link's hash is then that body's, so an edit made since syncs as an update.
      const body = !begun.fresh && typeof begun.entry.request === "string" ? begun.entry.request : tagOrigin(text, "highlevel", h.id);
      const created: Note = await this.deps.fourdegrees.createNote(link.fdDealId, body, { idempotencyKey: ledgerIdempotencyKey(key) });
      await this.deps.hooks?.afterCreate?.("fourdegrees", created.id);
      await completeWrite(this.db, key, created.id, now());
      await saveNoteLink(this.db, { accountId: this.account.id, fdNoteId: created.id, hlNoteId: h.id, fdDealId: link.fdDealId, hlContactId: contactId, origin: "highlevel", bodyHash: await sha256(stripOrigin(body).text) }, now());
    }
    out.outcome = test ? (out.writes.length ? "test_mode" : "noop") : out.writes.length ? "ok" : "noop";
    if (bookkeeping > 0) out.detail = { ...out.detail, bookkeeping };
    out.direction = directionOf(out.writes);
    if (out.writes.length > 0 && !test) await recordEvent(this.db, { accountId: this.account.id, kind: "note", direction: out.direction, fdId: link.fdDealId, hlId: link.hlOpportunityId, outcome: "ok", detail: { writes: out.writes } });
    return out;
  }

  async #noteIdsOfOtherPairs(contactId: string, fdDealId: string): Promise<string[]> {
    const ids: string[] = [];
    for (const other of await linksForContact(this.db, this.account.id, contactId)) {
      if (other.fdDealId === fdDealId) continue;
      for (const nl of await noteLinksForDeal(this.db, this.account.id, other.fdDealId)) ids.push(nl.hlNoteId);
    }
    return ids;
  }
}

const ORIGIN = /\n\n— synced from (4Degrees|HighLevel) note ([A-Za-z0-9_\-:.]+)$/;

/** Appends the origin marker (a footer naming the source note) so a copy never bounces back. */
export function tagOrigin(text: string, origin: SideName, id: string): string {
  return `${text}\n\n— synced from ${origin === "fourdegrees" ? "4Degrees" : "HighLevel"} note ${id}`;
}

/** Splits a note body into its text and the origin marker, if any. */
export function stripOrigin(body: string): { text: string; origin: { side: SideName; id: string } | null } {
  const m = ORIGIN.exec(body);
  if (!m) return { text: body, origin: null };
  return { text: body.slice(0, m.index), origin: { side: m[1] === "4Degrees" ? "fourdegrees" : "highlevel", id: m[2] ?? "" } };
}

export type { HlNote };
