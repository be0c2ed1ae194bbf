/**
 * From CSV columns to the engine's `Deal` shape: the header map (sensible defaults for a 4Degrees
 * deal-list export, overridable per upload) and the validation of every row. Pure functions.
 */
import * as z from "zod";
import { AppError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { cellExcerpt } from "./cells.ts";
import type { Deal, DealStatus, FieldValue, PersonRef } from "../../domain/port.ts";
import type { Money } from "../../domain/money.ts";

/** The columns the importer understands. Anything else is kept as a custom field named by its header. */
export const CSV_FIELDS = [
  "name",
  "pipeline",
  "stage",
  "status",
  "owner",
  "value",
  "currency",
  "closeDate",
  "contactEmail",
  "contactName",
  "notes",
  "tags",
  "fourDegreesId",
  "highLevelId",
] as const;
export type CsvField = (typeof CSV_FIELDS)[number];

/** Default headers per field (compared case- and punctuation-insensitively), first match wins. */
export const DEFAULT_HEADER_ALIASES: Record<CsvField, string[]> = {
  name: ["Deal Name", "Name", "Deal", "Deal Title", "Opportunity Name"],
  pipeline: ["Pipeline", "Deal List", "List"],
  stage: ["Stage", "Deal Stage", "Pipeline Stage"],
  status: ["Status", "Deal Status"],
  owner: ["Owner", "Deal Owner", "Owner Email", "Assignee", "Assigned To"],
  value: ["Value", "Amount", "Deal Value", "Deal Size", "Monetary Value"],
  currency: ["Currency", "Currency Code"],
  closeDate: ["Close Date", "Expected Close Date", "Expected Close", "Closing Date"],
  contactEmail: ["Contact Email", "Primary Contact Email", "Email"],
  contactName: ["Contact Name", "Primary Contact", "Contact", "Contacts"],
  notes: ["Notes", "Note", "Description"],
  tags: ["Tags", "Tag"],
  fourDegreesId: ["4Degrees ID", "4Degrees Deal ID", "Deal ID"],
  highLevelId: ["HighLevel ID", "HighLevel Opportunity ID", "Opportunity ID", "GHL ID"],
};

/** A user's override: field → header (or `null` to ignore a column a default would pick). */
export const HeaderMapSchema = z.partialRecord(z.enum(CSV_FIELDS), z.string().min(1).nullable());
export type HeaderMap = z.infer<typeof HeaderMapSchema>;

/** Options an upload can set. */
export interface RowOptions {
  /** Currency when neither a currency column nor a symbol says (ISO 4217). */
  defaultCurrency: string;
  /** How to read `01/02/2026`: month first (US, default) or day first. */
  dateOrder: "MDY" | "DMY";
  /** Pipeline (deal list) name for rows without a pipeline column. */
  defaultPipeline: string | null;
}

/** Column positions of a file, resolved from its headers. */
export interface ColumnMap {
  fields: Partial<Record<CsvField, number>>;
  /** Other non-empty headers → position (kept as custom fields). */
  extra: Array<{ header: string; index: number }>;
  /** field → header, for the report. */
  used: Partial<Record<CsvField, string>>;
}

const norm = (h: string) =>
  h
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, " ")
    .trim();

/** Resolves the header map; a file without a deal-name column is refused with the headers it has. */
export function resolveColumns(headers: string[], override: HeaderMap = {}): ColumnMap {
  const byNorm = new Map<string, number>();
  headers.forEach((h, i) => {
    if (!byNorm.has(norm(h))) byNorm.set(norm(h), i);
  });
  const fields: Partial<Record<CsvField, number>> = {};
  const used: Partial<Record<CsvField, string>> = {};
  const taken = new Set<number>();
  for (const field of CSV_FIELDS) {
    if (field in override) {
      const wanted = override[field];
      if (wanted === null || wanted === undefined) continue;
      const index = byNorm.get(norm(wanted));
      if (index === undefined)
        throw new AppError(
          "bad_request",
          `map.${field} names the column "${wanted}", which the file does not have (columns: ${headers.join(", ")})`,
        );
      fields[field] = index;
      used[field] = headers[index]!;
      taken.add(index);
    }
  }
  for (const field of CSV_FIELDS) {
    if (field in override) continue;
    for (const alias of DEFAULT_HEADER_ALIASES[field]) {
      const index = byNorm.get(norm(alias));
      if (index !== undefined && !taken.has(index)) {
        fields[field] = index;
        used[field] = headers[index]!;
        taken.add(index);
        break;
      }
    }
  }
  if (fields.name === undefined) {
    throw new AppError(
      "bad_request",
      `this file is not a 4Degrees deal list we can read: no deal-name column (looked for ${DEFAULT_HEADER_ALIASES.name.map((a) => `"${a}"`).join(", ")}; columns: ${headers.slice(0, 20).join(", ") || "none"}). Name it with map={"name":"<your column>"}.`,
    );
  }
  const extra = headers
    .map((header, index) => ({ header, index }))
    .filter((h) => h.header !== "" && !taken.has(h.index));
  return { fields, extra, used };
}

/** A row that made it through validation. */
export interface ValidRow {
  line: number;
  importKey: string;
  deal: Deal;
  note: string | null;
  highlevelOpportunityId: string | null;
}

export type RowResult = { ok: true; row: ValidRow } | { ok: false; line: number; reason: string };

const SYMBOLS: Record<string, string> = { $: "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR" };
const ZERO_DECIMAL = new Set(["JPY", "KRW", "CLP", "VND", "ISK", "UGX", "XAF", "XOF"]);
const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const EMAIL = z.email();

/**
 * Money from a spreadsheet cell without floats: `$1,250,000.50`, `1.250.000,50 €`, `EUR 1000`,
 * `(500)` → minor units. One separator followed by exactly three digits is a thousands separator;
 * otherwise the last separator is the decimal point.
 */
export function parseMoney(cell: string, currencyCell: string, defaultCurrency: string): Money | string {
  let text = cell.trim();
  if (text === "") return "empty";
  let negative = false;
  if (/^\(.*\)$/.test(text)) {
    negative = true;
    text = text.slice(1, -1).trim();
  }
  let currency = currencyCell.trim().toUpperCase() || null;
  const code = /\b([A-Z]{3})\b/.exec(text.toUpperCase());
  if (code && /[A-Za-z]{3}/.test(text)) {
    currency ??= code[1]!;
    text = text.replace(/[A-Za-z]{3}/, "");
  }
  for (const [symbol, iso] of Object.entries(SYMBOLS)) {
    if (text.includes(symbol)) {
      currency ??= iso;
      text = text.split(symbol).join("");
    }
  }
  text = text.replace(/[\s\u00a0']/g, "");
  if (text.startsWith("-")) {
    negative = !negative;
    text = text.slice(1);
  }
  if (!/^[0-9.,]+$/.test(text) || !/[0-9]/.test(text)) return `"${cellExcerpt(cell)}" is not an amount`;
  const lastDot = text.lastIndexOf(".");
  const lastComma = text.lastIndexOf(",");
  let decimalSep: string | null = null;
  if (lastDot >= 0 && lastComma >= 0) decimalSep = lastDot > lastComma ? "." : ",";
  else {
    const sep = lastDot >= 0 ? "." : lastComma >= 0 ? "," : null;
    if (sep !== null) {
      const count = text.split(sep).length - 1;
      const after = text.length - text.lastIndexOf(sep) - 1;
      decimalSep = count === 1 && after !== 3 ? sep : null;
    }
  }
  let whole = text;
  let fraction = "";
  if (decimalSep !== null) {
    const i = text.lastIndexOf(decimalSep);
    whole = text.slice(0, i);
    fraction = text.slice(i + 1);
  }
  whole = whole.replace(/[.,]/g, "");
  if (!/^\d*$/.test(fraction) || (whole === "" && fraction === "")) return `"${cellExcerpt(cell)}" is not an amount`;
  const cur = currency ?? defaultCurrency;
  if (!/^[A-Z]{3}$/.test(cur)) return `currency "${cellExcerpt(cur)}" is not an ISO 4217 code`;
  const digits = ZERO_DECIMAL.has(cur) ? 0 : 2;
  if (fraction.length > digits) {
    if (/^0*$/.test(fraction.slice(digits))) fraction = fraction.slice(0, digits);
    else return `"${cellExcerpt(cell)}" has more than ${digits} decimal places`;
  }
  const minor = Number((whole || "0") + fraction.padEnd(digits, "0"));
  if (!Number.isSafeInteger(minor)) return `"${cellExcerpt(cell)}" is too large`;
  return { amountMinor: negative ? -minor : minor, currency: cur };
}

/** A calendar date from `2026-12-31`, `2026/12/31`, `12/31/2026` (or `31/12/2026` with DMY), or an ISO timestamp. */
export function parseDate(cell: string, order: "MDY" | "DMY"): string | null {
  const text = cell.trim();
  let y: number, m: number, d: number;
  let match = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$/.exec(text);
  if (match) {
    [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  } else if ((match = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(text))) {
    const a = Number(match[1]);
    const b = Number(match[2]);
    [m, d] = order === "MDY" ? [a, b] : [b, a];
    y = Number(match[3]);
  } else return null;
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null;
  return date.toISOString().slice(0, 10);
}

const STATUSES: Record<string, DealStatus> = {
  open: "open",
  active: "open",
  won: "won",
  "closed won": "won",
  lost: "lost",
  "closed lost": "lost",
  abandoned: "abandoned",
};

const splitList = (cell: string) =>
  cell
    .split(/[;,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** Longest notes text carried in one queue message (a Queues message is at most 128 KB). */
export const MAX_NOTE_CHARS = 20_000;
export const MAX_NAME_CHARS = 500;

/** Validates one record and builds its `Deal`. */
export function validateRow(
  record: { line: number; fields: string[] },
  columns: ColumnMap,
  options: RowOptions,
  importId: string,
): RowResult {
  const cell = (f: CsvField) => {
    const i = columns.fields[f];
    return i === undefined ? "" : (record.fields[i] ?? "").trim();
  };
  const fail = (reason: string): RowResult => ({ ok: false, line: record.line, reason });

  const name = cell("name").replace(/\s+/g, " ");
  if (name === "") return fail("Deal name is empty");
  if (name.length > MAX_NAME_CHARS) return fail(`Deal name is longer than ${MAX_NAME_CHARS} characters`);

  let value: Money | null = null;
  if (cell("value") !== "") {
    const parsed = parseMoney(cell("value"), cell("currency"), options.defaultCurrency);
    if (typeof parsed === "string") return fail(`Value: ${parsed}`);
    value = parsed;
  }

  let expectedCloseDate: string | null = null;
  if (cell("closeDate") !== "") {
    expectedCloseDate = parseDate(cell("closeDate"), options.dateOrder);
    if (expectedCloseDate === null)
      return fail(`Close date "${cellExcerpt(cell("closeDate"))}" is not a date (use YYYY-MM-DD)`);
  }

  let status: DealStatus | null = null;
  if (cell("status") !== "") {
    status = STATUSES[cell("status").toLowerCase()] ?? null;
    if (status === null) return fail(`Status "${cellExcerpt(cell("status"))}" is not open, won, lost or abandoned`);
  }

  const emails = splitList(cell("contactEmail"));
  for (const email of emails)
    if (!EMAIL.safeParse(email).success) return fail(`Contact email "${cellExcerpt(email)}" is not an email address`);
  const contactName = cell("contactName") || null;
  const contacts: PersonRef[] = emails.map((email, i) => ({
    id: null,
    email: email.toLowerCase(),
    name: i === 0 ? contactName : null,
  }));
  if (contacts.length === 0 && contactName) contacts.push({ id: null, email: null, name: contactName });

  const ownerCell = cell("owner");
  let owner: PersonRef | null = null;
  if (ownerCell !== "") {
    if (ownerCell.includes("@")) {
      if (!EMAIL.safeParse(ownerCell).success) return fail(`Owner "${cellExcerpt(ownerCell)}" is not an email address`);
      owner = { id: null, email: ownerCell.toLowerCase(), name: null };
    } else owner = { id: null, email: null, name: ownerCell };
  }

  const fourDegreesId = cell("fourDegreesId") || null;
  if (fourDegreesId !== null && !ID.test(fourDegreesId))
    return fail(`4Degrees ID "${cellExcerpt(fourDegreesId)}" is not an id`);
  const highlevelOpportunityId = cell("highLevelId") || null;
  if (highlevelOpportunityId !== null && !ID.test(highlevelOpportunityId))
    return fail(`HighLevel ID "${cellExcerpt(highlevelOpportunityId)}" is not an id`);

  const note = cell("notes") || null;
  if (note !== null && note.length > MAX_NOTE_CHARS) return fail(`Notes are longer than ${MAX_NOTE_CHARS} characters`);

  const pipelineName = cell("pipeline") || options.defaultPipeline;
  const fields: Record<string, FieldValue> = {};
  for (const { header, index } of columns.extra) {
    const v = (record.fields[index] ?? "").trim();
    if (v !== "") fields[header] = v;
  }

  const importKey = fourDegreesId
    ? `4d:${fourDegreesId}`
    : highlevelOpportunityId
      ? `hl:${highlevelOpportunityId}`
      : `name:${(pipelineName ?? "").toLowerCase()}/${name.toLowerCase()}`;

  const deal: Deal = {
    id: fourDegreesId,
    version: null,
    name,
    pipeline: { id: null, name: pipelineName },
    stage: { id: null, name: cell("stage") || null },
    status,
    owner,
    value,
    expectedCloseDate,
    companyId: null,
    contacts,
    tags: splitList(cell("tags")),
    fields,
    externalRefs: highlevelOpportunityId ? [{ system: "highlevel", id: highlevelOpportunityId }] : [],
    createdAt: null,
    updatedAt: null,
    archivedAt: null,
    actor: { type: "import", id: importId },
  };
  return { ok: true, row: { line: record.line, importKey, deal, note, highlevelOpportunityId } };
}

/**
 * Hash of what a row says (not of the import it came in), hex SHA-256: the same row in a later
 * import hashes the same, so it is recognised as unchanged.
 */
export async function contentHash(row: ValidRow): Promise<string> {
  const { actor: _actor, ...deal } = row.deal;
  const canonical = JSON.stringify([
    deal.id,
    deal.name,
    deal.pipeline,
    deal.stage,
    deal.status,
    deal.owner,
    deal.value,
    deal.expectedCloseDate,
    deal.contacts,
    deal.tags,
    Object.entries(deal.fields).sort(([a], [b]) => (a < b ? -1 : 1)),
    deal.externalRefs,
    row.note,
  ]);
  return sha256Hex(canonical);
}
