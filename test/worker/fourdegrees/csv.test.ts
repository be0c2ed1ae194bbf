/**
 * The CSV bridge: parsing real-world exports, validating rows, the import endpoint's report and
 * idempotence (a 50,000-row file, generated here), and the HighLevel export's shape.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import Papa from "papaparse";
import {
  closeDateOf,
  exportCsvStream,
  type ExportOpportunity,
  type OpportunitySource,
} from "../../../src/fourdegrees/csv/export.ts";
import { parseCsv, decodeCsvBytes, MAX_CSV_BYTES } from "../../../src/fourdegrees/csv/parse.ts";
import { parseDate, parseMoney, resolveColumns } from "../../../src/fourdegrees/csv/rows.ts";
import { createApp } from "../../../src/http/app.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";

const app = createApp();
const AUTH = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };

/** The app with a recording queue. */
function recorder() {
  const sent: QueueMessage[] = [];
  let batches = 0;
  const queue = {
    async send(body: unknown) {
      sent.push(QueueMessageSchema.parse(body));
    },
    async sendBatch(messages: Iterable<{ body: unknown }>) {
      batches++;
      const list = [...messages];
      expect(list.length).toBeLessThanOrEqual(100);
      for (const m of list) sent.push(QueueMessageSchema.parse(m.body));
    },
  };
  return { sent, batches: () => batches, call: (req: Request) => app.fetch(req, { ...env, BULK_QUEUE: queue }) };
}

type Report = {
  rows: number;
  created: number;
  updated: number;
  linked: number;
  unchanged: number;
  queued: number;
  skipped: Array<{ line: number; reason: string }>;
  delimiter: string;
  columns: Record<string, string>;
};

function upload(account: string, body: string | Uint8Array, options: { type?: string; query?: string } = {}) {
  return new Request(`http://worker.test/api/import/4degrees?account=${account}${options.query ?? ""}`, {
    method: "POST",
    headers: { ...AUTH, "content-type": options.type ?? "text/csv" },
    body,
  });
}

async function createAccount(id: string) {
  await env.DB.prepare(
    "INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, ?, 0, 0) ON CONFLICT (id) DO NOTHING",
  )
    .bind(id, id)
    .run();
}

const SAMPLE = [
  "\uFEFFDeal Name;Stage;Owner;Value;Expected Close Date;Contact Email;Notes;Sector;HighLevel ID",
  'Acme Series A;Due Diligence;alex@fund.test;"1.250.000,50 €";2026-12-31;jane@acme.test;"Met at ""SaaStr"";\nfollow up in Q1";Fintech;',
  "Beta Seed;Sourced;Sam Lee;$250,000;12/31/2026;;;Health;opp_beta",
  ";Sourced;;;;;;;",
  "Gamma;Sourced;;lots;;;;;",
  "Delta;Sourced;;100;2026-02-30;;;;",
  "Epsilon;Sourced;;100;;not-an-email;;;",
  "acme series a;Won;;;;;;;",
  "",
].join("\r\n");

describe("CSV parsing", () => {
  it("happy: BOM, ';' separator, quoted fields with quotes and embedded newlines, line numbers", () => {
    const parsed = parseCsv(decodeCsvBytes(new TextEncoder().encode(SAMPLE)));
    expect(parsed.delimiter).toBe(";");
    expect(parsed.headers[0]).toBe("Deal Name");
    expect(parsed.records[0]!.fields[6]).toBe('Met at "SaaStr";\nfollow up in Q1');
    // Record 2 starts on line 4 because record 1 spans lines 2–3.
    expect(parsed.records.map((r) => r.line)).toEqual([2, 4, 5, 6, 7, 8, 9]);
  });

  it("error: binary, spreadsheet, non-UTF-8, empty and unclosed-quote files are refused clearly", () => {
    expect(() => decodeCsvBytes(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]))).toThrow(/Excel\/ZIP/);
    expect(() => decodeCsvBytes(new Uint8Array([0x41, 0x00, 0x42]))).toThrow(/binary/);
    expect(() => decodeCsvBytes(new Uint8Array([0x41, 0xff, 0xfe, 0x42]))).toThrow(/not UTF-8/);
    expect(() => decodeCsvBytes(new Uint8Array())).toThrow(/empty/);
    expect(() => parseCsv('Deal Name,Stage\n"Acme,Open\nB,Won')).toThrow(/never closed/);
    expect(() => resolveColumns(["foo", "bar"])).toThrow(/no deal-name column/);
  });

  it("happy: money without floats, in the notations spreadsheets use", () => {
    expect(parseMoney("$1,250,000.50", "", "USD")).toEqual({ amountMinor: 125_000_050, currency: "USD" });
    expect(parseMoney("1.250.000,50 €", "", "USD")).toEqual({ amountMinor: 125_000_050, currency: "EUR" });
    expect(parseMoney("1,5", "", "EUR")).toEqual({ amountMinor: 150, currency: "EUR" });
    expect(parseMoney("1,500", "", "USD")).toEqual({ amountMinor: 150_000, currency: "USD" });
    expect(parseMoney("GBP 99.99", "", "USD")).toEqual({ amountMinor: 9_999, currency: "GBP" });
    expect(parseMoney("(500)", "CHF", "USD")).toEqual({ amountMinor: -50_000, currency: "CHF" });
    expect(parseMoney("1000", "jpy", "USD")).toEqual({ amountMinor: 1000, currency: "JPY" });
    expect(parseMoney("0.1", "", "USD")).toEqual({ amountMinor: 10, currency: "USD" });
    expect(parseMoney("12.345,678", "", "USD")).toMatch(/decimal places/);
    expect(parseMoney("lots", "", "USD")).toMatch(/not an amount/);
  });

  it("happy: dates in ISO, US and day-first order; impossible dates refused", () => {
    expect(parseDate("2026-12-31", "MDY")).toBe("2026-12-31");
    expect(parseDate("2026-12-31T10:00:00Z", "MDY")).toBe("2026-12-31");
    expect(parseDate("02/01/2026", "MDY")).toBe("2026-02-01");
    expect(parseDate("02/01/2026", "DMY")).toBe("2026-01-02");
    expect(parseDate("2026-02-30", "MDY")).toBeNull();
    expect(parseDate("soon", "MDY")).toBeNull();
  });
});

describe("POST /api/import/4degrees", () => {
  beforeAll(async () => {
    await createAccount("csv-acc");
    await createAccount("big-acc");
    await createAccount("multi-acc");
  });

  it("happy: reports queued creates and links, skips each bad row with its line, then a re-import is a no-op", async () => {
    const q = recorder();
    const res = await q.call(upload("csv-acc", SAMPLE));
    expect(res.status).toBe(200);
    const report = await res.json<Report>();
    expect(report).toMatchObject({
      rows: 7,
      created: 1,
      linked: 1,
      updated: 0,
      unchanged: 0,
      queued: 2,
      delimiter: ";",
    });
    expect(report.skipped).toEqual([
      { line: 5, reason: "Deal name is empty" },
      { line: 6, reason: 'Value: "lots" is not an amount' },
      { line: 7, reason: 'Close date "2026-02-30" is not a date (use YYYY-MM-DD)' },
      { line: 8, reason: 'Contact email "not-an-email" is not an email address' },
      { line: 9, reason: "the same deal as line 2 (same deal name in the same list)" },
    ]);
    expect(q.sent).toHaveLength(2);
    const [acme, beta] = q.sent;
    expect(acme).toMatchObject({
      kind: "fourdegrees.import_row",
      accountId: "csv-acc",
      action: "create",
      line: 2,
      importKey: "name:/acme series a",
      note: 'Met at "SaaStr";\nfollow up in Q1',
      deal: {
        id: null,
        name: "Acme Series A",
        stage: { id: null, name: "Due Diligence" },
        owner: { email: "alex@fund.test" },
        value: { amountMinor: 125_000_050, currency: "EUR" },
        expectedCloseDate: "2026-12-31",
        contacts: [{ email: "jane@acme.test" }],
        fields: { Sector: "Fintech" },
        actor: { type: "import" },
      },
    });
    expect(beta).toMatchObject({
      action: "link",
      highlevelOpportunityId: "opp_beta",
      importKey: "hl:opp_beta",
      deal: {
        owner: { name: "Sam Lee" },
        expectedCloseDate: "2026-12-31",
        externalRefs: [{ system: "highlevel", id: "opp_beta" }],
      },
    });

    const again = recorder();
    const second = await (await again.call(upload("csv-acc", SAMPLE))).json<Report>();
    expect(second).toMatchObject({ created: 0, linked: 0, updated: 0, unchanged: 2, queued: 0 });
    expect(second.skipped).toHaveLength(5);
    expect(again.sent).toHaveLength(0);

    const changed = recorder();
    const third = await (
      await changed.call(upload("csv-acc", SAMPLE.replace("Due Diligence", "Term Sheet")))
    ).json<Report>();
    expect(third).toMatchObject({ updated: 1, unchanged: 1, queued: 1 });
    expect(changed.sent[0]).toMatchObject({ action: "update", deal: { stage: { name: "Term Sheet" } } });
  });

  it("happy: a multipart upload with a user header map and options", async () => {
    const q = recorder();
    const file = 'Company Deal,Check Size,Phase,Close\nOmega,"2,000,000",Sourced,31/01/2027\n';
    const form = new FormData();
    form.set("file", new File([file], "deals.csv", { type: "text/csv" }));
    form.set("account", "multi-acc");
    form.set("map", JSON.stringify({ name: "Company Deal", value: "Check Size", stage: "Phase", closeDate: "Close" }));
    form.set("dateOrder", "DMY");
    form.set("currency", "gbp");
    form.set("pipeline", "Venture");
    const res = await q.call(
      new Request("http://worker.test/api/import/4degrees", { method: "POST", headers: AUTH, body: form }),
    );
    expect(res.status).toBe(200);
    const report = await res.json<Report>();
    expect(report).toMatchObject({
      created: 1,
      skipped: [],
      columns: { name: "Company Deal", value: "Check Size", stage: "Phase", closeDate: "Close" },
    });
    expect(q.sent[0]).toMatchObject({
      importKey: "name:venture/omega",
      deal: {
        pipeline: { name: "Venture" },
        stage: { name: "Sourced" },
        value: { amountMinor: 200_000_000, currency: "GBP" },
        expectedCloseDate: "2027-01-31",
      },
    });
  });

  it("happy: 50,000 rows import with a correct report, and the same file again enqueues nothing", async () => {
    const lines = ["Deal Name,Stage,Owner,Value,Close Date,Contact Email,Notes"];
    for (let i = 1; i <= 50_000; i++) {
      const bad = i % 10_000 === 0; // five rows with an unreadable value
      lines.push(
        `"Deal ${i}, Inc.",${["Sourced", "Diligence", "Won"][i % 3]},owner${i % 7}@fund.test,${bad ? "n/a" : `"$${i},000.00"`},2027-0${(i % 9) + 1}-15,c${i}@example.test,"line one\nline two"`,
      );
    }
    const file = lines.join("\n");
    const q = recorder();
    const res = await q.call(upload("big-acc", file));
    expect(res.status).toBe(200);
    const report = await res.json<Report>();
    expect(report).toMatchObject({
      rows: 50_000,
      created: 49_995,
      updated: 0,
      linked: 0,
      unchanged: 0,
      queued: 49_995,
    });
    // Every row spans two lines (the quoted note), so row i starts on line 2i.
    expect(report.skipped).toEqual(
      [10_000, 20_000, 30_000, 40_000, 50_000].map((i) => ({ line: 2 * i, reason: 'Value: "n/a" is not an amount' })),
    );
    expect(q.sent).toHaveLength(49_995);
    expect(new Set(q.sent.map((m) => (m.kind === "fourdegrees.import_row" ? m.importKey : ""))).size).toBe(49_995);
    expect(q.batches()).toBeGreaterThanOrEqual(500);

    const again = recorder();
    const second = await (await again.call(upload("big-acc", file))).json<Report>();
    expect(second).toMatchObject({ rows: 50_000, created: 0, updated: 0, linked: 0, unchanged: 49_995, queued: 0 });
    expect(again.sent).toHaveLength(0);
  });

  it("error: not a CSV, wrong media type, unknown account, bad options", async () => {
    const q = recorder();
    const json = await q.call(upload("csv-acc", '{"deals": []}'));
    expect(json.status).toBe(400);
    expect((await json.json<{ error: { message: string } }>()).error.message).toMatch(/no deal-name column/);
    expect((await q.call(upload("csv-acc", new Uint8Array([0x50, 0x4b, 3, 4])))).status).toBe(400);
    expect((await q.call(upload("csv-acc", "Deal Name\nA", { type: "application/json" }))).status).toBe(415);
    expect((await q.call(upload("nobody", "Deal Name\nA"))).status).toBe(404);
    expect((await q.call(upload("csv-acc", "Deal Name\nA", { query: "&map=%7Bnope" }))).status).toBe(400);
    expect(
      (await q.call(upload("csv-acc", "Deal Name\nA", { query: `&map=${encodeURIComponent('{"stage":"Phase"}')}` })))
        .status,
    ).toBe(400);
    expect((await q.call(upload("csv-acc", "Deal Name\nA", { query: "&dateOrder=YMD" }))).status).toBe(400);
    expect(q.sent).toHaveLength(0);
  });

  it("security: a per-row reason quotes a short, formula-neutralised excerpt of the cell, never the whole cell", async () => {
    await createAccount("csv-inject-acc");
    const q = recorder();
    const long = `=HYPERLINK("https://evil.test/${"x".repeat(5_000)}","open")`;
    const file = Papa.unparse([
      ["Deal Name", "Value", "Status", "Owner", "Close Date"],
      ["A", '-1+HYPERLINK("https://evil.test")', "open", "", ""],
      ["B", "", long, "", ""],
      ["C", "", "open", "@SUM(1+1)", ""],
      ["D", "", "open", "", "\uFF1D1+1"],
    ]);
    const report = await (await q.call(upload("csv-inject-acc", file))).json<Report>();
    expect(report.skipped).toHaveLength(4);
    const [value, status, owner, date] = report.skipped.map((s) => s.reason);
    expect(value).toBe(`Value: "'-1+HYPERLINK("https://evil.test")" is not an amount`);
    expect(status).toMatch(/^Status "'=HYPERLINK\("https:\/\/evil\.test\/x+…" is not open, won, lost or abandoned$/);
    expect(status!.length).toBeLessThan(120);
    expect(owner).toBe(`Owner "'@SUM(1+1)" is not an email address`);
    expect(date).toBe(`Close date "'\uFF1D1+1" is not a date (use YYYY-MM-DD)`);
    expect(q.sent).toHaveLength(0);
  });

  it("security: a file over the 10 MiB cap is refused with a 413 naming the cap, whether or not it declares its length", async () => {
    await createAccount("csv-cap-acc");
    const q = recorder();
    const row = `"Deal, Inc.",Sourced,${"x".repeat(100)}\n`;
    const big = `Deal Name,Stage,Notes\n${row.repeat(Math.ceil((MAX_CSV_BYTES + 1) / row.length))}`;
    expect(MAX_CSV_BYTES).toBe(10 * 1024 * 1024);
    const sized = await q.call(upload("csv-cap-acc", big));
    expect(sized.status).toBe(413);
    expect((await sized.json<{ error: { message: string } }>()).error.message).toMatch(
      /larger than 10 MiB \(10485760 bytes\)/,
    );
    // Streamed without a Content-Length: cut off once the count passes the cap.
    const bytes = new TextEncoder().encode(big);
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(pulled, pulled + 64 * 1024));
        pulled += 64 * 1024;
      },
    });
    const streamed = await q.call(
      new Request("http://worker.test/api/import/4degrees?account=csv-cap-acc", {
        method: "POST",
        headers: { ...AUTH, "content-type": "text/csv" },
        body,
        duplex: "half",
      } as RequestInit),
    );
    expect(streamed.status).toBe(413);
    const form = new FormData();
    form.set("file", new File([big], "big.csv", { type: "text/csv" }));
    expect(
      (
        await q.call(
          new Request("http://worker.test/api/import/4degrees?account=csv-cap-acc", {
            method: "POST",
            headers: AUTH,
            body: form,
          }),
        )
      ).status,
    ).toBe(413);
    expect(q.sent).toHaveLength(0);
    // Just under the cap still imports.
    const fits = `Deal Name,Stage,Notes\n${row.repeat(Math.floor((MAX_CSV_BYTES - 100) / row.length))}`;
    expect((await q.call(upload("csv-cap-acc", fits))).status).toBe(200);
  });

  it("security: the stored report keeps short reasons, not the rows' cells", async () => {
    await createAccount("csv-reason-acc");
    const q = recorder();
    const huge = "n".repeat(20_000);
    const file = Papa.unparse([
      ["Deal Name", "Value", "Status"],
      ...Array.from({ length: 50 }, (_, i) => [`Deal ${i}`, huge, "open"]),
    ]);
    const report = await (await q.call(upload("csv-reason-acc", file))).json<Report & { importId: string }>();
    expect(report.skipped).toHaveLength(50);
    const row = await env.DB.prepare("SELECT skipped_json FROM fourdegrees_imports WHERE id = ?")
      .bind(report.importId)
      .first<{ skipped_json: string }>();
    const stored = JSON.parse(row!.skipped_json) as Array<{ line: number; reason: string }>;
    expect(stored).toHaveLength(50);
    for (const s of stored) expect(s.reason.length).toBeLessThan(100);
    expect(row!.skipped_json.length).toBeLessThan(50 * 120);
  });

  it("security: the import refuses a request without the admin token", async () => {
    const q = recorder();
    const res = await q.call(
      new Request("http://worker.test/api/import/4degrees?account=csv-acc", {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body: "Deal Name\nA",
      }),
    );
    expect(res.status).toBe(401);
    expect(q.sent).toHaveLength(0);
  });
});

describe("HighLevel → CSV export", () => {
  const opp = (i: number, over: Partial<ExportOpportunity> = {}): ExportOpportunity => ({
    id: `opp_${i}`,
    name: `Deal ${i}`,
    pipelineId: "p1",
    stageId: i % 2 ? "s1" : "s2",
    status: "open",
    monetaryValue: i * 1000.5,
    assignedTo: "u1",
    contactName: "Jane Doe",
    contactEmail: `jane${i}@acme.test`,
    companyName: "Acme, Inc.",
    ...over,
  });
  const source = (pages: ExportOpportunity[][]): OpportunitySource => ({
    pipelines: async () => [
      {
        id: "p1",
        name: "Venture",
        stages: [
          { id: "s1", name: "Sourced" },
          { id: "s2", name: "Due Diligence" },
        ],
      },
    ],
    users: async () => [{ id: "u1", name: "Alex", email: "alex@fund.test" }],
    pages: async function* () {
      yield* pages;
    },
  });

  it("happy: one header row, comma-delimited, stage names, and it re-imports without a skipped row", async () => {
    const stream = await exportCsvStream(
      source([
        [opp(1, { closeDate: "2026-12-31" }), opp(2, { name: '=HYPERLINK("x")', monetaryValue: null })],
        [opp(3, { name: "Multi\nline" })],
      ]),
      { currency: "USD" },
    );
    const text = await new Response(stream).text();
    const lines = text.split("\r\n");
    expect(lines[0]).toBe(
      "Deal Name,Pipeline,Stage,Status,Owner,Value,Currency,Expected Close Date,Contact Name,Contact Email,Company,HighLevel ID",
    );
    expect(lines[1]).toBe(
      'Deal 1,Venture,Sourced,open,alex@fund.test,1000.50,USD,2026-12-31,Jane Doe,jane1@acme.test,"Acme, Inc.",opp_1',
    );
    expect(lines[2]).toContain(`"'=HYPERLINK(""x"")",Venture,Due Diligence`);
    expect(text.match(/^Deal Name/gm)).toHaveLength(1);

    await createAccount("roundtrip-acc");
    const q = recorder();
    const report = await (await q.call(upload("roundtrip-acc", text))).json<Report>();
    expect(report).toMatchObject({ rows: 3, linked: 3, skipped: [], delimiter: "," });
    expect(
      q.sent.map((m) =>
        m.kind === "fourdegrees.import_row"
          ? [m.highlevelOpportunityId, m.deal.stage.name, m.deal.value?.amountMinor ?? null]
          : null,
      ),
    ).toEqual([
      ["opp_1", "Sourced", 100_050],
      ["opp_2", "Due Diligence", null],
      ["opp_3", "Sourced", 300_150],
    ]);
  });

  it("security: every text cell a spreadsheet would evaluate is neutralised; only real numbers in Value go raw", async () => {
    const evil = [
      '-1+HYPERLINK("https://evil.test")',
      "+1",
      "@SUM(A1)",
      "\tx",
      "\rx",
      "\uFF1D1+1",
      "\uFF0B1",
      "\uFF0D1",
      "\uFF20x",
      "=1",
    ];
    const opps = evil.map((name, i) =>
      opp(i + 1, { name, companyName: name, contactName: "-2", monetaryValue: -(i + 1) }),
    );
    const rows = Papa.parse<string[]>(
      (await new Response(await exportCsvStream(source([opps]), { currency: "USD" })).text()).trim(),
      { newline: "\r\n" },
    ).data.slice(1);
    expect(rows.map((r) => r[0])).toEqual(evil.map((e) => `'${e}`));
    expect(rows.map((r) => r[10])).toEqual(evil.map((e) => `'${e}`));
    expect(rows.map((r) => r[8])).toEqual(evil.map(() => "'-2"));
    expect(rows.map((r) => r[5])).toEqual(evil.map((_, i) => `-${i + 1}.00`));
  });

  it("happy: won/lost opportunities carry the list's won/lost stage names when given, else their HighLevel stage", async () => {
    const opps = [opp(1, { status: "won" }), opp(2, { status: "lost" }), opp(3, { status: "abandoned" }), opp(4)];
    const stagesOf = async (options: { wonStage?: string; lostStage?: string }) => {
      const text = await new Response(await exportCsvStream(source([opps]), { currency: "USD", ...options })).text();
      return text
        .trim()
        .split("\r\n")
        .slice(1)
        .map((line) => line.split(",")[2]);
    };
    expect(await stagesOf({ wonStage: "Closed", lostStage: "Passed" })).toEqual([
      "Closed",
      "Passed",
      "Passed",
      "Due Diligence",
    ]);
    expect(await stagesOf({})).toEqual(["Sourced", "Due Diligence", "Sourced", "Due Diligence"]);
  });

  it("happy: every row has a unique, non-empty Deal Name (4Degrees' de-duplication key), stable across exports", async () => {
    const opps = [
      opp(1, { name: "Acme" }),
      opp(2, { name: "Acme" }),
      opp(3, { name: "  " }),
      opp(4, { name: "Acme (HighLevel opp_2)" }),
    ];
    const names = async () =>
      Papa.parse<string[]>(
        (await new Response(await exportCsvStream(source([opps]), { currency: "USD" })).text()).trim(),
      )
        .data.slice(1)
        .map((r) => r[0]);
    const first = await names();
    expect(first).toEqual([
      "Acme",
      "Acme (HighLevel opp_2)",
      "Untitled opportunity (HighLevel opp_3)",
      "Acme (HighLevel opp_2) (HighLevel opp_4)",
    ]);
    expect(new Set(first).size).toBe(first.length);
    expect(await names()).toEqual(first);
  });

  it("happy: close dates read from HighLevel date fields in each notation it uses", () => {
    expect(closeDateOf("2026-12-31")).toBe("2026-12-31");
    expect(closeDateOf("2026-12-31T00:00:00.000Z")).toBe("2026-12-31");
    expect(closeDateOf(Date.UTC(2026, 11, 31))).toBe("2026-12-31");
    expect(closeDateOf(String(Date.UTC(2026, 11, 31) / 1000))).toBe("2026-12-31");
    expect(closeDateOf("next quarter")).toBeNull();
    expect(closeDateOf(null)).toBeNull();
  });

  it("error: the export needs a location and the admin token", async () => {
    const q = recorder();
    expect((await q.call(new Request("http://worker.test/api/export/highlevel.csv", { headers: AUTH }))).status).toBe(
      400,
    );
    expect((await q.call(new Request("http://worker.test/api/export/highlevel.csv?location=loc1"))).status).toBe(401);
  });
});
