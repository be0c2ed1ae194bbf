/**
 * HighLevel contacts and their notes (scopes `contacts.readonly` / `contacts.write`). Notes belong
 * to contacts: an opportunity's notes are its contact's notes (no notes endpoint under /opportunities).
 */
import type { HighLevelTransport } from "./http.ts";
import {
  ContactEnvelopeSchema,
  NoteEnvelopeSchema,
  NotesResponseSchema,
  SucceededSchema,
  type Contact,
  type Note,
} from "./schemas.ts";

/** Note create/update body. */
export interface NoteInput {
  body: string;
  userId?: string;
  title?: string;
}

const noteBody = (input: NoteInput) => Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));

/** Contact and note calls bound to one location. */
export function contactsApi(t: HighLevelTransport) {
  const path = (contactId: string, noteId?: string) =>
    `/contacts/${encodeURIComponent(contactId)}/notes${noteId === undefined ? "" : `/${encodeURIComponent(noteId)}`}`;
  return {
    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/get-contact
     */
    async get(contactId: string): Promise<Contact> {
      return (
        await t.call({
          method: "GET",
          path: `/contacts/${encodeURIComponent(contactId)}`,
          schema: ContactEnvelopeSchema,
        })
      ).contact;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/get-all-notes
     */
    async listNotes(contactId: string): Promise<Note[]> {
      return (await t.call({ method: "GET", path: path(contactId), schema: NotesResponseSchema })).notes;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/get-note
     */
    async getNote(contactId: string, noteId: string): Promise<Note> {
      return (await t.call({ method: "GET", path: path(contactId, noteId), schema: NoteEnvelopeSchema })).note;
    },

    /**
     * Answers 201. Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/create-note
     */
    async createNote(contactId: string, input: NoteInput): Promise<Note> {
      return (
        await t.call({ method: "POST", path: path(contactId), body: noteBody(input), schema: NoteEnvelopeSchema })
      ).note;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/update-note
     */
    async updateNote(contactId: string, noteId: string, input: NoteInput): Promise<Note> {
      return (
        await t.call({
          method: "PUT",
          path: path(contactId, noteId),
          body: noteBody(input),
          schema: NoteEnvelopeSchema,
        })
      ).note;
    },

    /**
     * Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/delete-note
     */
    async deleteNote(contactId: string, noteId: string): Promise<void> {
      await t.call({ method: "DELETE", path: path(contactId, noteId), schema: SucceededSchema });
    },
  };
}

export type ContactsApi = ReturnType<typeof contactsApi>;
