/**
 * The per-account mapping configuration: which 4Degrees deal list pairs with which HighLevel
 * pipeline, the stage map, the `abandoned` rule, the HighLevel custom fields that carry the close
 * date and the 4Degrees id, extra custom fields and a direction per field.
 *
 * Two validations, both naming the offending field:
 * 1. shape (`MappingSchema`, zod) — at the admin API and again when read from D1;
 * 2. against the live pipelines/stages (`validateMappingLive`) — at the admin API before saving.
 *
 * Why stage pairs are 1:1 and cover only *open* 4Degrees stages: a stage must translate the same way
 * in both directions or the canonical record would differ between sides forever (a ping-pong
 * write). Won/lost are HighLevel *statuses* but 4Degrees *stage kinds*, so closed deals map through
 * `status` and the pipeline's `wonStageId` / `lostStageId`, not through the stage map. HighLevel
 * keeps a stage next to the status: `highlevelWonStageId` / `highlevelLostStageId` name the
 * HighLevel stage a closed record is moved to (the default mapping pairs same-named stages, e.g.
 * 4Degrees "Closed" ↔ HighLevel "Closed"); without one, closing a deal leaves the HighLevel stage
 * where it is.
 */
import * as z from "zod";
import type { Pipeline } from "./port.ts";
import type { HlPipeline } from "../highlevel/port.ts";

/** Which way a field flows. */
export const DirectionSchema = z.enum(["both", "to_highlevel", "to_fourdegrees", "off"]);
export type Direction = z.infer<typeof DirectionSchema>;

const id = z.string().min(1).max(200);

export const StagePairSchema = z.object({
  /** A 4Degrees stage of kind `open`. */
  fourdegrees: id,
  /** A HighLevel pipeline stage id. */
  highlevel: id,
});
export type StagePair = z.infer<typeof StagePairSchema>;

/**
 * Which records of a pipeline pair sync (every condition set must hold; none set = all records).
 * `stages` are 4Degrees open-stage ids, `ownerIds` 4Degrees user ids (a HighLevel record's owner is
 * compared by the email of those users), `minValue` is in major units of the mapping's currency.
 * `fourdegreesTag` is judged on the 4Degrees deal, `highlevelField` on the HighLevel opportunity:
 * a record that has no such side yet does not meet that condition. See docs/sync.md#which-deals-sync.
 */
export const DealFilterSchema = z.object({
  stages: z.array(id).max(100).optional(),
  ownerIds: z.array(id).max(500).optional(),
  minValue: z.number().finite().nonnegative().optional(),
  fourdegreesTag: z.string().trim().min(1).max(200).optional(),
  highlevelField: z.object({ id, equals: z.string().max(500) }).optional(),
});
export type DealFilter = z.infer<typeof DealFilterSchema>;

/**
 * How an unlinked record is paired with an existing record on the other side before anything is
 * created (the engine's own creates are always found again — that is crash recovery, not matching):
 * `name_email` external id, then exact name + contact email (name alone when the deal has no
 * contact); `name` external id, then exact name; `external_id` the external id only; `none` no
 * pairing with records the engine did not create. Name keys apply in backfill only.
 */
export const MatchKeysSchema = z.enum(["name_email", "name", "external_id", "none"]);
export type MatchKeys = z.infer<typeof MatchKeysSchema>;

export const PipelinePairSchema = z.object({
  fourdegreesPipelineId: id,
  highlevelLocationId: id,
  highlevelPipelineId: id,
  stages: z.array(StagePairSchema).min(1, "map at least one stage"),
  /** The 4Degrees stage a HighLevel `won` moves the deal to (default: the first stage of kind won). */
  wonStageId: id.nullable().default(null),
  /** The 4Degrees stage a HighLevel `lost` moves the deal to (default: the first stage of kind lost). */
  lostStageId: id.nullable().default(null),
  /** The HighLevel stage a won deal is moved to next to status `won` (null: the stage is left as it is). */
  highlevelWonStageId: id.nullable().default(null),
  /** The HighLevel stage a lost deal is moved to next to status `lost` (null: the stage is left as it is). */
  highlevelLostStageId: id.nullable().default(null),
  /** Which deals of the pair sync (null: all of them). */
  filter: DealFilterSchema.nullable().default(null),
});
export type PipelinePair = z.infer<typeof PipelinePairSchema>;

/** A HighLevel lost reason and the 4Degrees pass reason it stands for (ids). */
export const LostReasonPairSchema = z.object({ fourdegrees: id, highlevel: id });
export type LostReasonPair = z.infer<typeof LostReasonPairSchema>;

export const ExtraFieldSchema = z.object({
  /** A stable name for this mapping entry (appears in events and conflicts). */
  key: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, "lowercase letters, digits and _ (max 40), starting with a letter"),
  fourdegreesFieldId: id,
  highlevelFieldId: id,
  direction: DirectionSchema.default("both"),
  /**
   * Option ↔ option pairs for picklist fields (empty: values are copied as they are). A value with
   * no pair is not written; the sync records it as a skipped field and the Mapping page lists it.
   */
  valueMap: z
    .array(z.object({ fourdegrees: z.string().min(1).max(200), highlevel: z.string().min(1).max(200) }))
    .max(200)
    .default([]),
});
export type ExtraField = z.output<typeof ExtraFieldSchema>;

/** One 4Degrees user ↔ HighLevel user pair of the owner map. */
export const UserPairSchema = z.object({ fourdegreesUserId: id, highlevelUserId: id });
export type UserPair = z.infer<typeof UserPairSchema>;

/** The core fields every mapping has, each with its own direction. */
export const CORE_FIELDS = ["name", "stage", "status", "value", "owner", "closeDate", "contact", "team"] as const;
export type CoreField = (typeof CORE_FIELDS)[number];

export const DirectionsSchema = z.object({
  name: DirectionSchema.default("both"),
  stage: DirectionSchema.default("both"),
  status: DirectionSchema.default("both"),
  value: DirectionSchema.default("both"),
  owner: DirectionSchema.default("both"),
  closeDate: DirectionSchema.default("both"),
  /**
   * The primary contact: HighLevel needs one on every opportunity (found or created by email), and
   * 4Degrees links contacts by id only, so by default it flows to HighLevel.
   */
  contact: DirectionSchema.default("to_highlevel"),
  /** HighLevel followers ↔ the 4Degrees deal team, matched through the users. */
  team: DirectionSchema.default("both"),
});

export const MappingSchema = z
  .object({
    version: z.literal(1).default(1),
    pipelines: z.array(PipelinePairSchema).min(1, "map at least one pipeline"),
    /** How HighLevel's `abandoned` (which 4Degrees lacks) is read: as `lost` (default) or as `open`. */
    abandonedAs: z.enum(["lost", "open"]).default("lost"),
    /** The HighLevel location's currency (opportunities carry a bare number). */
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, "ISO 4217 code, e.g. USD")
      .default("USD"),
    /**
     * HighLevel custom (date) field holding the 4Degrees expected close date. Optional: null means
     * HighLevel's native `forecastExpectedCloseDate` under API v3, and "not synced" under 2021-07-28
     * (which has no native close date). Named under v3, the field is still used (existing dates stay).
     */
    closeDateFieldId: id.nullable().default(null),
    /** HighLevel custom field holding the 4Degrees deal id (the lookup before any create). */
    externalIdFieldId: id.nullable().default(null),
    directions: DirectionsSchema.prefault({}),
    fields: z.array(ExtraFieldSchema).default([]),
    /** The owner map, consulted before matching users by email. */
    users: z.array(UserPairSchema).max(500).default([]),
    /** The owner each side gets when the other side's owner has no match (absent: the owner is skipped). */
    defaultOwner: z.object({ fourdegrees: id.optional(), highlevel: id.optional() }).prefault({}),
    /**
     * Lost reasons: HighLevel lost reason ↔ 4Degrees pass reason, by id. A reason not listed pairs
     * with the other side's reason of the same name (case-insensitive); with none it crosses as text.
     */
    lostReasons: z.array(LostReasonPairSchema).default([]),
    /** Notes: both ways by default. */
    notes: DirectionSchema.default("both"),
    /**
     * HighLevel FILE_UPLOAD custom field of the opportunity that holds the deal's attachments
     * (docs/sync.md "Attachments"); null = attachments are not synced.
     */
    attachmentsFieldId: id.nullable().default(null),
    /** Attachments: both ways by default (once `attachmentsFieldId` names the field). */
    attachments: DirectionSchema.default("both"),
    /** How unlinked records are paired with existing ones (see `MatchKeysSchema`). */
    matchKeys: MatchKeysSchema.default("name_email"),
  })
  .superRefine((m, ctx) => {
    const seen = new Map<string, string>();
    const once = (value: string, path: (string | number)[], what: string) => {
      const prior = seen.get(`${what}:${value}`);
      if (prior) ctx.addIssue({ code: "custom", path, message: `${what} ${value} is mapped twice (also at ${prior})` });
      else seen.set(`${what}:${value}`, path.join("."));
    };
    m.pipelines.forEach((p, i) => {
      once(p.fourdegreesPipelineId, ["pipelines", i, "fourdegreesPipelineId"], "4Degrees pipeline");
      once(
        `${p.highlevelLocationId}/${p.highlevelPipelineId}`,
        ["pipelines", i, "highlevelPipelineId"],
        "HighLevel pipeline",
      );
      p.stages.forEach((s, j) => {
        once(s.fourdegrees, ["pipelines", i, "stages", j, "fourdegrees"], "4Degrees stage");
        once(s.highlevel, ["pipelines", i, "stages", j, "highlevel"], "HighLevel stage");
      });
    });
    m.lostReasons.forEach((r, i) => {
      once(r.fourdegrees, ["lostReasons", i, "fourdegrees"], "4Degrees pass reason");
      once(r.highlevel, ["lostReasons", i, "highlevel"], "HighLevel lost reason");
    });
    m.fields.forEach((f, i) => {
      once(f.key, ["fields", i, "key"], "field key");
      once(f.highlevelFieldId, ["fields", i, "highlevelFieldId"], "HighLevel field");
      once(f.fourdegreesFieldId, ["fields", i, "fourdegreesFieldId"], "4Degrees field");
      if (f.highlevelFieldId === m.attachmentsFieldId)
        ctx.addIssue({
          code: "custom",
          path: ["fields", i, "highlevelFieldId"],
          message: "already used as attachmentsFieldId",
        });
      if (f.highlevelFieldId === m.closeDateFieldId || f.highlevelFieldId === m.externalIdFieldId)
        ctx.addIssue({
          code: "custom",
          path: ["fields", i, "highlevelFieldId"],
          message: "already used as closeDateFieldId or externalIdFieldId",
        });
      f.valueMap.forEach((v, j) => {
        once(`${f.key}:${v.fourdegrees}`, ["fields", i, "valueMap", j, "fourdegrees"], "4Degrees option");
        once(`${f.key}:${v.highlevel}`, ["fields", i, "valueMap", j, "highlevel"], "HighLevel option");
      });
    });
    m.users.forEach((u, i) => {
      once(u.fourdegreesUserId, ["users", i, "fourdegreesUserId"], "4Degrees user");
      once(u.highlevelUserId, ["users", i, "highlevelUserId"], "HighLevel user");
    });
    if (m.attachmentsFieldId && [m.closeDateFieldId, m.externalIdFieldId].includes(m.attachmentsFieldId))
      ctx.addIssue({
        code: "custom",
        path: ["attachmentsFieldId"],
        message: "already used as closeDateFieldId or externalIdFieldId",
      });
  });
export type Mapping = z.output<typeof MappingSchema>;
export type MappingInput = z.input<typeof MappingSchema>;

/** One validation problem, with the dotted path of the field it concerns. */
export interface MappingIssue {
  field: string;
  message: string;
}

/** Zod issues as `{field, message}` (the admin API's error details). */
export function mappingIssues(error: z.ZodError): MappingIssue[] {
  return error.issues.map((i) => ({ field: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/** The live structure a mapping is checked against. */
export interface LiveStructure {
  fourdegrees: Pipeline[];
  /** HighLevel pipelines per location id. */
  highlevel: Record<string, HlPipeline[]>;
  /** HighLevel custom field ids per location (when known; skipped when absent). */
  highlevelFieldIds?: Record<string, string[]>;
}

/**
 * Checks a shape-valid mapping against the live pipelines and stages. Returns every problem (an
 * empty list means valid). `locations` are the account's HighLevel locations.
 */
export function validateMappingLive(
  mapping: Mapping,
  live: LiveStructure,
  locations: readonly string[],
): MappingIssue[] {
  const issues: MappingIssue[] = [];
  mapping.pipelines.forEach((p, i) => {
    const at = (suffix: string) => `pipelines.${i}.${suffix}`;
    if (!locations.includes(p.highlevelLocationId))
      issues.push({
        field: at("highlevelLocationId"),
        message: `location ${p.highlevelLocationId} is not one of this account's locations (${locations.join(", ") || "none"})`,
      });
    const fd = live.fourdegrees.find((x) => x.id === p.fourdegreesPipelineId);
    if (!fd)
      issues.push({
        field: at("fourdegreesPipelineId"),
        message: `4Degrees pipeline ${p.fourdegreesPipelineId} does not exist`,
      });
    const hlPipes = live.highlevel[p.highlevelLocationId];
    const hl = hlPipes?.find((x) => x.id === p.highlevelPipelineId);
    if (hlPipes && !hl)
      issues.push({
        field: at("highlevelPipelineId"),
        message: `HighLevel pipeline ${p.highlevelPipelineId} does not exist in location ${p.highlevelLocationId}`,
      });
    p.stages.forEach((s, j) => {
      if (fd) {
        const st = fd.stages.find((x) => x.id === s.fourdegrees);
        if (!st)
          issues.push({
            field: at(`stages.${j}.fourdegrees`),
            message: `4Degrees stage ${s.fourdegrees} is not in pipeline "${fd.name}"`,
          });
        else if (st.kind !== "open")
          issues.push({
            field: at(`stages.${j}.fourdegrees`),
            message: `4Degrees stage "${st.name}" is a ${st.kind} stage; won/lost map through wonStageId/lostStageId`,
          });
      }
      if (hl && !hl.stages.some((x) => x.id === s.highlevel))
        issues.push({
          field: at(`stages.${j}.highlevel`),
          message: `HighLevel stage ${s.highlevel} is not in pipeline "${hl.name}"`,
        });
    });
    (p.filter?.stages ?? []).forEach((stageId, j) => {
      if (fd && !fd.stages.some((x) => x.id === stageId))
        issues.push({
          field: at(`filter.stages.${j}`),
          message: `4Degrees stage ${stageId} is not in pipeline "${fd.name}"`,
        });
    });
    for (const key of ["highlevelWonStageId", "highlevelLostStageId"] as const) {
      const chosen = p[key];
      if (chosen && hl && !hl.stages.some((x) => x.id === chosen))
        issues.push({ field: at(key), message: `HighLevel stage ${chosen} is not in pipeline "${hl.name}"` });
    }
    if (fd) {
      for (const kind of ["won", "lost"] as const) {
        const key = kind === "won" ? "wonStageId" : "lostStageId";
        const chosen = p[key];
        if (chosen) {
          const st = fd.stages.find((x) => x.id === chosen);
          if (!st) issues.push({ field: at(key), message: `4Degrees stage ${chosen} is not in pipeline "${fd.name}"` });
          else if (st.kind !== kind)
            issues.push({ field: at(key), message: `4Degrees stage "${st.name}" is a ${st.kind} stage, not ${kind}` });
        } else if (!fd.stages.some((x) => x.kind === kind)) {
          issues.push({
            field: at(key),
            message: `4Degrees pipeline "${fd.name}" has no ${kind} stage; HighLevel ${kind} opportunities could not be mapped`,
          });
        }
      }
    }
  });
  for (const [name, fieldId] of [
    ["closeDateFieldId", mapping.closeDateFieldId],
    ["externalIdFieldId", mapping.externalIdFieldId],
    ["attachmentsFieldId", mapping.attachmentsFieldId],
  ] as const) {
    if (!fieldId) continue;
    for (const p of mapping.pipelines) {
      const known = live.highlevelFieldIds?.[p.highlevelLocationId];
      if (known && !known.includes(fieldId))
        issues.push({
          field: name,
          message: `HighLevel custom field ${fieldId} does not exist in location ${p.highlevelLocationId}`,
        });
    }
  }
  mapping.fields.forEach((f, i) => {
    for (const p of mapping.pipelines) {
      const known = live.highlevelFieldIds?.[p.highlevelLocationId];
      if (known && !known.includes(f.highlevelFieldId))
        issues.push({
          field: `fields.${i}.highlevelFieldId`,
          message: `HighLevel custom field ${f.highlevelFieldId} does not exist in location ${p.highlevelLocationId}`,
        });
    }
  });
  return issues;
}

/**
 * A default mapping from live structure: each 4Degrees pipeline paired with the HighLevel pipeline
 * of the same name (case-insensitive; else the only one), and open stages paired by name. Stages
 * without a same-named partner stay unmapped (records there go to review, they are not guessed).
 * A won (lost) 4Degrees stage with a same-named HighLevel stage becomes the pair's won (lost)
 * stage on both sides, so a closed deal lands in, say, HighLevel's "Closed" stage and a HighLevel
 * `won` lands in 4Degrees' "Closed".
 */
export function defaultMapping(
  live: LiveStructure,
  locationId: string,
  extra: Partial<Pick<Mapping, "closeDateFieldId" | "externalIdFieldId" | "attachmentsFieldId" | "currency">> = {},
): MappingInput {
  const norm = (s: string) => s.trim().toLowerCase();
  const hlPipes = live.highlevel[locationId] ?? [];
  const pipelines: MappingInput["pipelines"] = [];
  for (const fd of live.fourdegrees) {
    const hl =
      hlPipes.find((h) => norm(h.name) === norm(fd.name)) ??
      (hlPipes.length === 1 && live.fourdegrees.length === 1 ? hlPipes[0] : undefined);
    if (!hl) continue;
    const stages: StagePair[] = [];
    for (const st of fd.stages) {
      if (st.kind !== "open") continue;
      const match = hl.stages.find((h) => norm(h.name) === norm(st.name));
      if (match && !stages.some((s) => s.highlevel === match.id))
        stages.push({ fourdegrees: st.id, highlevel: match.id });
    }
    if (stages.length === 0) continue;
    const closed = (kind: "won" | "lost") => {
      for (const st of fd.stages) {
        if (st.kind !== kind) continue;
        const match = hl.stages.find((h) => norm(h.name) === norm(st.name));
        if (match) return { fourdegrees: st.id, highlevel: match.id };
      }
      return null;
    };
    const won = closed("won");
    const lost = closed("lost");
    pipelines.push({
      fourdegreesPipelineId: fd.id,
      highlevelLocationId: locationId,
      highlevelPipelineId: hl.id,
      stages,
      ...(won ? { wonStageId: won.fourdegrees, highlevelWonStageId: won.highlevel } : {}),
      ...(lost ? { lostStageId: lost.fourdegrees, highlevelLostStageId: lost.highlevel } : {}),
    });
  }
  return { pipelines, ...extra };
}

/**
 * `next` with the settings kept from `previous` that a form without them would reset: each pipeline
 * pair's filter and HighLevel won/lost stages (same 4Degrees and HighLevel pipelines) and the match
 * keys. For the console's Mapping form, whose fields do not include them (filters and match keys
 * have their own pages; the HighLevel won/lost stages come from the suggested mapping or the API).
 */
export function keepSyncRules(next: Mapping, previous: Mapping | null): Mapping {
  if (!previous) return next;
  const before = (p: PipelinePair) =>
    previous.pipelines.find(
      (q) => q.fourdegreesPipelineId === p.fourdegreesPipelineId && q.highlevelPipelineId === p.highlevelPipelineId,
    );
  return {
    ...next,
    matchKeys: previous.matchKeys,
    pipelines: next.pipelines.map((p) => {
      const q = before(p);
      return {
        ...p,
        filter: p.filter ?? q?.filter ?? null,
        highlevelWonStageId: p.highlevelWonStageId ?? q?.highlevelWonStageId ?? null,
        highlevelLostStageId: p.highlevelLostStageId ?? q?.highlevelLostStageId ?? null,
      };
    }),
  };
}
