/**
 * Zero-read echo recognition for HighLevel opportunity webhooks — the counterpart of
 * `isSyncedFourDegreesEcho` (src/sync/jobs.ts).
 *
 * When the engine writes an opportunity, HighLevel sends the webhooks of that write back
 * (`[OpportunityUpdate, OpportunityMonetaryValueUpdate]`, …). Their bodies carry no `updatedAt`,
 * so without this the record job re-reads the opportunity only to find it as last synced. The
 * bodies do carry the opportunity's state (ghl/webhook-events/Opportunity*.md: name,
 * monetaryValue, status, pipelineId, pipelineStageId, assignedTo, contactId, locationId). An event
 * is acked without a job only when that state PROVES nothing is left to sync:
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
 */
import { z } from "zod";
import { OpportunitySchema, UserSchema } from "../highlevel/schemas.ts";
import type { Account } from "../store/accounts.ts";
import { readCache } from "../store/highlevel-cache.ts";
import { kvKeys } from "../store/kv-keys.ts";
import { findLink, type Link } from "../store/links.ts";
import { getPending } from "../store/pending.ts";
import { isInReview } from "../store/sync-events.ts";
import type { HlUser, Opportunity } from "./highlevel-port.ts";
import { allowsTo, directionOf, flatten, fromOpportunity, type Flat } from "./mapping.ts";
import type { Mapping } from "./mapping-config.ts";
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

/**
 * Decides whether a HighLevel opportunity event is the echo of a state already synced (see the
 * file comment). Never calls HighLevel; reads D1 (link, dirty marks, review list) and KV (users).
 * Any error is "not an echo": the normal path then handles the event as before.
 */
export async function recogniseHighLevelEcho(
  env: Pick<Env, "DB" | "CACHE">,
  account: Account,
  event: { type: string; body: Record<string, unknown>; opportunityId: string; locationId: string | null },
): Promise<HighLevelEchoVerdict> {
  try {
    return await recognise(env, account, event);
  } catch (err) {
    return { echo: false, checkStage: true, reason: `echo check failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

async function recognise(
  env: Pick<Env, "DB" | "CACHE">,
  account: Account,
  { type, body, opportunityId, locationId }: { type: string; body: Record<string, unknown>; opportunityId: string; locationId: string | null },
): Promise<HighLevelEchoVerdict> {
  const no = (reason: string): HighLevelEchoVerdict => ({ echo: false, checkStage: true, reason });
  if (!STATE_EVENTS.has(type)) return no(`${type} carries no opportunity state`);
  const mapping = account.mapping;
  if (!mapping) return no("the account has no mapping");
  if (!locationId || body["locationId"] !== locationId || body["id"] !== opportunityId) return no("the payload does not name this opportunity in this location");

  // Pure first: can the payload speak for every field that flows HighLevel → 4Degrees?
  const opp = payloadOpportunity(opportunityId, locationId, body);
  if (!opp) return no("the payload does not parse as an opportunity");
  const shape = fromOpportunity(opp, locationId, mapping, { users: [] });
  if (!shape.ok) return no(`the payload does not translate: ${shape.reason}`);
  const flowing = Object.keys(flatten(shape.canonical)).filter((k) => allowsTo(directionOf(mapping, k), "fourdegrees"));
  const missing = flowing.find((k) => !carried(k, body));
  if (missing !== undefined) return no(`the mapping syncs ${missing} from HighLevel and the payload does not carry it`);

  const db = env.DB;
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

  const stageId = body["pipelineStageId"];
  return { echo: true, reason: "the payload is the state last synced", checkStage: typeof stageId === "string" && !pairsStage(mapping, locationId, stageId) };
}
