/**
 * The HighLevel sandbox's lost reasons, status changes with `lostReasonId`, and followers, in-process
 * inside workerd: ghl/apps/opportunities.json's routes and scopes, the reason validated against the
 * opportunity's location, the reason stored and rendered on the opportunity, the control API that
 * manages reasons, and an `OpportunityStatusUpdate` webhook shaped as the official example.
 */
import { describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import type { JsonBody } from "../../support.ts";

const HOOK = "http://worker.test/webhooks/highlevel";

async function setup() {
  const sb: Sandbox = createSandbox({
    webhookMode: "manual",
    seed: 11,
    fetch: async () => new Response(null, { status: 200 }),
  });
  sb.clock.freeze();
  await sb.seedDemo();
  sb.highlevel.subscribe(HOOK);
  const d = sb.highlevel.demo!;
  const call = async (method: string, path: string, body?: unknown, token = d.pit) => {
    const res = await sb.fetch(
      new Request(`http://sandbox.test/highlevel${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, Version: "2021-07-28", "Content-Type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
    return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
  };
  const control = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = {
      method,
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    };
    const res = await sb.fetch(new Request(`http://sandbox.test/_sandbox/highlevel${path}`, init));
    return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
  };
  return { sb, d, call, control };
}

describe("HighLevel sandbox: lost reasons and PUT /opportunities/{id}/status", () => {
  it("happy: lost with a reason stores it on the opportunity; reopening clears it; the webhook is the official example's shape", async () => {
    const { sb, d, call } = await setup();
    const id = d.opportunityIds[0]!;
    const res = await call("PUT", `/opportunities/${id}/status`, { status: "lost", lostReasonId: d.lostReasonIds[2] });
    expect(res).toMatchObject({ status: 200, json: { succeded: true } });
    expect((await call("GET", `/opportunities/${id}`)).json.opportunity).toMatchObject({
      status: "lost",
      lostReasonId: d.lostReasonIds[2],
    });

    const [event] = sb.highlevel.deliveries("OpportunityStatusUpdate").map((x) => x.payload);
    // The example in ghl/webhook-events/OpportunityStatusUpdate.md carries no lostReasonId:
    // a consumer reads it with GET.
    const { appId: _a, versionId: _v, timestamp: _t, webhookId: _w, ...body } = event!;
    expect(Object.keys(body).sort()).toEqual([
      "assignedTo",
      "contactId",
      "dateAdded",
      "id",
      "locationId",
      "monetaryValue",
      "name",
      "pipelineId",
      "pipelineStageId",
      "source",
      "status",
      "type",
    ]);
    expect(body).toMatchObject({ type: "OpportunityStatusUpdate", id, status: "lost" });

    expect((await call("PUT", `/opportunities/${id}/status`, { status: "open" })).status).toBe(200);
    expect((await call("GET", `/opportunities/${id}`)).json.opportunity).not.toHaveProperty("lostReasonId");
  });

  it("error: a reason of another location, a deleted or unknown one is 400; a bad body is 422; read-only is 401", async () => {
    const { sb, d, call, control } = await setup();
    const id = d.opportunityIds[1]!;
    const elsewhere = await control("POST", "/lost-reasons", { locationId: d.otherLocationId, name: "Fund mismatch" });
    expect(elsewhere.status).toBe(201);
    const foreign = await call("PUT", `/opportunities/${id}/status`, {
      status: "lost",
      lostReasonId: elsewhere.json.lostReason.id,
    });
    expect(foreign).toMatchObject({ status: 400, json: { statusCode: 400, message: "Lost reason not found" } });
    expect((await control("DELETE", `/lost-reasons/${d.lostReasonIds[0]}`)).status).toBe(200);
    expect(
      (await call("PUT", `/opportunities/${id}/status`, { status: "lost", lostReasonId: d.lostReasonIds[0] })).status,
    ).toBe(400);
    expect((await call("PUT", `/opportunities/${id}/status`, { status: "lost", lostReasonId: "nope" })).status).toBe(
      400,
    );
    const bad = await call("PUT", `/opportunities/${id}/status`, { status: "lost", lostReasonId: 7, reason: "x" });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toEqual(
      expect.arrayContaining(["lostReasonId must be a string", "property reason should not exist"]),
    );
    expect((await call("GET", `/opportunities/${id}`)).json.opportunity.status).toBe("open");
    const readOnly = sb.highlevel.createPit({ scopes: ["opportunities.readonly"] });
    expect(await call("PUT", `/opportunities/${id}/status`, { status: "lost" }, readOnly)).toMatchObject({
      status: 401,
      json: { message: "The token is not authorized for this scope." },
    });
  });

  it("happy: the control API adds and deletes reasons; GET /opportunities/lost-reason lists them (deleted ones with ?deleted=true)", async () => {
    const { d, call, control } = await setup();
    const added = await control("POST", "/lost-reasons", { name: "Valuation too high" });
    expect(added).toMatchObject({
      status: 201,
      json: { lostReason: { name: "Valuation too high", locationId: d.locationId } },
    });
    expect((await control("POST", "/lost-reasons", { name: "valuation too high" })).status).toBe(400);
    expect((await control("POST", "/lost-reasons", { locationId: "nope", name: "x" })).status).toBe(404);
    const listed = await call("GET", `/opportunities/lost-reason?locationId=${d.locationId}`);
    expect(listed.json.total).toBe(4);
    expect(listed.json.lostReasons.map((r: { name: string }) => r.name)).toContain("Valuation too high");
    await control("DELETE", `/lost-reasons/${added.json.lostReason.id}`);
    expect((await call("GET", `/opportunities/lost-reason?locationId=${d.locationId}`)).json.total).toBe(3);
    const deleted = await call("GET", `/opportunities/lost-reason?locationId=${d.locationId}&deleted=true`);
    expect(deleted.json.lostReasons.map((r: { id: string }) => r.id)).toEqual([added.json.lostReason.id]);
    expect((await call("GET", `/opportunities/lost-reason?locationId=${d.locationId}&deleted=maybe`)).status).toBe(422);
    const usable = await control("POST", "/lost-reasons", { name: "Timing" });
    expect(
      (
        await call("PUT", `/opportunities/${d.opportunityIds[2]}/status`, {
          status: "lost",
          lostReasonId: usable.json.lostReason.id,
        })
      ).status,
    ).toBe(200);
  });
});

describe("HighLevel sandbox: opportunity followers", () => {
  it("happy: add / remove answer the documented bodies and the opportunity carries its followers", async () => {
    const { d, call } = await setup();
    const id = d.opportunityIds[3]!;
    const added = await call("POST", `/opportunities/${id}/followers`, {
      followers: [d.userIds[1], d.userIds[2], d.userIds[1]],
    });
    expect(added).toMatchObject({
      status: 201,
      json: { followers: [d.userIds[1], d.userIds[2]], followersAdded: [d.userIds[1], d.userIds[2]] },
    });
    expect((await call("GET", `/opportunities/${id}`)).json.opportunity.followers).toEqual([
      d.userIds[1],
      d.userIds[2],
    ]);
    const removed = await call("DELETE", `/opportunities/${id}/followers`, { followers: [d.userIds[1]] });
    expect(removed).toMatchObject({
      status: 200,
      json: { followers: [d.userIds[2]], followersRemoved: [d.userIds[1]] },
    });
    const all = await call("DELETE", `/opportunities/${id}/followers?isRemoveAllFollowers=true`, {});
    expect(all.json).toMatchObject({ followers: [], followersRemoved: [d.userIds[2]] });
  });

  it("error: a follower who is not a user of the location is 400; a bad body 422; read-only 401", async () => {
    const { sb, d, call } = await setup();
    const id = d.opportunityIds[3]!;
    expect(await call("POST", `/opportunities/${id}/followers`, { followers: ["stranger000000000000"] })).toMatchObject(
      {
        status: 400,
        json: { message: "follower stranger000000000000 is not a user of this location" },
      },
    );
    expect(await call("POST", `/opportunities/${id}/followers`, { followers: d.userIds[0] })).toMatchObject({
      status: 422,
      json: { message: ["followers must be an array"] },
    });
    const readOnly = sb.highlevel.createPit({ scopes: ["opportunities.readonly"] });
    expect((await call("POST", `/opportunities/${id}/followers`, { followers: [d.userIds[0]] }, readOnly)).status).toBe(
      401,
    );
  });
});
