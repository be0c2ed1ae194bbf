/**
 * Cell safety for the CSV bridge: text a spreadsheet would run as a formula (CSV injection), and
 * short excerpts of cells quoted in an import's per-row reasons.
 */

/**
 * Leading characters that make Excel, Sheets or LibreOffice evaluate a cell: `= + - @`, tab and
 * carriage return, and their full-width forms (＝ ＋ － ＠), which some spreadsheets fold to ASCII.
 */
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

/** `text` with a leading `'` when a spreadsheet would take it for a formula; other text unchanged. */
export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** Longest excerpt of a cell quoted in a per-row reason (the report stores reasons, not files). */
export const EXCERPT_CHARS = 40;

/** A cell as quoted in a reason: at most `EXCERPT_CHARS` characters (then `…`), formula-neutralised. */
export function cellExcerpt(cell: string): string {
  // Code points, so an excerpt never cuts a character in half.
  const chars = Array.from(cell.replace(/\s+/g, " "));
  return neutraliseFormula(
    chars.length > EXCERPT_CHARS ? `${chars.slice(0, EXCERPT_CHARS).join("")}…` : chars.join(""),
  );
}
