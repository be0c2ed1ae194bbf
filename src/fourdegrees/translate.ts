/**
 * Translation between the ASSUMED 4Degrees wire shapes (schemas.ts) and the engine's port shapes
 * (src/domain/port.ts). Pure functions; the only place that knows both.
 */
import { AppError } from "../lib/errors.ts";
import type {
  Actor,
  ChangeEvent,
  Deal,
  DealContent,
  DealPatch,
  FieldDef,
  CrmContact,
  Note,
  Pipeline,
  User,
} from "../domain/port.ts";
import {
  RawDeal,
  type RawActor,
  type RawContact,
  type RawDealCreate,
  type RawDealPatch,
  type RawField,
  RawNote,
  type RawPipeline,
  type RawUser,
  RawWebhookEnvelope,
  type RawAttachment,
} from "./schemas.ts";
import type { Attachment } from "../domain/attachments.ts";

/** 4Degrees' `api_key` actor is an integration in the port's vocabulary. */
export function actorFromRaw(raw: RawActor | null | undefined): Actor | null {
  if (!raw) return null;
  return { type: raw.type === "api_key" ? "integration" : raw.type, id: raw.id ?? null };
}

/** Normalises a timestamp to `…Z` UTC (4Degrees sends RFC 3339 UTC; a zone offset is converted). */
function utc(ts: string): string {
  return new Date(ts).toISOString();
}

export function dealFromRaw(raw: RawDeal): Deal {
  return {
    id: raw.id,
    version: String(raw.version),
    name: raw.name,
    pipeline: { id: raw.pipeline_id, name: null },
    stage: { id: raw.stage_id, name: null },
    status: raw.status,
    owner: raw.owner_id ? { id: raw.owner_id, email: null, name: null } : null,
    value: raw.value ? { amountMinor: raw.value.amount_minor, currency: raw.value.currency } : null,
    expectedCloseDate: raw.expected_close_date ?? null,
    companyId: raw.company_id ?? null,
    contacts: (raw.contact_ids ?? []).map((id) => ({ id, email: null, name: null })),
    tags: raw.tags ?? [],
    fields: raw.fields ?? {},
    externalRefs: raw.external_refs ?? [],
    lostReason:
      raw.pass_reason_id || raw.pass_reason_text
        ? { id: raw.pass_reason_id ?? null, text: raw.pass_reason_text ?? null }
        : null,
    team: (raw.team_ids ?? []).map((id) => ({ id, email: null, name: null })),
    createdAt: utc(raw.created_at),
    updatedAt: utc(raw.updated_at),
    archivedAt: raw.archived_at ? utc(raw.archived_at) : null,
    actor: actorFromRaw(raw.actor),
  };
}

export function noteFromRaw(raw: RawNote): Note {
  return {
    id: raw.id,
    dealId: raw.deal_id,
    body: raw.body,
    authorId: raw.author_id ?? null,
    createdAt: utc(raw.created_at),
    updatedAt: raw.updated_at ? utc(raw.updated_at) : null,
  };
}

export function attachmentFromRaw(raw: RawAttachment): Attachment {
  return {
    id: raw.id,
    dealId: raw.deal_id,
    fileName: raw.file_name,
    contentType: raw.content_type,
    size: raw.size,
    authorId: raw.author_id ?? null,
    createdAt: utc(raw.created_at),
    downloadUrl: raw.download_url ?? null,
  };
}

export function pipelineFromRaw(raw: RawPipeline): Pipeline {
  return {
    id: raw.id,
    name: raw.name,
    stages: [...raw.stages]
      .sort((a, b) => a.position - b.position)
      .map((s) => ({ id: s.id, name: s.name, position: s.position, kind: s.kind })),
  };
}

export function userFromRaw(raw: RawUser): User {
  return { id: raw.id, email: raw.email ?? null, name: raw.name ?? null };
}

export function contactFromRaw(raw: RawContact): CrmContact {
  const built = [raw.first_name, raw.last_name].filter((s) => s).join(" ");
  return { id: raw.id, name: raw.name || built || null, email: raw.email ?? null, phone: raw.phone ?? null };
}

export function fieldFromRaw(raw: RawField): FieldDef {
  return { id: raw.id, name: raw.name, type: raw.type, readOnly: raw.read_only ?? false, options: raw.options ?? [] };
}

/** An id the 4Degrees API needs, or a clear permanent error naming what was only known by name. */
function requireId(ref: { id: string | null; name: string | null } | null, what: string): string {
  if (ref?.id) return ref.id;
  throw new AppError(
    "unprocessable",
    `4Degrees needs a ${what} id${ref?.name ? ` (got only the name "${ref.name}"; resolve it through the account's mapping first)` : ""}`,
  );
}

function patchToRaw(patch: DealPatch): RawDealPatch {
  const out: RawDealPatch = {};
  if (patch.name !== undefined) out.name = patch.name;
  if (patch.pipeline !== undefined) out.pipeline_id = requireId(patch.pipeline, "pipeline");
  if (patch.stage !== undefined) out.stage_id = requireId(patch.stage, "stage");
  if (patch.owner !== undefined) out.owner_id = patch.owner === null ? null : requireId(patch.owner, "owner (user)");
  if (patch.value !== undefined)
    out.value = patch.value === null ? null : { amount_minor: patch.value.amountMinor, currency: patch.value.currency };
  if (patch.expectedCloseDate !== undefined) out.expected_close_date = patch.expectedCloseDate;
  if (patch.companyId !== undefined) out.company_id = patch.companyId;
  if (patch.contacts !== undefined) out.contact_ids = patch.contacts.map((c) => requireId(c, "contact"));
  if (patch.tags !== undefined) out.tags = patch.tags;
  if (patch.fields !== undefined) out.fields = patch.fields;
  if (patch.externalRefs !== undefined) out.external_refs = patch.externalRefs;
  if (patch.lostReason !== undefined) {
    out.pass_reason_id = patch.lostReason?.id ?? null;
    out.pass_reason_text = patch.lostReason?.text ?? null;
  }
  if (patch.team !== undefined) out.team_ids = [...new Set(patch.team.map((p) => requireId(p, "team member (user)")))];
  return out;
}

/** Body of `PATCH /deals/{id}` for a port patch (only the fields present). */
export function dealPatchToRaw(patch: DealPatch): RawDealPatch {
  return patchToRaw(patch);
}

/** Body of `POST /deals` for port content (`status` is derived from the stage by 4Degrees). */
export function dealCreateToRaw(content: DealContent): RawDealCreate {
  const { status: _derived, lostReason, ...rest } = content;
  // A reason is only allowed on a lost deal; "none" on a create is simply left out.
  const raw = patchToRaw(lostReason ? { ...rest, lostReason } : rest);
  return {
    ...raw,
    name: content.name,
    pipeline_id: requireId(content.pipeline, "pipeline"),
    stage_id: requireId(content.stage, "stage"),
  };
}

/** Neutral names for the fields a webhook's `changes` map names. */
const CHANGE_NAMES: Record<string, string> = {
  name: "name",
  pipeline_id: "pipeline",
  stage_id: "stage",
  status: "status",
  owner_id: "owner",
  value: "value",
  expected_close_date: "expectedCloseDate",
  company_id: "companyId",
  contact_ids: "contacts",
  tags: "tags",
  fields: "fields",
  external_refs: "externalRefs",
  pass_reason_id: "lostReason",
  pass_reason_text: "lostReason",
  team_ids: "team",
  body: "body",
  archived_at: "archivedAt",
};

/**
 * Translates a verified webhook body into a `ChangeEvent`. Throws `AppError("bad_request")` when
 * the body is not a 4Degrees event. The embedded object is translated when it parses, else left
 * `null` (the engine re-reads by id anyway).
 */
export function changeEventFromRaw(body: unknown): ChangeEvent {
  const parsed = RawWebhookEnvelope.safeParse(body);
  if (!parsed.success)
    throw new AppError("bad_request", `not a 4Degrees webhook event: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const env = parsed.data;
  const object = env.data.object;
  const objectId = typeof object["id"] === "string" ? object["id"] : null;
  if (!objectId) throw new AppError("bad_request", "4Degrees webhook event has no data.object.id");
  const changes: Record<string, [unknown, unknown]> = {};
  for (const [field, pair] of Object.entries(env.changes ?? {})) changes[CHANGE_NAMES[field] ?? field] = pair;
  const base = {
    id: env.id,
    type: env.type,
    occurredAt: utc(env.created_at),
    scopeId: env.workspace_id,
    actor: actorFromRaw(env.actor),
    changes,
  };
  if (env.type.startsWith("note.")) {
    const note = RawNote.safeParse(object);
    const dealId = note.success ? note.data.deal_id : typeof object["deal_id"] === "string" ? object["deal_id"] : null;
    if (!dealId) throw new AppError("bad_request", "4Degrees note event has no data.object.deal_id");
    return {
      ...base,
      record: { kind: "note", id: objectId, dealId },
      deal: null,
      note: note.success ? noteFromRaw(note.data) : null,
    };
  }
  if (env.type.startsWith("attachment.")) {
    const dealId = typeof object["deal_id"] === "string" ? object["deal_id"] : null;
    if (!dealId) throw new AppError("bad_request", "4Degrees attachment event has no data.object.deal_id");
    // The object's signed URL may have expired by the time a retry arrives: the job re-lists.
    return { ...base, record: { kind: "attachment", id: objectId, dealId }, deal: null, note: null };
  }
  const deal = RawDeal.safeParse(object);
  return {
    ...base,
    record: { kind: "deal", id: objectId },
    deal: deal.success ? dealFromRaw(deal.data) : null,
    note: null,
  };
}
