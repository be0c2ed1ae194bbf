/**
 * The CSV bridge, outbound: HighLevel opportunities as a CSV that 4Degrees' deal-list import
 * accepts (one header row, comma-delimited, stage NAMES not ids, plain numbers for money), streamed
 * page by page so a large location never sits in memory. Its headers are the importer's default
 * aliases, so the same file also re-imports here.
 *
 * Defined against `OpportunitySource`, a small interface; `highLevelSource` adapts the HighLevel
 * client (src/highlevel/) to it.
 */
import Papa from "papaparse";
import type { HighLevelClient } from "../../highlevel/client.ts";
import type { SearchPage } from "../../highlevel/opportunities.ts";

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
}

/** Where exported opportunities come from. */
export interface OpportunitySource {
  pipelines(): Promise<Array<{ id: string; name: string; stages: Array<{ id: string; name: string }> }>>;
  users(): Promise<Array<{ id: string; name: string | null; email: string | null }>>;
  /** Pages of opportunities, in order, until done. */
  pages(): AsyncIterator<ExportOpportunity[]>;
}

/** The header row (matching the importer's defaults and what a person maps in one pass in 4Degrees). */
export const EXPORT_HEADERS = ["Deal Name", "Pipeline", "Stage", "Status", "Owner", "Value", "Currency", "Contact Name", "Contact Email", "Company", "HighLevel ID"] as const;

/** Cells a spreadsheet would run as a formula get a leading `'` (CSV injection); negative numbers do not. */
const FORMULA = /^(?:[=+@\t\r]|-(?!\d))/;

function formatValue(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "";
  return value.toFixed(2);
}

/**
 * Streams the CSV. The pipelines, users and first page are read before the stream is returned, so
 * a failing HighLevel call becomes an HTTP error rather than a truncated file.
 */
export async function exportCsvStream(source: OpportunitySource, options: { currency: string }): Promise<ReadableStream<Uint8Array>> {
  const [pipelines, users] = await Promise.all([source.pipelines(), source.users()]);
  const pipelineNames = new Map(pipelines.map((p) => [p.id, p.name]));
  const stageNames = new Map(pipelines.flatMap((p) => p.stages.map((s) => [s.id, s.name] as const)));
  const owners = new Map(users.map((u) => [u.id, u.email ?? u.name ?? ""]));
  const pages = source.pages();
  let next = await pages.next();
  const encoder = new TextEncoder();
  const rowsOf = (opps: ExportOpportunity[]) =>
    opps.map((o) => [
      o.name,
      (o.pipelineId && pipelineNames.get(o.pipelineId)) ?? "",
      (o.stageId && stageNames.get(o.stageId)) ?? "",
      o.status,
      (o.assignedTo && owners.get(o.assignedTo)) ?? "",
      formatValue(o.monetaryValue),
      o.monetaryValue === null ? "" : options.currency,
      o.contactName ?? "",
      o.contactEmail ?? "",
      o.companyName ?? "",
      o.id,
    ]);
  const unparse = (data: string[][]) => Papa.unparse(data, { delimiter: ",", newline: "\r\n", escapeFormulae: FORMULA, quotes: false }) + "\r\n";

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

/** `OpportunitySource` over the HighLevel client of one location (every status; one pipeline or all). */
export function highLevelSource(hl: HighLevelClient, filters: { pipelineId?: string } = {}): OpportunitySource {
  return {
    pipelines: async () => (await hl.pipelines.list()).map((p) => ({ id: p.id, name: p.name, stages: p.stages.map((s) => ({ id: s.id, name: s.name })) })),
    users: async () =>
      (await hl.users.list()).map((u) => ({ id: u.id, email: u.email ?? null, name: u.name ?? ([u.firstName, u.lastName].filter(Boolean).join(" ") || null) })),
    pages: async function* () {
      let cursor: SearchPage["next"] = null;
      for (;;) {
        // Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/search-opportunity (via the HighLevel client)
        const page = await hl.opportunities.searchPage({ status: "all", ...(filters.pipelineId ? { pipelineId: filters.pipelineId } : {}) }, cursor);
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
        }));
        if (!page.next) return;
        cursor = page.next;
      }
    },
  };
}
