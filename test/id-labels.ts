/**
 * The id-only label check, shared by the rendered-page test (test/worker/console/id-labels.test.ts)
 * and the browser walks (test/node/browser/): a visible text node that is a short label holding a
 * provider id (4Degrees `deal_…`, `pl_…`, `st_…`, `usr_…`; HighLevel's 20-character ids) is a defect;
 * ids may sit in `title` attributes and in collapsed `<details>` (the hover and the detail row).
 */
const FOURDEGREES_ID = /\b(?:deal|pl|st|usr)_[A-Za-z0-9]{6,}\b/;
/** HighLevel ids: 20 letters and digits, with at least one digit and one letter. */
const HIGHLEVEL_ID = /(?<![A-Za-z0-9_-])(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{20}(?![A-Za-z0-9_-])/;

const decode = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");

/**
 * The visible text nodes of a page that are labels holding an id. A label is a text node of at
 * most four words (a sentence that mentions an id, such as an error reason, is not a label).
 */
export function idOnlyLabels(html: string): string[] {
  const visible = html
    .replace(/<head>[\s\S]*?<\/head>/g, "")
    .replace(/<details[\s\S]*?<\/details>/g, "")
    .replace(/<(script|style|textarea)[\s\S]*?<\/\1>/g, "");
  const out: string[] = [];
  for (const raw of visible.split(/<[^>]*>/)) {
    const text = decode(raw).replace(/\s+/g, " ").trim();
    if (!text) continue;
    const words = text.split(" ").filter((w) => !/^(?:4D|HL|↔|·|—|,|\(|\))$/.test(w));
    if (words.length <= 4 && (FOURDEGREES_ID.test(text) || HIGHLEVEL_ID.test(text))) out.push(text);
  }
  return out;
}
