/**
 * The sandboxes' demo data, which `npm start` and `npm run demo` rely on: HighLevel demo ids stay
 * what they were (records added later are appended to the fixed id stream), the location has the
 * "4Degrees Deal ID" opportunity field the Worker's default mapping looks for, and the HighLevel and
 * 4Degrees demos line up (same people and emails, every open 4Degrees stage named like a HighLevel
 * stage) — read over each sandbox's own API, as the Worker reads them.
 */
import { describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { suggestedMapping } from "../../../src/sync/structure.ts";
import type { Account } from "../../../src/store/accounts.ts";
import type { JsonBody } from "../../support.ts";

/** Ids of the HighLevel demo as first released (docs and newcomers' scripts may hold them). */
const RELEASED = {
  companyId: "0yn9hlbCYLJygLwsnoHy",
  locationId: "mh5DLTAVn2pnyc7kYOP0",
  otherLocationId: "eN6s17xBoHElQ0jBmwga",
  pipelineId: "LFUtBICzAVZ2d4itRI5b",
  stageIds: [
    "987ec582-a71e-41ed-adb5-3979b1d083ed",
    "bdb919b2-5d9c-4672-9c38-bce3d6b22525",
    "72b6475f-4278-4e6c-917a-182b3609f214",
    "81105330-6e57-4964-9fa4-647cba9c8840",
    "29c9cd93-87e6-4a68-8e02-4345104a8380",
    "a5151960-b754-4937-b9f4-f6b2182e5d12",
  ],
  userIds: ["6029MbbUQzoLrkadzb96", "2edJvRCRhQKRuOnfg1LK", "zXkViyCXvVun9ld5yfJm"],
  contactIds: [
    "6LfVewWiaXHEAYNuheID",
    "En61B9eXwCVmP9Ca7IcT",
    "ZFi7IWSTVsdMnRKebbQY",
    "Gk5U4EYI4cw09ZPyBLfd",
    "1LRTEx9GQt0E4b3XEBfD",
    "AtGYAS2nUVtD6UMmp8NS",
  ],
  opportunityIds: [
    "dkzbic4ck54itMtlU13p",
    "ceTi3M14uHe0xBcO2999",
    "qV1pmHMjFh718jeCQvxB",
    "UZRaeeJueqzlsTFxE5yN",
    "iKm9uvqL3FbBXaC9QpbJ",
    "F6wZWOTGHyGrRfsqxlZf",
  ],
  closeDateFieldId: "ZKcWIsx7V722dEXOXP5n",
  lostReasonIds: ["V7NUXxYz4bwihtSx3Jy9", "ihWjHAxmjvG2Nnmnw15B", "LIiFRKq7YRvTZfOu9oth"],
  pit: "pit-37625582-0c06-40a2-b0e9-ac6a2f47b035",
};

async function seeded(seed: number) {
  const sb = createSandbox({ webhookMode: "manual", seed, settings: { FOURDEGREES_RATE_LIMIT: "1000" } });
  await sb.seedDemo();
  const hl = sb.highlevel.demo!;
  const hlGet = async (path: string) => {
    const res = await sb.fetch(
      new Request(`http://sandbox.test/highlevel${path}`, {
        headers: { Authorization: `Bearer ${hl.pit}`, Version: "2021-07-28" },
      }),
    );
    expect(res.status, path).toBe(200);
    return (await res.json()) as Record<string, JsonBody>;
  };
  const fdGet = async (path: string) => {
    const res = await sb.fetch(
      new Request(`http://sandbox.test/4degrees/v1${path}`, {
        headers: { Authorization: `Bearer ${sb.fourdegrees.apiKey}` },
      }),
    );
    expect(res.status, path).toBe(200);
    return (await res.json()) as Record<string, JsonBody>;
  };
  return { sb, hl, hlGet, fdGet };
}

describe("sandbox demo data", () => {
  it("happy: the HighLevel demo keeps its released ids whatever the sandbox seed; the newer fields' ids come after them", async () => {
    for (const seed of [1, 987_654]) {
      const { hl } = await seeded(seed);
      const { externalIdFieldId, documentsFieldId, ...released } = hl;
      expect(released).toEqual(RELEASED);
      expect(externalIdFieldId).toBe("taiYy2XvnSxzMrFAsfiU");
      expect(documentsFieldId).toBe("KDaNnZHClsDPK9vkIQ6h");
    }
  });

  it('happy: the demo location has the opportunity TEXT field "4Degrees Deal ID", and the Worker\'s default mapping picks it (and the close date)', async () => {
    const { hl, hlGet, fdGet } = await seeded(7);
    const { customFields } = await hlGet(`/locations/${hl.locationId}/customFields?model=opportunity`);
    const field = customFields.find((f: { id: string }) => f.id === hl.externalIdFieldId);
    expect(field).toMatchObject({
      name: "4Degrees Deal ID",
      dataType: "TEXT",
      model: "opportunity",
      fieldKey: "opportunity.4degrees_deal_id",
    });
    const contactFields = (await hlGet(`/locations/${hl.locationId}/customFields`)).customFields.map(
      (f: { id: string }) => f.id,
    );
    expect(contactFields).not.toContain(hl.externalIdFieldId);

    const { pipelines } = await hlGet(`/opportunities/pipelines?locationId=${hl.locationId}`);
    const { data: fdPipelines } = await fdGet("/pipelines");
    const account = { id: "demo", locations: [hl.locationId] } as unknown as Account;
    const fields = customFields.map((f: { id: string; name: string }) => ({ id: f.id, name: f.name }));
    const mapping = suggestedMapping(account, {
      fourdegrees: fdPipelines,
      highlevel: { [hl.locationId]: pipelines },
      highlevelFields: { [hl.locationId]: fields },
      highlevelFieldIds: { [hl.locationId]: fields.map((f: { id: string }) => f.id) },
    });
    expect(mapping.externalIdFieldId).toBe(hl.externalIdFieldId);
    expect(mapping.closeDateFieldId).toBe(hl.closeDateFieldId);
  });

  it("happy: a deal's 4Degrees id can be written to the field through the API and reads back", async () => {
    const { sb, hl } = await seeded(3);
    const res = await sb.fetch(
      new Request(`http://sandbox.test/highlevel/opportunities/${hl.opportunityIds[0]}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${hl.pit}`, Version: "2021-07-28", "Content-Type": "application/json" },
        body: JSON.stringify({ customFields: [{ key: "4degrees_deal_id", field_value: "deal_123" }] }),
      }),
    );
    expect(res.status).toBe(200);
    expect(sb.highlevel.opportunity(hl.opportunityIds[0]!)!.customFields).toContainEqual({
      id: hl.externalIdFieldId,
      fieldValue: "deal_123",
    });
  });

  it("happy: the two demos line up: the same people and emails, and every open 4Degrees stage pairs with a HighLevel stage of the same name", async () => {
    const { hl, hlGet, fdGet } = await seeded(11);
    const { users } = await hlGet(`/users/?locationId=${hl.locationId}`);
    const { data: fdUsers } = await fdGet("/users");
    const people = (list: Array<{ name: string; email: string }>) => list.map((u) => `${u.name} <${u.email}>`).sort();
    expect(people(fdUsers)).toEqual(people(users));
    expect(users).toHaveLength(3);

    const { pipelines } = await hlGet(`/opportunities/pipelines?locationId=${hl.locationId}`);
    const hlPipeline = pipelines.find((p: { id: string }) => p.id === hl.pipelineId);
    const { data: fdPipelines } = await fdGet("/pipelines");
    const fdPipeline = fdPipelines.find((p: { name: string }) => p.name === hlPipeline.name);
    expect(fdPipeline, "a 4Degrees list named like the HighLevel pipeline").toBeDefined();
    const hlNames = hlPipeline.stages.map((s: { name: string }) => s.name);
    const fdNames = fdPipeline.stages.map((s: { name: string }) => s.name);
    for (const name of hlNames)
      expect(fdNames, `HighLevel stage "${name}" exists in 4Degrees (CSV export re-imports)`).toContain(name);
    const open = fdPipeline.stages
      .filter((s: { kind: string }) => s.kind === "open")
      .map((s: { name: string }) => s.name);
    expect(open).toEqual(hlNames.slice(0, open.length));
    expect(fdPipeline.stages.find((s: { name: string }) => s.name === "Closed")?.kind).toBe("won");
    expect(fdPipeline.stages.some((s: { kind: string }) => s.kind === "lost")).toBe(true);
  });
});
