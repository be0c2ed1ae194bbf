/**
 * Conformance for API v3: the HighLevel sandbox's answers to `Version: v3` requests, over real
 * HTTP, validated with ajv against ghl/apps/v3/opportunities-v3.json (its `../common/` refs
 * resolved), on both path forms — plain (`/opportunities/…`, as the file's paths are) and with the
 * `/v3` prefix its description mentions. The official SDK, set to `apiVersion: "v3"`, drives it too.
 *
 * The file's generator artefacts are patched before compiling (ERRATA below), nothing else.
 * Skipped, with the reason printed, where the reference files are absent.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { HighLevel } from "@gohighlevel/api-client";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ghlReferenceDir, startTestSandbox, type RunningSandbox } from "./helpers.ts";
import type { JsonBody } from "../../support.ts";

const v3File = path.join(ghlReferenceDir, "apps/v3/opportunities-v3.json");
const commonFile =
  [
    path.join(ghlReferenceDir, "common/common-schemas.json"),
    path.join(ghlReferenceDir, "apps/common/common-schemas.json"),
  ].find(existsSync) ?? "";
const missing = [v3File, commonFile].filter((f) => !f || !existsSync(f));
if (missing.length > 0) {
  console.log(`[v3 conformance] SKIPPED: official HighLevel v3 OpenAPI files not found in ${ghlReferenceDir}`);
}

type Json = Record<string, JsonBody>;
const BASE = "https://ghl.reference/apps/v3/";

/** Generator artefacts of the v3 file (the same ones the v2 file has), patched before compiling. */
function applyErrata(doc: Json): string[] {
  const s = doc.components.schemas;
  // `items: {type: array}` for lists the descriptions say hold stage objects / user ids.
  s.PipelinesResponseSchema.properties.stages.items = {
    type: "object",
    required: ["id", "name", "position"],
    properties: {
      id: { type: "string" },
      name: { type: "string" },
      position: { type: "number" },
      showInFunnel: { type: "boolean" },
      showInPieChart: { type: "boolean" },
    },
  };
  s.SearchOpportunitiesResponseSchema.properties.followers.items = { type: "string" };
  // Carried over from v2's observed answers: the pager's cursor fields are null on the last page.
  for (const k of ["nextPageUrl", "startAfterId", "startAfter", "nextPage", "prevPage"]) {
    s.SearchMetaResponseSchema.properties[k].nullable = true;
  }
  return [
    "stages items: array → stage object",
    'followers items: array → string ("User IDs following this opportunity")',
    "search meta cursor fields nullable",
  ];
}

const pointer = (...segments: string[]) =>
  segments.map((seg) => encodeURIComponent(seg.replace(/~/g, "~0").replace(/\//g, "~1"))).join("/");

describe.skipIf(missing.length > 0)("HighLevel sandbox API v3 conforms to opportunities-v3.json", () => {
  let sb: RunningSandbox;
  let ajv: Ajv;
  let doc: Json;

  beforeAll(async () => {
    sb = await startTestSandbox();
    doc = JSON.parse(readFileSync(v3File, "utf8"));
    console.log(`[v3 conformance] spec errata applied: ${applyErrata(doc).join("; ")}`);
    ajv = new Ajv({ strict: false, allErrors: true });
    (addFormatsModule as unknown as (a: Ajv) => Ajv)(ajv);
    ajv.addSchema(
      JSON.parse(readFileSync(commonFile, "utf8")),
      "https://ghl.reference/apps/common/common-schemas.json",
    );
    ajv.addSchema(doc, `${BASE}opportunities-v3.json`);
  });

  afterAll(async () => {
    await sb?.close();
  });

  function schemaFor(specPath: string, method: string, status: number): ValidateFunction {
    const op = doc.paths[specPath]?.[method];
    expect(op, `${method.toUpperCase()} ${specPath} is in opportunities-v3.json`).toBeDefined();
    expect(Object.keys(op.responses), `${method.toUpperCase()} ${specPath} documents status ${status}`).toContain(
      String(status),
    );
    const validate = ajv.getSchema(
      `${BASE}opportunities-v3.json#/${pointer("paths", specPath, method, "responses", String(status))}` +
        `/${pointer("content", "application/json", "schema")}`,
    );
    expect(validate, `schema of ${specPath} ${status}`).toBeDefined();
    return validate!;
  }

  /** Calls the sandbox with `Version: v3` (under `/v3` when `prefixed`) and validates the answer. */
  async function conforms(
    specPath: string,
    method: string,
    url: string,
    init: { status: number; body?: unknown; token?: string; prefixed?: boolean },
  ): Promise<Json> {
    const headers: Record<string, string> = { Version: "v3", Authorization: `Bearer ${init.token ?? sb.demo.pit}` };
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`${sb.highlevel}${init.prefixed ? "/v3" : ""}${url}`, {
      method: method.toUpperCase(),
      headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const json = (await res.json()) as Json;
    expect(res.status, JSON.stringify(json)).toBe(init.status);
    const validate = schemaFor(specPath, method, init.status);
    expect(
      validate(json),
      `${method.toUpperCase()} ${url} → ${ajv.errorsText(validate.errors)}\n${JSON.stringify(json).slice(0, 600)}`,
    ).toBe(true);
    return json;
  }

  for (const prefixed of [false, true]) {
    const form = prefixed ? "/v3/opportunities/…" : "/opportunities/…";
    it(`happy (${form}): create with forecast and a file field → get → update (slip) → status → followers → search → delete`, async () => {
      const d = sb.demo;
      const contact = await sb.control<{ contact: { id: string } }>("POST", "/contacts", {
        firstName: "Vera",
        email: `v3-${prefixed}-${Date.now()}@example.com`,
      });
      const file = { url: "https://files.example/term-sheet.pdf", size: 1024, name: "term-sheet.pdf" };
      const created = await conforms("/opportunities/", "post", "/opportunities/", {
        prefixed,
        status: 201,
        body: {
          pipelineId: d.pipelineId,
          locationId: d.locationId,
          name: `v3 deal ${prefixed}`,
          status: "open",
          contactId: contact.contact.id,
          monetaryValue: 5000,
          forecastExpectedCloseDate: "04/30/2027",
          forecastProbability: 35,
          customFields: [
            { id: d.documentsFieldId, fieldValue: file },
            { key: "round", fieldValue: "Seed" },
          ],
        },
      });
      const id = created.opportunity.id as string;
      expect(created.opportunity).toMatchObject({
        forecastExpectedCloseDate: "2027-04-30",
        forecastOriginalCloseDate: "2027-04-30",
        forecastSlippageCount: 0,
        forecastProbability: 35,
      });
      expect(created.opportunity.customFields).toEqual(
        expect.arrayContaining([{ id: d.documentsFieldId, fieldValue: file }]),
      );
      await conforms("/opportunities/{id}", "get", `/opportunities/${id}`, { prefixed, status: 200 });
      const slipped = await conforms("/opportunities/{id}", "put", `/opportunities/${id}`, {
        prefixed,
        status: 200,
        body: { forecastExpectedCloseDate: "2027-05-10T09:00:00Z", forecastProbability: 60 },
      });
      expect(slipped.opportunity).toMatchObject({
        forecastExpectedCloseDate: "2027-05-10",
        forecastOriginalCloseDate: "2027-04-30",
        forecastSlippageCount: 1,
        forecastDaysSlipped: 10,
        forecastProbability: 60,
      });
      expect(slipped.opportunity.forecastLastSlippedAt).toEqual(expect.any(String));
      const status = await conforms("/opportunities/{id}/status", "put", `/opportunities/${id}/status`, {
        prefixed,
        status: 200,
        body: { status: "lost", lostReasonId: d.lostReasonIds[1] },
      });
      expect(status).toMatchObject({ succeded: true, success: true });
      await conforms("/opportunities/{id}/followers", "post", `/opportunities/${id}/followers`, {
        prefixed,
        status: 201,
        body: { followers: [d.userIds[0]] },
      });
      await conforms("/opportunities/{id}/followers", "delete", `/opportunities/${id}/followers`, {
        prefixed,
        status: 200,
        body: { followers: [d.userIds[0]] },
      });
      const q = encodeURIComponent(`v3 deal ${prefixed}`);
      const found = await conforms(
        "/opportunities/search",
        "get",
        `/opportunities/search?locationId=${d.locationId}&pipelineId=${d.pipelineId}&q=${q}`,
        { prefixed, status: 200 },
      );
      expect(found.opportunities.map((o: Json) => o.id)).toEqual([id]);
      expect(found.opportunities[0].forecastExpectedCloseDate).toBe("2027-05-10");
      const advanced = await conforms("/opportunities/search", "post", "/opportunities/search", {
        prefixed,
        status: 200,
        body: {
          locationId: d.locationId,
          query: `v3 deal ${prefixed}`,
          limit: 5,
          page: 0,
          searchAfter: [],
          additionalDetails: { notes: false, tasks: false, calendarEvents: false, unReadConversations: false },
        },
      });
      expect(advanced.opportunities.map((o: Json) => o.id)).toEqual([id]);
      await conforms("/opportunities/pipelines", "get", `/opportunities/pipelines?locationId=${d.locationId}`, {
        prefixed,
        status: 200,
      });
      await conforms("/opportunities/lost-reason", "get", `/opportunities/lost-reason?locationId=${d.locationId}`, {
        prefixed,
        status: 200,
      });
      expect(
        await conforms("/opportunities/{id}", "delete", `/opportunities/${id}`, { prefixed, status: 200 }),
      ).toMatchObject({ succeded: true, success: true });
      await conforms("/opportunities/{id}", "get", `/opportunities/${id}`, { prefixed, status: 400 });
    });
  }

  it("error: v3 validation (v2's field_value, a bad close date, probability > 100, a non-file value, > 10 followers, v2 query names)", async () => {
    const d = sb.demo;
    const id = d.opportunityIds[0]!;
    const v2Shape = await conforms("/opportunities/{id}", "put", `/opportunities/${id}`, {
      status: 422,
      body: { customFields: [{ id: d.closeDateFieldId, field_value: "2027-01-01" }] },
    });
    expect(v2Shape.message).toEqual(["property customFields.0.field_value should not exist"]);
    const bad = await conforms("/opportunities/{id}", "put", `/opportunities/${id}`, {
      status: 422,
      body: { forecastExpectedCloseDate: "2027-02-30", forecastProbability: 140 },
    });
    expect(bad.message).toEqual(
      expect.arrayContaining([
        expect.stringContaining("forecastExpectedCloseDate must be a date in"),
        "forecastProbability must not be greater than 100",
      ]),
    );
    const notFile = await conforms("/opportunities/{id}", "put", `/opportunities/${id}`, {
      status: 422,
      body: { customFields: [{ id: d.documentsFieldId, fieldValue: { name: "no url" } }] },
    });
    expect(notFile.message[0]).toContain("FILE_UPLOAD");
    const many = Array.from({ length: 11 }, () => d.userIds[0]!);
    expect(
      (
        await conforms("/opportunities/{id}/followers", "post", `/opportunities/${id}/followers`, {
          status: 422,
          body: { followers: many },
        })
      ).message,
    ).toEqual(["followers must contain no more than 10 elements"]);
    const snake = await conforms("/opportunities/search", "get", `/opportunities/search?location_id=${d.locationId}`, {
      status: 422,
    });
    expect(snake.message).toEqual(["property location_id should not exist"]);
    const { token: readOnly } = await sb.control<{ token: string }>("POST", "/pit", {
      scopes: ["opportunities.readonly"],
    });
    const scope = await conforms("/opportunities/{id}", "delete", `/opportunities/${id}`, {
      status: 401,
      token: readOnly,
      prefixed: true,
    });
    expect(scope.message).toBe("The token is not authorized for this scope.");
  });

  it("error: version rules — /v3 takes only Version: v3; v3 outside the v3 routes is refused; v2 records gain no forecast", async () => {
    const d = sb.demo;
    const ask = async (url: string, version: string) => {
      const res = await fetch(`${sb.highlevel}${url}`, {
        headers: { Version: version, Authorization: `Bearer ${d.pit}` },
      });
      return { status: res.status, json: (await res.json()) as Json };
    };
    expect(await ask(`/v3/opportunities/${d.opportunityIds[0]}`, "2021-07-28")).toMatchObject({
      status: 400,
      json: { message: "Invalid version header: 2021-07-28" },
    });
    expect(await ask(`/contacts/${d.contactIds[0]}`, "v3")).toMatchObject({
      status: 400,
      json: { message: "Invalid version header: v3" },
    });
    expect((await ask(`/v3/contacts/${d.contactIds[0]}`, "v3")).status).toBe(404);
    const v2 = await ask(`/opportunities/${d.opportunityIds[0]}`, "2021-07-28");
    expect(Object.keys(v2.json.opportunity).filter((k) => k.startsWith("forecast"))).toEqual([]);
  });

  for (const prefixed of [false, true]) {
    it(`happy (${prefixed ? "/v3" : "no prefix"}): upsert creates (new: true), then updates by id (new: false), in v3's shapes`, async () => {
      const d = sb.demo;
      const contact = await sb.control<{ contact: { id: string } }>("POST", "/contacts", {
        firstName: "Uma",
        email: `v3-upsert-${prefixed}-${Date.now()}@example.com`,
      });
      const base = {
        pipelineId: d.pipelineId,
        locationId: d.locationId,
        followers: [],
        isRemoveAllFollowers: false,
        followersActionType: "add",
      };
      const created = await conforms("/opportunities/upsert", "post", "/opportunities/upsert", {
        prefixed,
        status: 200,
        body: {
          ...base,
          contactId: contact.contact.id,
          name: `v3 upsert ${prefixed}`,
          status: "open",
          forecastExpectedCloseDate: "2027-03-01",
          forecastProbability: 25,
          customFields: [{ key: "round", fieldValue: "Seed" }],
        },
      });
      expect(created.new).toBe(true);
      expect(created.opportunity).toMatchObject({ forecastExpectedCloseDate: "2027-03-01", forecastProbability: 25 });
      const id = created.opportunity.id as string;
      const updated = await conforms("/opportunities/upsert", "post", "/opportunities/upsert", {
        prefixed,
        status: 200,
        body: { ...base, id, forecastExpectedCloseDate: "", forecastProbability: 80 },
      });
      expect(updated.new).toBe(false);
      expect(updated.opportunity).toMatchObject({
        id,
        forecastProbability: 80,
        forecastOriginalCloseDate: "2027-03-01",
      });
      expect(updated.opportunity.forecastExpectedCloseDate ?? null).toBeNull();
      const v2Form = await conforms("/opportunities/upsert", "post", "/opportunities/upsert", {
        prefixed,
        status: 422,
        body: { ...base, id, customFields: [{ key: "round", field_value: "A" }] },
      });
      expect(v2Form.message).toEqual(["property customFields.0.field_value should not exist"]);
    });
  }

  it("happy: every seeded opportunity, listed and read in v3, answers the v3 schemas", async () => {
    const d = sb.demo;
    const url = `/opportunities/search?locationId=${d.locationId}&limit=100`;
    const all = await conforms("/opportunities/search", "get", url, { status: 200 });
    expect(all.opportunities.map((o: Json) => o.id)).toEqual(expect.arrayContaining(d.opportunityIds));
    for (const id of d.opportunityIds) {
      await conforms("/opportunities/{id}", "get", `/opportunities/${id}`, { status: 200, prefixed: true });
    }
  });

  it("happy: the official SDK with apiVersion v3 reads and writes the native forecast", async () => {
    const ghl = new HighLevel({ privateIntegrationToken: sb.demo.pit, logLevel: "none", apiVersion: "v3" });
    ghl.getHttpClient().defaults.baseURL = sb.highlevel;
    const id = sb.demo.opportunityIds[3]!;
    const updated = await ghl.opportunities.updateOpportunity({ id }, {
      forecastExpectedCloseDate: "2027.09.01",
      forecastProbability: 80,
    } as object);
    expect(updated.opportunity).toMatchObject({ id, forecastExpectedCloseDate: "2027-09-01", forecastProbability: 80 });
    const got = await ghl.opportunities.getOpportunity({ id });
    expect(schemaFor("/opportunities/{id}", "get", 200)({ ...got })).toBe(true);
    expect(got.opportunity).toMatchObject({ forecastExpectedCloseDate: "2027-09-01" });
    expect(await ghl.opportunities.updateOpportunityStatus({ id }, { status: "won" })).toMatchObject({ success: true });
    const upserted = await ghl.opportunities.upsertOpportunity({
      id,
      pipelineId: sb.demo.pipelineId,
      locationId: sb.demo.locationId,
      followers: [],
      isRemoveAllFollowers: false,
      followersActionType: "add",
      forecastProbability: 55,
    } as Parameters<typeof ghl.opportunities.upsertOpportunity>[0]);
    expect(schemaFor("/opportunities/upsert", "post", 200)({ ...upserted })).toBe(true);
    expect(upserted).toMatchObject({ new: false, opportunity: { id, forecastProbability: 55 } });
  });
});
