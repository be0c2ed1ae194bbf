/**
 * The official HighLevel Node SDK (@gohighlevel/api-client, a devDependency only) drives the
 * sandbox over HTTP: every opportunity method, pipelines and contact notes. A fake that drifted
 * from what the official client sends or expects fails here.
 */
import { HighLevel } from "@gohighlevel/api-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSandbox, type RunningSandbox } from "./helpers.ts";

let sb: RunningSandbox;

beforeAll(async () => {
  sb = await startTestSandbox();
});

afterAll(async () => {
  await sb?.close();
});

/** An SDK client on a Location PIT, redirected to the sandbox. */
function sdk(pit: string, apiVersion?: string): HighLevel {
  const ghl = new HighLevel({ privateIntegrationToken: pit, logLevel: "none", ...(apiVersion ? { apiVersion } : {}) });
  ghl.getHttpClient().defaults.baseURL = sb.highlevel;
  return ghl;
}

describe("official SDK against the HighLevel sandbox", () => {
  it("happy: create → search → get → update → status → upsert → delete round-trips", async () => {
    const ghl = sdk(sb.demo.pit, "2021-07-28");
    const { demo } = sb;
    const contact = await ghl.contacts.createContact({
      locationId: demo.locationId,
      firstName: "Sdk",
      lastName: "Founder",
      email: `sdk-${Date.now()}@example.com`,
    });
    const contactId = contact.contact!.id!;

    const created = await ghl.opportunities.createOpportunity({
      pipelineId: demo.pipelineId,
      locationId: demo.locationId,
      name: "SDK deal",
      status: "open",
      contactId,
      monetaryValue: 1234,
    });
    const id = created.opportunity!.id!;
    expect(created.opportunity).toMatchObject({
      name: "SDK deal",
      monetaryValue: 1234,
      pipelineStageId: demo.stageIds[0],
      contactId,
      locationId: demo.locationId,
    });

    const found = await ghl.opportunities.searchOpportunity({ locationId: demo.locationId, q: "SDK deal" });
    expect(found.opportunities!.map((o) => o.id)).toEqual([id]);
    expect(found.meta!.total).toBe(1);

    const got = await ghl.opportunities.getOpportunity({ id });
    expect(got.opportunity!.contact).toMatchObject({ id: contactId, name: "Sdk Founder" });

    const updated = await ghl.opportunities.updateOpportunity(
      { id },
      { name: "SDK deal v2", pipelineStageId: demo.stageIds[3], monetaryValue: 5000 },
    );
    expect(updated.opportunity).toMatchObject({
      name: "SDK deal v2",
      pipelineStageId: demo.stageIds[3],
      monetaryValue: 5000,
    });

    const status = await ghl.opportunities.updateOpportunityStatus(
      { id },
      { status: "lost", lostReasonId: demo.lostReasonIds[0] },
    );
    expect(status).toMatchObject({ succeded: true });
    expect((await ghl.opportunities.getOpportunity({ id })).opportunity).toMatchObject({
      status: "lost",
      lostReasonId: demo.lostReasonIds[0],
    });

    const upserted = await ghl.opportunities.upsertOpportunity({
      id,
      pipelineId: demo.pipelineId,
      locationId: demo.locationId,
      name: "SDK deal v3",
      status: "open",
      followers: [demo.userIds[1]!],
      isRemoveAllFollowers: false,
      followersActionType: "add",
    });
    expect(upserted.new).toBe(false);
    expect(upserted.opportunity).toMatchObject({
      id,
      name: "SDK deal v3",
      status: "open",
      followers: [demo.userIds[1]],
    });

    const deleted = await ghl.opportunities.deleteOpportunity({ id });
    expect(deleted).toMatchObject({ succeded: true });
    await expect(ghl.opportunities.getOpportunity({ id })).rejects.toMatchObject({ statusCode: 400 });
  });

  it("happy: getPipelines and getLostReason list the demo pipeline and reasons", async () => {
    const ghl = sdk(sb.demo.pit, "2021-07-28");
    const { pipelines } = await ghl.opportunities.getPipelines({ locationId: sb.demo.locationId });
    expect(pipelines).toHaveLength(1);
    expect(pipelines![0]).toMatchObject({ id: sb.demo.pipelineId, name: "Deal Flow" });
    const stages = pipelines![0]!.stages as unknown as Array<{ id: string; name: string; position: number }>;
    expect(stages.map((s) => s.id)).toEqual(sb.demo.stageIds);
    expect(stages.map((s) => s.position)).toEqual([0, 1, 2, 3, 4, 5]);
    const reasons = await ghl.opportunities.getLostReason({ locationId: sb.demo.locationId });
    expect(reasons.total).toBe(3);
  });

  it("happy: contact notes: createNote then getAllNotes", async () => {
    const ghl = sdk(sb.demo.pit, "2021-07-28");
    const contactId = sb.demo.contactIds[2]!;
    const created = await ghl.contacts.createNote(
      { contactId },
      { body: "Partner meeting booked", userId: sb.demo.userIds[0] },
    );
    expect(created.note).toMatchObject({ body: "Partner meeting booked", contactId, userId: sb.demo.userIds[0] });
    const all = await ghl.contacts.getAllNotes({ contactId });
    expect(all.notes!.map((n) => n.id)).toContain(created.note!.id);
  });

  it("happy: contacts: updateContact, searchContactsAdvanced and deleteContact round-trip", async () => {
    const ghl = sdk(sb.demo.pit);
    const email = `sdk-contact-${Date.now()}@example.com`;
    const { contact } = await ghl.contacts.createContact({
      locationId: sb.demo.locationId,
      firstName: "Round",
      lastName: "Trip",
      email,
    });
    const contactId = contact!.id!;
    const updated = await ghl.contacts.updateContact({ contactId }, { lastName: "Tripped", tags: ["sdk"] });
    expect(updated).toMatchObject({ succeded: true, contact: { id: contactId, lastName: "Tripped", tags: ["sdk"] } });
    const found = (await ghl.contacts.searchContactsAdvanced({
      locationId: sb.demo.locationId,
      pageLimit: 5,
      filters: [{ field: "email", operator: "eq", value: email }],
    } as object)) as { contacts: Array<{ id: string }>; total: number };
    expect(found.total).toBe(1);
    expect(found.contacts.map((c) => c.id)).toEqual([contactId]);
    expect(await ghl.contacts.deleteContact({ contactId })).toMatchObject({ succeded: true });
    await expect(ghl.contacts.getContact({ contactId })).rejects.toThrow();
  });

  it("happy: the SDK's default API version (2023-02-21) is accepted", async () => {
    const ghl = sdk(sb.demo.pit);
    const { pipelines } = await ghl.opportunities.getPipelines({ locationId: sb.demo.locationId });
    expect(pipelines).toHaveLength(1);
  });

  it("error: the SDK surfaces HighLevel's 422 for an unknown body property", async () => {
    const ghl = sdk(sb.demo.pit, "2021-07-28");
    const body = {
      pipelineId: sb.demo.pipelineId,
      locationId: sb.demo.locationId,
      name: "x",
      status: "open",
      contactId: sb.demo.contactIds[0]!,
      closeDate: "2027-01-01",
    };
    await expect(ghl.opportunities.createOpportunity(body)).rejects.toMatchObject({
      statusCode: 422,
      response: { message: ["property closeDate should not exist"] },
    });
  });

  it("security: a PIT of another location cannot read this location's opportunities", async () => {
    const { token } = await sb.control<{ token: string }>("POST", "/pit", { locationId: sb.demo.otherLocationId });
    const ghl = sdk(token, "2021-07-28");
    await expect(ghl.opportunities.getOpportunity({ id: sb.demo.opportunityIds[0]! })).rejects.toMatchObject({
      statusCode: 403,
    });
  });
});
