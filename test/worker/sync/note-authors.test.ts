/**
 * Notes keep their author and time across both sandboxes: the copy names the original author (the
 * mapped user, else the author's name) and the original created_at on a line above its origin tag,
 * the 4Degrees copy is created with `author_id` + `created_at` (import scope) when the author maps,
 * the note link keeps both, an edit updates the copy (header kept), and duplicated deliveries or a
 * crash right after the create leave exactly one copy.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { noteLinksForDeal } from "../../../src/store/links.ts";
import { stripOrigin } from "../../../src/sync/engine/notes.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

async function settleWithDuplicates(w: World): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const delivered = (await w.sb.highlevel.flush()) + (await w.sb.fourdegrees.flush());
    w.queue.push(...w.queue.map((q) => ({ body: q.body, attempts: 0 })));
    const processed = await w.drain();
    if (delivered === 0 && processed === 0) return;
  }
}

/** A user known on both sides (same email). */
function sharedUser(w: World) {
  const hlUsers = [...w.sb.highlevel.store.users.values()];
  for (const fd of w.sb.fourdegrees.store.users.values()) {
    const hl = hlUsers.find((u) => u.email?.toLowerCase() === fd.email.toLowerCase());
    if (hl) return { fd, hl };
  }
  throw new Error("the demo has no user on both sides");
}

describe("note authorship", () => {
  it("4Degrees → HighLevel: the copy is by the mapped user, names them and the original time; an edit updates it", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Authored", stage: "Sourced" });
    await w.settle();
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? "";
    const { fd, hl } = sharedUser(w);
    const note = w.sb.fourdegrees.addNoteAsUser(deal.id, "Founders call went well.", fd.id);
    await settleWithDuplicates(w);
    const copies = w.sb.highlevel.store.notesOf(contactId);
    expect(copies).toHaveLength(1);
    const copy = copies[0]!;
    expect(copy.userId).toBe(hl.id);
    expect(copy.body).toContain(`· ${new Date(note.created_at).toISOString()}`);
    expect(copy.body).toMatch(/\n— by [^\n]+ · [^\n]+\n— synced from 4Degrees note /);
    expect(stripOrigin(copy.body)).toEqual({
      text: "Founders call went well.",
      origin: { side: "fourdegrees", id: note.id },
    });
    const [link] = await noteLinksForDeal(env.DB, ACCOUNT, deal.id);
    expect(link?.sourceCreatedAt).toBe(new Date(note.created_at).toISOString());
    expect(link?.author).toBeTruthy();

    w.sb.fourdegrees.store.updateNote(note.id, { body: "Founders call went very well." }, w.sb.fourdegrees.apiActor);
    await w.settle();
    const edited = w.sb.highlevel.store.notesOf(contactId);
    expect(edited).toHaveLength(1);
    expect(stripOrigin(edited[0]!.body).text).toBe("Founders call went very well.");
    expect(edited[0]!.body).toMatch(/\n— by [^\n]+ · /);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });

  it("HighLevel → 4Degrees: created with author_id and created_at, the header names the author; a crash after the create makes no second copy", async () => {
    let crashes = 1;
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: (side) => {
          if (side === "fourdegrees" && crashes-- > 0)
            throw new Error("simulated crash after the 4Degrees note create");
        },
      },
    });
    const deal = newDeal(w, { name: "Authored Back", stage: "Sourced" });
    await w.settle();
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? "";
    const { fd, hl } = sharedUser(w);
    const hlNote = w.sb.highlevel.service.createNote(contactId, { body: "Diligence call booked.", userId: hl.id });
    await settleWithDuplicates(w);
    const copies = w.sb.fourdegrees.notes(deal.id);
    expect(copies).toHaveLength(1);
    const copy = copies[0]!;
    expect(copy.author_id).toBe(fd.id);
    expect(new Date(copy.created_at).toISOString()).toBe(new Date(hlNote.dateAdded).toISOString());
    expect(copy.body).toContain(`— by ${fd.name}`);
    expect(stripOrigin(copy.body).text).toBe("Diligence call booked.");

    w.sb.highlevel.service.updateNote(contactId, hlNote.id, { body: "Diligence call moved to Friday." });
    await w.settle();
    const edited = w.sb.fourdegrees.notes(deal.id);
    expect(edited).toHaveLength(1);
    expect(stripOrigin(edited[0]!.body).text).toBe("Diligence call moved to Friday.");
    expect(edited[0]!.body).toContain(`— by ${fd.name}`);
  });

  it("an author paired in the mapping's user map (different emails) writes the copy as the mapped user", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Mapped Author", stage: "Sourced" });
    await w.settle();
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? "";
    const partner = w.sb.fourdegrees.store.addUser({ name: "Venture Partner", email: "vp@other-domain.example" });
    const hl = [...w.sb.highlevel.store.users.values()][0];
    if (!hl) throw new Error("the HighLevel demo has no user");
    const users = [{ fourdegreesUserId: partner.id, highlevelUserId: hl.id }];
    await saveMapping(env.DB, ACCOUNT, MappingSchema.parse({ ...w.mapping, users }));
    w.sb.fourdegrees.addNoteAsUser(deal.id, "Mapped by hand, not by email.", partner.id);
    await w.settle();
    const copy = w.sb.highlevel.store.notesOf(contactId)[0];
    expect(copy?.userId).toBe(hl.id);
    expect(copy?.body).not.toContain("— by Venture Partner");
  });

  it("an author with no user on the other side is named, the copy is by nobody", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Stranger", stage: "Sourced" });
    await w.settle();
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? "";
    // Added after the users were cached: the unknown author reloads them once.
    const loner = w.sb.fourdegrees.store.addUser({ name: "Lone Partner", email: "lone.partner@fund.example" });
    w.sb.fourdegrees.addNoteAsUser(deal.id, "From someone HighLevel does not know.", loner.id);
    await w.settle();
    const copy = w.sb.highlevel.store.notesOf(contactId)[0];
    expect(copy?.userId).toBe("");
    expect(copy?.body).toContain(`— by ${loner.name}`);
  });
});
