/**
 * The HighLevel sandbox's contact update, delete and search (`PUT` / `DELETE /contacts/{id}`,
 * `POST /contacts/search`) in-process inside workerd: the shapes and scopes of ghl/apps/contacts.json,
 * HighLevel-style errors for bad input (never a 5xx), no invented Contact* webhooks, and the
 * documented cascade of a contact delete to its opportunities and notes.
 */
import { describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import { ascending } from "../../support.ts";
import type { JsonBody } from "../../support.ts";

const HOOK = "http://worker.test/webhooks/highlevel";

async function setup() {
  const sb: Sandbox = createSandbox({
    webhookMode: "manual",
    seed: 5,
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
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      }),
    );
    return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
  };
  const search = (body: Record<string, unknown>, token?: string) =>
    call("POST", "/contacts/search", { locationId: d.locationId, ...body }, token);
  return { sb, d, call, search };
}

describe("HighLevel sandbox: PUT /contacts/{id}", () => {
  it("happy: updates the given fields, overwrites tags, clears nullable fields with null, and answers {succeded, contact}", async () => {
    const { sb, d, call } = await setup();
    const id = d.contactIds[0]!;
    sb.clock.advance(60_000);
    const res = await call("PUT", `/contacts/${id}`, {
      firstName: "Maya-Li",
      email: "MAYA.LI@lumen.example",
      tags: ["lead", "vip"],
      city: "Oakland",
      website: null,
      assignedTo: d.userIds[2],
    });
    expect(res.status).toBe(200);
    expect(res.json.succeded).toBe(true);
    expect(res.json.traceId).toEqual(expect.any(String));
    expect(res.json.contact).toMatchObject({
      id,
      firstName: "Maya-Li",
      lastName: "Chen",
      name: "Maya-Li Chen",
      email: "maya.li@lumen.example",
      tags: ["lead", "vip"],
      city: "Oakland",
      assignedTo: d.userIds[2],
      companyName: "Lumen Robotics",
    });
    expect(res.json.contact.website).toBeUndefined();
    expect(res.json.contact.dateUpdated).toBe(new Date(sb.clock.now()).toISOString());
    expect((await call("GET", `/contacts/${id}`)).json.contact).toEqual(res.json.contact);
  });

  it("happy: a contact update emits no webhook (the official event docs have no Contact* events)", async () => {
    const { sb, d, call } = await setup();
    expect((await call("PUT", `/contacts/${d.contactIds[1]}`, { lastName: "Okafor-Smith" })).status).toBe(200);
    expect(await sb.highlevel.flush()).toBe(0);
    expect(sb.highlevel.deliveries()).toEqual([]);
  });

  it("error: another contact's email is the duplicate-contact 400 with meta; unknown or create-only properties are 422; a missing contact 400", async () => {
    const { d, call } = await setup();
    const dup = await call("PUT", `/contacts/${d.contactIds[0]}`, { email: "daniel@gridlayer.example" });
    expect(dup.status).toBe(400);
    expect(dup.json).toMatchObject({
      statusCode: 400,
      message: "This location does not allow duplicated contacts.",
      meta: { contactId: d.contactIds[1], matchingField: "email" },
    });
    expect((await call("PUT", `/contacts/${d.contactIds[0]}`, { email: "maya@lumenrobotics.example" })).status).toBe(
      200,
    );
    const bad = await call("PUT", `/contacts/${d.contactIds[0]}`, {
      locationId: d.locationId,
      companyName: "X",
      foo: 1,
      email: "not-an-email",
      tags: "vip",
    });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toEqual(
      expect.arrayContaining([
        "property locationId should not exist",
        "property companyName should not exist",
        "property foo should not exist",
        "email must be an email",
        "tags must be an array",
      ]),
    );
    expect(
      (await call("PUT", `/contacts/${d.contactIds[0]}`, { customFields: [{ id: "nope", field_value: 1 }] })).status,
    ).toBe(422);
    expect((await call("PUT", `/contacts/${d.contactIds[0]}`, { assignedTo: "notAUser" })).status).toBe(400);
    const missing = await call("PUT", "/contacts/noSuchContact0000000", { firstName: "X" });
    expect(missing).toMatchObject({ status: 400, json: { message: "Contact not found" } });
    expect((await call("PUT", `/contacts/${d.contactIds[0]}`, "{not json")).status).toBe(400);
  });

  it("security: contacts.write is required, and another location's contact is a 403", async () => {
    const { sb, d, call } = await setup();
    const readOnly = sb.highlevel.createPit({ scopes: ["contacts.readonly"] });
    expect((await call("PUT", `/contacts/${d.contactIds[0]}`, { firstName: "X" }, readOnly)).json.message).toBe(
      "The token is not authorized for this scope.",
    );
    expect((await call("DELETE", `/contacts/${d.contactIds[0]}`, undefined, readOnly)).status).toBe(401);
    const europe = sb.highlevel.service.createContact({ locationId: d.otherLocationId, firstName: "Eva" });
    expect((await call("PUT", `/contacts/${europe.id}`, { firstName: "X" })).status).toBe(403);
    expect((await call("DELETE", `/contacts/${europe.id}`)).status).toBe(403);
    expect(sb.highlevel.store.contacts.get(europe.id)?.firstName).toBe("Eva");
  });
});

describe("HighLevel sandbox: DELETE /contacts/{id}", () => {
  it("happy: answers {succeded: true}; the contact, its notes and its opportunities are gone, each opportunity with Delete + Update and no Contact* event", async () => {
    const { sb, d, call } = await setup();
    const id = d.contactIds[1]!;
    expect(sb.highlevel.store.notesOf(id)).toHaveLength(1);
    const res = await call("DELETE", `/contacts/${id}`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ succeded: true });
    expect((await call("GET", `/contacts/${id}`)).json.message).toBe("Contact not found");
    expect(sb.highlevel.store.notesOf(id)).toEqual([]);
    expect((await call("GET", `/opportunities/${d.opportunityIds[1]}`)).json.message).toBe("Opportunity not found");
    await sb.highlevel.flush();
    expect(sb.highlevel.deliveries().map((x) => `${x.eventType}:${String(x.payload.id)}`)).toEqual([
      `OpportunityDelete:${d.opportunityIds[1]}`,
      `OpportunityUpdate:${d.opportunityIds[1]}`,
    ]);
    expect((await call("DELETE", `/contacts/${id}`)).json.message).toBe("Contact not found");
    expect(sb.highlevel.opportunity(d.opportunityIds[0]!)).toBeDefined();
  });
});

describe("HighLevel sandbox: POST /contacts/search", () => {
  it("happy: {contacts, total}; newest first by default; page + pageLimit page through; each contact carries its searchAfter", async () => {
    const { d, search } = await setup();
    const all = await search({ pageLimit: 100 });
    expect(all.status).toBe(200);
    expect(all.json.total).toBe(6);
    expect(all.json.contacts.map((c: { id: string }) => c.id)).toEqual([...d.contactIds].reverse());
    const p2 = await search({ page: 2, pageLimit: 4 });
    expect(p2.json.contacts.map((c: { id: string }) => c.id)).toEqual([d.contactIds[1], d.contactIds[0]]);
    expect(p2.json.total).toBe(6);
    expect(p2.json.contacts[0]).toMatchObject({
      id: d.contactIds[1],
      email: "daniel@gridlayer.example",
      locationId: d.locationId,
      searchAfter: [expect.any(Number), d.contactIds[1]],
    });
  });

  it("happy: searchAfter continues after a result, in any sort, without gaps or repeats", async () => {
    const { search } = await setup();
    for (const sort of [
      undefined,
      [{ field: "firstNameLowerCase", direction: "asc" }],
      [{ field: "dateAdded", direction: "asc" }],
    ]) {
      const full = (await search({ pageLimit: 100, ...(sort ? { sort } : {}) })).json.contacts.map(
        (c: { id: string }) => c.id,
      );
      const walked: string[] = [];
      let after: unknown[] | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await search({
          pageLimit: 4,
          ...(sort ? { sort } : {}),
          ...(after ? { searchAfter: after } : {}),
        });
        expect(page.status).toBe(200);
        walked.push(...page.json.contacts.map((c: { id: string }) => c.id));
        if (page.json.contacts.length < 4) break;
        after = page.json.contacts.at(-1).searchAfter;
      }
      expect(walked).toEqual(full);
    }
    const byName = (
      await search({ pageLimit: 3, sort: [{ field: "firstNameLowerCase", direction: "asc" }] })
    ).json.contacts.map((c: { firstName: string }) => c.firstName);
    expect(byName).toEqual(["Daniel", "Hannah", "Liam"]);
  });

  it("happy: query matches name, email, phone and company; filters take eq / not_eq / contains / exists and AND / OR groups", async () => {
    const { sb, d, search } = await setup();
    sb.highlevel.service.updateContact(d.contactIds[2]!, { tags: ["founder", "bio"], email: null });
    const ids = async (body: Record<string, unknown>) => {
      const res = await search(body);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return res.json.contacts.map((c: { id: string }) => c.id).sort();
    };
    expect(await ids({ query: "gridlayer" })).toEqual([d.contactIds[1]]);
    expect(await ids({ query: "+14155550114" })).toEqual([d.contactIds[3]]);
    expect(await ids({ filters: [{ field: "email", operator: "eq", value: "HANNAH@northstack.example" }] })).toEqual([
      d.contactIds[4],
    ]);
    expect(await ids({ filters: [{ field: "tags", operator: "eq", value: "bio" }] })).toEqual([d.contactIds[2]]);
    expect(await ids({ filters: [{ field: "email", operator: "not_exists" }] })).toEqual([d.contactIds[2]]);
    expect(await ids({ filters: [{ field: "companyName", operator: "contains", value: "pay" }] })).toEqual([
      d.contactIds[3],
    ]);
    expect(
      await ids({
        filters: [
          { field: "assignedTo", operator: "eq", value: d.userIds[0] },
          { field: "firstNameLowerCase", operator: "not_eq", value: "maya" },
        ],
      }),
    ).toEqual([d.contactIds[3]]);
    const either = await ids({
      filters: [
        {
          group: "OR",
          filters: [
            { field: "firstNameLowerCase", operator: "eq", value: "omar" },
            { field: "lastNameLowerCase", operator: "eq", value: ["chen", "berg"] },
          ],
        },
      ],
    });
    expect(either).toEqual([d.contactIds[0], d.contactIds[4], d.contactIds[5]].sort(ascending));
    expect(await ids({ filters: [{ field: "dnd", operator: "eq", value: true }] })).toEqual([]);
  });

  it("error: bad bodies answer 422 with class-validator texts, never a 5xx", async () => {
    const { d, call, search } = await setup();
    const cases: Array<[unknown, string]> = [
      [{ pageLimit: 0 }, "pageLimit must not be less than 1"],
      [{ pageLimit: 501 }, "pageLimit must not be greater than 500"],
      [{ page: 0 }, "page must not be less than 1"],
      [{ page: 101, pageLimit: 100 }, "page * pageLimit must not be greater than 10000; use searchAfter to go further"],
      [{ foo: 1 }, "property foo should not exist"],
      [
        { filters: [{ field: "password", operator: "eq", value: "x" }] },
        "filters.field must be one of the following values: id, firstNameLowerCase, lastNameLowerCase, fullNameLowerCase, email, phone, companyName, tags, assignedTo, source, country, dnd, dateAdded, dateUpdated",
      ],
      [{ filters: [{ group: "XOR", filters: [] }] }, "filters.group must be one of the following values: AND, OR"],
      [{ filters: [{ group: "AND", filters: [{ field: "email" }] }] }, "filters.operator should not be empty"],
      [
        { filters: [{ group: "AND", field: "email", operator: "eq", filters: [] }] },
        "a filter group takes group and filters only",
      ],
      [{ filters: ["email"] }, "each value in filters must be an object"],
      [{ filters: [{ field: "email", operator: "eq" }] }, "filters.0.value must be a string or a list of strings"],
      [{ filters: [{ field: "dnd", operator: "eq", value: "yes" }] }, "filters.0.value must be a boolean value"],
      [
        { sort: [{ field: "email", direction: "up" }] },
        "sort.direction must be one of the following values: asc, desc",
      ],
      [{ searchAfter: ["x"] }, "searchAfter must be the searchAfter of a result (2 values)"],
      [{ searchAfter: ["yesterday", d.contactIds[0]] }, "searchAfter must be the searchAfter of a result (2 values)"],
    ];
    for (const [body, message] of cases) {
      const res = await search(body as Record<string, unknown>);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.json.message, JSON.stringify(body)).toContain(message);
    }
    const noLocation = await call("POST", "/contacts/search", { pageLimit: 5 });
    expect(noLocation).toMatchObject({ status: 422, json: { message: ["locationId should not be empty"] } });
    for (const raw of ["[1,2]", "null", '"text"', "{bad"])
      expect((await call("POST", "/contacts/search", raw)).status).toBeLessThan(500);
    let deep: Record<string, unknown> = { field: "email", operator: "exists" };
    for (let i = 0; i < 5_000; i++) deep = { group: "AND", filters: [deep] };
    const tooDeep = await search({ filters: [deep] });
    expect(tooDeep).toMatchObject({ status: 422, json: { message: ["filters can be nested at most 5 levels deep"] } });
    let ok: Record<string, unknown> = { field: "email", operator: "exists" };
    for (let i = 0; i < 3; i++) ok = { group: "OR", filters: [ok] };
    expect((await search({ filters: [ok] })).json.total).toBe(6);
  });

  it("security: contacts.readonly is required and another location is a 403", async () => {
    const { sb, d, search } = await setup();
    const oppsOnly = sb.highlevel.createPit({ scopes: ["opportunities.readonly"] });
    expect((await search({}, oppsOnly)).status).toBe(401);
    const readOnly = sb.highlevel.createPit({ scopes: ["contacts.readonly"] });
    expect((await search({}, readOnly)).status).toBe(200);
    expect((await search({ locationId: d.otherLocationId })).status).toBe(403);
  });
});
