/**
 * The HighLevel sandbox's contact tasks and tags in-process inside workerd: the routes, shapes and
 * scopes of ghl/apps/contacts.json, HighLevel-style 422s for bad bodies, and the control API's
 * `GET /_sandbox/highlevel/tasks` listing every task.
 */
import { describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import type { JsonBody } from "../../support.ts";

async function setup() {
  const sb: Sandbox = createSandbox({
    webhookMode: "manual",
    seed: 7,
    fetch: async () => new Response(null, { status: 200 }),
  });
  sb.clock.freeze();
  await sb.seedDemo();
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
  const control = async (path: string) => {
    const res = await sb.fetch(new Request(`http://sandbox.test/_sandbox/highlevel${path}`));
    return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
  };
  return { sb, d, call, control };
}

describe("HighLevel sandbox: contact tasks", () => {
  it("happy: create → list → get → update → complete → delete, each in the documented shape", async () => {
    const { d, call } = await setup();
    const contactId = d.contactIds[0]!;
    const created = await call("POST", `/contacts/${contactId}/tasks`, {
      title: "Send term sheet",
      body: "Draft v1",
      dueDate: "2027-01-15T09:00:00Z",
      completed: false,
      assignedTo: d.userIds[1],
    });
    expect(created.status).toBe(201);
    const task = created.json.task;
    expect(task).toEqual({
      id: expect.any(String),
      title: "Send term sheet",
      body: "Draft v1",
      dueDate: "2027-01-15T09:00:00.000Z",
      completed: false,
      assignedTo: d.userIds[1],
      contactId,
    });
    expect(created.json.traceId).toEqual(expect.any(String));

    expect((await call("GET", `/contacts/${contactId}/tasks`)).json.tasks).toEqual([task]);
    expect((await call("GET", `/contacts/${contactId}/tasks/${task.id}`)).json.task).toEqual(task);

    const updated = await call("PUT", `/contacts/${contactId}/tasks/${task.id}`, {
      title: "Send signed term sheet",
      dueDate: "2027-01-20",
      assignedTo: "",
    });
    expect(updated.status).toBe(200);
    expect(updated.json.task).toEqual({
      ...task,
      title: "Send signed term sheet",
      dueDate: "2027-01-20T00:00:00.000Z",
      assignedTo: undefined,
    });
    expect(updated.json.task).not.toHaveProperty("assignedTo");

    const done = await call("PUT", `/contacts/${contactId}/tasks/${task.id}/completed`, { completed: true });
    expect(done.status).toBe(200);
    expect(done.json.task.completed).toBe(true);

    const deleted = await call("DELETE", `/contacts/${contactId}/tasks/${task.id}`);
    expect(deleted.json).toMatchObject({ succeded: true });
    const gone = await call("GET", `/contacts/${contactId}/tasks/${task.id}`);
    expect(gone).toMatchObject({ status: 400, json: { statusCode: 400, message: "Task not found" } });
  });

  it("error: bad bodies answer HighLevel's 422 with class-validator messages; a stranger's user is 400", async () => {
    const { d, call } = await setup();
    const contactId = d.contactIds[1]!;
    const missing = await call("POST", `/contacts/${contactId}/tasks`, { body: "no title", foo: 1 });
    expect(missing.status).toBe(422);
    expect(missing.json).toMatchObject({ statusCode: 422, error: "Unprocessable Entity" });
    expect(missing.json.message).toEqual(
      expect.arrayContaining([
        "property foo should not exist",
        "title should not be empty",
        "dueDate should not be empty",
        "completed should not be empty",
      ]),
    );
    const badDate = await call("POST", `/contacts/${contactId}/tasks`, {
      title: "x",
      dueDate: "next friday",
      completed: "no",
    });
    expect(badDate.json.message).toEqual(
      expect.arrayContaining(["dueDate must be a valid ISO 8601 date string", "completed must be a boolean value"]),
    );
    const created = await call("POST", `/contacts/${contactId}/tasks`, {
      title: "x",
      dueDate: "2027-02-01",
      completed: false,
    });
    const badComplete = await call("PUT", `/contacts/${contactId}/tasks/${created.json.task.id}/completed`, {});
    expect(badComplete).toMatchObject({ status: 422, json: { message: ["completed should not be empty"] } });
    const stranger = await call("POST", `/contacts/${contactId}/tasks`, {
      title: "x",
      dueDate: "2027-02-01",
      completed: false,
      assignedTo: "nobody00000000000000",
    });
    expect(stranger).toMatchObject({
      status: 400,
      json: { message: "assignedTo nobody00000000000000 is not a user of this location" },
    });
    const wrongContact = await call("GET", `/contacts/${d.contactIds[2]}/tasks/${created.json.task.id}`);
    expect(wrongContact).toMatchObject({ status: 400, json: { message: "Task not found" } });
  });

  it("security: reading needs contacts.readonly, writing contacts.write; another location's token is 403", async () => {
    const { sb, d, call } = await setup();
    const contactId = d.contactIds[0]!;
    const writeOnly = sb.highlevel.createPit({ scopes: ["contacts.write"] });
    const readOnly = sb.highlevel.createPit({ scopes: ["contacts.readonly"] });
    const created = await call(
      "POST",
      `/contacts/${contactId}/tasks`,
      { title: "x", dueDate: "2027-02-01", completed: false },
      writeOnly,
    );
    expect(created.status).toBe(201);
    expect(await call("GET", `/contacts/${contactId}/tasks`, undefined, writeOnly)).toMatchObject({
      status: 401,
      json: { message: "The token is not authorized for this scope." },
    });
    expect((await call("GET", `/contacts/${contactId}/tasks`, undefined, readOnly)).status).toBe(200);
    for (const [method, path, body] of [
      ["POST", `/contacts/${contactId}/tasks`, { title: "x", dueDate: "2027-02-01", completed: false }],
      ["PUT", `/contacts/${contactId}/tasks/${created.json.task.id}`, { title: "y" }],
      ["PUT", `/contacts/${contactId}/tasks/${created.json.task.id}/completed`, { completed: true }],
      ["DELETE", `/contacts/${contactId}/tasks/${created.json.task.id}`, undefined],
      ["POST", `/contacts/${contactId}/tags`, { tags: ["a"] }],
      ["DELETE", `/contacts/${contactId}/tags`, { tags: ["a"] }],
    ] as const) {
      expect((await call(method, path, body, readOnly)).status, `${method} ${path}`).toBe(401);
    }
    const other = sb.highlevel.createPit({ locationId: d.otherLocationId });
    expect((await call("GET", `/contacts/${contactId}/tasks`, undefined, other)).status).toBe(403);
  });

  it("happy: the control API lists every task, filtered by location and contact; deleting a contact drops its tasks", async () => {
    const { d, call, control } = await setup();
    await call("POST", `/contacts/${d.contactIds[0]}/tasks`, { title: "a", dueDate: "2027-02-01", completed: false });
    await call("POST", `/contacts/${d.contactIds[1]}/tasks`, { title: "b", dueDate: "2027-02-02", completed: true });
    const all = await control("/tasks");
    expect(all.json.tasks.map((t: { title: string }) => t.title)).toEqual(["a", "b"]);
    expect(all.json.tasks[0]).toMatchObject({
      contactId: d.contactIds[0],
      locationId: d.locationId,
      dateAdded: expect.any(String),
    });
    expect(
      (await control(`/tasks?contactId=${d.contactIds[1]}`)).json.tasks.map((t: { title: string }) => t.title),
    ).toEqual(["b"]);
    expect((await control(`/tasks?locationId=${d.otherLocationId}`)).json.tasks).toEqual([]);
    expect((await control("/tasks?locationId=nope")).status).toBe(404);
    expect((await call("DELETE", `/contacts/${d.contactIds[1]}`)).status).toBe(200);
    expect((await control("/tasks")).json.tasks.map((t: { title: string }) => t.title)).toEqual(["a"]);
  });
});

describe("HighLevel sandbox: contact tags", () => {
  it("happy: POST adds (once each), DELETE removes, both answer the contact's tags", async () => {
    const { d, call } = await setup();
    const contactId = d.contactIds[0]!;
    const added = await call("POST", `/contacts/${contactId}/tags`, { tags: ["vip", "founder", "series-a"] });
    expect(added).toMatchObject({ status: 201, json: { tags: ["founder", "vip", "series-a"] } });
    const removed = await call("DELETE", `/contacts/${contactId}/tags`, { tags: ["founder", "absent"] });
    expect(removed).toMatchObject({ status: 200, json: { tags: ["vip", "series-a"] } });
    expect((await call("GET", `/contacts/${contactId}`)).json.contact.tags).toEqual(["vip", "series-a"]);
  });

  it("error: tags missing or not strings → 422; an unknown contact → 400", async () => {
    const { d, call } = await setup();
    expect(await call("POST", `/contacts/${d.contactIds[0]}/tags`, {})).toMatchObject({
      status: 422,
      json: { message: ["tags must be an array"] },
    });
    expect(await call("DELETE", `/contacts/${d.contactIds[0]}/tags`, { tags: [1] })).toMatchObject({
      status: 422,
      json: { message: ["each value in tags must be a string"] },
    });
    expect(await call("POST", "/contacts/unknown0000000000000/tags", { tags: ["x"] })).toMatchObject({
      status: 400,
      json: { message: "Contact not found" },
    });
  });
});
