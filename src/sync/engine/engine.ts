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
import { sha256 } from "../../lib/hash.ts";
import type { Account } from "../../store/accounts.ts";
import { ledgerIdempotencyKey, type LedgerKey } from "../../store/ledger.ts";
import {
  addTombstone,
  findLink,
  hasTombstone,
  saveLink,
  type Link,
  type RecordExpectedEcho,
  type SideName,
} from "../../store/links.ts";
import { addReview, recordEvent, resolveReview } from "../../store/sync-events.ts";
import { fromFourDegrees, fromHighLevel } from "./creates.ts";
import { applyDelete } from "./deletes.ts";
import { expectedEchoOf, isOurOwnWrite } from "./echo.ts";
import { filterGate } from "./filter.ts";
import type { HlNote, Opportunity } from "../../highlevel/port.ts";
import {
  flatten,
  fromDeal,
  fromOpportunity,
  toDealPatch,
  toOpportunityUpdate,
  unflatten,
  type Canonical,
  type Translation,
} from "./mapping.ts";
import type { Mapping } from "../../domain/mapping-config.ts";
import { merge, sameFlat, type MergeResult, type Side } from "./merge.ts";
import { LookupCache } from "./lookups.ts";
import {
  addExtras,
  addOppExtras,
  fdExtrasPatch,
  hlExtrasPlan,
  pairIsLost,
  teamSkipped,
  type ExtrasContext,
} from "./extras.ts";
import { nothingToWrite, writeOpportunity } from "./hl-write.ts";
import { notesDiffer, syncNotes } from "./notes.ts";
import { pairChangeOf, staleRead, unchangedSinceSync } from "./pair-checks.ts";
import { blank, directionOfWrites, type EngineDeps, type JobResult } from "./types.ts";
import type { Deal, Flat } from "../../domain/port.ts";

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
    return (
      link?.hlLocationId ?? hint ?? (this.account.locations.length === 1 ? (this.account.locations[0] ?? null) : null)
    );
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
  async syncDeal(
    side: SideName,
    recordId: string,
    locationHint?: string | null,
    options: { sourceFirst?: boolean } = {},
  ): Promise<JobResult> {
    const fdIdHint = side === "fourdegrees" ? recordId : null;
    const hlIdHint = side === "highlevel" ? recordId : null;
    if (await hasTombstone(this.db, this.account.id, side, recordId))
      return { ...blank(fdIdHint, hlIdHint), outcome: "skipped", reason: "tombstoned: the record was deleted" };
    const link = await findLink(this.db, this.account.id, side, recordId);
    if (link?.state === "deleted")
      return {
        ...blank(link.fdDealId, link.hlOpportunityId),
        outcome: "skipped",
        reason: `the pair was deleted on ${link.deletedSide ?? "one side"}; a late event does not resurrect it`,
      };
    const locationId = this.#locationFor(link, locationHint);
    if (!locationId)
      return {
        ...blank(fdIdHint, hlIdHint),
        outcome: "skipped",
        reason: "no HighLevel location is known for this record",
      };
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
        if (deal && !deal.archivedAt && link.fdVersion !== null && deal.version === link.fdVersion)
          return this.#echo(link, deal);
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
      if (dealGone) return applyDelete(this, link, "fourdegrees");
      if (oppGone) return applyDelete(this, link, "highlevel");
      if (!deal || !opp) return { ...blank(fdId, hlId), outcome: "skipped", reason: "linked record missing" };
      const outside = await this.#outsideFilter(deal, opp, locationId);
      if (outside) return outside;
      return this.syncLinked(link, deal, opp, locationId);
    }
    if (side === "fourdegrees") {
      if (!deal || dealGone) {
        await addTombstone(this.db, this.account.id, "fourdegrees", recordId, this.deps.now());
        return {
          ...blank(recordId, null),
          outcome: "skipped",
          reason: "the deal is gone (confirmed by re-read) and was never linked",
        };
      }
      return this.fromFourDegrees(deal, locationId);
    }
    if (!opp) {
      await addTombstone(this.db, this.account.id, "highlevel", recordId, this.deps.now());
      return {
        ...blank(null, recordId),
        outcome: "skipped",
        reason: "the opportunity is gone (confirmed by re-read) and was never linked",
      };
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
  async #answerIsOurs(answer: Opportunity, locationId: string, expected: Flat, x: ExtrasContext): Promise<boolean> {
    const t = await this.translateOpp(answer, locationId);
    if (!t.ok) return false;
    const flat = flatten(t.canonical);
    addOppExtras(this.mapping, answer, flat, x, "team" in expected);
    return sameFlat(flat, expected);
  }

  /** The event's side is exactly as last synced: nothing to do (see `syncDeal`'s `sourceFirst`). */
  #echo(link: Link, deal: Deal | null): JobResult {
    const reason = isOurOwnWrite(deal, this.deps.ourActor)
      ? "last 4Degrees change was our own write"
      : "no change since the last sync";
    return { ...blank(link.fdDealId, link.hlOpportunityId), outcome: "echo", reason };
  }

  /** A deal in canonical form, or why it cannot be translated. */
  async translateDeal(deal: Deal): Promise<Translation> {
    return fromDeal(deal, this.mapping, await this.lookups.ensureFourDegrees(deal));
  }

  /** An opportunity in canonical form, or why it cannot be translated. */
  async translateOpp(opp: Opportunity, locationId: string): Promise<Translation> {
    return fromOpportunity(opp, locationId, this.mapping, await this.lookups.ensureHighLevel(opp, locationId));
  }

  /** A linked pair outside its pipeline pair's filter: skipped, link kept (filter.ts); null when it syncs. */
  async #outsideFilter(deal: Deal, opp: Opportunity, locationId: string): Promise<JobResult | null> {
    if (!this.mapping.pipelines.some((p) => p.filter)) return null;
    const canonical = [await this.translateDeal(deal), await this.translateOpp(opp, locationId)].flatMap((t) =>
      t.ok ? [t.canonical] : [],
    );
    return filterGate(this, { deal, opp, canonical }, { fdId: deal.id, hlId: opp.id }, true);
  }

  /** Puts a record on the review list with an alert event. */
  async review(
    side: SideName,
    recordId: string,
    reason: string,
    detail: Record<string, unknown>,
    ids: { fdId: string | null; hlId: string | null },
  ): Promise<JobResult> {
    const isNew = await addReview(
      this.db,
      { accountId: this.account.id, side, recordId, reason, detail },
      this.deps.now(),
    );
    if (isNew)
      await recordEvent(this.db, {
        accountId: this.account.id,
        kind: "alert",
        direction: null,
        fdId: ids.fdId,
        hlId: ids.hlId,
        outcome: "review",
        detail: { reason, ...detail },
      });
    return { ...blank(ids.fdId, ids.hlId), outcome: "review", reason };
  }

  /**
   * Merges a linked pair and writes each side at most once: refuse a stale read, stop on an echo,
   * translate, merge against the base, then write HighLevel, write 4Degrees, save the link and
   * report the change. `options.base` replaces the link's base (a pair just found or created).
   */
  async syncLinked(
    link: Link,
    deal: Deal,
    opp: Opportunity,
    locationId: string,
    options: { base?: Flat | null } = {},
  ): Promise<JobResult> {
    const ids = { fdId: link.fdDealId, hlId: link.hlOpportunityId };
    const stale = staleRead(link, deal, opp);
    if (stale) return { ...blank(ids.fdId, ids.hlId), outcome: "retry", reason: stale, retryAfterSeconds: 5 };
    // Echo: nothing changed on either side since our last sync (typically the webhook of our own write).
    if (options.base === undefined && unchangedSinceSync(link, deal, opp)) return this.#echo(link, deal);

    const base = options.base === undefined ? link.base : options.base;
    const flats = await this.#translatePair(link, deal, opp, locationId, base);
    if ("outcome" in flats) return flats;
    const writable = await this.highLevelWritable(locationId);
    const result = merge({
      base: flats.base,
      fourdegrees: flats.fd,
      highlevel: flats.hl,
      fourdegreesUpdatedAt: deal.updatedAt,
      highlevelUpdatedAt: opp.updatedAt ?? null,
      policy: this.account.conflictPolicy,
      mapping: this.mapping,
      readOnly: writable ? new Set() : new Set<Side>(["highlevel"]),
    });
    const out: JobResult = { ...blank(ids.fdId, ids.hlId), conflicts: result.conflicts };
    if (this.account.testMode) {
      // The change is still reported (automations record what they would do; notifications stay quiet).
      const planned = this.#plannedWrites(out, link, opp, flats, result);
      const change = await pairChangeOf(
        link,
        options.base === undefined ? link.base : null,
        result,
        deal.name,
        deal,
        opp,
      );
      if (change) planned.change = change;
      return planned;
    }

    const merged = unflatten(result.merged);
    const hlWrite = await this.#writeHighLevel(link, opp, locationId, flats, result, merged, out);
    const fdWrite = await this.#writeFourDegrees(link, deal, opp, result, merged, out, flats.extras);
    if (fdWrite.conflicted)
      return {
        ...out,
        outcome: "retry",
        reason: "4Degrees deal changed during the sync (version conflict)",
        retryAfterSeconds: 2,
      };
    await this.#saveSynced(link, locationId, result.merged, fdWrite.deal, hlWrite);
    // The base with the extras seeded (extras.ts): a pair synced before they existed is no "change".
    const change = await pairChangeOf(
      link,
      options.base === undefined ? flats.base : null,
      result,
      merged.name,
      deal,
      opp,
    );
    if (change) out.change = change;
    await this.#recordConflicts(link, result.conflicts);
    out.direction = directionOfWrites(out.writes);
    out.outcome = out.writes.length > 0 ? "ok" : "noop";
    const skipped = [...hlWrite.skipped, ...fdWrite.skipped, ...teamSkipped(this.mapping, deal, opp, flats.extras)];
    out.detail = {
      changed: { to_highlevel: [...result.toHighLevel], to_fourdegrees: [...result.toFourDegrees] },
      ...(skipped.length ? { skipped } : {}),
      ...(writable ? {} : { readOnly: "HighLevel is read-only for this account: syncing HighLevel → 4Degrees only" }),
    };
    return out;
  }

  /**
   * Both sides of a pair as flat canonical records with the lost reason and team (extras.ts) and the
   * merge base to use, or the review result of the side that cannot be translated.
   */
  async #translatePair(
    link: Link,
    deal: Deal,
    opp: Opportunity,
    locationId: string,
    base: Flat | null,
  ): Promise<TranslatedPair | JobResult> {
    const ids = { fdId: link.fdDealId, hlId: link.hlOpportunityId };
    const fdT = await this.translateDeal(deal);
    if (!fdT.ok) return this.review("fourdegrees", deal.id ?? link.fdDealId, fdT.reason, fdT.detail, ids);
    const hlT = await this.translateOpp(opp, locationId);
    if (!hlT.ok) return this.review("highlevel", opp.id, hlT.reason, hlT.detail, ids);
    const flats = { fd: flatten(fdT.canonical), hl: flatten(hlT.canonical) };
    const lost = pairIsLost(flats.fd, flats.hl, base);
    await this.lookups.ensureTeamUsers(deal, opp, locationId);
    const extras = await this.lookups.extras(locationId, lost, opp.lostReasonId);
    const merged = addExtras(this.mapping, deal, opp, flats, base, extras);
    return { ...flats, base: merged, extras };
  }

  /** Test mode: the writes the merge calls for, and the field diff, with nothing written. */
  #plannedWrites(
    out: JobResult,
    link: Link,
    opp: Opportunity,
    flats: { fd: Flat; hl: Flat },
    result: MergeResult,
  ): JobResult {
    if (result.toHighLevel.size > 0)
      out.writes.push({ side: "highlevel", op: "update", id: opp.id, fields: [...result.toHighLevel] });
    if (result.toFourDegrees.size > 0)
      out.writes.push({ side: "fourdegrees", op: "update", id: link.fdDealId, fields: [...result.toFourDegrees] });
    out.outcome = "test_mode";
    out.direction = directionOfWrites(out.writes);
    out.detail = { diff: this.#diff(result.toHighLevel, result.toFourDegrees, flats.fd, flats.hl, result.merged) };
    return out;
  }

  /**
   * Writes the merge's HighLevel changes (ledger-guarded) and says what the link records: the
   * `updatedAt` of the answer when the answer is exactly our read plus our write (then with the
   * expected echoes of that write), else of our read.
   */
  async #writeHighLevel(
    link: Link,
    opp: Opportunity,
    locationId: string,
    flats: TranslatedPair,
    result: MergeResult,
    merged: Canonical,
    out: JobResult,
  ): Promise<HighLevelWrite> {
    const hlFlat = flats.hl;
    const written: HighLevelWrite = {
      opp,
      hlUpdatedAt: opp.updatedAt ?? null,
      expectEcho: null,
      contactId: link.hlContactId ?? opp.contactId ?? null,
      skipped: [],
    };
    if (result.toHighLevel.size === 0) return written;
    const hl = this.deps.highlevel(locationId);
    if (result.toHighLevel.has("contact") && merged.contact)
      written.contactId = (await hl.ensureContact({ email: merged.contact, name: merged.name })).id;
    const users = await this.lookups.highlevel(locationId);
    const build = toOpportunityUpdate(result.toHighLevel, merged, this.mapping, {
      ...users,
      currentStageId: opp.pipelineStageId,
      ...(written.contactId ? { contactId: written.contactId } : {}),
    });
    written.skipped.push(...build.skipped);
    const plan = hlExtrasPlan(result.toHighLevel, result.merged, opp, this.mapping, flats.extras);
    written.skipped.push(...plan.skipped);
    const calls = { body: build.body, plan };
    if (nothingToWrite(calls)) return written;
    // No ledger row for an update: a retry re-reads the opportunity, and the merge against the
    // base writes only what is still missing (an update applied before a crash shows in the re-read).
    const writeStartedAt = this.deps.now();
    const applied = await writeOpportunity(hl, opp, calls);
    written.opp = applied.answer;
    const expected: Flat = { ...hlFlat };
    for (const k of result.toHighLevel) expected[k] = result.merged[k];
    // Several calls send several rounds of webhooks, each with its own payload: none is predicted.
    if (applied.calls === 1 && (await this.#answerIsOurs(written.opp, locationId, expected, flats.extras))) {
      written.hlUpdatedAt = written.opp.updatedAt ?? null;
      // The webhooks HighLevel sends for this write, acked without a read (see docs/sync.md#expected-echoes).
      written.expectEcho = {
        echo: expectedEchoOf(opp, written.opp, this.deps.now()),
        ifSyncedAt: link.syncedAt,
        unlessDirtySince: writeStartedAt,
      };
    }
    out.writes.push({ side: "highlevel", op: "update", id: opp.id, fields: [...result.toHighLevel] });
    return written;
  }

  /** Writes the merge's 4Degrees changes with the read's version: a deal changed since is `conflicted` (the job retries). */
  async #writeFourDegrees(
    link: Link,
    deal: Deal,
    opp: Opportunity,
    result: MergeResult,
    merged: Canonical,
    out: JobResult,
    extras: ExtrasContext,
  ): Promise<{ deal: Deal; conflicted: boolean; skipped: Array<{ field: string; reason: string }> }> {
    if (result.toFourDegrees.size === 0) return { deal, conflicted: false, skipped: [] };
    const build = toDealPatch(result.toFourDegrees, merged, this.mapping, await this.lookups.fourdegrees());
    const more = fdExtrasPatch(result.toFourDegrees, result.merged, deal, this.mapping, extras);
    Object.assign(build.body, more.patch);
    build.skipped.push(...more.skipped);
    if (Object.keys(build.body).length === 0) return { deal, conflicted: false, skipped: build.skipped };
    const key: LedgerKey = {
      accountId: this.account.id,
      targetSide: "fourdegrees",
      sourceRecord: `highlevel:${opp.id}`,
      changeHash: await sha256(JSON.stringify([build.body, deal.version])),
    };
    // The key is only the Idempotency-Key (it names the deal's version read): an update keeps no
    // ledger row, a retry after a crash re-reads the deal and sends only what is still missing.
    let conflicted = false;
    const newDeal = await this.deps.fourdegrees.updateDeal(link.fdDealId, build.body, {
      idempotencyKey: ledgerIdempotencyKey(key),
      ...(deal.version ? { expectedVersion: deal.version } : {}),
      // The deal changed after our read: do not overwrite blindly; the newer change re-runs this job.
      onConflict: () => {
        conflicted = true;
        return null;
      },
    });
    if (conflicted) return { deal: newDeal, conflicted, skipped: build.skipped };
    out.writes.push({ side: "fourdegrees", op: "update", id: link.fdDealId, fields: [...result.toFourDegrees] });
    return { deal: newDeal, conflicted, skipped: build.skipped };
  }

  /** Saves the pair as synced (the merged base and both sides' versions) and clears it from the review list. */
  async #saveSynced(link: Link, locationId: string, base: Flat, deal: Deal, hl: HighLevelWrite): Promise<void> {
    await saveLink(
      this.db,
      {
        accountId: this.account.id,
        fdDealId: link.fdDealId,
        hlOpportunityId: link.hlOpportunityId,
        hlLocationId: locationId,
        hlContactId: hl.opp.contactId ?? hl.contactId,
        base,
        fdUpdatedAt: deal.updatedAt,
        fdVersion: deal.version,
        hlUpdatedAt: hl.hlUpdatedAt,
        expectEcho: hl.expectEcho,
      },
      this.deps.now(),
    );
    await resolveReview(this.db, this.account.id, "fourdegrees", link.fdDealId);
    await resolveReview(this.db, this.account.id, "highlevel", link.hlOpportunityId);
  }

  /** One `conflict` event per field both sides changed differently. */
  async #recordConflicts(link: Link, conflicts: MergeResult["conflicts"]): Promise<void> {
    for (const c of conflicts)
      await recordEvent(this.db, {
        accountId: this.account.id,
        kind: "conflict",
        direction: c.winner === "fourdegrees" ? "to_highlevel" : c.winner === "highlevel" ? "to_fourdegrees" : "none",
        fdId: link.fdDealId,
        hlId: link.hlOpportunityId,
        outcome: `${c.winner}_wins`,
        detail: { ...c, policy: this.account.conflictPolicy },
      });
  }

  #diff(toHl: Set<string>, toFd: Set<string>, fd: Flat, hl: Flat, merged: Flat): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const k of toHl) out[`highlevel.${k}`] = { from: hl[k] ?? null, to: merged[k] ?? null };
    for (const k of toFd) out[`fourdegrees.${k}`] = { from: fd[k] ?? null, to: merged[k] ?? null };
    return out;
  }

  // ───────────────────────────── unlinked records ─────────────────────────────

  /**
   * A 4Degrees deal with no link: find its opportunity (crash recovery, prior link, backfill
   * match) or create one (creates.ts). `backfill` adds the name + contact-email match.
   */
  fromFourDegrees(deal: Deal, locationId: string, options: { backfill?: boolean } = {}): Promise<JobResult> {
    return fromFourDegrees(this, deal, locationId, options);
  }

  /** A HighLevel opportunity with no link: find its deal or create one (creates.ts). */
  fromHighLevel(opp: Opportunity, locationId: string): Promise<JobResult> {
    return fromHighLevel(this, opp, locationId);
  }

  // ───────────────────────────── notes ─────────────────────────────

  /** Syncs the notes of one pair (by 4Degrees deal id, or every pair of a HighLevel contact): notes.ts. */
  syncNotes(side: SideName, recordId: string): Promise<JobResult> {
    return syncNotes(this, side, recordId);
  }

  /** Whether a linked deal's notes differ from what was last synced (reconcile's check): notes.ts. */
  notesDiffer(fdDealId: string): Promise<boolean> {
    return notesDiffer(this, fdDealId);
  }
}

/** A pair's flat records with their extras (extras.ts) and the merge base to use. */
interface TranslatedPair {
  fd: Flat;
  hl: Flat;
  base: Flat | null;
  extras: ExtrasContext;
}

/** What the HighLevel write step leaves for the link (see `#writeHighLevel`). */
interface HighLevelWrite {
  opp: Opportunity;
  hlUpdatedAt: string | null;
  expectEcho: RecordExpectedEcho | null;
  contactId: string | null;
  skipped: Array<{ field: string; reason: string }>;
}

export type { HlNote };
