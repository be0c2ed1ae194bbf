/**
 * Reading an uploaded CSV with Papa Parse (a maintained parser that needs no Node built-ins at
 * run time): UTF-8 with or without BOM, quoted fields with embedded newlines and quotes, the
 * delimiter detected (`,` `;` tab `|`). Every record keeps the line of the file where it starts, so
 * a report can point a person at it.
 *
 * The upload is streamed in (`readCsvText`): counted as it arrives and refused with a 413 the
 * moment it passes `MAX_CSV_BYTES`, decoded chunk by chunk so the bytes and the text are never
 * both held. Papa then parses the whole text: its streaming input is a Node stream or a browser
 * File, neither of which a Worker has. At 10 MiB (a 50,000-row export is about 6.5 MB) the text
 * and its records stay well inside an isolate's 128 MB. The expensive part (D1 lookups, queue
 * sends) is chunked by the importer.
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

/** Largest file the importer reads (bytes): well under an isolate's 128 MB once parsed. */
export const MAX_CSV_BYTES = 10 * 1024 * 1024;
/** Most data rows in one file. */
export const MAX_CSV_ROWS = 100_000;

const notCsv = (why: string) => new AppError("bad_request", `this file is not a CSV we can read: ${why}`);

/** The 413 of a file over the cap, naming the cap. */
export const csvTooLarge = (maxBytes: number = MAX_CSV_BYTES) =>
  new AppError(
    "payload_too_large",
    `the file is larger than ${maxBytes / 1024 / 1024} MiB (${maxBytes} bytes), the most one import reads; split it`,
    {
      details: { maxBytes },
    },
  );

/** Bytes at the start of a file checked for binary content. */
const PROBE_BYTES = 8192;

/** Refuses the start of a file that is a spreadsheet/ZIP or binary (400 that says what to do). */
function checkStart(head: Uint8Array): void {
  if (head[0] === 0x50 && head[1] === 0x4b)
    throw notCsv("it looks like an Excel/ZIP file — export the deal list as CSV instead");
  if (head.subarray(0, PROBE_BYTES).includes(0)) throw notCsv("it contains binary data (NUL bytes)");
}

const notUtf8 = () => notCsv('it is not UTF-8 text — save it as "CSV UTF-8"');

/**
 * Decodes the upload as UTF-8 (the BOM Excel writes is dropped). Binary files (NUL bytes, ZIP/XLSX
 * signatures, invalid UTF-8) are refused with a 400 that says what to do.
 */
export function decodeCsvBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) throw notCsv("the file is empty");
  checkStart(bytes);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw notUtf8();
  }
}

/**
 * Reads an upload stream as CSV text: at most `maxBytes` (a 413 naming the cap as soon as the
 * stream passes it, whatever Content-Length said), decoded as it arrives, checked like
 * `decodeCsvBytes`.
 */
export async function readCsvText(
  stream: ReadableStream<Uint8Array> | null,
  maxBytes: number = MAX_CSV_BYTES,
): Promise<string> {
  if (stream === null) throw notCsv("the file is empty");
  const reader = stream.getReader();
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const parts: string[] = [];
  const head = new Uint8Array(PROBE_BYTES);
  let headLength = 0;
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) throw csvTooLarge(maxBytes);
      if (headLength < PROBE_BYTES) {
        const take = value.subarray(0, PROBE_BYTES - headLength);
        head.set(take, headLength);
        headLength += take.length;
        if (headLength >= 2 || total === headLength) checkStart(head.subarray(0, headLength));
      }
      try {
        parts.push(decoder.decode(value, { stream: true }));
      } catch {
        throw notUtf8();
      }
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  }
  if (total === 0) throw notCsv("the file is empty");
  checkStart(head.subarray(0, headLength));
  try {
    parts.push(decoder.decode());
  } catch {
    throw notUtf8();
  }
  return parts.join("");
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
  if (overflow.length > 0)
    throw new AppError("payload_too_large", `the file has more than ${MAX_CSV_ROWS} rows; split it`);
  const head = headerRows[0];
  if (head === undefined) throw notCsv("the file has no header row");
  if (head.every((h) => h === "")) throw notCsv("the header row is empty");
  return { headers: head, delimiter, records };
}
