/**
 * The CSV bridge's export end to end, against both sandboxes in-process: the HighLevel demo
 * location is connected through the sandbox's OAuth (install → choose location → callback), the
 * Worker streams `GET /api/export/highlevel.csv`, and that file goes, untouched, into the 4Degrees
 * sandbox's deal-list import (`POST /4degrees/v1/pipelines/{id}/import`, which behaves as the
 * documented 4Degrees CSV import: exact stage names, required fields, Deal Name de-duplication).
 */
import { env, exports } from "cloudflare:workers";
import Papa from "papaparse";
import { beforeAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { beginInstall } from "../helpers/install.ts";
import { useNetwork } from "../helpers/network.ts";

const sb = createSandbox({ webhookMode: "manual" });
useNetwork({ "sandbox.test": (r) => sb.fetch(r), "worker.test": (r) => exports.default.fetch(r) });

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };

type HlDemo = Awaited<ReturnType<typeof sb.highlevel.seedDemo>>;
type FdDemo = Awaited<ReturnType<typeof sb.fourdegrees.seedDemo>>;
interface ImportReport {
  created: number;
  updated: number;
  unchanged: number;
  errors: Array<{ row: number; message: string }>;
  ignored_columns: string[];
}

let hl: HlDemo;
let fd: FdDemo;

/** Connects a HighLevel location the way an operator does: the Worker's install link, the sandbox's choose-location page, the callback. */
async function connectThroughOAuth(locationId: string): Promise<void> {
  const { authorize, cookie } = await beginInstall();
  const page = await (await fetch(authorize)).text();
  const requestId = /name="request_id" value="([^"]+)"/.exec(page)?.[1];
  expect(requestId, "the choose-location page carries a request id").toBeDefined();
  expect(page).toContain(`value="location:${locationId}"`);
  const chosen = await fetch(new URL("chooselocation", authorize).toString(), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      request_id: requestId ?? "",
      location: `location:${locationId}`,
      decision: "approve",
    }).toString(),
    redirect: "manual",
  });
  expect(chosen.status).toBe(302);
  const done = await fetch(chosen.headers.get("location") ?? "", { headers: { cookie } });
  expect(done.status).toBe(200);
  expect((await getConnection(env.DB, locationConnectionId(locationId)))?.status).toBe("active");
}

async function exportCsv(query: Record<string, string>): Promise<Response> {
  return fetch(`http://worker.test/api/export/highlevel.csv?${new URLSearchParams(query).toString()}`, {
    headers: ADMIN,
  });
}

/** The 4Degrees sandbox's deal-list import, with the workspace API key. */
async function importInto4Degrees(pipelineId: string, csv: string): Promise<ImportReport> {
  const res = await fetch(`http://sandbox.test/4degrees/v1/pipelines/${pipelineId}/import`, {
    method: "POST",
    headers: { authorization: `Bearer ${sb.fourdegrees.apiKey}`, "content-type": "text/csv" },
    body: csv,
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<ImportReport>();
}

beforeAll(async () => {
  hl = await sb.highlevel.seedDemo();
  fd = await sb.fourdegrees.seedDemo();
});

describe("GET /api/export/highlevel.csv → 4Degrees deal-list import (sandboxes)", () => {
  it("happy: connect the demo location through OAuth; the export is one header row, comma-delimited, with stage names, values, owner emails and close dates", async () => {
    await connectThroughOAuth(hl.locationId);
    const res = await exportCsv({ location: hl.locationId, pipeline: hl.pipelineId, lostStage: "Passed" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="highlevel-${hl.locationId}.csv"`);
    const text = await res.text();
    const parsed = Papa.parse<string[]>(text.trimEnd(), { delimiter: "" });
    expect(parsed.meta.delimiter).toBe(",");
    expect(parsed.errors).toEqual([]);
    const [header, ...rows] = parsed.data;
    expect(header).toEqual([
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
    ]);
    expect(text.match(/^Deal Name,/gm)).toHaveLength(1);

    const store = sb.highlevel.store;
    const opportunities = hl.opportunityIds.map((id) => store.opportunities.get(id)!);
    expect(rows).toHaveLength(opportunities.length);
    const pipeline = store.pipelines.get(hl.pipelineId)!;
    for (const o of opportunities) {
      const row = rows.find((r) => r[11] === o.id);
      expect(row, `row of ${o.name}`).toBeDefined();
      const stage = pipeline.stages.find((s) => s.id === o.pipelineStageId)!.name;
      const contact = store.contacts.get(o.contactId ?? "")!;
      const close = o.customFields.find((f) => f.id === hl.closeDateFieldId)?.value;
      expect(row).toEqual([
        o.name,
        "Deal Flow",
        // Lost opportunities go to the list's lost stage; the rest keep their HighLevel stage name (not its id).
        o.status === "lost" ? "Passed" : stage,
        o.status,
        store.users.get(o.assignedTo ?? "")!.email,
        (o.monetaryValue ?? 0).toFixed(2),
        "USD",
        close,
        `${contact.firstName} ${contact.lastName}`,
        contact.email,
        contact.companyName,
        o.id,
      ]);
      expect(close).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it("happy: the export imports into the 4Degrees sandbox's deal list with zero errors and the right deals, stages, values, owners and close dates; a second import is a no-op", async () => {
    await connectThroughOAuth(hl.locationId);
    const csv = await (
      await exportCsv({ location: hl.locationId, pipeline: hl.pipelineId, wonStage: "Closed", lostStage: "Passed" })
    ).text();
    const before = sb.fourdegrees.deals().length;

    const report = await importInto4Degrees(fd.pipelineId, csv);
    expect(report.errors).toEqual([]);
    expect(report).toMatchObject({ created: hl.opportunityIds.length, updated: 0, unchanged: 0 });
    // Columns 4Degrees has no field for are left unmapped, not refused.
    expect(report.ignored_columns).toEqual(["Pipeline", "Status", "HighLevel ID"]);
    expect(sb.fourdegrees.deals()).toHaveLength(before + hl.opportunityIds.length);

    const hlStore = sb.highlevel.store;
    const fdStore = sb.fourdegrees.store;
    const fdPipeline = fdStore.getPipeline(fd.pipelineId);
    for (const id of hl.opportunityIds) {
      const o = hlStore.opportunities.get(id)!;
      const deal = sb.fourdegrees.deals().find((d) => d.name === o.name && d.pipeline_id === fd.pipelineId);
      expect(deal, `4Degrees deal for ${o.name}`).toBeDefined();
      const stage = fdPipeline.stages.find((s) => s.id === deal?.stage_id);
      const hlStage = hlStore.pipelines.get(hl.pipelineId)!.stages.find((s) => s.id === o.pipelineStageId)!.name;
      expect({ stage: stage?.name, kind: stage?.kind }).toEqual(
        o.status === "lost"
          ? { stage: "Passed", kind: "lost" }
          : o.status === "won"
            ? { stage: "Closed", kind: "won" }
            : { stage: hlStage, kind: "open" },
      );
      expect(deal?.value).toEqual({ amount_minor: Math.round((o.monetaryValue ?? 0) * 100), currency: "USD" });
      expect(fdStore.users.get(deal?.owner_id ?? "")?.email).toBe(hlStore.users.get(o.assignedTo ?? "")?.email);
      expect(deal?.expected_close_date).toBe(o.customFields.find((f) => f.id === hl.closeDateFieldId)?.value);
      const contact = hlStore.contacts.get(o.contactId ?? "")!;
      expect(deal?.contact_ids.map((c) => fdStore.contacts.get(c)?.email)).toEqual([contact.email]);
      expect(fdStore.contacts.get(deal?.contact_ids[0] ?? "")?.name).toBe(`${contact.firstName} ${contact.lastName}`);
      expect(fdStore.companies.get(deal?.company_id ?? "")?.name).toBe(contact.companyName);
    }

    const again = await importInto4Degrees(fd.pipelineId, csv);
    expect(again).toMatchObject({ created: 0, updated: 0, unchanged: hl.opportunityIds.length, errors: [] });
    expect(sb.fourdegrees.deals()).toHaveLength(before + hl.opportunityIds.length);
  });

  it("happy: an opportunity renamed to clash with another and one without a name still import (unique, non-empty Deal Names)", async () => {
    await connectThroughOAuth(hl.locationId);
    const store = sb.highlevel.store;
    const [a, b, c] = hl.opportunityIds.map((id) => store.opportunities.get(id)!);
    const nameB = b!.name;
    const nameC = c!.name;
    b!.name = a!.name;
    c!.name = "";
    try {
      const csv = await (
        await exportCsv({ location: hl.locationId, pipeline: hl.pipelineId, wonStage: "Closed", lostStage: "Passed" })
      ).text();
      const names = Papa.parse<string[]>(csv.trimEnd())
        .data.slice(1)
        .map((r) => r[0]);
      // Whichever of the two comes second in HighLevel's order is told apart by its id.
      expect(names.filter((n) => n === a!.name)).toHaveLength(1);
      expect(
        names.filter((n) => n === `${a!.name} (HighLevel ${a!.id})` || n === `${a!.name} (HighLevel ${b!.id})`),
      ).toHaveLength(1);
      expect(names).toContain(`Untitled opportunity (HighLevel ${c!.id})`);
      const report = await importInto4Degrees(fd.pipelineId, csv);
      expect(report.errors).toEqual([]);
      // Two new deals (the renamed ones); the other rows match deals the previous test imported.
      expect(report.created).toBe(2);
    } finally {
      b!.name = nameB;
      c!.name = nameC;
    }
  });

  it("error: into a list whose stage names differ, every row is refused by 4Degrees with its reason (stages travel as names, never guessed)", async () => {
    await connectThroughOAuth(hl.locationId);
    // A list whose stage names differ from HighLevel's: the import refuses each row by its line.
    const other = sb.fourdegrees.store.addPipeline({
      name: "Other list",
      stages: [
        { name: "Idea", kind: "open" },
        { name: "Won", kind: "won" },
      ],
    });
    const csv = await (await exportCsv({ location: hl.locationId, pipeline: hl.pipelineId })).text();
    const report = await importInto4Degrees(other.id, csv);
    expect(report.created).toBe(0);
    expect(report.errors).toHaveLength(hl.opportunityIds.length);
    expect(report.errors[0]?.message).toMatch(/does not exactly match a stage of "Other list"/);
  });

  it("happy: closeDateField picks the date field to export when the location has another convention", async () => {
    await connectThroughOAuth(hl.locationId);
    const store = sb.highlevel.store;
    const fieldId = "cf_signing_date";
    store.customFields.set(fieldId, {
      id: fieldId,
      locationId: hl.locationId,
      name: "Signing Date",
      fieldKey: "opportunity.signing_date",
      dataType: "DATE",
      model: "opportunity",
      position: 70,
      placeholder: "",
    });
    const first = store.opportunities.get(hl.opportunityIds[0]!)!;
    first.customFields.push({ id: fieldId, value: "2027-03-15" });
    try {
      const csv = await (
        await exportCsv({ location: hl.locationId, pipeline: hl.pipelineId, closeDateField: fieldId })
      ).text();
      const rows = Papa.parse<string[]>(csv.trimEnd()).data.slice(1);
      expect(rows.map((r) => [r[11], r[7]])).toEqual(expect.arrayContaining([[first.id, "2027-03-15"]]));
      // Opportunities without that field have no close date (not the other field's).
      expect(rows.filter((r) => r[11] !== first.id).every((r) => r[7] === "")).toBe(true);
    } finally {
      first.customFields = first.customFields.filter((f) => f.id !== fieldId);
      store.customFields.delete(fieldId);
    }
  });

  it("error: bad export options are a 400 naming the option", async () => {
    const res = await exportCsv({ location: hl.locationId, closeDateField: "not an id!" });
    expect(res.status).toBe(400);
    const body = await res.json<{ error: { code: string; details: Array<{ path: string }> } }>();
    expect(body.error.code).toBe("bad_request");
    expect(JSON.stringify(body.error.details)).toContain("closeDateField");
  });
});
