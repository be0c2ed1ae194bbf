/**
 * What a rule is evaluated against: one trigger occurrence (a recorded pair change, a note copied
 * across, or a cron finding) with the pair's state, and the names of the account's live structure
 * (stages and pipelines are matched by name on either side).
 */
import * as z from "zod";
import type { Mapping } from "../domain/mapping-config.ts";
import type { Flat, Pipeline } from "../domain/port.ts";

/** One trigger occurrence, as stored with its run (`automation_runs.context_json`). */
export const RunContextSchema = z.object({
  /** `change`: a recorded pair change; `note`: a note added on `source`; `cron`: a scan finding. */
  event: z.enum(["change", "note", "cron"]),
  /** The side whose change fired the rule (null for cron findings). */
  source: z.enum(["fourdegrees", "highlevel"]).nullable(),
  fdId: z.string().nullable(),
  hlId: z.string().nullable(),
  locationId: z.string().nullable(),
  name: z.string(),
  before: z.record(z.string(), z.unknown()).nullable(),
  after: z.record(z.string(), z.unknown()),
  /** How many rule-made changes led here (0 = a person's change). */
  depth: z.number().int().min(0),
  /** The rule whose write caused this change, if any (it does not fire again on it). */
  madeBy: z.string().nullable(),
});
export type RunContext = z.infer<typeof RunContextSchema>;

/** A HighLevel pipeline as far as names go. */
export interface NamedPipeline {
  id: string;
  name: string;
  stages: Array<{ id: string; name: string }>;
}

/** The account's structure, for names. */
export interface Structure {
  mapping: Mapping;
  fourdegrees: readonly Pipeline[];
  /** HighLevel pipelines of the pair's location (empty when unknown). */
  highlevel: readonly NamedPipeline[];
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const lower = (s: string) => s.trim().toLowerCase();

/**
 * The 4Degrees stage id a flat record sits in: its open stage, or for a closed record the mapped
 * won/lost stage (a closed record has no canonical stage).
 */
export function stageIdOf(flat: Flat | null, s: Structure): string | null {
  if (!flat) return null;
  const stage = str(flat["stage"]);
  if (stage) return stage;
  const pair = s.mapping.pipelines.find((p) => p.fourdegreesPipelineId === str(flat["pipeline"]));
  const status = flat["status"];
  if (status !== "won" && status !== "lost") return null;
  const mapped = status === "won" ? pair?.wonStageId : pair?.lostStageId;
  if (mapped) return mapped;
  const stages = s.fourdegrees.find((p) => p.id === pair?.fourdegreesPipelineId)?.stages ?? [];
  return stages.find((st) => st.kind === status)?.id ?? null;
}

/** Every name (lower-case) the record's stage goes by: its 4Degrees name and its mapped HighLevel stage's. */
export function stageNamesOf(flat: Flat | null, s: Structure): string[] {
  const id = stageIdOf(flat, s);
  if (!id || !flat) return [];
  const out: string[] = [];
  const fdPipeline = s.fourdegrees.find((p) => p.id === str(flat["pipeline"]));
  const fdStage = fdPipeline?.stages.find((st) => st.id === id);
  if (fdStage) out.push(lower(fdStage.name));
  const pair = s.mapping.pipelines.find((p) => p.fourdegreesPipelineId === str(flat["pipeline"]));
  const hlStageId =
    pair?.stages.find((st) => st.fourdegrees === id)?.highlevel ??
    (flat["status"] === "won"
      ? pair?.highlevelWonStageId
      : flat["status"] === "lost"
        ? pair?.highlevelLostStageId
        : null);
  const hlStage = s.highlevel.flatMap((p) => p.stages).find((st) => st.id === hlStageId);
  if (hlStage) out.push(lower(hlStage.name));
  return out;
}

/** Every name (lower-case) the record's pipeline goes by on either side. */
export function pipelineNamesOf(flat: Flat, s: Structure): string[] {
  const id = str(flat["pipeline"]);
  const out: string[] = [];
  const fd = s.fourdegrees.find((p) => p.id === id);
  if (fd) out.push(lower(fd.name));
  const pair = s.mapping.pipelines.find((p) => p.fourdegreesPipelineId === id);
  const hl = s.highlevel.find((p) => p.id === pair?.highlevelPipelineId);
  if (hl) out.push(lower(hl.name));
  return out;
}

/** A 4Degrees stage of the record's pipeline by (4Degrees or HighLevel) name, with its HighLevel pair. */
export function findStage(
  flat: Flat,
  s: Structure,
  name: string,
): { fdStageId: string; hlStageId: string | null; hlPipelineId: string | null } | null {
  const want = lower(name);
  const pipelineId = str(flat["pipeline"]);
  const pair = s.mapping.pipelines.find((p) => p.fourdegreesPipelineId === pipelineId);
  const fdStages = s.fourdegrees.find((p) => p.id === pipelineId)?.stages ?? [];
  const hlStages = s.highlevel.find((p) => p.id === pair?.highlevelPipelineId)?.stages ?? [];
  const hlOf = (fdId: string) => pair?.stages.find((st) => st.fourdegrees === fdId)?.highlevel ?? null;
  const byFd = fdStages.find((st) => lower(st.name) === want);
  if (byFd) return { fdStageId: byFd.id, hlStageId: hlOf(byFd.id), hlPipelineId: pair?.highlevelPipelineId ?? null };
  const byHl = hlStages.find((st) => lower(st.name) === want);
  const fdOfHl = byHl ? pair?.stages.find((st) => st.highlevel === byHl.id)?.fourdegrees : undefined;
  if (byHl && fdOfHl) return { fdStageId: fdOfHl, hlStageId: byHl.id, hlPipelineId: pair?.highlevelPipelineId ?? null };
  return null;
}
