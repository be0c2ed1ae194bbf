/**
 * Attachments end to end through both sandboxes: 4Degrees deal attachments ↔ the files of the
 * opportunity's FILE_UPLOAD field ("Documents"), added and deleted both ways, echoes and
 * duplicates absorbed, a crash between upload and link making no second copy, bad input filed as
 * replayable failures, and an oversized file crossing as a link with a visible skip reason.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "./attachments-helpers.ts";
import { deleteAccount, saveMapping } from "../../../src/store/accounts.ts";
import { attachmentLinksForDeal } from "../../../src/store/attachments.ts";
import { listFailures } from "../../../src/store/failures.ts";
import { listEvents } from "../../../src/store/sync-events.ts";
import { filesOfValue } from "../../../src/highlevel/files.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { replayMessage } from "../../../src/queue/replay.ts";
import { beginBackfill } from "../../../src/sync/jobs/backfill.ts";
import { loadLiveStructure, suggestedMapping } from "../../../src/sync/structure.ts";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { fourDegreesWebhooks } from "../../../src/fourdegrees/connector.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";
import type { JobDeps } from "../../../src/sync/jobs/deps.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const PDF = new TextEncoder().encode("%PDF-1.4\n% a small test file\n1 0 obj << >> endobj\n%%EOF\n");
const TEXT = new TextEncoder().encode("minutes of the partner meeting\n");

/** A world whose mapping syncs attachments through the demo "Documents" field, with one linked pair. */
async function attachWorld(hooks?: JobDeps["hooks"]) {
  const w = await createWorld(routes, hooks ? { hooks } : {});
  const docs = w.sb.highlevel.demo!.documentsFieldId;
  await saveMapping(env.DB, ACCOUNT, { ...w.mapping, attachmentsFieldId: docs });
  const deal = newDeal(w, { name: `Files ${crypto.randomUUID().slice(0, 6)}`, stage: "Sourced", amountMinor: 1_00 });
  await w.settle();
  const link = await w.linkOf("fourdegrees", deal.id);
  expect(link?.state).toBe("active");
  return { w, docs, dealId: deal.id, oppId: link!.hlOpportunityId };
}

/** The files of the opportunity's Documents field. */
function hlFiles(w: World, oppId: string, docs: string) {
  const o = w.sb.highlevel.store.opportunities.get(oppId);
  return filesOfValue(o?.customFields.find((f) => f.id === docs)?.value);
}

/** The bytes behind a field file's URL (through the sandbox's storage route). */
async function bytesAt(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

function fdAttachments(w: World, dealId: string) {
  return [...w.sb.fourdegrees.store.attachments.values()].filter((a) => a.record.deal_id === dealId);
}

/** A HighLevel user attaching a file to the opportunity's field (storage upload + field update + webhook). */
async function attachInHighLevel(
  w: World,
  oppId: string,
  docs: string,
  file: { name: string; type: string; bytes: Uint8Array; declaredSize?: number; url?: string },
): Promise<string> {
  const media = w.sb.highlevel.service.medias;
  const m = media.upload({
    locationId: w.locationId,
    name: file.name,
    file: { bytes: file.bytes, contentType: file.type },
    customField: { ownerId: oppId },
  });
  const url = file.url ?? (await media.url(m, "http://sandbox.test"));
  const key = crypto.randomUUID();
  const current = w.sb.highlevel.store.opportunities.get(oppId)?.customFields.find((f) => f.id === docs)?.value;
  const value = {
    ...(current && typeof current === "object" ? current : {}),
    [key]: {
      meta: {
        originalname: file.name,
        mimetype: file.type,
        size: file.declaredSize ?? file.bytes.byteLength,
        uuid: key,
      },
      url,
    },
  };
  w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: value }] });
  return key;
}

describe("attachments: add, both ways (happy)", () => {
  it("a 4Degrees attachment is streamed into the opportunity's file field once, linked with its hash", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    const att = await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "deck.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    const files = hlFiles(w, oppId, docs);
    expect(files).toHaveLength(1);
    expect(files[0]?.name).toBe("deck.pdf");
    expect(await bytesAt(files[0]!.url)).toEqual(PDF);
    const links = await attachmentLinksForDeal(env.DB, ACCOUNT, dealId);
    expect(links).toMatchObject([
      { fdAttachmentId: att.id, hlFileKey: files[0]!.key, origin: "fourdegrees", kind: "copy", size: PDF.byteLength },
    ]);
    expect(links[0]?.contentHash).toBe(await sha256Hex(PDF));
    // The echo (the field update's OpportunityUpdate) copied nothing back.
    expect(fdAttachments(w, dealId)).toHaveLength(1);
    expect((await listFailures(env.DB, ACCOUNT)).length).toBe(0);
    // Deleting the account takes its attachment links with it.
    await deleteAccount(env.DB, ACCOUNT);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toEqual([]);
  });

  it("a file attached in HighLevel's field lands on the 4Degrees deal with its bytes, and is not copied back", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    const key = await attachInHighLevel(w, oppId, docs, { name: "notes.txt", type: "text/plain", bytes: TEXT });
    await w.settle();
    const atts = fdAttachments(w, dealId);
    expect(atts).toHaveLength(1);
    expect(atts[0]?.record.file_name).toBe("notes.txt");
    expect(atts[0]?.bytes).toEqual(TEXT);
    // The 4Degrees webhook of our own upload is recognised by the link: HighLevel still has one file.
    expect(hlFiles(w, oppId, docs).map((f) => f.key)).toEqual([key]);
    const links = await attachmentLinksForDeal(env.DB, ACCOUNT, dealId);
    expect(links).toMatchObject([{ fdAttachmentId: atts[0]!.record.id, hlFileKey: key, origin: "highlevel" }]);
    expect(links[0]?.contentHash).toBe(await sha256Hex(TEXT));
    // Another run finds nothing to do.
    w.queue.push({
      body: { v: 1, kind: "sync.attachments", accountId: ACCOUNT, side: "fourdegrees", recordId: dealId },
      attempts: 0,
    });
    const before = w.writes();
    await w.settle();
    expect(w.writes()).toEqual(before);
  });
});

describe("attachments: deletes follow the delete policy", () => {
  it("deleting in 4Degrees removes the field file; deleting the field file deletes the 4Degrees attachment", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    const a = await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "a.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await attachInHighLevel(w, oppId, docs, { name: "b.txt", type: "text/plain", bytes: TEXT });
    await w.settle();
    expect(fdAttachments(w, dealId)).toHaveLength(2);
    expect(hlFiles(w, oppId, docs)).toHaveLength(2);

    w.sb.fourdegrees.deleteAttachmentAsUser(a.id);
    await w.settle();
    expect(hlFiles(w, oppId, docs).map((f) => f.name)).toEqual(["b.txt"]);

    // A HighLevel user clears the field: the 4Degrees copy of b.txt goes too.
    w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: "" }] });
    await w.settle();
    expect(fdAttachments(w, dealId)).toHaveLength(0);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toEqual([]);
  });

  it("with deletePolicy ignore a delete does not cross, and the survivor is not copied back", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    await w.patchAccount({ deletePolicy: "ignore" });
    const a = await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "keep.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    w.sb.fourdegrees.deleteAttachmentAsUser(a.id);
    await w.settle();
    expect(hlFiles(w, oppId, docs)).toHaveLength(1);
    expect(fdAttachments(w, dealId)).toHaveLength(0);
  });
});

describe("attachments: duplicates and crashes (error)", () => {
  it("duplicated jobs make one copy", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "dup.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    for (let i = 0; i < 3; i++)
      w.queue.push({
        body: { v: 1, kind: "sync.attachments", accountId: ACCOUNT, side: "fourdegrees", recordId: dealId },
        attempts: 0,
      });
    await w.settle();
    expect(hlFiles(w, oppId, docs)).toHaveLength(1);
    expect(fdAttachments(w, dealId)).toHaveLength(1);
  });

  it("a crash between the 4Degrees upload and the link, then the retry, makes no second 4Degrees attachment", async () => {
    let crashes = 1;
    const { w, docs, dealId, oppId } = await attachWorld({
      afterUpload: (side: string) => {
        if (side === "fourdegrees" && crashes-- > 0) throw new Error("simulated crash after the upload");
      },
    });
    await attachInHighLevel(w, oppId, docs, { name: "crash.txt", type: "text/plain", bytes: TEXT });
    await w.settle();
    // The retry replayed the upload under the same Idempotency-Key (the hook ran again, without crashing).
    expect(crashes).toBe(-1);
    const posts = w.sb.fourdegrees.requests.log.filter(
      (e) => e.method === "POST" && /\/deals\/[^/]+\/attachments$/.test(e.path),
    );
    expect(posts.map((p) => p.replayed)).toEqual([false, true]);
    expect(w.handled.some((h) => h.kind === "sync.attachments" && h.outcome === "retry")).toBe(true);
    expect(fdAttachments(w, dealId)).toHaveLength(1);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toHaveLength(1);
    expect(hlFiles(w, oppId, docs)).toHaveLength(1);
  });

  it("a crash between the HighLevel upload and the field write, then the retry, uploads once and links once", async () => {
    let crashes = 1;
    const { w, docs, dealId, oppId } = await attachWorld({
      afterUpload: (side: string) => {
        if (side === "highlevel" && crashes-- > 0) throw new Error("simulated crash after the upload");
      },
    });
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "c.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    expect(crashes).toBe(0);
    const customUploads = [...w.sb.highlevel.store.medias.values()].filter((m) => !m.inLibrary && m.name === "c.pdf");
    expect(customUploads).toHaveLength(1);
    expect(hlFiles(w, oppId, docs)).toHaveLength(1);
    expect(fdAttachments(w, dealId)).toHaveLength(1);
  });
});

describe("attachments: a user's file added while a copy runs (error)", () => {
  it("is kept in the field (the job re-reads before it writes) and then copied to 4Degrees", async () => {
    let during: (() => Promise<unknown>) | null = null;
    const { w, docs, dealId, oppId } = await attachWorld({
      afterUpload: async (side: string) => {
        const add = during;
        during = null;
        if (side === "highlevel" && add) await add();
      },
    });
    during = () => attachInHighLevel(w, oppId, docs, { name: "meanwhile.txt", type: "text/plain", bytes: TEXT });
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "mine.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    expect(
      hlFiles(w, oppId, docs)
        .map((f) => f.name)
        .sort((a, b) => String(a).localeCompare(String(b))),
    ).toEqual(["meanwhile.txt", "mine.pdf"]);
    expect(
      fdAttachments(w, dealId)
        .map((a) => a.record.file_name)
        .sort((a, b) => String(a).localeCompare(String(b))),
    ).toEqual(["meanwhile.txt", "mine.pdf"]);
  });
});

describe("attachments: bad input is a replayable failure (error)", () => {
  it("a download that fails is filed with its reason; replay after the fix copies it", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    await attachInHighLevel(w, oppId, docs, {
      name: "gone.txt",
      type: "text/plain",
      bytes: TEXT,
      url: "http://sandbox.test/highlevel/media-storage/nowhere/missing/gone.txt?expires=0&signature=00",
    });
    await w.settle();
    const failures = await listFailures(env.DB, ACCOUNT);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.reason).toMatch(/gone\.txt.*download answered 403/);
    expect(fdAttachments(w, dealId)).toHaveLength(0);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toEqual([]);
    // The fix: the field now holds a working URL; the replayed message copies the file.
    w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: "" }] });
    await attachInHighLevel(w, oppId, docs, { name: "gone.txt", type: "text/plain", bytes: TEXT });
    const replay = replayMessage(failures[0]!);
    expect(replay?.kind).toBe("sync.attachments");
    w.queue.push({ body: replay!, attempts: 0 });
    await w.settle();
    expect(fdAttachments(w, dealId)).toHaveLength(1);
  });

  it("a wrong content length is refused before anything is linked", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    await attachInHighLevel(w, oppId, docs, { name: "short.txt", type: "text/plain", bytes: TEXT, declaredSize: 5 });
    await w.settle();
    const failures = await listFailures(env.DB, ACCOUNT);
    expect(failures[0]?.reason).toMatch(/short\.txt.*the field says 5 bytes/);
    expect(fdAttachments(w, dealId)).toHaveLength(0);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toEqual([]);

    // 4Degrees → HighLevel: a record whose size is not what its download carries.
    const a = await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "odd.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    w.sb.fourdegrees.store.attachments.get(a.id)!.record.size = PDF.byteLength + 3;
    w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: "" }] });
    await w.settle();
    const reasons = (await listFailures(env.DB, ACCOUNT)).map((f) => f.reason).join(" | ");
    expect(reasons).toMatch(/odd\.pdf.*4Degrees says \d+ bytes, the download \d+/);
    expect(hlFiles(w, oppId, docs)).toHaveLength(0);
  });

  it("a file type 4Degrees refuses is filed with 4Degrees' reason, the other files still cross", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    await attachInHighLevel(w, oppId, docs, { name: "tool.exe", type: "application/x-msdownload", bytes: TEXT });
    await attachInHighLevel(w, oppId, docs, { name: "ok.txt", type: "text/plain", bytes: TEXT });
    await w.settle();
    const failures = await listFailures(env.DB, ACCOUNT);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.reason).toMatch(/tool\.exe.*415 unsupported_file_type/);
    expect(fdAttachments(w, dealId).map((a) => a.record.file_name)).toEqual(["ok.txt"]);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toHaveLength(1);
  });
});

describe("attachments: over the size limit (error)", () => {
  it("an oversized HighLevel file becomes a 4Degrees note with its lasting URL; removing it removes the note", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    w.ctx.config = { ...w.ctx.config, ATTACHMENT_MAX_BYTES: 16 };
    const key = await attachInHighLevel(w, oppId, docs, { name: "huge.txt", type: "text/plain", bytes: TEXT });
    await w.settle();
    expect(fdAttachments(w, dealId)).toHaveLength(0);
    const notes = () => [...w.sb.fourdegrees.store.notes.values()].filter((n) => n.deal_id === dealId);
    const note = notes().find((n) => n.body.includes('Attachment "huge.txt"'));
    expect(note?.body).toContain("/highlevel/media-storage/");
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toMatchObject([
      { fdAttachmentId: `note:${note!.id}`, hlFileKey: key, kind: "link_only", origin: "highlevel" },
    ]);
    // The note is tagged, so the notes sync does not copy it to HighLevel as a note.
    const contactId = w.sb.highlevel.store.opportunities.get(oppId)?.contactId;
    const hlNotes = [...w.sb.highlevel.store.notes.values()].filter((n) => n.contactId === contactId);
    expect(hlNotes.some((n) => n.body.includes("huge.txt"))).toBe(false);

    w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: "" }] });
    await w.settle();
    expect(notes().some((n) => n.id === note!.id)).toBe(false);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toEqual([]);
  });

  it("an oversized 4Degrees file becomes a HighLevel note with its link and a skip event, never a crash", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    w.ctx.config = { ...w.ctx.config, ATTACHMENT_MAX_BYTES: 16 };
    const a = await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "big.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    expect(hlFiles(w, oppId, docs)).toHaveLength(0);
    const contactId = w.sb.highlevel.store.opportunities.get(oppId)?.contactId;
    const notes = [...w.sb.highlevel.store.notes.values()].filter((n) => n.contactId === contactId);
    expect(notes.some((n) => n.body.includes('Attachment "big.pdf"') && n.body.includes("/4degrees/files/"))).toBe(
      true,
    );
    const events = await listEvents(env.DB, ACCOUNT, { kind: "attachment" });
    expect(
      events.some((e) => e.outcome === "skipped" && String(e.detail["reason"]).includes("over the 16-byte limit")),
    ).toBe(true);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toMatchObject([
      { fdAttachmentId: a.id, kind: "link_only" },
    ]);
    // The note is not copied to 4Degrees as a note of its own, nor the file again.
    await w.settle();
    expect(fdAttachments(w, dealId)).toHaveLength(1);
    expect(await listFailures(env.DB, ACCOUNT)).toHaveLength(0);
  });
});

describe("attachments: the 4Degrees webhook (security)", () => {
  it("the port reads attachment.created|deleted, and an unreadable one names the field", () => {
    const body = (type: string, object: Record<string, unknown>) => ({
      id: "evt_1",
      type,
      created_at: "2026-12-01T10:00:00Z",
      workspace_id: "ws_1",
      actor: { type: "user", id: "usr_1" },
      data: { object },
      changes: {},
    });
    const created = fourDegreesWebhooks.parseWebhook(
      body("attachment.created", { id: "att_1", deal_id: "deal_1", download_url: "https://x.test/f" }),
    );
    expect(created.record).toEqual({ kind: "attachment", id: "att_1", dealId: "deal_1" });
    const deleted = fourDegreesWebhooks.parseWebhook(body("attachment.deleted", { id: "att_1", deal_id: "deal_1" }));
    expect(deleted.type).toBe("attachment.deleted");
    expect(() => fourDegreesWebhooks.parseWebhook(body("attachment.created", { id: "att_1" }))).toThrow(/deal_id/);
  });
});

describe("attachments: the suggested mapping (happy)", () => {
  it("names a FILE_UPLOAD field called like Documents, never a text field of that name", async () => {
    const w = await createWorld(routes);
    const account = await w.account();
    const live = await loadLiveStructure(await w.deps.connectors(account, "live"), account.locations);
    // Opt-in: without it the suggestion leaves attachments off (each HighLevel change would cost a read).
    expect(MappingSchema.parse(suggestedMapping(account, live)).attachmentsFieldId).toBeNull();
    const suggested = MappingSchema.parse(suggestedMapping(account, live, { attachments: true }));
    expect(suggested.attachmentsFieldId).toBe(w.sb.highlevel.demo!.documentsFieldId);
    const textOnly = {
      ...live,
      highlevelFields: { [w.locationId]: [{ id: "cf_docs_text", name: "Documents", dataType: "TEXT" }] },
    };
    expect(
      MappingSchema.parse(suggestedMapping(account, textOnly, { attachments: true })).attachmentsFieldId,
    ).toBeNull();
  });
});

describe("attachments: modes", () => {
  it("test mode plans the copies and makes none; attachments off makes no attachment job at all", async () => {
    const { w, docs, dealId, oppId } = await attachWorld();
    await w.patchAccount({ testMode: true });
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "t.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    expect(hlFiles(w, oppId, docs)).toHaveLength(0);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toEqual([]);
    expect(w.handled.some((h) => h.kind === "sync.attachments" && h.outcome === "ack")).toBe(true);

    await w.patchAccount({ testMode: false });
    await saveMapping(env.DB, ACCOUNT, { ...w.mapping, attachmentsFieldId: null });
    const jobs = w.handled.filter((h) => h.kind === "sync.attachments").length;
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "u.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    w.sb.highlevel.service.updateOpportunity(oppId, { name: "Renamed in HighLevel" });
    await w.settle();
    // The 4Degrees webhook still enqueues (it cannot know the mapping without a read); the job skips.
    expect(hlFiles(w, oppId, docs)).toHaveLength(0);
    expect(w.handled.filter((h) => h.kind === "sync.attachments").length - jobs).toBeLessThanOrEqual(1);
  });
});

describe("attachments: backfill", () => {
  it("the files of a deal that existed before the pair are copied when a backfill pairs it", async () => {
    const w = await createWorld(routes);
    const docs = w.sb.highlevel.demo!.documentsFieldId;
    await saveMapping(env.DB, ACCOUNT, { ...w.mapping, attachmentsFieldId: docs });
    const deal = [...w.sb.fourdegrees.store.deals.values()].find((d) => !d.archived_at && d.status === "open")!;
    await w.sb.fourdegrees.addAttachmentAsUser(deal.id, {
      file_name: "old.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
    await beginBackfill(env.DB, w.deps, ACCOUNT);
    await w.settle({ maxRounds: 40 });
    const link = await w.linkOf("fourdegrees", deal.id);
    expect(link?.state).toBe("active");
    expect(hlFiles(w, link!.hlOpportunityId, docs).map((f) => f.name)).toEqual(["old.pdf"]);
    expect(w.handled.some((h) => h.kind === "sync.attachments")).toBe(true);
  });
});
