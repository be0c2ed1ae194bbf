/**
 * Resolving a `fourdegrees.import_row` row by name: its deal list, stage, status, owner and fields
 * matched against the account's mapping and the live structure (HighLevel names first, then
 * 4Degrees'), into the canonical record the import job writes (import-rows.ts).
 */
import type { Mapping, PipelinePair } from "../../domain/mapping-config.ts";
import type { FieldValue, Pipeline } from "../../domain/port.ts";
import type { HlPipeline, HlUser } from "../../highlevel/port.ts";
import type { QueueMessage } from "../../queue/messages.ts";
import { allowsTo, directionOf, flatten, normaliseFieldValue, type Canonical } from "../engine/mapping.ts";

/** A `fourdegrees.import_row` queue message. */
export type ImportRow = Extract<QueueMessage, { kind: "fourdegrees.import_row" }>;

/** A row resolved against the mapping: its pipeline pair, canonical record and the keys it carries. */
export type ResolvedRow =
  | {
      ok: true;
      pair: PipelinePair;
      canonical: Canonical;
      keys: Set<string>;
      skipped: Array<{ field: string; reason: string }>;
    }
  | { ok: false; reason: string };

/** The live names a row is resolved against (4Degrees' are read only when HighLevel's do not match). */
export interface RowStructure {
  highlevel(locationId: string): Promise<HlPipeline[]>;
  fourdegrees(): Promise<Pipeline[] | null>;
  users(locationId: string): Promise<HlUser[]>;
}

/** Names compared as a user types them: case, edge and repeated spaces ignored. */
export const norm = (s: string | null | undefined) => (s ?? "").trim().toLowerCase().replace(/\s+/g, " ");

/**
 * Resolves the row's deal list, stage, status, owner and fields by name into the canonical record
 * of the mapping's pipeline pair. Pure but for the structure reads.
 */
export async function resolveRow(msg: ImportRow, mapping: Mapping, live: RowStructure): Promise<ResolvedRow> {
  const deal = msg.deal;
  const at = `line ${msg.line}`;
  // The deal list.
  let pair: PipelinePair | undefined;
  const listName = deal.pipeline.name;
  if (deal.pipeline.id) pair = mapping.pipelines.find((p) => p.fourdegreesPipelineId === deal.pipeline.id);
  else if (!listName) {
    if (mapping.pipelines.length !== 1)
      return {
        ok: false,
        reason: `${at}: the row names no deal list and the mapping pairs ${mapping.pipelines.length} (add a Pipeline column or ?pipeline=)`,
      };
    pair = mapping.pipelines[0];
  } else {
    for (const p of mapping.pipelines) {
      const hl = (await live.highlevel(p.highlevelLocationId)).find((x) => x.id === p.highlevelPipelineId);
      if (hl && norm(hl.name) === norm(listName)) pair = p;
    }
    if (!pair) {
      const fd = await live.fourdegrees();
      const named = fd?.find((x) => norm(x.name) === norm(listName));
      if (named) pair = mapping.pipelines.find((p) => p.fourdegreesPipelineId === named.id);
    }
  }
  if (!pair)
    return {
      ok: false,
      reason: `${at}: deal list "${listName ?? deal.pipeline.id ?? "?"}" is not mapped to a HighLevel pipeline`,
    };
  const hlPipeline = (await live.highlevel(pair.highlevelLocationId)).find((x) => x.id === pair.highlevelPipelineId);
  const listLabel = hlPipeline?.name ?? listName ?? pair.fourdegreesPipelineId;

  // The stage (and the status it implies).
  let stage: string | null = null;
  let status: Canonical["status"] | null = null;
  const stageName = deal.stage.name;
  if (stageName) {
    const hlStage = hlPipeline?.stages.find((s) => norm(s.name) === norm(stageName));
    const hlPair = hlStage ? pair.stages.find((s) => s.highlevel === hlStage.id) : undefined;
    if (hlPair) [stage, status] = [hlPair.fourdegrees, "open"];
    else if (hlStage && hlStage.id === pair.highlevelWonStageId) status = "won";
    else if (hlStage && hlStage.id === pair.highlevelLostStageId) status = "lost";
    else {
      const fdStage = (await live.fourdegrees())
        ?.find((p) => p.id === pair.fourdegreesPipelineId)
        ?.stages.find((s) => norm(s.name) === norm(stageName));
      if (fdStage?.kind === "open" && pair.stages.some((s) => s.fourdegrees === fdStage.id))
        [stage, status] = [fdStage.id, "open"];
      else if (fdStage && fdStage.kind !== "open") status = fdStage.kind;
      else if (fdStage || hlStage)
        return {
          ok: false,
          reason: `${at}: stage "${stageName}" of deal list "${listLabel}" has no stage pair in the mapping`,
        };
      else return { ok: false, reason: `${at}: stage "${stageName}" is not a stage of deal list "${listLabel}"` };
    }
  }
  // An explicit Status column closes the deal whatever stage it names.
  const rowStatus = deal.status === "abandoned" ? mapping.abandonedAs : deal.status;
  if (rowStatus === "won" || rowStatus === "lost") [stage, status] = [null, rowStatus];
  if (status === null)
    return {
      ok: false,
      reason: `${at}: the row has no stage${rowStatus === "open" ? " (status open needs one)" : ""}`,
    };

  if (
    deal.value &&
    deal.value.amountMinor !== 0 &&
    deal.value.currency !== mapping.currency &&
    mapping.directions.value !== "off"
  )
    return {
      ok: false,
      reason: `${at}: value is in ${deal.value.currency}; the HighLevel location uses ${mapping.currency}`,
    };

  const skipped: Array<{ field: string; reason: string }> = [];
  let owner: string | null = null;
  if (deal.owner?.email) owner = deal.owner.email.toLowerCase();
  else if (deal.owner?.name) {
    const wanted = norm(deal.owner.name);
    const users = (await live.users(pair.highlevelLocationId)).filter(
      (u) => !u.deleted && (norm(u.name) === wanted || norm(`${u.firstName ?? ""} ${u.lastName ?? ""}`) === wanted),
    );
    if (users.length === 1 && users[0]?.email) owner = users[0].email.toLowerCase();
    else
      skipped.push({
        field: "owner",
        reason:
          users.length > 1
            ? `${users.length} HighLevel users are named "${deal.owner.name}"`
            : `no HighLevel user is named "${deal.owner.name}"`,
      });
  }

  // Extra fields: a column whose header names the mapping entry (its key or 4Degrees field id).
  const fields: Record<string, FieldValue> = {};
  for (const f of mapping.fields) {
    const hit = Object.entries(deal.fields).find(
      ([header]) =>
        norm(header) === norm(f.key) ||
        norm(header) === norm(f.fourdegreesFieldId) ||
        norm(header).replace(/ /g, "_") === f.key,
    );
    if (hit) fields[f.key] = normaliseFieldValue(hit[1]);
  }
  const value = deal.value && deal.value.amountMinor !== 0 ? deal.value : null;
  const canonical: Canonical = {
    name: deal.name,
    pipeline: pair.fourdegreesPipelineId,
    stage,
    status,
    value: value?.amountMinor ?? null,
    currency: value?.currency ?? null,
    owner,
    closeDate: deal.expectedCloseDate,
    fields,
  };
  const contact = deal.contacts[0]?.email?.toLowerCase();
  if (contact) canonical.contact = contact;

  // The keys the row says something about: an empty cell leaves HighLevel's value as it is.
  const flat = flatten(canonical);
  const keys = new Set<string>(["name", "pipeline", "stage", "status"]);
  if (value) keys.add("value").add("currency");
  if (owner) keys.add("owner");
  if (canonical.closeDate) keys.add("closeDate");
  for (const k of Object.keys(fields)) keys.add(`field.${k}`);
  for (const k of keys) if (!(k in flat) || !allowsTo(directionOf(mapping, k), "highlevel")) keys.delete(k);
  return { ok: true, pair, canonical, keys, skipped };
}
