/**
 * The CSV bridge, outbound: HighLevel opportunities as a CSV that 4Degrees' deal-list import
 * accepts (one header row, comma-delimited, stage NAMES not ids, plain numbers for money), streamed
 * page by page so a large location never sits in memory. Its headers are the importer's default
 * aliases, so the same file also re-imports here.
 *
 * What 4Degrees' import insists on, and how the file meets it:
 * - "Deal Name" is required and is the list's de-duplication key: an opportunity without a name is
 *   exported as `Untitled opportunity (HighLevel <id>)`, and a name already used earlier in the
 *   file gets ` (HighLevel <id>)` appended (stable across exports: the id never changes).
 * - "Stage" must exactly match a stage of the list. Open opportunities carry their HighLevel stage
 *   name; won and lost/abandoned ones carry `wonStage` / `lostStage` when given (4Degrees has no
 *   status: won/lost are stages of the list), else their HighLevel stage name.
 * - "Expected Close Date" is `YYYY-MM-DD`, read from the HighLevel custom date field that holds it.
 *
 * Defined against `OpportunitySource`, a small interface; `highLevelSource` adapts the HighLevel
 * client (src/highlevel/) to it.
 */
import Papa from "papaparse";
import type { HighLevelClient } from "../../highlevel/client.ts";
import type { SearchPage } from "../../highlevel/opportunities.ts";
import { neutraliseFormula } from "./cells.ts";

/** One opportunity, as much as the export needs. */
export interface ExportOpportunity {
  id: string;
  name: string;
  pipelineId: string | null;
  stageId: string | null;
  status: string;
  monetaryValue: number | null;
  assignedTo: string | null;
  contactName: string | null;
  contactEmail: string | null;
  companyName: string | null;
  /** `YYYY-MM-DD` from the close-date custom field; null or absent when there is none. */
  closeDate?: string | null;
}

/** Where exported opportunities come from. */
export interface OpportunitySource {
  pipelines(): Promise<Array<{ id: string; name: string; stages: Array<{ id: string; name: string }> }>>;
  users(): Promise<Array<{ id: string; name: string | null; email: string | null }>>;
  /** Pages of opportunities, in order, until done. */
  pages(): AsyncIterator<ExportOpportunity[]>;
}

/** The header row (matching the importer's defaults and what a person maps in one pass in 4Degrees). */
export const EXPORT_HEADERS = [
  "Deal Name",
  "Pipeline",
  "Stage",
  "Status",
  "Owner",
  "Value",
  "Currency",
  "Expected Close Date",
  "Contact Name",
  "Contact Email",
  "Company",
  "HighLevel ID",
] as const;

/** How the export writes what 4Degrees has no column for. */
export interface ExportOptions {
  /** ISO 4217 code written next to every value (HighLevel values carry no currency). */
  currency: string;
  /** The 4Degrees stage name for won opportunities (default: their HighLevel stage name). */
  wonStage?: string | null;
  /** The 4Degrees stage name for lost and abandoned opportunities (default: their HighLevel stage name). */
  lostStage?: string | null;
}

function formatValue(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "";
  return value.toFixed(2);
}

/**
 * Streams the CSV. The pipelines, users and first page are read before the stream is returned, so
 * a failing HighLevel call becomes an HTTP error rather than a truncated file.
 */
export async function exportCsvStream(
  source: OpportunitySource,
  options: ExportOptions,
): Promise<ReadableStream<Uint8Array>> {
  const [pipelines, users] = await Promise.all([source.pipelines(), source.users()]);
  const pipelineNames = new Map(pipelines.map((p) => [p.id, p.name]));
  const stageNames = new Map(pipelines.flatMap((p) => p.stages.map((s) => [s.id, s.name] as const)));
  const owners = new Map(users.map((u) => [u.id, u.email ?? u.name ?? ""]));
  const pages = source.pages();
  let next = await pages.next();
  const encoder = new TextEncoder();
  const usedNames = new Set<string>();
  /** A unique, non-empty Deal Name (4Degrees' de-duplication key). */
  const dealName = (o: ExportOpportunity): string => {
    const base = o.name.trim() === "" ? `Untitled opportunity (HighLevel ${o.id})` : o.name;
    const name = usedNames.has(base) ? `${base} (HighLevel ${o.id})` : base;
    usedNames.add(name);
    return name;
  };
  const stageName = (o: ExportOpportunity): string => {
    if (o.status === "won" && options.wonStage) return options.wonStage;
    if ((o.status === "lost" || o.status === "abandoned") && options.lostStage) return options.lostStage;
    return (o.stageId && stageNames.get(o.stageId)) ?? "";
  };
  // Only Value is numeric (formatValue writes a real number, negative ones included): it goes raw.
  // Every text cell that a spreadsheet would evaluate gets a leading `'` (CSV injection).
  const text = neutraliseFormula;
  const rowsOf = (opps: ExportOpportunity[]) =>
    opps.map((o) => [
      text(dealName(o)),
      text((o.pipelineId && pipelineNames.get(o.pipelineId)) ?? ""),
      text(stageName(o)),
      text(o.status),
      text((o.assignedTo && owners.get(o.assignedTo)) ?? ""),
      formatValue(o.monetaryValue),
      o.monetaryValue === null ? "" : text(options.currency),
      text(o.closeDate ?? ""),
      text(o.contactName ?? ""),
      text(o.contactEmail ?? ""),
      text(o.companyName ?? ""),
      text(o.id),
    ]);
  const unparse = (data: string[][]) =>
    Papa.unparse(data, { delimiter: ",", newline: "\r\n", escapeFormulae: false, quotes: false }) + "\r\n";

  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode(unparse([[...EXPORT_HEADERS]])));
      }
      if (next.done) {
        controller.close();
        return;
      }
      const page = next.value;
      if (page.length > 0) controller.enqueue(encoder.encode(unparse(rowsOf(page))));
      next = await pages.next();
    },
  });
}

/**
 * A custom field value as a calendar date (`YYYY-MM-DD`), or null: HighLevel gives date fields as
 * `YYYY-MM-DD`, an RFC 3339 timestamp or epoch milliseconds depending on the endpoint.
 */
export function closeDateOf(value: unknown): string | null {
  if (typeof value === "string") {
    const v = value.trim();
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return v;
    if (/^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v))) return new Date(v).toISOString().slice(0, 10);
    if (/^\d{10,13}$/.test(v)) return closeDateOf(Number(v));
    return null;
  }
  if (typeof value === "number" && Number.isFinite(value)) {
    // Epoch seconds or milliseconds.
    const ms = value < 1e11 ? value * 1000 : value;
    const d = new Date(ms);
    return Number.isNaN(d.getTime()) ? null : d.toISOString().slice(0, 10);
  }
  return null;
}

/** Names HighLevel locations give the close-date field (the sandbox demo: "Expected Close Date"). */
const CLOSE_DATE_NAMES = new Set(["expected close date", "close date", "expected close", "closing date"]);

/**
 * The HighLevel custom field that holds the close date: `preferred` when given (the query or the
 * account's mapping), else the location's only opportunity DATE field named like a close date.
 */
export async function resolveCloseDateField(hl: HighLevelClient, preferred: string | null): Promise<string | null> {
  if (preferred) return preferred;
  const candidates = (await hl.customFields.list()).filter(
    (f) =>
      (f.model ?? "opportunity") === "opportunity" &&
      (f.dataType ?? "").toUpperCase() === "DATE" &&
      CLOSE_DATE_NAMES.has(f.name.trim().toLowerCase()),
  );
  return candidates.length === 1 ? candidates[0]!.id : null;
}

/** `OpportunitySource` over the HighLevel client of one location (every status; one pipeline or all). */
export function highLevelSource(
  hl: HighLevelClient,
  filters: { pipelineId?: string; closeDateFieldId?: string | null } = {},
): OpportunitySource {
  return {
    pipelines: async () =>
      (await hl.pipelines.list()).map((p) => ({
        id: p.id,
        name: p.name,
        stages: p.stages.map((s) => ({ id: s.id, name: s.name })),
      })),
    users: async () =>
      (await hl.users.list()).map((u) => ({
        id: u.id,
        email: u.email ?? null,
        name: u.name ?? ([u.firstName, u.lastName].filter(Boolean).join(" ") || null),
      })),
    pages: async function* () {
      let cursor: SearchPage["next"] = null;
      for (;;) {
        // Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/search-opportunity (via the HighLevel client)
        const page = await hl.opportunities.searchPage(
          { status: "all", ...(filters.pipelineId ? { pipelineId: filters.pipelineId } : {}) },
          cursor,
        );
        yield page.opportunities.map((o) => ({
          id: o.id,
          name: o.name ?? "",
          pipelineId: o.pipelineId ?? null,
          stageId: o.pipelineStageId ?? null,
          status: o.status,
          monetaryValue: o.monetaryValue ?? null,
          assignedTo: o.assignedTo ?? null,
          contactName: o.contact?.name ?? null,
          contactEmail: o.contact?.email ?? null,
          companyName: o.contact?.companyName ?? null,
          // No field: HighLevel's native forecast close date (API v3; always null under 2021-07-28).
          closeDate: filters.closeDateFieldId
            ? closeDateOf(o.customFields.find((f) => f.id === filters.closeDateFieldId)?.value)
            : o.forecastExpectedCloseDate,
        }));
        if (!page.next) return;
        cursor = page.next;
      }
    },
  };
}
