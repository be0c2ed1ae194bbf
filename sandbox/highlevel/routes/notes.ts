/** `/contacts/:contactId/notes/*` (ghl/apps/contacts.json): a contact's notes. */
import type { Hono } from "hono";
import { z } from "zod";
import { optBoolean, optString, parseBody, reqString } from "../errors.ts";
import { renderNote } from "../render.ts";
import { pathContact } from "./contacts.ts";
import { CONTACT_READ, CONTACT_WRITE, pathParam, readJson, send } from "./shared.ts";
import type { Ctx, RouteDeps, Vars } from "./shared.ts";

const NoteBody = z
  .object({
    userId: optString("userId"),
    body: reqString("body"),
    title: optString("title"),
    color: optString("color"),
    pinned: optBoolean("pinned"),
  })
  .strict();

const NoteUpdateBody = z
  .object({
    userId: optString("userId"),
    body: optString("body"),
    title: optString("title"),
    color: optString("color"),
    pinned: optBoolean("pinned"),
  })
  .strict();

/** Registers the note routes (list, create, read, update, delete). */
export function registerNoteRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { service, store, guard } = d;
  const contactFor = (c: Ctx) => pathContact(d, c);

  app.get("/contacts/:contactId/notes", guard(CONTACT_READ), (c) =>
    send(c, { notes: store.notesOf(contactFor(c).id).map(renderNote) }),
  );

  app.post("/contacts/:contactId/notes", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(NoteBody, await readJson(c));
    const contact = contactFor(c);
    return send(c, { note: renderNote(service.createNote(contact.id, body)) }, 201);
  });

  app.get("/contacts/:contactId/notes/:id", guard(CONTACT_READ), (c) =>
    send(c, { note: renderNote(service.note(contactFor(c).id, pathParam(c, "id"))) }),
  );

  app.put("/contacts/:contactId/notes/:id", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(NoteUpdateBody, await readJson(c));
    const contact = contactFor(c);
    return send(c, { note: renderNote(service.updateNote(contact.id, pathParam(c, "id"), body)) });
  });

  app.delete("/contacts/:contactId/notes/:id", guard(CONTACT_WRITE), (c) => {
    const contact = contactFor(c);
    service.deleteNote(contact.id, pathParam(c, "id"));
    return send(c, { succeded: true });
  });
}
