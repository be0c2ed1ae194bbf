/**
 * The 4Degrees sandbox's deal-list CSV import (`POST /4degrees/v1/pipelines/{id}/import`), which
 * behaves as 4Degrees documents its CSV import: row 1 headers, comma-delimited, exact select
 * values, required fields filled, "Deal Name" the list's de-duplication key.
 */
import { describe, expect, it } from "vitest";
import { harness, type Harness } from "./fourdegrees-helpers.ts";

async function importCsv(h: Harness, csv: string, contentType = "text/csv", headers: Record<string, string> = {}) {
  return h.call("POST", `/pipelines/${h.pipeline().id}/import`, {
    body: csv,
    headers: { "content-type": contentType, ...headers },
  });
}

describe("4Degrees sandbox CSV import: parsing", () => {
  it("happy: quoted fields with commas, quotes and embedded newlines, and a UTF-8 BOM, import as written", async () => {
    const h = await harness();
    const csv =
      '\uFEFFDeal Name,Stage,Owner,Value,Expected Close Date,Notes\r\n"Acme, Inc — Seed",Sourced,priya.shah@acmecapital.example,"1,250,000.50",2027-03-31,"Founder said ""yes"".\nFollow up in Q1."\r\n';
    const res = await importCsv(h, csv);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ created: 1, updated: 0, unchanged: 0, errors: [], ignored_columns: [] });
    const deal = h.dealNamed("Acme, Inc — Seed");
    expect(deal).toMatchObject({
      stage_id: h.stage("Sourced"),
      owner_id: h.sandbox.fourdegrees.demo!.userIds[1],
      value: { amount_minor: 125_000_050, currency: "USD" },
      expected_close_date: "2027-03-31",
    });
    expect(h.sandbox.fourdegrees.notes(deal.id).map((n) => n.body)).toEqual(['Founder said "yes".\nFollow up in Q1.']);
  });

  it("happy: header names match case-insensitively; unknown columns are ignored and listed", async () => {
    const h = await harness();
    const res = await importCsv(
      h,
      "deal name,STAGE,Pipeline,Status,HighLevel ID\nBeta,First Meeting,Deal Flow,open,opp_1\n",
    );
    expect(res.json).toMatchObject({ created: 1, errors: [], ignored_columns: ["Pipeline", "Status", "HighLevel ID"] });
  });

  it("error: a semicolon-delimited file is refused with a 400 that says the file must be comma-delimited", async () => {
    const h = await harness();
    const res = await importCsv(h, "Deal Name;Stage\nGamma;Sourced\n");
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("invalid_csv");
    expect(res.json.error.message).toContain("comma-delimited");
  });

  it("error: an empty file, a binary file, a missing Stage column and a non-CSV content type are clear errors", async () => {
    const h = await harness();
    expect((await importCsv(h, "")).json.error.code).toBe("invalid_csv");
    expect((await importCsv(h, "PK\u0003\u0004\u0000\u0000binary")).json.error.code).toBe("invalid_csv");
    const noStage = await importCsv(h, "Deal Name,Owner\nDelta,alex.morgan@acmecapital.example\n");
    expect(noStage.status).toBe(400);
    expect(noStage.json.error.message).toContain("Stage");
    const json = await importCsv(h, '{"deals":[]}', "application/json");
    expect(json.status).toBe(415);
    expect(h.sandbox.fourdegrees.deals()).toHaveLength(6);
  });

  it("error: an unterminated quote fails that row with its row number, not the import", async () => {
    const h = await harness();
    const res = await importCsv(h, 'Deal Name,Stage\nGood one,Sourced\n"Broken,Sourced\n');
    expect(res.status).toBe(200);
    expect(res.json.created).toBe(1);
    expect(res.json.errors).toHaveLength(1);
    expect(res.json.errors[0].row).toBe(3);
  });

  it("error: an unknown pipeline is a 404", async () => {
    const h = await harness();
    const res = await h.call("POST", "/pipelines/pl_nope/import", {
      body: "Deal Name,Stage\nX,Sourced\n",
      headers: { "content-type": "text/csv" },
    });
    expect(res.status).toBe(404);
  });
});

describe("4Degrees sandbox CSV import: validation, row by row", () => {
  it("error: required fields, exact stage and select values, owners, numbers and dates are checked per row", async () => {
    const h = await harness();
    const csv = [
      "Deal Name,Stage,Owner,Value,Close Date,Round",
      ",Sourced,,,,",
      "No stage,,,,,",
      "Wrong case,sourced,,,,",
      "Bad owner,Sourced,nobody@nowhere.example,,,",
      "Bad value,Sourced,,12abc,,",
      "Bad date,Sourced,,,2027-02-30,",
      "Bad round,Sourced,,,,series a",
      "Fine,Term Sheet,Jordan Lee,$300000,12/31/2026,Series A",
    ].join("\n");
    const res = await importCsv(h, csv);
    expect(res.json.created).toBe(1);
    expect(res.json.errors.map((e: { row: number }) => e.row)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    const messages = res.json.errors.map((e: { message: string }) => e.message);
    expect(messages[0]).toContain("Deal Name is required");
    expect(messages[1]).toContain("Stage is required");
    expect(messages[2]).toContain('Stage "sourced" does not exactly match');
    expect(messages[3]).toContain("Owner");
    expect(messages[4]).toContain("Value");
    expect(messages[5]).toContain("Close Date");
    expect(messages[6]).toContain("Round");
    expect(h.dealNamed("Fine")).toMatchObject({
      owner_id: h.sandbox.fourdegrees.demo!.userIds[2],
      value: { amount_minor: 30_000_000 },
      expected_close_date: "2026-12-31",
      status: "open",
    });
    expect(h.dealNamed("Fine").fields[h.sandbox.fourdegrees.demo!.fieldIds["Round"]!]).toBe("Series A");
  });

  it("error: a row missing a required field creates nothing: not the deal, nor the contact or company it names", async () => {
    const h = await harness();
    const region = (
      await h.control("POST", `/pipelines/${h.pipeline().id}/fields`, {
        name: "Region",
        type: "single_select",
        options: ["US", "EU"],
        required: true,
      })
    ).json;
    const store = h.sandbox.fourdegrees.store;
    const before = {
      contacts: store.contacts.size,
      companies: store.companies.size,
      deals: store.deals.size,
      events: h.sandbox.fourdegrees.events.length,
    };
    const csv = [
      "Deal Name,Stage,Company,Contact Email,Contact Name,Region",
      "Orphan Co — Seed,Sourced,Orphan Co,ceo@orphan.example,Olive Orphan,",
      "Kept Co — Seed,Sourced,Kept Co,ceo@kept.example,Kim Kept,EU",
    ].join("\n");
    const res = await importCsv(h, csv);
    expect(res.json.created).toBe(1);
    expect(res.json.errors).toEqual([
      { row: 2, message: expect.stringContaining('"Region" is a required field of "Deal Flow"') },
    ]);
    expect(store.findContactByEmail("ceo@orphan.example")).toBeUndefined();
    expect([...store.companies.values()].map((c) => c.name)).not.toContain("Orphan Co");
    expect(store.contacts.size).toBe(before.contacts + 1);
    expect(store.companies.size).toBe(before.companies + 1);
    expect(store.deals.size).toBe(before.deals + 1);
    expect(h.sandbox.fourdegrees.events.length).toBe(before.events + 1);
    const kept = h.dealNamed("Kept Co — Seed");
    expect(kept.fields[region.id]).toBe("EU");
    expect(kept.contact_ids).toEqual([store.findContactByEmail("ceo@kept.example")!.id]);
  });

  it("error: updating an existing deal that lacks a required field is refused when the row writes fields, allowed when it writes none", async () => {
    const h = await harness();
    await h.control("POST", `/pipelines/${h.pipeline().id}/fields`, {
      name: "Region",
      type: "single_select",
      options: ["US", "EU"],
      required: true,
    });
    const name = "Bluebird Health — Seed";
    const before = h.dealNamed(name);
    const res = await importCsv(h, `Deal Name,Stage,Round,Company\n${name},Due Diligence,Seed,Brand New Co\n`);
    expect(res.json.errors).toEqual([{ row: 2, message: expect.stringContaining('"Region" is a required field') }]);
    expect(h.dealNamed(name).version).toBe(before.version);
    expect([...h.sandbox.fourdegrees.store.companies.values()].map((c) => c.name)).not.toContain("Brand New Co");
    const stageOnly = await importCsv(h, `Deal Name,Stage\n${name},Due Diligence\n`);
    expect(stageOnly.json).toMatchObject({ updated: 1, errors: [] });
  });

  it("error: a row with more cells than the header is refused", async () => {
    const h = await harness();
    const res = await importCsv(h, "Deal Name,Stage\nToo many,Sourced,extra\n");
    expect(res.json.errors[0]).toEqual({ row: 2, message: "has 3 cells but the header has 2" });
  });
});

describe("4Degrees sandbox CSV import: de-duplication by Deal Name", () => {
  it("happy: a row whose Deal Name exists in the list updates that deal; blank cells leave fields alone", async () => {
    const h = await harness();
    const before = h.dealNamed("Bluebird Health — Seed");
    const res = await importCsv(h, "Deal Name,Stage,Value,Owner\nBluebird Health — Seed,Due Diligence,900000,\n");
    expect(res.json).toMatchObject({ created: 0, updated: 1, unchanged: 0 });
    const after = h.dealNamed("Bluebird Health — Seed");
    expect(after.id).toBe(before.id);
    expect(after).toMatchObject({
      stage_id: h.stage("Due Diligence"),
      value: { amount_minor: 90_000_000 },
      owner_id: before.owner_id,
      version: before.version + 1,
    });
  });

  it("happy: importing the same file twice changes nothing the second time", async () => {
    const h = await harness();
    const csv =
      "Deal Name,Stage,Owner,Value,Contact Email,Contact Name,Company,Tags,Notes\nNew Co — Seed,Sourced,alex.morgan@acmecapital.example,500000,founder@newco.example,Fay Founder,New Co,seed;ai,Met at demo day\n";
    const first = await importCsv(h, csv);
    expect(first.json).toMatchObject({ created: 1, updated: 0, unchanged: 0, errors: [] });
    const deal = h.dealNamed("New Co — Seed");
    const contact = h.sandbox.fourdegrees.store.findContactByEmail("founder@newco.example")!;
    expect(contact.name).toBe("Fay Founder");
    expect(deal.contact_ids).toEqual([contact.id]);
    expect(deal.tags).toEqual(["seed", "ai"]);
    const events = h.sandbox.fourdegrees.events.length;
    const second = await importCsv(h, csv);
    expect(second.json).toMatchObject({ created: 0, updated: 0, unchanged: 1, errors: [] });
    expect(h.dealNamed("New Co — Seed").version).toBe(deal.version);
    expect(h.sandbox.fourdegrees.notes(deal.id)).toHaveLength(1);
    expect(h.sandbox.fourdegrees.events.length).toBe(events);
  });

  it("error: the same Deal Name twice in one file is reported on the later row, naming the earlier row that holds it", async () => {
    const h = await harness();
    const res = await importCsv(h, "Deal Name,Stage\nTwin,Sourced\nOther,Sourced\nTwin,First Meeting\n");
    expect(res.json.created).toBe(2);
    expect(res.json.errors).toEqual([{ row: 4, message: expect.stringContaining("first on row 2") }]);
    expect(res.json.errors[0].message).toContain('Deal Name "Twin" is already used by an earlier row of this file');
    expect(h.dealNamed("Twin").stage_id).toBe(h.stage("Sourced"));
  });

  it("error: when the earlier row holding the name was itself rejected, the later row's error says so", async () => {
    const h = await harness();
    await h.control("POST", `/pipelines/${h.pipeline().id}/fields`, {
      name: "Region",
      type: "single_select",
      options: ["US", "EU"],
      required: true,
    });
    const res = await importCsv(h, "Deal Name,Stage,Region\nTwin,Sourced,\nTwin,Sourced,US\n");
    expect(res.json.created).toBe(0);
    expect(res.json.errors.map((e: { row: number }) => e.row)).toEqual([2, 3]);
    expect(res.json.errors[1].message).toContain("(first on row 2, which was rejected)");
  });

  it("happy: imported changes emit webhooks with the API key's actor", async () => {
    const h = await harness();
    await importCsv(h, "Deal Name,Stage\nHooked,Sourced\nHelio Grid — Series B,Closed\n");
    await h.sandbox.fourdegrees.flush();
    const types = h.received.map((r) => JSON.parse(r.body)).map((e) => `${e.type}:${e.actor.type}`);
    expect(types).toEqual(["deal.created:api_key", "deal.stage_changed:api_key"]);
  });

  it("happy: the import honours Idempotency-Key like any write", async () => {
    const h = await harness();
    const csv = "Deal Name,Stage\nOnce,Sourced\n";
    const first = await importCsv(h, csv, "text/csv", { "idempotency-key": "import-1" });
    const replay = await importCsv(h, csv, "text/csv", { "idempotency-key": "import-1" });
    expect(replay.json).toEqual(first.json);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
  });

  it("happy: a 5,000-row file imports with a correct report, and re-imports as a no-op", async () => {
    const h = await harness();
    const rows = ["Deal Name,Stage,Owner,Value,Round"];
    const stages = ["Sourced", "First Meeting", "Due Diligence", "Partner Review", "Term Sheet", "Closed", "Passed"];
    const emails = h.sandbox.fourdegrees.demo!.userIds.map((id) => h.sandbox.fourdegrees.store.users.get(id)!.email);
    for (let i = 0; i < 5_000; i++)
      rows.push(`"Bulk deal ${i}, LLC",${stages[i % 7]},${emails[i % 3]},${(i * 1_000).toFixed(2)},Seed`);
    rows.push("Bulk bad,Nope,,,");
    const csv = rows.join("\r\n");
    const first = await importCsv(h, csv);
    expect(first.json.created).toBe(5_000);
    expect(first.json.errors).toEqual([{ row: 5_002, message: expect.stringContaining('Stage "Nope"') }]);
    const second = await importCsv(h, csv);
    expect(second.json).toMatchObject({ created: 0, updated: 0, unchanged: 5_000 });
    expect(h.dealNamed("Bulk deal 4999, LLC").value).toEqual({ amount_minor: 499_900_000, currency: "USD" });
  });
});

describe("4Degrees sandbox CSV import: the HighLevel export re-imports (issue 4, Done when)", () => {
  it("happy: the CSV bridge's export of the HighLevel demo imports into Deal Flow without errors, twice", async () => {
    const { exportCsvStream } = await import("../../../src/fourdegrees/csv/export.ts");
    const h = await harness();
    const hl = h.sandbox.highlevel;
    const demo = await hl.seedDemo();
    const store = hl.store;
    const source = {
      pipelines: async () =>
        [...store.pipelines.values()]
          .filter((p) => p.locationId === demo.locationId)
          .map((p) => ({ id: p.id, name: p.name, stages: p.stages.map((s) => ({ id: s.id, name: s.name })) })),
      users: async () =>
        [...store.users.values()].map((u) => ({ id: u.id, email: u.email, name: `${u.firstName} ${u.lastName}` })),
      pages: async function* () {
        yield store.opportunitiesOf(demo.locationId).map((o) => {
          const contact = o.contactId ? store.contacts.get(o.contactId) : undefined;
          return {
            id: o.id,
            name: o.name,
            pipelineId: o.pipelineId,
            stageId: o.pipelineStageId,
            status: o.status,
            monetaryValue: o.monetaryValue ?? null,
            assignedTo: o.assignedTo ?? null,
            contactName: contact ? store.contactName(contact) : null,
            contactEmail: contact?.email ?? null,
            companyName: contact?.companyName ?? null,
          };
        });
      },
    };
    const csv = await new Response(await exportCsvStream(source, { currency: "USD" })).text();
    const opportunities = store.opportunitiesOf(demo.locationId).length;
    expect(opportunities).toBeGreaterThan(0);

    const first = await importCsv(h, csv);
    expect(first.status).toBe(200);
    expect(first.json.errors).toEqual([]);
    expect(first.json.created).toBe(opportunities);
    expect(first.json.ignored_columns).toEqual(["Pipeline", "Status", "HighLevel ID"]);
    for (const o of store.opportunitiesOf(demo.locationId)) {
      const deal = h.dealNamed(o.name);
      const owner = h.sandbox.fourdegrees.store.users.get(deal.owner_id!);
      expect(owner?.email).toBe(store.users.get(o.assignedTo!)!.email);
      expect(deal.value?.amount_minor).toBe(Math.round((o.monetaryValue ?? 0) * 100));
    }
    const second = await importCsv(h, csv);
    expect(second.json).toMatchObject({ created: 0, updated: 0, unchanged: opportunities, errors: [] });
  });
});
