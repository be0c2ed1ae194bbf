/**
 * Zero-read echo recognition for HighLevel opportunity webhooks (the counterpart of
 * `isSyncedFourDegreesEcho` in src/sync/jobs/webhooks.ts): an event is acked without a job when it
 * is a still-expected delivery of our own last write (`expectedEchoOf` records them at the link
 * save), or when its payload proves nothing is left to sync — every field that flows HighLevel →
 * 4Degrees carried and equal to the link's base, the pair clean and off the review list. Anything
 * else takes the normal path; payloads are never trusted to apply a change, only to skip one.
 * Why this never loses a user's edit: see docs/sync.md#highlevel-echoes-without-a-read-the-argument.
 */
import * as z from "zod";
import { OpportunitySchema, UserSchema } from "../../highlevel/schemas.ts";
import type { Account } from "../../store/accounts.ts";
import { readCache } from "../../store/highlevel-cache.ts";
import { kvKeys } from "../../store/kv-keys.ts";
import {
  clearExpectedEcho,
  ECHO_TYPES,
  findExpectedEcho,
  findLink,
  findLinkWithEcho,
  takeExpectedEchoSlots,
  voidExpectedEcho,
  type ExpectedEcho,
  type Link,
  type StoredExpectedEcho,
} from "../../store/links.ts";
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
  /** Later deliveries of the batch whose slots were taken with this one's (`EchoPartner`), with their verdicts. */
  alsoTaken?: Array<{ partner: EchoPartner; verdict: HighLevelEchoVerdict }>;
}

/**
 * Another delivery of the same batch for the same opportunity, not handled yet: when it carries
 * the same state (a fan-out partner of our write's echo), its slot is taken in the same statement
 * as the event's (2 rows instead of 4), and its handler finds it taken (`alsoTaken`).
 */
export interface EchoPartner {
  webhookId: string;
  type: string;
  body: Record<string, unknown>;
  locationId: string | null;
}

/** The events whose body is the opportunity's state after a change (`OpportunityDelete` is not one). */
const STATE_EVENTS = new Set<string>(ECHO_TYPES);

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
  return mapping.pipelines.some(
    (p) =>
      p.highlevelLocationId === locationId &&
      (p.stages.some((s) => s.highlevel === stageId) ||
        p.highlevelWonStageId === stageId ||
        p.highlevelLostStageId === stageId),
  );
}

/** The first key (of `keys`) where `flat` differs from the link's base, or where the base lacks it; null = none. */
function firstDifference(keys: readonly string[], flat: Flat, base: Flat): string | null {
  for (const key of keys) if (!(key in base) || !same(flat[key], base[key])) return key;
  return null;
}

/** How long an expected echo counts after our write: our echoes arrive within seconds; HighLevel's retries (after a 429, ~10 min later) then simply cost a read. */
export const EXPECTED_ECHO_TTL_MS = 120_000;

/** The specific event HighLevel adds to `OpportunityUpdate` for each kind of change (ghl/webhook-events, highlevel-api.md "Fan-out"). */
const SPECIFIC_EVENTS: ReadonlyArray<
  [type: string, changed: (a: Record<string, unknown>, b: Record<string, unknown>) => boolean]
> = [
  [
    "OpportunityStageUpdate",
    (a, b) => a["pipelineStageId"] !== b["pipelineStageId"] || a["pipelineId"] !== b["pipelineId"],
  ],
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

/**
 * What HighLevel will send for our create of an opportunity: `OpportunityCreate` plus one
 * `OpportunityUpdate`, each carrying the created record's fields (the create's answer).
 */
export function expectedCreateEchoOf(answer: Opportunity, now: number): ExpectedEcho {
  return {
    types: { OpportunityCreate: 1, OpportunityUpdate: 1 },
    fields: carriedFields(answer),
    expiresAt: now + EXPECTED_ECHO_TTL_MS,
  };
}

const sameFields = (a: ExpectedEcho["fields"], b: ExpectedEcho["fields"]): boolean =>
  (Object.keys(a) as Array<keyof ExpectedEcho["fields"]>).every((k) => a[k] === b[k]);

/** What `consumeExpectedEcho` decided. */
export interface ExpectedEchoVerdict {
  /** This event took one expected slot: it is the echo of our write. */
  consumed: boolean;
  reason: string;
  /** The partners (of those passed in) whose slots were taken with this event's. */
  together?: EchoPartner[];
}

/**
 * The partners whose slots may be taken with the event's: state events naming the same
 * opportunity in the same location with exactly the event's carried fields, one per type, none of
 * the event's type.
 */
function sameStatePartners(
  event: { type: string; opportunityId: string; locationId: string | null },
  fields: ExpectedEcho["fields"],
  partners: readonly EchoPartner[],
): EchoPartner[] {
  const types = new Set([event.type]);
  const out: EchoPartner[] = [];
  for (const p of partners) {
    if (types.has(p.type) || !STATE_EVENTS.has(p.type) || p.body["id"] !== event.opportunityId) continue;
    if (p.locationId !== event.locationId || !sameFields(carriedFields(p.body), fields)) continue;
    types.add(p.type);
    out.push(p);
  }
  return out;
}

/**
 * Takes one slot of the pair's expected echo for this event, atomically (`takeExpectedEchoSlots`:
 * one statement that checks and takes): when the expectation is live, still expects the event's
 * type and recorded exactly the payload's carried fields (and the event's location), with neither
 * side of the pair on the review list, that type's count is lowered — two deliveries can never
 * take the same slot. With `partners` (later deliveries of the batch) that carry the same state,
 * their slots are taken in that statement too when every one of them is still expected; on a miss
 * the read below decides, and an event that alone matches takes its own slot. An event that took
 * nothing reads the expectation: a live one it does not
 * match is voided (compare-and-set to nothing): something other than our write's deliveries is
 * going on, so every later event takes the normal path. An expired expectation is ignored. `read`
 * is that read when the caller wants the link row too (`findLinkWithEcho`).
 */
export async function consumeExpectedEcho(
  db: D1Database,
  accountId: string,
  event: { type: string; body: Record<string, unknown>; opportunityId: string; locationId: string | null },
  now = Date.now(),
  read: () => Promise<StoredExpectedEcho | null> = () => findExpectedEcho(db, accountId, event.opportunityId),
  partners: readonly EchoPartner[] = [],
): Promise<ExpectedEchoVerdict> {
  const no = (reason: string): ExpectedEchoVerdict => ({ consumed: false, reason });
  const fields = carriedFields(event.body);
  const slot = { types: [event.type], opportunityId: event.opportunityId, locationId: event.locationId, fields };
  const names = STATE_EVENTS.has(event.type) && event.body["id"] === event.opportunityId;
  const together = names ? sameStatePartners(event, fields, partners) : [];
  for (let attempt = 0; attempt < 5; attempt++) {
    // The first take includes the partners; a miss reads, and a match of the event alone takes again.
    const withPartners = attempt === 0 ? together : [];
    const types = [event.type, ...withPartners.map((p) => p.type)];
    if (names && (await takeExpectedEchoSlots(db, accountId, { ...slot, types }, now)))
      return withPartners.length > 0
        ? {
            consumed: true,
            reason: `the ${event.type} of our own write (expected echo, taken with ${types.slice(1).join(", ")})`,
            together: withPartners,
          }
        : { consumed: true, reason: `the ${event.type} of our own write (expected echo)` };
    const stored = attempt === 0 ? await read() : await findExpectedEcho(db, accountId, event.opportunityId);
    if (!stored?.echo || stored.state !== "active") return no("no echo of our own write is expected");
    const echo = stored.echo;
    if (echo.expiresAt <= now) return no("the expected echo of our write has expired");
    const matches =
      names &&
      (echo.types[event.type] ?? 0) > 0 &&
      stored.hlLocationId === event.locationId &&
      sameFields(fields, echo.fields);
    // It matches what is stored now (a newer write recorded it meanwhile, or a partner taken with
    // it did not): take once more, alone. A second miss is the review list's (or a race's): the
    // expectation is void.
    if (matches && attempt === 0) continue;
    if (await voidExpectedEcho(db, accountId, stored.fdDealId, stored.raw))
      return no("the payload is not a still-expected delivery of our write; the expectation is void");
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
  event: HighLevelEvent,
  now = Date.now(),
): Promise<HighLevelEchoVerdict> {
  try {
    return await recognise(env, account, event, now);
  } catch (err) {
    return {
      echo: false,
      checkStage: true,
      reason: `echo check failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

async function recognise(
  env: Pick<Env, "DB" | "CACHE">,
  account: Account,
  { type, body, opportunityId, locationId, nativeCloseDate, partners }: HighLevelEvent,
  now: number,
): Promise<HighLevelEchoVerdict> {
  const no = (reason: string): HighLevelEchoVerdict => ({ echo: false, checkStage: true, reason });
  if (!STATE_EVENTS.has(type)) return no(`${type} carries no opportunity state`);
  const mapping = account.mapping;
  if (!mapping) return no("the account has no mapping");
  if (!locationId || body["locationId"] !== locationId || body["id"] !== opportunityId)
    return no("the payload does not name this opportunity in this location");
  const db = env.DB;
  const stageUnpaired = (b: Record<string, unknown>) => {
    const stageId = b["pipelineStageId"];
    return typeof stageId === "string" && !pairsStage(mapping, locationId, stageId);
  };
  const checkStage = stageUnpaired(body);

  // The webhooks of our own last write (see "Expected echoes"): one slot per delivery.
  // On a miss the expectation's read is the link read the checks below need: kept for them.
  const seen: { row?: Awaited<ReturnType<typeof findLinkWithEcho>> } = {};
  const readBoth = async () => {
    seen.row = await findLinkWithEcho(db, account.id, opportunityId);
    return seen.row?.echo ?? null;
  };
  const taken = await consumeExpectedEcho(
    db,
    account.id,
    { type, body, opportunityId, locationId },
    now,
    readBoth,
    partners ?? [],
  );
  if (taken.consumed) {
    const alsoTaken = (taken.together ?? []).map((partner) => ({
      partner,
      verdict: {
        echo: true,
        reason: `the ${partner.type} of our own write (expected echo, taken with ${type})`,
        checkStage: stageUnpaired(partner.body),
      },
    }));
    return { echo: true, reason: taken.reason, checkStage, ...(alsoTaken.length > 0 ? { alsoTaken } : {}) };
  }

  // Pure first: can the payload speak for every field that flows HighLevel → 4Degrees?
  const opp = payloadOpportunity(opportunityId, locationId, body);
  if (!opp) return no("the payload does not parse as an opportunity");
  const shape = fromOpportunity(opp, locationId, mapping, { users: [], nativeCloseDate });
  if (!shape.ok) return no(`the payload does not translate: ${shape.reason}`);
  const flowing = Object.keys(flatten(shape.canonical)).filter((k) => allowsTo(directionOf(mapping, k), "fourdegrees"));
  const missing = flowing.find((k) => !carried(k, body));
  if (missing !== undefined) return no(`the mapping syncs ${missing} from HighLevel and the payload does not carry it`);

  const link =
    seen.row !== undefined ? (seen.row?.link ?? null) : await findLink(db, account.id, "highlevel", opportunityId);
  if (!link || link.state !== "active") return no(link ? "the pair is deleted" : "the opportunity is not linked");

  // The engine's translation of this state, with the users lookup from KV only.
  let users: HlUser[] = [];
  if (flowing.includes("owner") && opp.assignedTo) {
    const cached = await readCache(env.CACHE, kvKeys.hlUsers(locationId), z.array(UserSchema));
    if (!cached) return no("the location's users cache is cold");
    if (!cached.value.some((u) => u.id === opp.assignedTo)) return no("the users cache does not know the assignee");
    users = cached.value;
  }
  const translated = fromOpportunity(opp, locationId, mapping, { users, nativeCloseDate });
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
  if (!current || current.state !== "active" || current.fdDealId !== link.fdDealId)
    return no("the link changed meanwhile");
  const after = unchanged(current);
  if (after) return no(after);

  return { echo: true, reason: "the payload is the state last synced", checkStage };
}

/**
 * A HighLevel opportunity event, and whether the location's API carries the close date natively
 * (then the close date flows from data webhook bodies never carry, so a payload cannot prove it).
 */
export interface HighLevelEvent {
  type: string;
  body: Record<string, unknown>;
  opportunityId: string;
  locationId: string | null;
  nativeCloseDate: boolean;
  /** Later deliveries of the batch for the same opportunity (`EchoPartner`). */
  partners?: readonly EchoPartner[];
}

/** Whether a deal's last change was our own write: its actor is the one our 4Degrees writes carry. */
export function isOurOwnWrite(deal: Deal | null, ourActor: Actor | null): boolean {
  return !!ourActor && deal?.actor?.type === ourActor.type && deal.actor.id === ourActor.id;
}
