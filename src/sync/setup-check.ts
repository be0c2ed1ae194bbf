/**
 * The guided setup's test step: one read on each side (4Degrees `GET /me`, each location's
 * pipelines) and a dry-run of up to five real records per direction through the engine's own
 * translations (src/sync/engine/mapping.ts), described by name. It reads only: no connector write
 * method is called, so nothing is written to either side.
 */
import { FourDegreesError } from "../fourdegrees/errors.ts";
import { HighLevelError } from "../highlevel/errors.ts";
import type { HlPipeline, HlUser } from "../highlevel/port.ts";
import { AppError } from "../lib/errors.ts";
import type { Mapping } from "../domain/mapping-config.ts";
import { fromMinor } from "../domain/money.ts";
import type { Pipeline, User } from "../domain/port.ts";
import type { Account } from "../store/accounts.ts";
import type { AccountConnectors } from "./connectors.ts";
import { fromDeal, fromOpportunity, toDealContent, toOpportunityCreate } from "./engine/mapping.ts";

/** How many real records per direction the dry-run translates. */
export const DRY_RUN_RECORDS = 5;

/** One connectivity read and its answer. */
export interface SetupRead {
  side: "4Degrees" | "HighLevel";
  target: string;
  /** The HighLevel location the read went to (the page names it). */
  location?: string;
  ok: boolean;
  answer: string;
}

/** A value shown by name, with the id behind it (for a hover title) when there is one. */
export interface Named {
  label: string;
  value: string;
  id?: string | undefined;
}

/** What the dry-run would write for one real record. */
export interface DryRunRecord {
  direction: "to_highlevel" | "to_fourdegrees";
  source: { name: string; id: string | null };
  ok: boolean;
  /** Why nothing would be written (the translation's reason), when `ok` is false. */
  reason?: string;
  writes: Named[];
  skipped: Array<{ field: string; reason: string }>;
}

export interface SetupTestResult {
  reads: SetupRead[];
  records: DryRunRecord[];
  ok: boolean;
}

/** A failure as a sentence a new user can act on. */
export function explainError(err: unknown): string {
  if (err instanceof FourDegreesError) {
    if (err.upstreamStatus === 401 || err.upstreamStatus === 403) return "4Degrees refused the key";
    return `4Degrees answered ${err.upstreamStatus}: ${err.message}`;
  }
  if (err instanceof HighLevelError) {
    if (err.category === "scope") return `HighLevel refused: the connection lacks a scope (${err.message})`;
    if (err.category === "auth" || err.category === "reconnect")
      return "HighLevel refused the connection's token: connect HighLevel again";
    return `HighLevel ${err.category} error: ${err.message}`;
  }
  if (err instanceof AppError && err.code === "not_found") return err.message;
  return err instanceof Error ? err.message : String(err);
}

/** A money amount in major units as people write it ("$750,000.00"). */
function money(major: number, currency: string): string {
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(major);
  } catch {
    return `${major} ${currency}`;
  }
}

const stageName = (pipes: Array<{ id: string; stages: Array<{ id: string; name: string }> }>, id: string | null) =>
  pipes.flatMap((p) => p.stages).find((s) => s.id === id)?.name ?? id ?? "—";
const hlUserName = (u: HlUser) => u.name ?? [u.firstName, u.lastName].filter(Boolean).join(" ") ?? u.email ?? u.id;

/** Runs the test step for `account` (which must have a mapping) with `connectors` in their lane. */
export async function runSetupTest(connectors: AccountConnectors, account: Account): Promise<SetupTestResult> {
  const reads: SetupRead[] = [];
  const records: DryRunRecord[] = [];
  const read = async <T>(
    side: SetupRead["side"],
    target: string,
    run: () => Promise<T>,
    say: (v: T) => string,
    location?: string,
  ) => {
    const where = location === undefined ? {} : { location };
    try {
      const value = await run();
      reads.push({ side, target, ...where, ok: true, answer: say(value) });
      return value;
    } catch (err) {
      reads.push({ side, target, ...where, ok: false, answer: explainError(err) });
      return null;
    }
  };
  const me = await read(
    "4Degrees",
    "GET /me",
    () => connectors.fourdegrees.whoAmI(),
    (v) => `the key reaches workspace ${v.scopeId}`,
  );
  const hlPipes = new Map<string, HlPipeline[]>();
  for (const loc of account.locations) {
    // One uncached read proves the token: the pipelines may come from the structure cache.
    const found = await read(
      "HighLevel",
      "one opportunity search",
      () => connectors.highlevel(loc).searchOpportunities({ limit: 1 }),
      (v) => `the connection reads opportunities (${v.total ?? v.items.length} in the location)`,
      loc,
    );
    const pipes = found
      ? await connectors
          .highlevel(loc)
          .listPipelines()
          .catch(() => null)
      : null;
    if (pipes) hlPipes.set(loc, pipes);
  }
  if (account.locations.length === 0)
    reads.push({ side: "HighLevel", target: "—", ok: false, answer: "no HighLevel location is attached" });
  const mapping = account.mapping;
  if (!me || !mapping || hlPipes.size !== account.locations.length || account.locations.length === 0)
    return { reads, records, ok: false };
  try {
    records.push(...(await dryRun(connectors, mapping, hlPipes)));
  } catch (err) {
    reads.push({ side: "4Degrees", target: "dry-run", ok: false, answer: explainError(err) });
  }
  return { reads, records, ok: reads.every((r) => r.ok) && records.every((r) => r.ok) };
}

async function dryRun(
  connectors: AccountConnectors,
  mapping: Mapping,
  hlPipes: Map<string, HlPipeline[]>,
): Promise<DryRunRecord[]> {
  const fdPipes: Pipeline[] = await connectors.fourdegrees.listPipelines();
  const fdUsers: User[] = await connectors.fourdegrees.listUsers();
  const hlUsers = new Map<string, HlUser[]>();
  const hlFields = new Map<string, Array<{ id: string; name: string }>>();
  for (const loc of hlPipes.keys()) {
    hlUsers.set(loc, await connectors.highlevel(loc).listUsers());
    if (mapping.fields.length > 0 || mapping.closeDateFieldId || mapping.externalIdFieldId)
      hlFields.set(loc, await connectors.highlevel(loc).listCustomFields());
  }
  const out: DryRunRecord[] = [];
  // 4Degrees → HighLevel: deals of the mapped pipelines, as the opportunity each would create.
  for (const pair of mapping.pipelines) {
    if (out.length >= DRY_RUN_RECORDS) break;
    const page = await connectors.fourdegrees.pageDeals({
      pipelineId: pair.fourdegreesPipelineId,
      limit: DRY_RUN_RECORDS - out.length,
    });
    const users = hlUsers.get(pair.highlevelLocationId) ?? [];
    const pipes = hlPipes.get(pair.highlevelLocationId) ?? [];
    const fields = hlFields.get(pair.highlevelLocationId) ?? [];
    for (const deal of page.items.slice(0, DRY_RUN_RECORDS - out.length)) {
      const t = fromDeal(deal, mapping, { pipelines: fdPipes, users: fdUsers });
      const source = { name: deal.name, id: deal.id };
      if (!t.ok) {
        out.push({ direction: "to_highlevel", source, ok: false, reason: t.reason, writes: [], skipped: [] });
        continue;
      }
      const contact = t.canonical.contact ?? null;
      const built = toOpportunityCreate(t.canonical, mapping, {
        users,
        nativeCloseDate: connectors.highlevel(pair.highlevelLocationId).nativeCloseDate,
        contactId: contact ?? "(new contact)",
        fdDealId: deal.id ?? "",
      });
      const b = built.body;
      const owner = users.find((u) => u.id === b.assignedTo);
      const pipe = pipes.find((p) => p.id === b.pipelineId);
      const writes: Named[] = [
        { label: "Name", value: b.name },
        { label: "Pipeline", value: pipe?.name ?? b.pipelineId, id: b.pipelineId },
        { label: "Stage", value: stageName(pipes, b.pipelineStageId ?? null), id: b.pipelineStageId },
        { label: "Status", value: b.status ?? "open" },
        { label: "Value", value: b.monetaryValue === undefined ? "—" : money(b.monetaryValue, mapping.currency) },
        { label: "Owner", value: owner ? hlUserName(owner) : "—", id: b.assignedTo },
        { label: "Contact", value: contact ?? "a new contact named after the deal" },
        ...(b.customFields ?? []).map((f) =>
          // The external-id field holds the deal's own id: named, with the id on hover.
          f.id === mapping.externalIdFieldId && f.field_value
            ? {
                label: fields.find((d) => d.id === f.id)?.name ?? f.id,
                value: "this deal's 4Degrees id",
                id: String(f.field_value),
              }
            : { label: fields.find((d) => d.id === f.id)?.name ?? f.id, value: String(f.field_value ?? "—"), id: f.id },
        ),
      ];
      out.push({ direction: "to_highlevel", source, ok: true, writes, skipped: built.skipped });
    }
  }
  // HighLevel → 4Degrees: opportunities of the mapped pipelines, as the deal each would create.
  const back: DryRunRecord[] = [];
  for (const pair of mapping.pipelines) {
    if (back.length >= DRY_RUN_RECORDS) break;
    const port = connectors.highlevel(pair.highlevelLocationId);
    const page = await port.searchOpportunities({
      pipelineId: pair.highlevelPipelineId,
      limit: DRY_RUN_RECORDS - back.length,
    });
    for (const opp of page.items.slice(0, DRY_RUN_RECORDS - back.length)) {
      const source = { name: opp.name ?? opp.id, id: opp.id };
      const t = fromOpportunity(opp, pair.highlevelLocationId, mapping, {
        users: hlUsers.get(pair.highlevelLocationId) ?? [],
        nativeCloseDate: port.nativeCloseDate,
      });
      if (!t.ok) {
        back.push({ direction: "to_fourdegrees", source, ok: false, reason: t.reason, writes: [], skipped: [] });
        continue;
      }
      let built;
      try {
        built = toDealContent(t.canonical, mapping, { pipelines: fdPipes, users: fdUsers, hlOpportunityId: opp.id });
      } catch (err) {
        back.push({
          direction: "to_fourdegrees",
          source,
          ok: false,
          reason: explainError(err),
          writes: [],
          skipped: [],
        });
        continue;
      }
      const b = built.body;
      const pipe = fdPipes.find((p) => p.id === b.pipeline.id);
      const value = b.value ? money(fromMinor(b.value.amountMinor, b.value.currency), b.value.currency) : "—";
      const writes: Named[] = [
        { label: "Name", value: b.name },
        { label: "Pipeline", value: pipe?.name ?? b.pipeline.id ?? "—", id: b.pipeline.id ?? undefined },
        { label: "Stage", value: stageName(fdPipes, b.stage.id), id: b.stage.id ?? undefined },
        { label: "Value", value },
        { label: "Owner", value: b.owner?.name ?? b.owner?.email ?? "—", id: b.owner?.id ?? undefined },
        { label: "Expected close", value: b.expectedCloseDate ?? "—" },
        ...Object.entries(b.fields).map(([id, v]) => ({
          label: mapping.fields.find((f) => f.fourdegreesFieldId === id)?.key ?? id,
          value: Array.isArray(v) ? v.join(", ") : String(v ?? "—"),
          id,
        })),
      ];
      back.push({ direction: "to_fourdegrees", source, ok: true, writes, skipped: built.skipped });
    }
  }
  return [...out, ...back];
}
