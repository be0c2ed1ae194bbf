/**
 * Zero-read echo recognition for HighLevel opportunity webhooks — the counterpart of
 * `isSyncedFourDegreesEcho` (src/sync/jobs/handlers.ts).
 *
 * When the engine writes an opportunity, HighLevel sends the webhooks of that write back
 * (`[OpportunityUpdate, OpportunityMonetaryValueUpdate]`, …). Their bodies carry no `updatedAt`,
 * so without this the record job re-reads the opportunity only to find it as last synced. The
 * bodies do carry the opportunity's state (ghl/webhook-events/Opportunity*.md: name,
 * monetaryValue, status, pipelineId, pipelineStageId, assignedTo, contactId, locationId). An event
 * is acked without a job in two cases: it is a delivery of our own last write that is still
 * expected (see "Expected echoes" below — tried first), or its state PROVES nothing is left to
 * sync (the payload proof):
 *
 * - it is an opportunity state event (not `OpportunityDelete`), of an `active` link in the same
 *   location, on the same contact (`links.hl_contact_id`, which notes follow);
 * - the payload is translated with the engine's own translation of a read opportunity
 *   (`OpportunitySchema` → `fromOpportunity` → `flatten`, users from the KV cache only), and every
 *   canonical field that can flow HighLevel → 4Degrees (direction `both` / `to_fourdegrees`) is
 *   carried by the payload and equal to the link's last-synced base (`base_json`). A field the
 *   payload does not carry — the close date and extra fields (custom fields), the contact's email
 *   — makes it NOT an echo whenever it flows from HighLevel: a user's edit of it arrives as an
 *   `OpportunityUpdate` whose body looks exactly like an echo. Fields that flow only to HighLevel
 *   (`to_highlevel`, e.g. the contact by default) and `off` fields are not compared: the record job
 *   never writes a HighLevel-side change of them anywhere (the merge keeps the base), so the job
 *   this check saves could not have done anything with them. An unassigned opportunity's payload
 *   has no `assignedTo` (the sandbox leaves it out; HighLevel's docs do not say what it sends):
 *   the owner then reads as not carried, so that echo keeps the re-read whenever the owner flows
 *   from HighLevel;
 * - the lookups it needs are cached: an assignee is translated through the location's users
 *   cache in KV (`v1:hl:users:…`), never a HighLevel call; a cold cache or an assignee the cache
 *   does not know (the engine would reload the users) is uncertain → not an echo;
 * - neither side of the pair is dirty and neither record is on the review list (below).
 *
 * Anything else — a payload that lacks a field, does not translate, differs, an unlinked or
 * deleted pair, any error — goes the normal path (mark dirty, record job, one re-read). Payloads
 * are never trusted to apply a change, only to skip one that is provably done.
 *
 * Order and lateness. HighLevel sends one event per change, each with the state right after that
 * change, in no guaranteed order. Skipping an event whose state equals the base is safe: if the
 * opportunity has changed since, that later change has its own event carrying its own state,
 * which differs from the base (or also equals it, and then there is nothing to do either). A late
 * event describing an older state that differs from the base just costs one read (the job finds
 * the opportunity as synced, or syncs what is current); an older event equal to the base is
 * skipped, and the newer change it was overtaken by is carried by its own event. A lost event
 * is caught by reconcile like before.
 *
 * The dirty mark. Skipping never marks and never clears a mark, so it cannot leave a record dirty
 * nor take a change away from a job another event marked. The one hazard is a job that read the
 * opportunity BEFORE the event's state existed and saves its base AFTER this check: the base read
 * here would be the pre-job one, the skip would stand, and the job's older view would become the
 * base. Every job holds its record's dirty mark from before its reads until after its link save,
 * so the check first sees no mark on EITHER side of the pair (a 4Degrees-side job writes the same
 * link), and only then reads the base it compares (re-reading the link after the marks). An event
 * that finds a mark goes the normal path: it bumps `seq`, so the running job runs once more.
 * Jobs that run without a mark (forced replays, backfill pages) are not covered; a base they save
 * from an older read carries that read's `updatedAt` (when they did not write the opportunity), so
 * reconcile sees the difference.
 *
 * What moves to reconcile. (1) After skipping a HighLevel edit of something the pair does not
 * sync from HighLevel (an unmapped custom field, the source, a `to_highlevel` field), the link keeps
 * the old `hl_updated_at`, so reconcile re-reads the pair once on a later tick instead of a live job
 * now. (2) HighLevel follows `OpportunityDelete` with an `OpportunityUpdate` carrying the last
 * state; when the Delete is lost and only that Update arrives, its payload equals the base and it
 * is skipped, so the delete is found by reconcile's link verification rather than by the Update's
 * re-read — the same as any other lost event.
 *
 * The review list: a pair with either record under review is not an echo — its record job is what
 * takes it off the list once both sides translate again.
 *
 * The stage check (`checkNamedStage` in jobs.ts) keeps running for every event that is not an
 * echo. For an echo it runs only when the payload names a stage the mapping does not pair (a
 * won/lost opportunity has no canonical stage, so the comparison does not see where HighLevel
 * keeps it — a closed opportunity moved to a stage HighLevel just gained is reported only by that
 * check). For a stage the mapping pairs it can report nothing (it alerts only unmapped stages), and
 * it would only refresh an expired pipelines cache — a HighLevel call on a path whose point is to
 * make none.
 *
 * Expected echoes. The payload proof fails whenever the mapping syncs from HighLevel a field no
 * payload carries (the demo mapping's close date): a user's edit of it arrives as an
 * `OpportunityUpdate` that looks exactly like our echo. For the deliveries of our OWN writes there
 * is a second proof, by counting them:
 *
 * - Recording. When the engine's update of an opportunity is answered with exactly what it read
 *   plus what it wrote (`#answerIsOurs`, src/sync/engine/engine.ts — otherwise a user edited the
 *   opportunity between our read and our write, nothing is recorded and the link keeps the read's
 *   `updatedAt`), the link save records what HighLevel sends for that write (`links.hl_echo_json`,
 *   `expectedEchoOf`): one `OpportunityUpdate` plus the specific event of each kind that changed
 *   between the read and the answer (`OpportunityStageUpdate` for stage or pipeline,
 *   `OpportunityStatusUpdate`, `OpportunityMonetaryValueUpdate`, `OpportunityAssignedToUpdate`:
 *   highlevel-api.md "Fan-out"), the answer's carried fields (name, monetaryValue, status,
 *   pipelineId, pipelineStageId, assignedTo, contactId) and an expiry (`EXPECTED_ECHO_TTL_MS`, two
 *   minutes: our echoes arrive within seconds; HighLevel retries only after a 429, ~10 minutes
 *   later, and such a retry simply costs a read). Every other save of the link clears it.
 * - Taking. An opportunity state event of a pair with a live expectation whose type is still
 *   expected and whose carried fields (and location) equal the answer's takes that one slot —
 *   compare-and-set on the stored text, so two deliveries never take the same slot; the loser
 *   re-reads and decides again (`consumeExpectedEcho`) — and is acked, whatever the mapping syncs.
 *   An event that finds a live expectation and does not take a slot VOIDS it (a delivery of ours
 *   that did not take its slot must not leave it to someone else), then goes the payload proof and
 *   the record job's read as before. An expired expectation is ignored (left as it is).
 *
 * Why a user's edit is never lost to it. Every HighLevel change sends its own deliveries, and every
 * one includes exactly one `OpportunityUpdate` (highlevel-api.md "Fan-out"; the sandbox's
 * `#emitChanges` does the same); our write has exactly one `OpportunityUpdate` slot.
 * Take a user's edit made after our write: its Update D_U is handled after the edit was made. If
 * D_U takes the slot, our own Update D_W had not taken it, so D_W is handled after D_U (or never:
 * below), finds no slot, voids what is left and goes the normal path — and its job reads after the
 * user's edit and syncs it. If D_W took the slot first, D_U finds none and is read itself. The same
 * count holds for each specific type; more deliveries than slots (a duplicate, a late delivery of
 * an older write) only means more reads. It holds as long as each delivery of our write either
 * takes its slot or voids the expectation. The exceptions, and what covers them:
 *
 * - HighLevel drops D_W (it drops any delivery it did not get a 429 for), or the check fails on a
 *   D1 error: D_U takes its slot and is not synced live. The link holds our ANSWER's `updatedAt`
 *   (recorded only with the expectation), the opportunity now a later one, so reconcile's scan
 *   (src/sync/jobs/reconcile.ts: `updatedAt` ≠ the link's) marks the pair and its job syncs the edit.
 * - D_W handled before the expectation exists (the writing job is still between its HighLevel
 *   write and its link save): it went the normal path and marked the opportunity dirty, so the save
 *   records nothing when a HighLevel-side dirty mark was set or bumped since the write began, nor
 *   when another save of the link happened since the job read it (the job that D_W caused already
 *   ran) — `saveLink`'s `RecordExpectedEcho` conditions, checked in the same statement.
 * - D_W does not match the answer (HighLevel left a documented field out): it voids.
 * - D_W coalesced into an earlier delivery of its queue batch (`BatchScope`, src/queue/consumer.ts:
 *   not checked at all): that earlier delivery was handled after D_W was sent, so it either found
 *   the expectation and voided it, or left a dirty mark after the write began (the case above).
 *
 * The safeguards of the payload proof, for this path: the review list applies (a pair under review
 * keeps the normal path and the expectation is voided: its record job is what takes it off the
 * list); the contact is one of the carried fields (`contactId` must be the answer's); the stage
 * check runs by the same rule as for any echo. The dirty marks are NOT read: they guard the payload
 * proof's comparison with the base, which a job in flight could overwrite with an older view. The
 * expectation compares nothing with the base — it counts the deliveries of one write, and the
 * argument above does not depend on any job; a job that read before our write and saves after it
 * clears the expectation like every save, and the events after it take the read. So our echoes
 * handled while the writing job is still finishing (it holds its mark until after the save) are
 * free too.
 */
import { z } from "zod";
import { OpportunitySchema, UserSchema } from "../../highlevel/schemas.ts";
import type { Account } from "../../store/accounts.ts";
import { readCache } from "../../store/highlevel-cache.ts";
import { kvKeys } from "../../store/kv-keys.ts";
import { clearExpectedEcho, findExpectedEcho, findLink, replaceExpectedEcho, type ExpectedEcho, type Link, type StoredExpectedEcho } from "../../store/links.ts";
import { getPending } from "../../store/pending.ts";
import { isInReview } from "../../store/sync-events.ts";
import type { HlUser, Opportunity } from "../../highlevel/port.ts";
import { allowsTo, directionOf, flatten, fromOpportunity } from "./mapping.ts";
import type { Actor, Deal, Flat } from "../../domain/port.ts";
import type { Mapping } from "../../domain/mapping-config.ts";
import { same } from "./merge.ts";

/** What the webhook handler does with a HighLevel opportunity event. */
export interface HighLevelEchoVerdict {
  /** The event describes the pair's last-synced state: ack it, no job. */
  echo: boolean;
  /** Why (the debug log line; tests). */
  reason: string;
  /** Whether the webhook's advisory stage check (`checkNamedStage`) should run (see above). */
  checkStage: boolean;
}

/** The events whose body is the opportunity's state after a change (`OpportunityDelete` is not one). */
const STATE_EVENTS = new Set(["OpportunityCreate", "OpportunityUpdate", "OpportunityStatusUpdate", "OpportunityStageUpdate", "OpportunityMonetaryValueUpdate", "OpportunityAssignedToUpdate"]);

const nonEmpty = (v: unknown): boolean => typeof v === "string" && v !== "";

/**
 * The body fields the payload opportunity is built from, and what counts as carried: a string
 * where HighLevel sends one (`status` never defaulted), a number or an explicit `null` for the
 * value, a string or an explicit `null` for the assignee (unassigned, as in a read).
 */
const BODY_FIELDS: Record<string, (v: unknown) => boolean> = {
  name: (v) => typeof v === "string",
  pipelineId: nonEmpty,
  pipelineStageId: nonEmpty,
  status: nonEmpty,
  monetaryValue: (v) => typeof v === "number" || v === null,
  assignedTo: (v) => typeof v === "string" || v === null,
};

/**
 * Which body fields `fromOpportunity` reads for each canonical key. Not a translation — the values
 * come from `fromOpportunity` — only which keys a webhook body can speak for. A key not listed
 * (`closeDate`, `contact`, `field.*`, any key added later) is read from data HighLevel's webhook
 * bodies do not carry (custom fields, the contact record).
 */
const CARRIED_BY: Record<string, readonly string[]> = {
  name: ["name"],
  pipeline: ["pipelineId"],
  stage: ["pipelineId", "pipelineStageId", "status"],
  status: ["status"],
  value: ["monetaryValue"],
  currency: ["monetaryValue"],
  owner: ["assignedTo"],
};

function carried(key: string, body: Record<string, unknown>): boolean {
  const fields = CARRIED_BY[key];
  return fields !== undefined && fields.every((f) => f in body && BODY_FIELDS[f]?.(body[f]) === true);
}

/** The payload as an `Opportunity` (the read schema), with only the fields it carries: no custom fields, no contact. */
function payloadOpportunity(id: string, locationId: string, body: Record<string, unknown>): Opportunity | null {
  const raw: Record<string, unknown> = { id, locationId, customFields: [], contact: null };
  for (const [field, ok] of Object.entries(BODY_FIELDS)) if (field in body && ok(body[field])) raw[field] = body[field];
  const parsed = OpportunitySchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/** Whether the mapping pairs a HighLevel stage of `locationId` (as `checkNamedStage` asks). */
function pairsStage(mapping: Mapping, locationId: string, stageId: string): boolean {
  return mapping.pipelines.some((p) => p.highlevelLocationId === locationId && (p.stages.some((s) => s.highlevel === stageId) || p.highlevelWonStageId === stageId || p.highlevelLostStageId === stageId));
}

/** The first key (of `keys`) where `flat` differs from the link's base, or where the base lacks it; null = none. */
function firstDifference(keys: readonly string[], flat: Flat, base: Flat): string | null {
  for (const key of keys) if (!(key in base) || !same(flat[key], base[key])) return key;
  return null;
}

/** How long an expected echo counts after our write: our echoes arrive within seconds; HighLevel's retries (after a 429, ~10 min later) then simply cost a read. */
export const EXPECTED_ECHO_TTL_MS = 120_000;

/** The specific event HighLevel adds to `OpportunityUpdate` for each kind of change (ghl/webhook-events, highlevel-api.md "Fan-out"). */
const SPECIFIC_EVENTS: ReadonlyArray<[type: string, changed: (a: Record<string, unknown>, b: Record<string, unknown>) => boolean]> = [
  ["OpportunityStageUpdate", (a, b) => a["pipelineStageId"] !== b["pipelineStageId"] || a["pipelineId"] !== b["pipelineId"]],
  ["OpportunityStatusUpdate", (a, b) => a["status"] !== b["status"]],
  ["OpportunityMonetaryValueUpdate", (a, b) => a["monetaryValue"] !== b["monetaryValue"]],
  ["OpportunityAssignedToUpdate", (a, b) => a["assignedTo"] !== b["assignedTo"]],
];

/**
 * The opportunity fields a webhook payload carries (ghl/webhook-events/Opportunity*.md), as the
 * expected echo compares them: a missing, empty or non-string value is null (the sandbox leaves
 * `assignedTo` out when unassigned; a read answers null), a value that is not a number is null.
 */
function carriedFields(o: Record<string, unknown>): ExpectedEcho["fields"] {
  const str = (k: string) => {
    const v = o[k];
    return typeof v === "string" && v !== "" ? v : null;
  };
  const value = o["monetaryValue"];
  return {
    name: str("name"),
    monetaryValue: typeof value === "number" ? value : null,
    status: str("status"),
    pipelineId: str("pipelineId"),
    pipelineStageId: str("pipelineStageId"),
    assignedTo: str("assignedTo"),
    contactId: str("contactId"),
  };
}

/**
 * What HighLevel will send for our update of an opportunity (see "Expected echoes" above): one
 * `OpportunityUpdate` plus the specific event of each kind that changed between `before` (our
 * read, which the answer was checked to extend by exactly our write) and the `answer`, whose
 * carried fields every one of those payloads holds.
 */
export function expectedEchoOf(before: Opportunity, answer: Opportunity, now: number): ExpectedEcho {
  const a = carriedFields(before);
  const b = carriedFields(answer);
  const types: Record<string, number> = { OpportunityUpdate: 1 };
  for (const [type, changed] of SPECIFIC_EVENTS) if (changed(a, b)) types[type] = 1;
  return { types, fields: b, expiresAt: now + EXPECTED_ECHO_TTL_MS };
}

const sameFields = (a: ExpectedEcho["fields"], b: ExpectedEcho["fields"]): boolean => (Object.keys(a) as Array<keyof ExpectedEcho["fields"]>).every((k) => a[k] === b[k]);

/** What `consumeExpectedEcho` decided. */
export interface ExpectedEchoVerdict {
  /** This event took one expected slot: it is the echo of our write. */
  consumed: boolean;
  reason: string;
}

/**
 * Takes one slot of the pair's expected echo for this event, atomically: when the expectation is
 * live, still expects the event's type and recorded exactly the payload's carried fields (and the
 * event's location), the stored text is replaced by the one with that type's count lowered
 * (cleared when nothing is left) — compare-and-set on the text, so two deliveries can never take
 * the same slot; the loser re-reads and decides again. An event that finds a live expectation but
 * does not match it voids it (compare-and-set to nothing): something other than our write's
 * deliveries is going on, so every later event takes the normal path. An expired expectation is
 * ignored. `first` spares the first read when the caller has just made it.
 */
export async function consumeExpectedEcho(
  db: D1Database,
  accountId: string,
  event: { type: string; body: Record<string, unknown>; opportunityId: string; locationId: string | null },
  now = Date.now(),
  first?: StoredExpectedEcho | null,
): Promise<ExpectedEchoVerdict> {
  const no = (reason: string): ExpectedEchoVerdict => ({ consumed: false, reason });
  const fields = carriedFields(event.body);
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = attempt === 0 && first !== undefined ? first : await findExpectedEcho(db, accountId, event.opportunityId);
    if (!stored || stored.state !== "active") return no("no echo of our own write is expected");
    const echo = stored.echo;
    if (echo && echo.expiresAt <= now) return no("the expected echo of our write has expired");
    const left = echo?.types[event.type] ?? 0;
    const mismatch = !echo
      ? "the expected echo does not parse"
      : !STATE_EVENTS.has(event.type)
        ? `${event.type} is not a delivery of our write`
        : left <= 0
          ? `no ${event.type} of our write is still expected`
          : stored.hlLocationId !== event.locationId || event.body["id"] !== event.opportunityId || !sameFields(fields, echo.fields)
            ? "the payload is not the answer to our write"
            : null;
    if (mismatch === null && echo) {
      const types = { ...echo.types, [event.type]: left - 1 };
      const next = Object.values(types).some((n) => n > 0) ? { ...echo, types } : null;
      if (await replaceExpectedEcho(db, accountId, stored.fdDealId, stored.raw, next)) return { consumed: true, reason: `the ${event.type} of our own write (expected echo)` };
      continue; // another delivery changed it first: decide again on what it left
    }
    if (await replaceExpectedEcho(db, accountId, stored.fdDealId, stored.raw, null)) return no(`${mismatch ?? "not our echo"}; the expectation is void`);
  }
  // Still racing after a few rounds: nothing is taken, and nothing is left for a later event either.
  await clearExpectedEcho(db, accountId, event.opportunityId);
  return no("the expected echo kept changing under this event; the expectation is void");
}

/**
 * Decides whether a HighLevel opportunity event is the echo of a state already synced (see the
 * file comment). Never calls HighLevel; reads D1 (link, expected echo, dirty marks, review list)
 * and KV (users), and writes only the pair's expected echo (a slot taken, or the expectation void).
 * Any error is "not an echo": the normal path then handles the event as before.
 */
export async function recogniseHighLevelEcho(
  env: Pick<Env, "DB" | "CACHE">,
  account: Account,
  event: { type: string; body: Record<string, unknown>; opportunityId: string; locationId: string | null },
  now = Date.now(),
): Promise<HighLevelEchoVerdict> {
  try {
    return await recognise(env, account, event, now);
  } catch (err) {
    return { echo: false, checkStage: true, reason: `echo check failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

async function recognise(
  env: Pick<Env, "DB" | "CACHE">,
  account: Account,
  { type, body, opportunityId, locationId }: { type: string; body: Record<string, unknown>; opportunityId: string; locationId: string | null },
  now: number,
): Promise<HighLevelEchoVerdict> {
  const no = (reason: string): HighLevelEchoVerdict => ({ echo: false, checkStage: true, reason });
  if (!STATE_EVENTS.has(type)) return no(`${type} carries no opportunity state`);
  const mapping = account.mapping;
  if (!mapping) return no("the account has no mapping");
  if (!locationId || body["locationId"] !== locationId || body["id"] !== opportunityId) return no("the payload does not name this opportunity in this location");
  const db = env.DB;
  const stageId = body["pipelineStageId"];
  const checkStage = typeof stageId === "string" && !pairsStage(mapping, locationId, stageId);

  // The webhooks of our own last write (see "Expected echoes"): one slot per delivery.
  const expected = await findExpectedEcho(db, account.id, opportunityId);
  if (expected?.echo && expected.state === "active" && expected.echo.expiresAt > now) {
    const [hlReview, fdReview] = await Promise.all([isInReview(db, account.id, "highlevel", opportunityId), isInReview(db, account.id, "fourdegrees", expected.fdDealId)]);
    if (hlReview || fdReview) await replaceExpectedEcho(db, account.id, expected.fdDealId, expected.raw, null);
    else {
      const taken = await consumeExpectedEcho(db, account.id, { type, body, opportunityId, locationId }, now, expected);
      if (taken.consumed) return { echo: true, reason: taken.reason, checkStage };
    }
  }

  // Pure first: can the payload speak for every field that flows HighLevel → 4Degrees?
  const opp = payloadOpportunity(opportunityId, locationId, body);
  if (!opp) return no("the payload does not parse as an opportunity");
  const shape = fromOpportunity(opp, locationId, mapping, { users: [] });
  if (!shape.ok) return no(`the payload does not translate: ${shape.reason}`);
  const flowing = Object.keys(flatten(shape.canonical)).filter((k) => allowsTo(directionOf(mapping, k), "fourdegrees"));
  const missing = flowing.find((k) => !carried(k, body));
  if (missing !== undefined) return no(`the mapping syncs ${missing} from HighLevel and the payload does not carry it`);

  const link = await findLink(db, account.id, "highlevel", opportunityId);
  if (!link || link.state !== "active") return no(link ? "the pair is deleted" : "the opportunity is not linked");

  // The engine's translation of this state, with the users lookup from KV only.
  let users: HlUser[] = [];
  if (flowing.includes("owner") && opp.assignedTo) {
    const cached = await readCache(env.CACHE, kvKeys.hlUsers(locationId), z.array(UserSchema));
    if (!cached) return no("the location's users cache is cold");
    if (!cached.value.some((u) => u.id === opp.assignedTo)) return no("the users cache does not know the assignee");
    users = cached.value;
  }
  const translated = fromOpportunity(opp, locationId, mapping, { users });
  if (!translated.ok) return no(`the payload does not translate: ${translated.reason}`);
  const flat = flatten(translated.canonical);
  const contactId = body["contactId"];
  const unchanged = (l: Link): string | null => {
    if (l.hlLocationId !== locationId) return "the link is in another location";
    if (!nonEmpty(contactId) || l.hlContactId !== contactId) return "the opportunity's contact is not the link's";
    const key = firstDifference(flowing, flat, l.base);
    return key === null ? null : `${key} differs from the last sync`;
  };
  const before = unchanged(link);
  if (before) return no(before);

  // No job in flight for the pair (either side), nothing under review — then the base, read again
  // after the marks (see "The dirty mark" above).
  const [hlMark, fdMark, hlReview, fdReview] = await Promise.all([
    getPending(db, account.id, "highlevel", "deal", opportunityId),
    getPending(db, account.id, "fourdegrees", "deal", link.fdDealId),
    isInReview(db, account.id, "highlevel", opportunityId),
    isInReview(db, account.id, "fourdegrees", link.fdDealId),
  ]);
  if (hlMark || fdMark) return no("a sync of the pair is due or running");
  if (hlReview || fdReview) return no("the pair is on the review list");
  const current = await findLink(db, account.id, "highlevel", opportunityId);
  if (!current || current.state !== "active" || current.fdDealId !== link.fdDealId) return no("the link changed meanwhile");
  const after = unchanged(current);
  if (after) return no(after);

  return { echo: true, reason: "the payload is the state last synced", checkStage };
}

/** Whether a deal's last change was our own write: its actor is the one our 4Degrees writes carry. */
export function isOurOwnWrite(deal: Deal | null, ourActor: Actor | null): boolean {
  return !!ourActor && deal?.actor?.type === ourActor.type && deal.actor.id === ourActor.id;
}
