/**
 * Records with no link: find the other side's record that already stands for them (crash
 * recovery, a prior link, a backfill match) and link the pair, or create it — ledger-guarded, so
 * a retry after a crash finds or replays the first create instead of making a second one.
 */
import * as z from "zod";
import type { Mapping } from "../../domain/mapping-config.ts";
import { DealContentSchema, type Deal, type Flat } from "../../domain/port.ts";
import type { Opportunity } from "../../highlevel/port.ts";
import type { Account } from "../../store/accounts.ts";
import {
  beginWrite,
  completeWrite,
  getWrite,
  ledgerIdempotencyKey,
  recentCreates,
  type LedgerKey,
} from "../../store/ledger.ts";
import { findLink, hasTombstone, saveLink, type Link, type SideName } from "../../store/links.ts";
import { isRejected } from "../../store/match-decisions.ts";
import { addReview, resolveReview } from "../../store/sync-events.ts";
import { applyDelete, type DeleteHost } from "./deletes.ts";
import { filterGate } from "./filter.ts";
import { findOpportunityFor, type FindHost, type LookupCache } from "./lookups.ts";
import { fourDegreesContactFor, highLevelContactFor } from "./contacts.ts";
import { extrasToNewDeal, extrasToNewOpportunity } from "./create-extras.ts";
import { expectedCreateEchoOf } from "./echo.ts";
import {
  allowsTo,
  directionOf,
  externalIdOf,
  flatten,
  toDealContent,
  toOpportunityCreate,
  type Translation,
} from "./mapping.ts";
import { blank, directionOfWrites, type EngineDeps, type JobResult, type PairChange } from "./types.ts";

/** What finding or creating the other side of a record needs of the engine (the `SyncEngine` of the job). */
export interface CreateHost extends FindHost, DeleteHost {
  readonly deps: EngineDeps;
  readonly account: Account;
  readonly mapping: Mapping;
  readonly lookups: LookupCache;
  translateDeal(deal: Deal): Promise<Translation>;
  translateOpp(opp: Opportunity, locationId: string): Promise<Translation>;
  review(
    side: SideName,
    recordId: string,
    reason: string,
    detail: Record<string, unknown>,
    ids: { fdId: string | null; hlId: string | null },
  ): Promise<JobResult>;
  syncLinked(
    link: Link,
    deal: Deal,
    opp: Opportunity,
    locationId: string,
    options?: { base?: Flat | null },
  ): Promise<JobResult>;
}

/**
 * A 4Degrees deal with no link: find its opportunity (crash recovery, prior link, backfill
 * match) or create one. `backfill` adds the name + contact-email match; ambiguity → review.
 */
export async function fromFourDegrees(
  engine: CreateHost,
  deal: Deal,
  locationId: string,
  options: { backfill?: boolean } = {},
): Promise<JobResult> {
  const fdId = deal.id ?? "";
  const t = await engine.translateDeal(deal);
  if (!t.ok) return engine.review("fourdegrees", fdId, t.reason, t.detail, { fdId, hlId: null });
  const outside = await filterGate(engine, { deal, opp: null, canonical: [t.canonical] }, { fdId, hlId: null });
  if (outside) return outside;
  const pair = engine.mapping.pipelines.find((p) => p.fourdegreesPipelineId === t.canonical.pipeline);
  const pairLocation = pair?.highlevelLocationId ?? locationId;
  const hl = engine.deps.highlevel(pairLocation);
  const found = await findOpportunityFor(engine, deal, t.canonical, pairLocation, options.backfill ?? false, (opp) =>
    asCreatedOpp(engine, opp, pairLocation),
  );
  if (found?.kind === "found") return linkAndSync(engine, deal, found.opp, pairLocation, found.base);
  if (found?.kind === "gone") {
    // The deal stands for an opportunity that was deleted before their link was saved (e.g. a
    // crash after creating the deal, then a user deleted the opportunity): a delete, applied per
    // the account's policy like any confirmed delete — never a new opportunity resurrecting it.
    if (await findLink(engine.db, engine.account.id, "highlevel", found.oppId))
      return {
        ...blank(fdId, found.oppId),
        outcome: "skipped",
        reason: `HighLevel opportunity ${found.oppId} is linked elsewhere`,
      };
    const link: Link = {
      accountId: engine.account.id,
      fdDealId: fdId,
      hlOpportunityId: found.oppId,
      hlLocationId: pairLocation,
      hlContactId: null,
      state: "active",
      base: {},
      fdUpdatedAt: null,
      fdVersion: null,
      hlUpdatedAt: null,
      syncedAt: engine.deps.now(),
      deletedSide: null,
    };
    if (!engine.account.testMode) await saveLink(engine.db, link, engine.deps.now());
    return applyDelete(engine, link, "highlevel");
  }
  if (found?.kind === "ambiguous") {
    for (const c of found.candidates)
      await addReview(
        engine.db,
        {
          accountId: engine.account.id,
          side: "highlevel",
          recordId: c.id,
          reason: `ambiguous match: several HighLevel opportunities look like 4Degrees deal ${fdId}`,
          detail: { fdDealId: fdId },
        },
        engine.deps.now(),
      );
    return engine.review(
      "fourdegrees",
      fdId,
      `ambiguous match: ${found.candidates.length} HighLevel opportunities named "${t.canonical.name}"${t.canonical.contact ? ` with contact ${t.canonical.contact}` : ""}; link one by hand`,
      { candidates: found.candidates.map((c) => c.id) },
      { fdId, hlId: null },
    );
  }
  if (!(await engine.highLevelWritable(pairLocation)))
    return {
      ...blank(fdId, null),
      outcome: "skipped",
      reason: "HighLevel is read-only for this account (HighLevel → 4Degrees only): the deal is not created there",
    };
  if (engine.account.testMode)
    return {
      ...blank(fdId, null),
      outcome: "test_mode",
      direction: "to_highlevel",
      writes: [{ side: "highlevel", op: "create", id: null }],
      detail: { create: t.canonical },
    };

  const key: LedgerKey = {
    accountId: engine.account.id,
    targetSide: "highlevel",
    sourceRecord: `fourdegrees:${fdId}`,
    changeHash: "create",
  };
  const contact = await highLevelContactFor(engine, deal, hl, {
    email: t.canonical.contact ?? null,
    name: t.canonical.name,
  });
  const build = toOpportunityCreate(t.canonical, engine.mapping, {
    ...(await engine.lookups.highlevel(pairLocation)),
    contactId: contact.id,
    fdDealId: fdId,
  });
  // The request is kept with the ledger row: a retry after a crash finds this create by it (findOpportunityFor).
  await beginWrite(engine.db, key, "create", engine.deps.now(), build.body);
  const writeStartedAt = engine.deps.now();
  const opp = await hl.createOpportunity(build.body);
  await engine.deps.hooks?.afterCreate?.("highlevel", opp.id);
  await completeWrite(engine.db, key, opp.id, engine.deps.now());
  const writes: JobResult["writes"] = [{ side: "highlevel", op: "create", id: opp.id }];
  const extra = await extrasToNewOpportunity(engine.lookups, engine.mapping, hl, deal, t.canonical.status, opp);
  if (extra.calls > 0) writes.push({ side: "highlevel", op: "update", id: opp.id, fields: Object.keys(extra.base) });
  const linked = await writeExternalRef(engine, deal, opp.id);
  if (linked !== deal) writes.push({ side: "fourdegrees", op: "link", id: fdId });
  const base = { ...flatten(t.canonical), ...extra.base };
  for (const s of build.skipped) base[s.field] = null;
  await saveLink(
    engine.db,
    {
      accountId: engine.account.id,
      fdDealId: fdId,
      hlOpportunityId: opp.id,
      hlLocationId: pairLocation,
      hlContactId: opp.contactId ?? contact.id,
      base,
      fdUpdatedAt: linked.updatedAt,
      fdVersion: linked.version,
      hlUpdatedAt: extra.opp.updatedAt ?? null,
      // The create's own deliveries, acked without a read (docs/sync.md#expected-echoes); further
      // calls for extras send rounds of their own, so then none is predicted.
      ...(extra.calls === 0
        ? {
            expectEcho: {
              echo: expectedCreateEchoOf(opp, engine.deps.now()),
              ifSyncedAt: null,
              unlessDirtySince: writeStartedAt,
            },
          }
        : {}),
    },
    engine.deps.now(),
  );
  await resolveReview(engine.db, engine.account.id, "fourdegrees", fdId);
  const change: PairChange = {
    source: "fourdegrees",
    changeId: "create",
    name: t.canonical.name,
    fdId,
    hlId: opp.id,
    before: null,
    after: base,
  };
  return {
    ...blank(fdId, opp.id),
    outcome: "ok",
    direction: "to_highlevel",
    writes,
    change,
    ...(build.skipped.length + extra.skipped.length
      ? { detail: { skipped: [...build.skipped, ...extra.skipped] } }
      : {}),
  };
}

/** The HighLevel opportunity this engine created from deal `fdId` (its ledger row), if any. */
async function createdFrom(engine: CreateHost, fdId: string): Promise<string | null> {
  const write = await getWrite(engine.db, {
    accountId: engine.account.id,
    targetSide: "highlevel",
    sourceRecord: `fourdegrees:${fdId}`,
    changeHash: "create",
  });
  return write?.targetId ?? null;
}

/** Records the HighLevel id on the 4Degrees deal (`externalRefs`), once. */
async function writeExternalRef(engine: CreateHost, deal: Deal, oppId: string): Promise<Deal> {
  if (!deal.id || deal.externalRefs.some((r) => r.system === "highlevel" && r.id === oppId)) return deal;
  const key: LedgerKey = {
    accountId: engine.account.id,
    targetSide: "fourdegrees",
    sourceRecord: `highlevel:${oppId}`,
    changeHash: "link",
  };
  await beginWrite(engine.db, key, "link", engine.deps.now());
  // `expectedVersion` from the deal in hand spares the connector a re-read; if the deal changed
  // since, the refs are recomputed on the current deal (its other refs kept).
  const withRef = (d: Deal) => [
    ...d.externalRefs.filter((r) => r.system !== "highlevel"),
    { system: "highlevel", id: oppId },
  ];
  const updated = await engine.deps.fourdegrees.updateDeal(
    deal.id,
    { externalRefs: withRef(deal) },
    {
      idempotencyKey: ledgerIdempotencyKey(key),
      ...(deal.version ? { expectedVersion: deal.version } : {}),
      onConflict: (current) => ({ externalRefs: withRef(current) }),
    },
  );
  await completeWrite(engine.db, key, deal.id, engine.deps.now());
  return updated;
}

/**
 * The canonical content of an opportunity this engine created, when it is still as created
 * (`updatedAt` = `createdAt`); `null` when it changed since (or cannot be translated).
 */
async function asCreatedOpp(engine: CreateHost, opp: Opportunity, locationId: string): Promise<Flat | null> {
  if (!opp.createdAt || opp.updatedAt !== opp.createdAt) return null;
  const t = await engine.translateOpp(opp, locationId);
  return t.ok ? flatten(t.canonical) : null;
}

/** The canonical content of a deal this engine created, when it is still as created (`updatedAt` = `createdAt`); else `null`. */
async function asCreatedDeal(engine: CreateHost, deal: Deal): Promise<Flat | null> {
  if (!deal.createdAt || deal.updatedAt !== deal.createdAt) return null;
  const t = await engine.translateDeal(deal);
  return t.ok ? flatten(t.canonical) : null;
}

/** Links an existing pair (found, not created, or linked by hand) and merges it; `base` as the merge base. */
export async function linkAndSync(
  engine: CreateHost,
  deal: Deal,
  opp: Opportunity,
  locationId: string,
  base: Flat | null,
): Promise<JobResult> {
  const fdId = deal.id ?? "";
  const other = await findLink(engine.db, engine.account.id, "highlevel", opp.id);
  if (other && other.fdDealId !== fdId)
    return engine.review(
      "fourdegrees",
      fdId,
      `HighLevel opportunity ${opp.id} is already linked to 4Degrees deal ${other.fdDealId}`,
      { opportunityId: opp.id },
      { fdId, hlId: opp.id },
    );
  const link: Link = {
    accountId: engine.account.id,
    fdDealId: fdId,
    hlOpportunityId: opp.id,
    hlLocationId: locationId,
    hlContactId: opp.contactId ?? null,
    state: "active",
    base: base ?? {},
    fdUpdatedAt: null,
    fdVersion: null,
    hlUpdatedAt: null,
    syncedAt: engine.deps.now(),
    deletedSide: null,
  };
  await saveLink(engine.db, link, engine.deps.now());
  const res = await engine.syncLinked(link, deal, opp, locationId, { base });
  if (!deal.externalRefs.some((r) => r.system === "highlevel" && r.id === opp.id) && !engine.account.testMode) {
    const fresh = await engine.deps.fourdegrees.getDeal(fdId);
    if (fresh) {
      const linked = await writeExternalRef(engine, fresh, opp.id);
      const saved = await findLink(engine.db, engine.account.id, "fourdegrees", fdId);
      if (saved)
        await saveLink(
          engine.db,
          { ...saved, fdUpdatedAt: linked.updatedAt, fdVersion: linked.version },
          engine.deps.now(),
        );
      res.writes.push({ side: "fourdegrees", op: "link", id: fdId });
    }
  }
  res.detail = { ...res.detail, linked: "existing pair found" };
  return res;
}

/** How far back a create of ours counts as still in flight (a create and its link take seconds). */
const IN_FLIGHT_CREATE_MS = 120_000;
const IN_FLIGHT_RETRY_SECONDS = 2;

/**
 * The 4Degrees deal whose create of `opp` is not finished: its ledger row made `opp` (the link is
 * saved after the create's extras and the deal's external ref), or is pending with a request like
 * it (same name, pipeline and location). HighLevel announces the opportunity before that; without
 * the external-id field nothing else ties the two, and a deal made from the announcement would be
 * a duplicate. The job retries instead and then finds the link.
 */
async function ourCreateInFlight(engine: CreateHost, opp: Opportunity): Promise<string | null> {
  const since = engine.deps.now() - IN_FLIGHT_CREATE_MS;
  const recent = await recentCreates(engine.db, engine.account.id, "highlevel", since, opp.id);
  const Body = z.object({ name: z.string(), pipelineId: z.string(), locationId: z.string().optional() });
  for (const entry of recent) {
    // Only a deal's create saves a link (a CSV import row's opportunity is meant to become a deal).
    if (!entry.sourceRecord.startsWith("fourdegrees:")) continue;
    const dealId = entry.sourceRecord.slice("fourdegrees:".length);
    if (entry.targetId === opp.id) return dealId;
    const body = Body.safeParse(entry.request);
    if (entry.state !== "pending" || !body.success) continue;
    if (body.data.name !== opp.name || body.data.pipelineId !== opp.pipelineId) continue;
    if (body.data.locationId && opp.locationId && body.data.locationId !== opp.locationId) continue;
    return dealId;
  }
  return null;
}

/** A HighLevel opportunity with no link: find its deal or create one. */
export async function fromHighLevel(engine: CreateHost, opp: Opportunity, locationId: string): Promise<JobResult> {
  const t = await engine.translateOpp(opp, locationId);
  if (!t.ok) return engine.review("highlevel", opp.id, t.reason, t.detail, { fdId: null, hlId: opp.id });
  const outside = await filterGate(engine, { deal: null, opp, canonical: [t.canonical] }, { fdId: null, hlId: opp.id });
  if (outside) return outside;
  // The 4Degrees id in the external-id field, else a completed ledger create.
  const claimedId = externalIdOf(opp, engine.mapping);
  // Pairs told apart are never matched; with no match keys only our own create counts.
  const claimed =
    claimedId &&
    (engine.mapping.matchKeys !== "none" || (await createdFrom(engine, claimedId)) === opp.id) &&
    !(await isRejected(engine.db, engine.account.id, claimedId, opp.id))
      ? claimedId
      : null;
  const prior = await getWrite(engine.db, {
    accountId: engine.account.id,
    targetSide: "fourdegrees",
    sourceRecord: `highlevel:${opp.id}`,
    changeHash: "create",
  });
  for (const candidate of [claimed, prior?.targetId ?? null]) {
    if (!candidate) continue;
    const tombstoned = await hasTombstone(engine.db, engine.account.id, "fourdegrees", candidate);
    const deal = tombstoned ? null : await engine.deps.fourdegrees.getDeal(candidate);
    // Ours (created from this opportunity): the merge base is the deal as created, if still so.
    const ours =
      candidate === prior?.targetId ||
      deal?.externalRefs.some((r) => r.system === "highlevel" && r.id === opp.id) === true;
    if (deal && !deal.archivedAt)
      return linkAndSync(engine, deal, opp, locationId, ours ? await asCreatedDeal(engine, deal) : null);
    // The deal this opportunity stands for (its external-id field, or our create) was deleted —
    // confirmed by a re-read now or when it was tombstoned — before their link was saved (e.g. a
    // crash after the create, then the user archived the deal): the pair's delete, per the
    // account's policy. Never a new deal resurrecting it, never an opportunity left behind.
    const existing = await findLink(engine.db, engine.account.id, "fourdegrees", candidate);
    if (existing && existing.hlOpportunityId !== opp.id)
      return {
        ...blank(candidate, opp.id),
        outcome: "skipped",
        reason: `the 4Degrees deal ${candidate} it was linked to is deleted`,
      };
    const link: Link = {
      accountId: engine.account.id,
      fdDealId: candidate,
      hlOpportunityId: opp.id,
      hlLocationId: locationId,
      hlContactId: opp.contactId ?? null,
      state: "active",
      base: {},
      fdUpdatedAt: null,
      fdVersion: null,
      hlUpdatedAt: null,
      syncedAt: engine.deps.now(),
      deletedSide: null,
    };
    if (!engine.account.testMode) await saveLink(engine.db, link, engine.deps.now());
    return applyDelete(engine, link, "fourdegrees");
  }
  if (engine.account.testMode)
    return {
      ...blank(null, opp.id),
      outcome: "test_mode",
      direction: "to_fourdegrees",
      writes: [{ side: "fourdegrees", op: "create", id: null }],
      detail: { create: t.canonical },
    };
  // Nothing claims it: it may still be ours, announced before our create of it returned.
  const inFlight = await ourCreateInFlight(engine, opp);
  if (inFlight)
    return {
      ...blank(null, opp.id),
      outcome: "retry",
      reason: `our create of this opportunity from 4Degrees deal ${inFlight} has not finished yet`,
      retryAfterSeconds: IN_FLIGHT_RETRY_SECONDS,
    };
  const key: LedgerKey = {
    accountId: engine.account.id,
    targetSide: "fourdegrees",
    sourceRecord: `highlevel:${opp.id}`,
    changeHash: "create",
  };
  const build = toDealContent(t.canonical, engine.mapping, {
    ...(await engine.lookups.fourdegrees()),
    hlOpportunityId: opp.id,
  });
  if (allowsTo(directionOf(engine.mapping, "contact"), "fourdegrees")) {
    const contactId = await fourDegreesContactFor(engine, opp);
    if (contactId) build.body.contacts = [{ id: contactId, email: null, name: null }];
  }
  const extras = await extrasToNewDeal(engine.lookups, engine.mapping, locationId, opp, t.canonical.status, build.body);
  const begun = await beginWrite(engine.db, key, "create", engine.deps.now(), build.body);
  // The ledger key is the Idempotency-Key: a retry after a crash replays the first create — if it
  // sends the first request unchanged (4Degrees answers 422 to a reused key with another body), so
  // a retry re-sends the recorded request even when the opportunity changed since.
  const first = begun.fresh ? null : DealContentSchema.safeParse(begun.entry.request);
  const deal = await engine.deps.fourdegrees.createDeal(first?.success ? first.data : build.body, {
    idempotencyKey: ledgerIdempotencyKey(key),
  });
  await engine.deps.hooks?.afterCreate?.("fourdegrees", deal.id ?? "");
  await completeWrite(engine.db, key, deal.id, engine.deps.now());
  const writes: JobResult["writes"] = [{ side: "fourdegrees", op: "create", id: deal.id }];
  let hlAfter = opp;
  if (engine.mapping.externalIdFieldId && deal.id && (await engine.highLevelWritable(locationId))) {
    hlAfter = await engine.deps
      .highlevel(locationId)
      .updateOpportunity(opp.id, { customFields: [{ id: engine.mapping.externalIdFieldId, field_value: deal.id }] });
    writes.push({ side: "highlevel", op: "link", id: opp.id });
  }
  if (!begun.fresh && deal.id) {
    // An earlier attempt began this create: the answer may be the replay of its create (the
    // Idempotency-Key), i.e. the deal as created then, while the opportunity may have changed
    // since. Merge the current records with the deal as created as the base, so those changes
    // flow to 4Degrees instead of the replayed content being taken for the pair's state.
    const created = await engine.translateDeal(deal);
    const current = await engine.deps.fourdegrees.getDeal(deal.id);
    if (created.ok && current && !current.archivedAt) {
      const res = await linkAndSync(engine, current, hlAfter, locationId, flatten(created.canonical));
      res.writes.unshift(...writes);
      res.direction = directionOfWrites(res.writes);
      if (res.outcome === "noop") res.outcome = "ok";
      return res;
    }
  }
  const base = { ...flatten(t.canonical), ...extras.base };
  for (const s of build.skipped) base[s.field] = null;
  await saveLink(
    engine.db,
    {
      accountId: engine.account.id,
      fdDealId: deal.id ?? "",
      hlOpportunityId: opp.id,
      hlLocationId: locationId,
      hlContactId: opp.contactId ?? null,
      base,
      fdUpdatedAt: deal.updatedAt,
      fdVersion: deal.version,
      hlUpdatedAt: hlAfter.updatedAt ?? null,
    },
    engine.deps.now(),
  );
  await resolveReview(engine.db, engine.account.id, "highlevel", opp.id);
  const change: PairChange = {
    source: "highlevel",
    changeId: "create",
    name: t.canonical.name,
    fdId: deal.id,
    hlId: opp.id,
    before: null,
    after: base,
  };
  return {
    ...blank(deal.id, opp.id),
    outcome: "ok",
    direction: "to_fourdegrees",
    writes,
    change,
    ...(extras.skipped.length ? { detail: { skipped: extras.skipped } } : {}),
  };
}
