/**
 * The 4Degrees deal-list CSV import, as 4Degrees documents it (the only documented way to write
 * deals in bulk): row 1 holds the headers, comma-delimited, select values must match exactly,
 * required fields must be filled, and "Deal Name" is the list's de-duplication key.
 *
 * The sandbox exposes it as `POST /4degrees/v1/pipelines/{id}/import` (text/csv) and answers a
 * report. Rows are numbered as CSV records with the header as row 1 (a quoted field with embedded
 * newlines is still one row). Each row is validated on its own and whole (cells, then the list's
 * required fields) before anything is created; a bad row is reported and skipped, leaving no contact,
 * company or deal behind, and the others are applied. The same Deal Name twice in one file fails the
 * later row, naming the earlier one (4Degrees' own behaviour is undocumented).
 * Columns (names matched case-insensitively, values exactly):
 *
 * | column | meaning |
 * |---|---|
 * | Deal Name (required) | de-dup key: an existing deal of the list with this exact name is updated |
 * | Stage (required) | a stage name of the list, exact match |
 * | Owner | a user's email (any case) or exact name |
 * | Value | a number (`250000`, `1,250,000.50`, `$300000`); Currency (ISO code) defaults to the workspace's |
 * | Expected Close Date / Close Date | `YYYY-MM-DD`, `MM/DD/YYYY` or an RFC 3339 timestamp |
 * | Company | a company name (found or created) |
 * | Contacts / Contact Email | emails separated by `;` (found by email, or created — named by Contact Name) |
 * | Tags | separated by `;` |
 * | Notes | added as a note unless the deal already has one with the same text |
 * | <custom field name> | parsed by the field's type; select values exact, multi-select `;`-separated |
 *
 * Unknown columns (and read-only formula/linked-deal columns) are ignored and listed in
 * `ignored_columns`. Blank cells leave a field unchanged on update, so re-importing a file is a
 * no-op (`unchanged`). A file that cannot be read as a comma-delimited CSV with a "Deal Name"
 * header answers 400 `invalid_csv`.
 */
import Papa from "papaparse";
import { FourDegreesError, fail } from "./errors.ts";
import { isCalendarDate } from "./fields.ts";
import type { Actor, Deal, DealPatch, FieldDef, FieldValue, Money, Pipeline, Stage } from "./model.ts";
import type { FourDegreesStore } from "./store.ts";

/** The largest CSV body the import accepts. */
export const MAX_CSV_BYTES = 50_000_000;

/** The import's answer. */
export interface ImportReport {
  created: number;
  updated: number;
  /** Rows matching an existing deal that already had every value (a re-import). */
  unchanged: number;
  errors: Array<{ row: number; message: string }>;
  /** Header names the import did not use. */
  ignored_columns: string[];
}

type StandardKind =
  | "name"
  | "stage"
  | "owner"
  | "value"
  | "currency"
  | "close_date"
  | "company"
  | "contacts"
  | "contact_name"
  | "tags"
  | "notes";
type Column = { kind: StandardKind } | { kind: "field"; field: FieldDef };

const STANDARD: Record<string, StandardKind> = {
  "deal name": "name",
  stage: "stage",
  owner: "owner",
  value: "value",
  currency: "currency",
  "expected close date": "close_date",
  "close date": "close_date",
  company: "company",
  contacts: "contacts",
  "contact email": "contacts",
  "contact emails": "contacts",
  "contact name": "contact_name",
  tags: "tags",
  notes: "notes",
  note: "notes",
};

interface RowPlan {
  row: number;
  name: string;
  stage: Stage;
  ownerId?: string;
  value?: Money;
  closeDate?: string;
  companyName?: string;
  contactEmails?: string[];
  /** Name for a contact the import creates (with a single Contact Email). */
  contactName?: string;
  tags?: string[];
  note?: string;
  fields: Record<string, FieldValue>;
  /** Emails of `contact`-typed custom fields, resolved when applied. */
  contactFields: Record<string, string>;
}

/** Imports a deal-list CSV into `pipelineId`; every change is made as `actor` and emits webhooks. */
export function importCsv(store: FourDegreesStore, pipelineId: string, text: string, actor: Actor): ImportReport {
  const pipeline = store.getPipeline(pipelineId);
  if (text.includes("\u0000")) throw invalid("The file is binary, not a CSV");
  const source = text.replace(/^\uFEFF/, "");
  if (source.trim() === "") throw invalid("The file is empty: row 1 must hold the headers");
  const parsed = Papa.parse<string[]>(source, { delimiter: ",", skipEmptyLines: false });
  const records = parsed.data;
  const header = records[0] ?? [];
  const quoteErrors = new Map<number, string>();
  for (const e of parsed.errors) if (e.row !== undefined && e.type === "Quotes") quoteErrors.set(e.row, e.message);
  if (quoteErrors.has(0)) throw invalid(`Row 1 (the headers) is not valid CSV: ${quoteErrors.get(0)}`);

  const columns = mapHeader(header, store.fieldsOf(pipelineId));
  const report: ImportReport = { created: 0, updated: 0, unchanged: 0, errors: [], ignored_columns: columns.ignored };

  const existing = new Map<string, Deal[]>();
  for (const d of store.deals.values()) {
    if (d.pipeline_id !== pipelineId || d.archived_at !== null) continue;
    const list = existing.get(d.name) ?? [];
    list.push(d);
    existing.set(d.name, list);
  }
  /** Deal Name → the earlier row of this file that holds it (and whether that row was rejected). */
  const seenInFile = new Map<string, { row: number; rejected: boolean }>();

  for (let index = 1; index < records.length; index++) {
    const row = index + 1;
    const cells = records[index]!;
    if (cells.every((cell) => cell.trim() === "")) continue;
    try {
      if (quoteErrors.has(index)) throw new RowError(`not valid CSV: ${quoteErrors.get(index)}`);
      if (cells.length > header.length && cells.slice(header.length).some((c) => c.trim() !== ""))
        throw new RowError(`has ${cells.length} cells but the header has ${header.length}`);
      const plan = planRow(store, pipeline, columns.columns, cells, row);
      const first = seenInFile.get(plan.name);
      if (first !== undefined) {
        throw new RowError(
          `Deal Name "${plan.name}" is already used by an earlier row of this file (first on row ${first.row}${first.rejected ? ", which was rejected" : ""}); ` +
            "Deal Name is the list's de-duplication key, so each name may appear once per file",
        );
      }
      seenInFile.set(plan.name, { row, rejected: true });
      const matches = existing.get(plan.name) ?? [];
      if (matches.length > 1)
        throw new RowError(
          `${matches.length} deals of this list are named "${plan.name}"; the import cannot tell which to update`,
        );
      checkRequiredFields(store, pipeline, plan, matches[0]);
      const outcome = applyRow(store, pipeline, plan, matches[0], actor);
      seenInFile.set(plan.name, { row, rejected: false });
      report[outcome.result]++;
      if (outcome.result === "created") existing.set(plan.name, [outcome.deal]);
    } catch (err) {
      if (err instanceof RowError || err instanceof FourDegreesError) report.errors.push({ row, message: err.message });
      else throw err;
    }
  }
  return report;
}

class RowError extends Error {}

function invalid(message: string): FourDegreesError {
  return fail.badRequest(message, "invalid_csv");
}

function mapHeader(header: string[], fields: FieldDef[]): { columns: Map<number, Column>; ignored: string[] } {
  const columns = new Map<number, Column>();
  const ignored: string[] = [];
  const used = new Map<string, string>();
  header.forEach((raw, i) => {
    const label = raw.trim();
    const key = label.toLowerCase().replace(/\s+/g, " ");
    if (key === "") return;
    const field = fields.find((f) => f.name.toLowerCase().replace(/\s+/g, " ") === key);
    const standard = STANDARD[key];
    const column: Column | null = standard
      ? { kind: standard }
      : field && !field.read_only
        ? { kind: "field", field }
        : null;
    if (!column) {
      ignored.push(label);
      return;
    }
    const id = column.kind === "field" ? column.field.id : column.kind;
    if (used.has(id)) throw invalid(`Columns "${used.get(id)}" and "${label}" both map to the same field`);
    used.set(id, label);
    columns.set(i, column);
  });
  if (!used.has("name")) {
    const hint = header.length === 1 && /[;\t|]/.test(header[0] ?? "") ? " (the file must be comma-delimited)" : "";
    throw invalid(`Row 1 must hold the headers and include "Deal Name"${hint}`);
  }
  if (!used.has("stage")) throw invalid('Row 1 must include a "Stage" column (a required field)');
  return { columns, ignored };
}

/** Validates one row without side effects. */
function planRow(
  store: FourDegreesStore,
  pipeline: Pipeline,
  columns: Map<number, Column>,
  cells: string[],
  row: number,
): RowPlan {
  let name = "";
  let stageName = "";
  let currency = store.workspace.currency;
  let amount: number | undefined;
  const plan: Omit<RowPlan, "name" | "stage"> = { row, fields: {}, contactFields: {} };
  for (const [i, column] of columns) {
    const cell = (cells[i] ?? "").trim();
    if (cell === "" && column.kind !== "name" && column.kind !== "stage") continue;
    switch (column.kind) {
      case "name":
        name = cell;
        break;
      case "stage":
        stageName = cell;
        break;
      case "owner": {
        const byEmail = [...store.users.values()].find((u) => u.email === cell.toLowerCase());
        const byName = [...store.users.values()].filter((u) => u.name === cell);
        if (byEmail) plan.ownerId = byEmail.id;
        else if (byName.length === 1) plan.ownerId = byName[0]!.id;
        else
          throw new RowError(
            `Owner "${cell}" is not a user's email or name${byName.length > 1 ? " (several users have this name; use the email)" : ""}`,
          );
        break;
      }
      case "value":
        amount = parseAmount(cell, "Value");
        break;
      case "currency":
        if (!/^[A-Za-z]{3}$/.test(cell)) throw new RowError(`Currency "${cell}" is not an ISO 4217 code`);
        currency = cell.toUpperCase();
        break;
      case "close_date":
        plan.closeDate = parseDate(cell, "Expected Close Date");
        break;
      case "company":
        plan.companyName = cell;
        break;
      case "contacts": {
        const emails = splitList(cell).map((e) => e.toLowerCase());
        const bad = emails.find((e) => !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e));
        if (bad) throw new RowError(`Contacts: "${bad}" is not an email address`);
        plan.contactEmails = emails;
        break;
      }
      case "contact_name":
        plan.contactName = cell;
        break;
      case "tags":
        plan.tags = splitList(cell);
        break;
      case "notes":
        plan.note = cell;
        break;
      case "field":
        parseFieldCell(column.field, cell, plan);
        break;
    }
  }
  if (name === "") throw new RowError("Deal Name is required");
  if (name.length > 500) throw new RowError("Deal Name is longer than 500 characters");
  if (stageName === "") throw new RowError("Stage is required");
  const stage = pipeline.stages.find((s) => s.name === stageName);
  if (!stage)
    throw new RowError(
      `Stage "${stageName}" does not exactly match a stage of "${pipeline.name}" (${pipeline.stages.map((s) => s.name).join(", ")})`,
    );
  if (amount !== undefined) plan.value = { amount_minor: amount, currency };
  return { ...plan, name, stage };
}

function parseFieldCell(field: FieldDef, cell: string, plan: Omit<RowPlan, "name" | "stage">): void {
  const label = field.name;
  switch (field.type) {
    case "text":
      plan.fields[field.id] = cell;
      return;
    case "number":
    case "percentage": {
      const n = Number(cell.replace(/%$/, "").replace(/,/g, ""));
      if (!Number.isFinite(n) || cell.replace(/%$/, "").trim() === "")
        throw new RowError(`${label}: "${cell}" is not a number`);
      plan.fields[field.id] = n;
      return;
    }
    case "currency":
      plan.fields[field.id] = parseAmount(cell, label);
      return;
    case "date":
      plan.fields[field.id] = parseDate(cell, label);
      return;
    case "single_select":
      if (!field.options!.includes(cell))
        throw new RowError(`${label}: "${cell}" does not exactly match an option (${field.options!.join(", ")})`);
      plan.fields[field.id] = cell;
      return;
    case "multi_select": {
      const values = splitList(cell);
      const bad = values.find((v) => !field.options!.includes(v));
      if (bad !== undefined)
        throw new RowError(`${label}: "${bad}" does not exactly match an option (${field.options!.join(", ")})`);
      plan.fields[field.id] = values;
      return;
    }
    case "contact":
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(cell)) throw new RowError(`${label}: "${cell}" is not an email address`);
      plan.contactFields[field.id] = cell.toLowerCase();
      return;
    case "formula":
    case "linked_deals":
      return;
  }
}

/**
 * The list's required fields, checked on the whole row before anything is created (a contact or
 * company the row names must not be left behind by a row that then fails). Mirrors the store's own
 * check: a new deal needs every required field; an update that writes fields must leave them filled.
 */
function checkRequiredFields(
  store: FourDegreesStore,
  pipeline: Pipeline,
  plan: RowPlan,
  match: Deal | undefined,
): void {
  const written = [...Object.keys(plan.fields), ...Object.keys(plan.contactFields)];
  if (match && written.length === 0) return;
  const missing = store
    .fieldsOf(pipeline.id)
    .filter((def) => def.required)
    .filter((def) => {
      const value =
        def.id in plan.contactFields
          ? plan.contactFields[def.id]
          : def.id in plan.fields
            ? plan.fields[def.id]
            : match?.fields[def.id];
      return value === undefined || value === "";
    });
  if (missing.length > 0) {
    const names = missing.map((def) => `"${def.name}"`).join(", ");
    throw new RowError(
      `${names} ${missing.length === 1 ? "is a required field" : "are required fields"} of "${pipeline.name}": fill ${missing.length === 1 ? "its column" : "their columns"}${match ? "" : " for a new deal"}`,
    );
  }
}

/** Applies a validated row: creates the deal or updates the matching one (blank cells unchanged). */
function applyRow(
  store: FourDegreesStore,
  pipeline: Pipeline,
  plan: RowPlan,
  match: Deal | undefined,
  actor: Actor,
): { result: "created" | "updated" | "unchanged"; deal: Deal } {
  const { deal, result: written } = writeDeal(store, pipeline, plan, match, actor);
  let result = written;
  if (plan.note !== undefined && !store.notesOf(deal.id).some((n) => n.body === plan.note)) {
    store.createNote(deal.id, { body: plan.note }, actor);
    if (result === "unchanged") result = "updated";
  }
  return { result, deal };
}

/**
 * Finds or creates the row's contacts and company, then creates or updates the deal. Should the
 * deal write still fail, the contacts and companies this row created are removed again (they emit
 * no webhooks, so nothing outside the store has seen them).
 */
function writeDeal(
  store: FourDegreesStore,
  pipeline: Pipeline,
  plan: RowPlan,
  match: Deal | undefined,
  actor: Actor,
): { result: "created" | "updated" | "unchanged"; deal: Deal } {
  const contactsBefore = new Set(store.contacts.keys());
  const companiesBefore = new Set(store.companies.keys());
  try {
    const fields = { ...plan.fields };
    for (const [fieldId, email] of Object.entries(plan.contactFields)) fields[fieldId] = contactFor(store, email).id;
    const contactIds = plan.contactEmails?.map(
      (email, i) => contactFor(store, email, i === 0 ? plan.contactName : undefined).id,
    );
    const companyId = plan.companyName === undefined ? undefined : companyFor(store, plan.companyName);
    const patch: DealPatch = {
      stage_id: plan.stage.id,
      ...(plan.ownerId !== undefined ? { owner_id: plan.ownerId } : {}),
      ...(plan.value !== undefined ? { value: plan.value } : {}),
      ...(plan.closeDate !== undefined ? { expected_close_date: plan.closeDate } : {}),
      ...(companyId !== undefined ? { company_id: companyId } : {}),
      ...(contactIds !== undefined ? { contact_ids: contactIds } : {}),
      ...(plan.tags !== undefined ? { tags: plan.tags } : {}),
      ...(Object.keys(fields).length > 0 ? { fields } : {}),
    };
    if (match) {
      const deal = store.updateDeal(match.id, patch, actor);
      return { result: deal.version === match.version ? "unchanged" : "updated", deal };
    }
    return {
      result: "created",
      deal: store.createDeal({ name: plan.name, pipeline_id: pipeline.id, ...patch }, actor),
    };
  } catch (err) {
    for (const id of store.contacts.keys()) if (!contactsBefore.has(id)) store.contacts.delete(id);
    for (const id of store.companies.keys()) if (!companiesBefore.has(id)) store.companies.delete(id);
    throw err;
  }
}

function contactFor(store: FourDegreesStore, email: string, name?: string) {
  return store.findContactByEmail(email) ?? store.addContact({ name: name || email.split("@")[0]!, email });
}

function companyFor(store: FourDegreesStore, name: string): string {
  for (const c of store.companies.values()) if (c.name === name) return c.id;
  return store.addCompany({ name }).id;
}

function splitList(cell: string): string[] {
  return [
    ...new Set(
      cell
        .split(";")
        .map((s) => s.trim())
        .filter((s) => s !== ""),
    ),
  ];
}

/** A money cell → minor units (2 decimals): `250000`, `1,250,000.50`, `$300000`, `-12.5`. */
function parseAmount(cell: string, label: string): number {
  const s = cell.replace(/^[$€£]\s*/, "").replace(/\s+/g, "");
  if (!/^-?(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?$/.test(s)) throw new RowError(`${label}: "${cell}" is not a number`);
  const [whole, frac = ""] = s.replace(/,/g, "").split(".");
  const negative = whole!.startsWith("-");
  const minor = Number(whole!.replace("-", "")) * 100 + Number(frac.padEnd(2, "0"));
  if (!Number.isSafeInteger(minor)) throw new RowError(`${label}: "${cell}" is too large`);
  return negative ? -minor : minor;
}

/** A date cell → `YYYY-MM-DD`. */
function parseDate(cell: string, label: string): string {
  let iso: string | null = null;
  if (/^\d{4}-\d{2}-\d{2}$/.test(cell)) iso = cell;
  else if (/^\d{1,2}\/\d{1,2}\/\d{4}$/.test(cell)) {
    const [m, d, y] = cell.split("/");
    iso = `${y}-${m!.padStart(2, "0")}-${d!.padStart(2, "0")}`;
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(cell) && !Number.isNaN(Date.parse(cell)))
    iso = new Date(cell).toISOString().slice(0, 10);
  if (iso === null || !isCalendarDate(iso))
    throw new RowError(`${label}: "${cell}" is not a date (YYYY-MM-DD or MM/DD/YYYY)`);
  return iso;
}
