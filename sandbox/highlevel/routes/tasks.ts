/**
 * A contact's tasks and tags (ghl/apps/contacts.json): `/contacts/:contactId/tasks/*` and
 * `/contacts/:contactId/tags`. Both are contact sub-resources under the contacts scopes.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { optString, parseBody, reqString, stringArray } from "../errors.ts";
import { renderTask } from "../render.ts";
import { pathContact } from "./contacts.ts";
import { CONTACT_READ, CONTACT_WRITE, pathParam, readJson, send } from "./shared.ts";
import type { Ctx, RouteDeps, Vars } from "./shared.ts";

/** An ISO 8601 date or date-time, as class-validator's `@IsISO8601()` takes it; normalised to UTC ISO. */
function isoDate(name: string) {
  const message = `${name} must be a valid ISO 8601 date string`;
  const shape = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
  return z
    .string({ error: (iss) => (iss.input == null ? `${name} should not be empty` : message) })
    .refine((v) => shape.test(v) && Number.isFinite(Date.parse(v)), { error: message })
    .transform((v) => new Date(v).toISOString());
}

/** `completed`, with class-validator's texts for absent and non-boolean values. */
const completedField = () =>
  z.boolean({
    error: (iss) => (iss.input === undefined ? "completed should not be empty" : "completed must be a boolean value"),
  });

/** `CreateTaskParams`: `title`, `dueDate` and `completed` required. */
const CreateTaskBody = z
  .object({
    title: reqString("title"),
    body: optString("body"),
    dueDate: isoDate("dueDate"),
    completed: completedField(),
    assignedTo: optString("assignedTo"),
  })
  .strict();

/** `UpdateTaskBody`: every field optional. */
const UpdateTaskBody = z
  .object({
    title: reqString("title").optional(),
    body: optString("body"),
    dueDate: isoDate("dueDate").optional(),
    completed: completedField().optional(),
    assignedTo: optString("assignedTo"),
  })
  .strict();

/** `UpdateTaskStatusParams`. */
const CompletedBody = z.object({ completed: completedField() }).strict();

/** `TagsDTO`. */
const TagsBody = z.object({ tags: stringArray("tags") }).strict();

/** Registers the task routes (list, create, read, update, complete, delete) and the tag routes (add, remove). */
export function registerTaskRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { service, store, guard } = d;
  const contactFor = (c: Ctx) => pathContact(d, c);

  app.get("/contacts/:contactId/tasks", guard(CONTACT_READ), (c) =>
    send(c, { tasks: store.tasksOf(contactFor(c).id).map(renderTask) }),
  );

  app.post("/contacts/:contactId/tasks", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(CreateTaskBody, await readJson(c));
    const contact = contactFor(c);
    return send(c, { task: renderTask(service.createTask(contact.id, body)) }, 201);
  });

  app.get("/contacts/:contactId/tasks/:taskId", guard(CONTACT_READ), (c) =>
    send(c, { task: renderTask(service.task(contactFor(c).id, pathParam(c, "taskId"))) }),
  );

  app.put("/contacts/:contactId/tasks/:taskId", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(UpdateTaskBody, await readJson(c));
    const contact = contactFor(c);
    return send(c, { task: renderTask(service.updateTask(contact.id, pathParam(c, "taskId"), body)) });
  });

  app.put("/contacts/:contactId/tasks/:taskId/completed", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(CompletedBody, await readJson(c));
    const contact = contactFor(c);
    const task = service.updateTask(contact.id, pathParam(c, "taskId"), { completed: body.completed });
    return send(c, { task: renderTask(task) });
  });

  app.delete("/contacts/:contactId/tasks/:taskId", guard(CONTACT_WRITE), (c) => {
    const contact = contactFor(c);
    service.deleteTask(contact.id, pathParam(c, "taskId"));
    return send(c, { succeded: true });
  });

  app.post("/contacts/:contactId/tags", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(TagsBody, await readJson(c));
    return send(c, { tags: service.addTags(contactFor(c).id, body.tags) }, 201);
  });

  app.delete("/contacts/:contactId/tags", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(TagsBody, await readJson(c));
    return send(c, { tags: service.removeTags(contactFor(c).id, body.tags) });
  });
}
