/**
 * Reading an uploaded CSV with Papa Parse (a maintained parser that needs no Node built-ins at
 * run time): UTF-8 with or without BOM, quoted fields with embedded newlines and quotes, the
 * delimiter detected (`,` `;` tab `|`). Every record keeps the line of the file where it starts, so
 * a report can point a person at it.
 *
 * Why the whole text at once: Papa's streaming input is a Node stream or a browser File, neither
 * of which a Worker has; a 50,000-row export is a few MB, far inside a Worker's 128 MB, and the
 * records are kept as compact string arrays. The expensive part (D1 lookups, queue sends) is
 * chunked by the importer.
 */
import Papa from "papaparse";
import { AppError } from "../../lib/errors.ts";

/** One record: `line` where it starts in the file (1 = the header line), `fields` as strings. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

export interface ParsedCsv {
  headers: string[];
  delimiter: string;
  records: CsvRecord[];
}

/** Largest file the importer reads (bytes). */
export const MAX_CSV_BYTES = 50 * 1024 * 1024;
/** Most data rows in one file. */
export const MAX_CSV_ROWS = 100_000;

const notCsv = (why: string) => new AppError("bad_request", `this file is not a CSV we can read: ${why}`);

/**
 * Decodes the upload as UTF-8 (the BOM Excel writes is dropped). Binary files (NUL bytes, ZIP/XLSX
 * signatures, invalid UTF-8) are refused with a 400 that says what to do.
 */
export function decodeCsvBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) throw notCsv("the file is empty");
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) throw notCsv("it looks like an Excel/ZIP file — export the deal list as CSV instead");
  const probe = bytes.subarray(0, 8192);
  if (probe.includes(0)) throw notCsv("it contains binary data (NUL bytes)");
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw notCsv("it is not UTF-8 text — save it as \"CSV UTF-8\"");
  }
}

function countNewlines(text: string, from: number, to: number, linebreak: string): number {
  let n = 0;
  const ch = linebreak === "\r" ? "\r" : "\n";
  for (let i = text.indexOf(ch, from); i !== -1 && i < to; i = text.indexOf(ch, i + 1)) n++;
  return n;
}

/**
 * Parses CSV text. The first non-empty record is the header row. Blank lines are skipped; a record
 * with an unbalanced quote is reported by Papa and turned into a 400 naming its line.
 */
export function parseCsv(text: string, options: { delimiter?: string } = {}): ParsedCsv {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === "") throw notCsv("the file has no rows");
  // Filled inside Papa's callback (an array, so the checker does not narrow it to its initial value).
  const headerRows: string[][] = [];
  const records: CsvRecord[] = [];
  let delimiter = options.delimiter ?? "";
  let linebreak = "\n";
  let lastCursor = 0;
  let line = 1;
  const quoteErrors: Array<{ line: number; message: string }> = [];
  const overflow: boolean[] = [];

  Papa.parse<string[]>(body, {
    delimiter: options.delimiter ?? "",
    delimitersToGuess: [",", ";", "\t", "|"],
    skipEmptyLines: false,
    header: false,
    step(results, parser) {
      delimiter = results.meta.delimiter;
      linebreak = results.meta.linebreak || linebreak;
      // The record starts where the previous one ended; its own line breaks move the count on.
      const startLine = line;
      const end = results.meta.cursor;
      line += countNewlines(body, lastCursor, end, linebreak);
      lastCursor = end;
      const fields = results.data;
      const quote = results.errors.find((e) => e.type === "Quotes");
      if (quote) quoteErrors.push({ line: startLine, message: quote.message });
      if (fields.length === 1 && fields[0]!.trim() === "") return; // blank line
      if (headerRows.length === 0) {
        headerRows.push(fields.map((h) => h.trim()));
        return;
      }
      if (records.length >= MAX_CSV_ROWS) {
        overflow.push(true);
        parser.abort();
        return;
      }
      records.push({ line: startLine, fields });
    },
  });

  const q = quoteErrors[0];
  if (q) throw notCsv(`line ${q.line}: ${q.message} (a quoted field is never closed)`);
  if (overflow.length > 0) throw new AppError("payload_too_large", `the file has more than ${MAX_CSV_ROWS} rows; split it`);
  const head = headerRows[0];
  if (head === undefined) throw notCsv("the file has no header row");
  if (head.every((h) => h === "")) throw notCsv("the header row is empty");
  return { headers: head, delimiter, records };
}
