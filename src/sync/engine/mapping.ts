/**
 * The canonical field map and the pure translations into and out of it.
 *
 * Both sides translate into one neutral record (`Canonical`) through the account's mapping; the
 * merge (merge.ts) compares canonical records only, so "changed" always means "changed in a way the
 * other side can see". A record that cannot be translated without guessing (unmapped pipeline or
 * stage, a currency the location does not use) yields `{ok: false, reason}` — the engine puts it on
 * the review list instead of crashing or writing something wrong.
 *
 * Normalisations that keep both sides comparable (each prevents a ping-pong write):
 * - emails lower-cased; a value of 0 and "no value" are the same (HighLevel stores 0 for none);
 * - dates as `YYYY-MM-DD` whatever HighLevel's custom field returned (ISO string or epoch ms);
 * - the close date is compared only when HighLevel can hold one: the mapping's close-date custom
 *   field, else the native forecast close date where the API has one (docs/sync.md "HighLevel API v3");
 * - a closed record has no canonical stage (4Degrees puts it in a won/lost stage, HighLevel keeps
 *   the last open stage and sets a status);
 * - the contact is only compared when both sides can name it by email.
 */
import type { Deal, DealContent, DealPatch, FieldValue, Flat, Pipeline, User } from "../../domain/port.ts";
import { fromMinor, toMinor } from "../../domain/money.ts";
import type {
  CustomFieldInput,
  HlUser,
  Opportunity,
  OpportunityCreate,
  OpportunityUpdate,
} from "../../highlevel/port.ts";
import type { CoreField, Direction, Mapping, PipelinePair } from "../../domain/mapping-config.ts";
import { ownerKeyOfFourDegrees, ownerKeyOfHighLevel, ownerRef } from "./owner-keys.ts";
import { fromHighLevelValue, toFourDegreesValue, toHighLevelValue, unmappedReason } from "./value-map.ts";
import { normaliseDate, normaliseFieldValue } from "./normalise.ts";

export { normaliseDate, normaliseFieldValue };

/** The neutral record both sides translate into. */
export interface Canonical {
  name: string;
  /** The 4Degrees pipeline id of the pipeline pair (the pair's key). */
  pipeline: string;
  /** The 4Degrees id of the mapped open stage pair; `null` when the record is won/lost. */
  stage: string | null;
  status: "open" | "won" | "lost";
  /** Integer minor units; `null` = no value. */
  value: number | null;
  currency: string | null;
  /**
   * Owner: `4d:<4Degrees user id>` for a user in the mapping's user map, else the email
   * (lower-case), or null; `undefined` = this side holds the default owner standing in for an
   * unmatched user, so it has no opinion (see `ownerKeyOf*`).
   */
  owner?: string | null;
  /** `undefined` = this side cannot tell (HighLevel with no close-date field and no native one). */
  closeDate?: string | null;
  /** Primary contact email (lower-case); `undefined` = this side cannot tell. */
  contact?: string | null;
  /** Extra fields by mapping key. */
  fields: Record<string, FieldValue>;
  /** `fd:<pass reason id>`, `text:<reason>`, null (none); `undefined` = not known here (extras.ts). */
  lostReason?: string | null;
  /** The deal team / followers as sorted user emails; `undefined` = not known here (extras.ts). */
  team?: string[];
}

export type Translation =
  { ok: true; canonical: Canonical } | { ok: false; reason: string; detail: Record<string, unknown> };

/** Everything the 4Degrees translations need besides the mapping. */
export interface FourDegreesContext {
  pipelines: Pipeline[];
  users: User[];
}

/** Everything the HighLevel translations need besides the mapping. */
export interface HighLevelContext {
  users: HlUser[];
  /** The location's API carries `forecastExpectedCloseDate` (`OpportunityCrm.nativeCloseDate`). */
  nativeCloseDate: boolean;
}

/**
 * Where HighLevel keeps the close date: the mapping's custom field when it names one (an account
 * that moved to v3 keeps its dates there), else the native forecast field when the API has one,
 * else nowhere (not synced).
 */
export function closeDateSource(mapping: Mapping, nativeCloseDate: boolean): "field" | "native" | null {
  return mapping.closeDateFieldId ? "field" : nativeCloseDate ? "native" : null;
}

/** The close date HighLevel holds for `opp` (`undefined`: it holds none, see `closeDateSource`). */
function hlCloseDate(opp: Opportunity, mapping: Mapping, nativeCloseDate: boolean): string | null | undefined {
  const source = closeDateSource(mapping, nativeCloseDate);
  if (source === "field") return normaliseDate(customFieldValue(opp, mapping.closeDateFieldId));
  if (source === "native") return normaliseDate(opp.forecastExpectedCloseDate);
  return undefined;
}

const lower = (s: string | null | undefined): string | null => (s ? s.trim().toLowerCase() : null);

/** How a user of one side was matched to a user of the other. */
export interface UserMatch {
  id: string;
  via: "map" | "email" | "default";
}

/** A user as the matcher sees it (4Degrees and HighLevel users both fit). */
export interface MatchableUser {
  id: string;
  email?: string | null;
  deleted?: boolean | null;
}

/**
 * The user on `target` that stands for `user` of the other side: the mapping's user map first,
 * then the same email (deleted users never match), then the mapping's default owner for `target`
 * (unless `useDefault` is false, e.g. for followers); null when nothing applies.
 */
export function matchUser(
  mapping: Pick<Mapping, "users" | "defaultOwner">,
  target: "highlevel" | "fourdegrees",
  user: { id?: string | null; email?: string | null },
  candidates: readonly MatchableUser[],
  options: { useDefault?: boolean } = {},
): UserMatch | null {
  const alive = (id: string | undefined) =>
    id !== undefined && candidates.some((u) => u.id === id && !u.deleted) ? id : undefined;
  if (user.id) {
    const pair = mapping.users.find((p) =>
      target === "highlevel" ? p.fourdegreesUserId === user.id : p.highlevelUserId === user.id,
    );
    const mapped = alive(target === "highlevel" ? pair?.highlevelUserId : pair?.fourdegreesUserId);
    if (mapped) return { id: mapped, via: "map" };
  }
  const email = lower(user.email);
  const byEmail = email ? candidates.find((u) => lower(u.email) === email && !u.deleted) : undefined;
  if (byEmail) return { id: byEmail.id, via: "email" };
  const fallback = options.useDefault === false ? undefined : alive(mapping.defaultOwner[target]);
  return fallback ? { id: fallback, via: "default" } : null;
}

/** The mapping's pipeline pair for a 4Degrees pipeline. */
export function pairForDeal(mapping: Mapping, pipelineId: string | null): PipelinePair | undefined {
  return mapping.pipelines.find((p) => p.fourdegreesPipelineId === pipelineId);
}

/** The mapping's pipeline pair for a HighLevel pipeline in a location. */
export function pairForOpportunity(
  mapping: Mapping,
  locationId: string,
  pipelineId: string | null | undefined,
): PipelinePair | undefined {
  return mapping.pipelines.find((p) => p.highlevelLocationId === locationId && p.highlevelPipelineId === pipelineId);
}

/** A failed translation's detail names the record, so the review list and events can show it by name. */
const named = (t: Translation, name: string | null | undefined): Translation =>
  t.ok || !name ? t : { ...t, detail: { name, ...t.detail } };

/** Translates a 4Degrees deal into the canonical record. */
export function fromDeal(deal: Deal, mapping: Mapping, ctx: FourDegreesContext): Translation {
  return named(translateDeal(deal, mapping, ctx), deal.name);
}

function translateDeal(deal: Deal, mapping: Mapping, ctx: FourDegreesContext): Translation {
  const pair = pairForDeal(mapping, deal.pipeline.id);
  if (!pair)
    return {
      ok: false,
      reason: `4Degrees pipeline ${deal.pipeline.id ?? deal.pipeline.name ?? "?"} is not mapped to a HighLevel pipeline`,
      detail: { pipelineId: deal.pipeline.id },
    };
  const pipeline = ctx.pipelines.find((p) => p.id === pair.fourdegreesPipelineId);
  const stage = pipeline?.stages.find((s) => s.id === deal.stage.id);
  if (!stage)
    return {
      ok: false,
      reason: `4Degrees stage ${deal.stage.id ?? "?"} is not a stage of pipeline ${pair.fourdegreesPipelineId}`,
      detail: { stageId: deal.stage.id },
    };
  let stageKey: string | null = null;
  if (stage.kind === "open") {
    if (!pair.stages.some((s) => s.fourdegrees === stage.id))
      return {
        ok: false,
        reason: `4Degrees stage "${stage.name}" (${stage.id}) has no HighLevel stage in the mapping`,
        detail: { stageId: stage.id, stageName: stage.name },
      };
    stageKey = stage.id;
  }
  if (
    deal.value &&
    deal.value.amountMinor !== 0 &&
    deal.value.currency !== mapping.currency &&
    mapping.directions.value !== "off"
  )
    return {
      ok: false,
      reason: `deal value is in ${deal.value.currency}; the HighLevel location uses ${mapping.currency}`,
      detail: { currency: deal.value.currency },
    };
  const owner = ownerKeyOfFourDegrees(mapping, deal.owner, ctx.users);
  const canonical: Canonical = {
    name: deal.name,
    pipeline: pair.fourdegreesPipelineId,
    stage: stageKey,
    status: stage.kind,
    value: deal.value && deal.value.amountMinor !== 0 ? deal.value.amountMinor : null,
    currency: deal.value && deal.value.amountMinor !== 0 ? deal.value.currency : null,
    ...(owner === undefined ? {} : { owner }),
    closeDate: deal.expectedCloseDate,
    fields: Object.fromEntries(
      mapping.fields.map((f) => [f.key, normaliseFieldValue(deal.fields[f.fourdegreesFieldId])]),
    ),
  };
  const contactEmail = lower(deal.contacts[0]?.email);
  if (contactEmail) canonical.contact = contactEmail;
  return { ok: true, canonical };
}

/** The value of one HighLevel custom field on an opportunity (`undefined` when absent). */
export function customFieldValue(opp: Opportunity, fieldId: string | null): unknown {
  if (!fieldId) return undefined;
  return opp.customFields.find((f) => f.id === fieldId)?.value;
}

/** The 4Degrees deal id an opportunity carries in the mapping's external-id field, if any. */
export function externalIdOf(opp: Opportunity, mapping: Mapping): string | null {
  const v = customFieldValue(opp, mapping.externalIdFieldId);
  return typeof v === "string" && v.length > 0 ? v : null;
}

/** Translates a HighLevel opportunity (of `locationId`) into the canonical record. */
export function fromOpportunity(
  opp: Opportunity,
  locationId: string,
  mapping: Mapping,
  ctx: HighLevelContext,
): Translation {
  return named(translateOpportunity(opp, locationId, mapping, ctx), opp.name);
}

function translateOpportunity(
  opp: Opportunity,
  locationId: string,
  mapping: Mapping,
  ctx: HighLevelContext,
): Translation {
  const pair = pairForOpportunity(mapping, locationId, opp.pipelineId);
  if (!pair)
    return {
      ok: false,
      reason: `HighLevel pipeline ${opp.pipelineId ?? "?"} is not mapped to a 4Degrees pipeline`,
      detail: { pipelineId: opp.pipelineId },
    };
  const raw = opp.status;
  let status: Canonical["status"];
  if (raw === "open" || raw === "won" || raw === "lost") status = raw;
  else if (raw === "abandoned") status = mapping.abandonedAs;
  else return { ok: false, reason: `HighLevel status "${raw}" is unknown`, detail: { status: raw } };
  let stageKey: string | null = null;
  if (status === "open") {
    const stagePair = pair.stages.find((s) => s.highlevel === opp.pipelineStageId);
    if (!stagePair)
      return {
        ok: false,
        reason: `HighLevel stage ${opp.pipelineStageId ?? "?"} has no 4Degrees stage in the mapping`,
        detail: { stageId: opp.pipelineStageId },
      };
    stageKey = stagePair.fourdegrees;
  }
  const amount =
    typeof opp.monetaryValue === "number" && opp.monetaryValue !== 0
      ? toMinor(opp.monetaryValue, mapping.currency)
      : null;
  const owner = ownerKeyOfHighLevel(mapping, opp.assignedTo, ctx.users);
  const canonical: Canonical = {
    name: opp.name ?? "",
    pipeline: pair.fourdegreesPipelineId,
    stage: stageKey,
    status,
    value: amount,
    currency: amount === null ? null : mapping.currency,
    ...(owner === undefined ? {} : { owner }),
    contact: lower(opp.contact?.email),
    fields: Object.fromEntries(
      mapping.fields.map((f) => [
        f.key,
        fromHighLevelValue(f, normaliseFieldValue(customFieldValue(opp, f.highlevelFieldId))),
      ]),
    ),
  };
  const closeDate = hlCloseDate(opp, mapping, ctx.nativeCloseDate);
  if (closeDate !== undefined) canonical.closeDate = closeDate;
  return { ok: true, canonical };
}

/** A canonical record as flat comparable keys (`field.<key>` for extra fields). */
export function flatten(c: Canonical): Flat {
  const out: Flat = {
    name: c.name,
    pipeline: c.pipeline,
    stage: c.stage,
    status: c.status,
    value: c.value,
    currency: c.currency,
  };
  if (c.owner !== undefined) out["owner"] = c.owner;
  if (c.closeDate !== undefined) out["closeDate"] = c.closeDate;
  if (c.contact !== undefined) out["contact"] = c.contact;
  if (c.lostReason !== undefined) out["lostReason"] = c.lostReason;
  if (c.team !== undefined) out["team"] = c.team;
  for (const [k, v] of Object.entries(c.fields)) out[`field.${k}`] = v;
  return out;
}

/** Rebuilds a canonical record from flat keys (the inverse of `flatten`). */
export function unflatten(flat: Flat): Canonical {
  const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
  const num = (v: unknown): number | null => (typeof v === "number" ? v : null);
  const status = flat["status"] === "won" || flat["status"] === "lost" ? flat["status"] : "open";
  const fields: Record<string, FieldValue> = {};
  for (const [k, v] of Object.entries(flat)) if (k.startsWith("field.")) fields[k.slice(6)] = normaliseFieldValue(v);
  const out: Canonical = {
    name: str(flat["name"]) ?? "",
    pipeline: str(flat["pipeline"]) ?? "",
    stage: str(flat["stage"]),
    status,
    value: num(flat["value"]),
    currency: str(flat["currency"]),
    fields,
  };
  if ("owner" in flat) out.owner = str(flat["owner"]);
  if ("closeDate" in flat) out.closeDate = str(flat["closeDate"]);
  if ("contact" in flat) out.contact = str(flat["contact"]);
  if ("lostReason" in flat) out.lostReason = str(flat["lostReason"]);
  if (Array.isArray(flat["team"])) out.team = flat["team"].filter((e): e is string => typeof e === "string");
  return out;
}

/** The mapping direction that governs a flat key. */
export function directionOf(mapping: Mapping, key: string): Direction {
  if (key.startsWith("field.")) return mapping.fields.find((f) => f.key === key.slice(6))?.direction ?? "off";
  const core: Record<string, CoreField> = {
    name: "name",
    pipeline: "stage",
    stage: "stage",
    status: "status",
    value: "value",
    currency: "value",
    owner: "owner",
    closeDate: "closeDate",
    contact: "contact",
    lostReason: "status",
    team: "team",
  };
  const field = core[key];
  // A close date HighLevel cannot hold never reaches the merge: that side's record omits the key.
  return field ? mapping.directions[field] : "off";
}

/** What a write could not carry (e.g. an owner with no user on the target side). */
export interface WriteBuild<T> {
  body: T;
  skipped: Array<{ field: string; reason: string }>;
}

/** The HighLevel stage the pair maps a closed status to, if any (`highlevelWonStageId` / `highlevelLostStageId`). */
function hlClosedStage(pair: PipelinePair, status: Canonical["status"]): string | null {
  return status === "won" ? pair.highlevelWonStageId : status === "lost" ? pair.highlevelLostStageId : null;
}

function hlStageFor(pair: PipelinePair, c: Canonical, currentStageId: string | null | undefined): string | undefined {
  if (c.stage) return pair.stages.find((s) => s.fourdegrees === c.stage)?.highlevel;
  // Closed: HighLevel keeps a stage next to the status — the mapped won/lost stage, else the
  // current one (never reset), else (a create, which needs one) the first mapped stage.
  return hlClosedStage(pair, c.status) ?? currentStageId ?? pair.stages[0]?.highlevel;
}

function hlOwner(
  c: Canonical,
  mapping: Mapping,
  users: HlUser[],
  skipped: WriteBuild<unknown>["skipped"],
): string | null | undefined {
  if (c.owner === undefined) return undefined;
  if (c.owner === null) return null;
  const match = matchUser(mapping, "highlevel", ownerRef(c.owner), users);
  if (!match || match.via === "default")
    skipped.push({
      field: "owner",
      reason: `no HighLevel user matches ${c.owner}${match ? "; assigned the default owner" : ""}`,
    });
  return match?.id;
}

function hlCustomFields(
  keys: ReadonlySet<string>,
  c: Canonical,
  mapping: Mapping,
  skipped: WriteBuild<unknown>["skipped"],
): CustomFieldInput[] {
  const out: CustomFieldInput[] = [];
  if (keys.has("closeDate") && mapping.closeDateFieldId)
    out.push({ id: mapping.closeDateFieldId, field_value: c.closeDate ?? null });
  for (const f of mapping.fields) {
    if (!keys.has(`field.${f.key}`)) continue;
    const v = toHighLevelValue(f, c.fields[f.key] ?? null);
    if (v.ok) out.push({ id: f.highlevelFieldId, field_value: v.value });
    else skipped.push({ field: `field.${f.key}`, reason: unmappedReason(f, "HighLevel", v.unmapped) });
  }
  return out;
}

/** The 4Degrees custom field values for the written keys of `c` (unmapped picklist values are skipped). */
function fdFields(
  keys: ReadonlySet<string>,
  c: Canonical,
  mapping: Mapping,
  skipped: WriteBuild<unknown>["skipped"],
  options: { omitEmpty: boolean },
): Record<string, FieldValue> {
  const fields: Record<string, FieldValue> = {};
  for (const f of mapping.fields) {
    const value = c.fields[f.key] ?? null;
    if (!keys.has(`field.${f.key}`) || (options.omitEmpty && value === null)) continue;
    const v = toFourDegreesValue(f, value);
    if (v.ok) fields[f.fourdegreesFieldId] = v.value;
    else skipped.push({ field: `field.${f.key}`, reason: unmappedReason(f, "4Degrees", v.unmapped) });
  }
  return fields;
}

/** The body that creates `c` as a HighLevel opportunity for 4Degrees deal `fdDealId`. */
export function toOpportunityCreate(
  c: Canonical,
  mapping: Mapping,
  ctx: HighLevelContext & { contactId: string; fdDealId: string },
): WriteBuild<OpportunityCreate> {
  const pair = pairForDeal(mapping, c.pipeline);
  if (!pair) throw new Error(`canonical pipeline ${c.pipeline} has no pair (translate before writing)`);
  const skipped: WriteBuild<unknown>["skipped"] = [];
  const keys = new Set(Object.keys(flatten(c)).filter((k) => allowsTo(directionOf(mapping, k), "highlevel")));
  const body: OpportunityCreate = {
    pipelineId: pair.highlevelPipelineId,
    locationId: pair.highlevelLocationId,
    name: c.name,
    status: c.status,
    contactId: ctx.contactId,
  };
  const stage = hlStageFor(pair, c, null);
  if (stage) body.pipelineStageId = stage;
  if (keys.has("value") && c.value !== null) body.monetaryValue = fromMinor(c.value, c.currency ?? mapping.currency);
  if (keys.has("owner") && c.owner) {
    const owner = hlOwner(c, mapping, ctx.users, skipped);
    if (owner) body.assignedTo = owner;
  }
  if (keys.has("closeDate") && c.closeDate && closeDateSource(mapping, ctx.nativeCloseDate) === "native")
    body.forecastExpectedCloseDate = c.closeDate;
  const custom = hlCustomFields(keys, c, mapping, skipped).filter((f) => f.field_value !== null);
  if (mapping.externalIdFieldId) custom.push({ id: mapping.externalIdFieldId, field_value: ctx.fdDealId });
  if (custom.length > 0) body.customFields = custom;
  return { body, skipped };
}

/** The `PUT /opportunities/{id}` body for the changed flat keys of `c`. */
export function toOpportunityUpdate(
  keys: ReadonlySet<string>,
  c: Canonical,
  mapping: Mapping,
  ctx: HighLevelContext & { currentStageId: string | null | undefined; contactId?: string },
): WriteBuild<OpportunityUpdate> {
  const pair = pairForDeal(mapping, c.pipeline);
  if (!pair) throw new Error(`canonical pipeline ${c.pipeline} has no pair (translate before writing)`);
  const skipped: WriteBuild<unknown>["skipped"] = [];
  const body: OpportunityUpdate = {};
  if (keys.has("name")) body.name = c.name;
  if (keys.has("status")) body.status = c.status;
  // Closing moves the opportunity to the mapped won/lost stage when the pair has one.
  if (keys.has("pipeline") || keys.has("stage") || (keys.has("status") && hlClosedStage(pair, c.status) !== null)) {
    body.pipelineId = pair.highlevelPipelineId;
    const stage = hlStageFor(pair, c, keys.has("pipeline") ? null : ctx.currentStageId);
    if (stage) body.pipelineStageId = stage;
  }
  if (keys.has("value") || keys.has("currency"))
    body.monetaryValue = c.value === null ? 0 : fromMinor(c.value, c.currency ?? mapping.currency);
  if (keys.has("owner")) {
    const owner = hlOwner(c, mapping, ctx.users, skipped);
    if (owner !== undefined) body.assignedTo = owner;
  }
  if (keys.has("contact") && ctx.contactId) body.contactId = ctx.contactId;
  if (keys.has("closeDate") && closeDateSource(mapping, ctx.nativeCloseDate) === "native")
    body.forecastExpectedCloseDate = c.closeDate ?? null;
  const custom = hlCustomFields(keys, c, mapping, skipped);
  if (custom.length > 0) body.customFields = custom;
  return { body, skipped };
}

function fdStageFor(pair: PipelinePair, c: Canonical, ctx: FourDegreesContext): string | undefined {
  if (c.status === "open") return c.stage ?? undefined;
  const chosen = c.status === "won" ? pair.wonStageId : pair.lostStageId;
  if (chosen) return chosen;
  return ctx.pipelines.find((p) => p.id === pair.fourdegreesPipelineId)?.stages.find((s) => s.kind === c.status)?.id;
}

function fdOwner(
  c: Canonical,
  mapping: Mapping,
  users: User[],
  skipped: WriteBuild<unknown>["skipped"],
): DealPatch["owner"] {
  if (c.owner === undefined) return undefined;
  if (c.owner === null) return null;
  const match = matchUser(mapping, "fourdegrees", ownerRef(c.owner), users);
  const user = match ? users.find((u) => u.id === match.id) : undefined;
  if (!user || match?.via === "default")
    skipped.push({
      field: "owner",
      reason: `no 4Degrees user matches ${c.owner}${user ? "; assigned the default owner" : ""}`,
    });
  return user ? { id: user.id, email: user.email, name: user.name } : undefined;
}

/** The 4Degrees content that creates `c` for HighLevel opportunity `hlOpportunityId`. */
export function toDealContent(
  c: Canonical,
  mapping: Mapping,
  ctx: FourDegreesContext & { hlOpportunityId: string },
): WriteBuild<DealContent> {
  const pair = pairForDeal(mapping, c.pipeline);
  if (!pair) throw new Error(`canonical pipeline ${c.pipeline} has no pair (translate before writing)`);
  const skipped: WriteBuild<unknown>["skipped"] = [];
  const keys = new Set(Object.keys(flatten(c)).filter((k) => allowsTo(directionOf(mapping, k), "fourdegrees")));
  const stage = fdStageFor(pair, c, ctx);
  if (!stage) throw new Error(`4Degrees pipeline ${pair.fourdegreesPipelineId} has no ${c.status} stage`);
  const owner = keys.has("owner") ? fdOwner(c, mapping, ctx.users, skipped) : null;
  const fields = fdFields(keys, c, mapping, skipped, { omitEmpty: true });
  const body: DealContent = {
    name: c.name,
    pipeline: { id: pair.fourdegreesPipelineId, name: null },
    stage: { id: stage, name: null },
    status: null,
    owner: owner ?? null,
    value:
      keys.has("value") && c.value !== null ? { amountMinor: c.value, currency: c.currency ?? mapping.currency } : null,
    expectedCloseDate: keys.has("closeDate") ? (c.closeDate ?? null) : null,
    companyId: null,
    contacts: [],
    tags: [],
    fields,
    externalRefs: [{ system: "highlevel", id: ctx.hlOpportunityId }],
  };
  return { body, skipped };
}

/** The 4Degrees patch for the changed flat keys of `c`. */
export function toDealPatch(
  keys: ReadonlySet<string>,
  c: Canonical,
  mapping: Mapping,
  ctx: FourDegreesContext,
): WriteBuild<DealPatch> {
  const pair = pairForDeal(mapping, c.pipeline);
  if (!pair) throw new Error(`canonical pipeline ${c.pipeline} has no pair (translate before writing)`);
  const skipped: WriteBuild<unknown>["skipped"] = [];
  const patch: DealPatch = {};
  if (keys.has("name")) patch.name = c.name;
  if (keys.has("pipeline")) patch.pipeline = { id: pair.fourdegreesPipelineId, name: null };
  if (keys.has("pipeline") || keys.has("stage") || keys.has("status")) {
    const stage = fdStageFor(pair, c, ctx);
    if (stage) patch.stage = { id: stage, name: null };
    else
      skipped.push({
        field: "status",
        reason: `4Degrees pipeline ${pair.fourdegreesPipelineId} has no ${c.status} stage`,
      });
  }
  if (keys.has("value") || keys.has("currency"))
    patch.value = c.value === null ? null : { amountMinor: c.value, currency: c.currency ?? mapping.currency };
  if (keys.has("owner")) {
    const owner = fdOwner(c, mapping, ctx.users, skipped);
    if (owner !== undefined) patch.owner = owner;
  }
  if (keys.has("closeDate")) patch.expectedCloseDate = c.closeDate ?? null;
  const fields = fdFields(keys, c, mapping, skipped, { omitEmpty: false });
  if (Object.keys(fields).length > 0) patch.fields = fields;
  return { body: patch, skipped };
}

/** True when `direction` lets a change flow to `target`. */
export function allowsTo(direction: Direction, target: "highlevel" | "fourdegrees"): boolean {
  return direction === "both" || direction === (target === "highlevel" ? "to_highlevel" : "to_fourdegrees");
}
