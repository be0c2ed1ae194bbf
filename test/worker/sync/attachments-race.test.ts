/**
 * The opportunity's file field is written read-modify-write (HighLevel has no "add one file" call
 * and no conditional write). A user's save of the field from a copy read before our write — a
 * HighLevel form opened while our copy ran — lands right after ours and drops our entry: the job
 * reads the field back, merges its entries into what the field holds now and writes again (bounded),
 * so both files stay and cross once; when the drops outlast the attempts the job retries later
 * without uploading again, and links nothing meanwhile. A save landing between our last read and
 * our write is overwritten by it: the residual window docs/sync.md "Attachments" describes.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { filesOfValue } from "../../../src/highlevel/files.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { attachmentLinksForDeal } from "../../../src/store/attachments.ts";
import type { JobDeps } from "../../../src/sync/jobs/deps.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const PDF = new TextEncoder().encode("%PDF-1.4\n% a small test file\n1 0 obj << >> endobj\n%%EOF\n");
const TEXT = new TextEncoder().encode("minutes of the partner meeting\n");

async function attachWorld(hooks: JobDeps["hooks"]) {
  const w = await createWorld(routes, { hooks });
  const docs = w.sb.highlevel.demo!.documentsFieldId;
  await saveMapping(env.DB, ACCOUNT, { ...w.mapping, attachmentsFieldId: docs });
  const deal = newDeal(w, { name: `Race ${crypto.randomUUID().slice(0, 6)}`, stage: "Sourced" });
  await w.settle();
  const link = await w.linkOf("fourdegrees", deal.id);
  if (link?.state !== "active") throw new Error("no link");
  return { w, docs, dealId: deal.id, oppId: link.hlOpportunityId };
}

const fieldValue = (w: World, oppId: string, docs: string) =>
  w.sb.highlevel.store.opportunities.get(oppId)?.customFields.find((f) => f.id === docs)?.value ?? null;
const names = (files: Array<{ name: string | null }>) => files.map((f) => f.name ?? "").sort();
const fdNames = (w: World, dealId: string) =>
  [...w.sb.fourdegrees.store.attachments.values()]
    .filter((a) => a.record.deal_id === dealId)
    .map((a) => a.record.file_name)
    .sort();

/** A HighLevel user saving the field as `base` plus one new file (what a form opened earlier sends). */
async function staleSave(w: World, oppId: string, docs: string, base: unknown, name: string) {
  const media = w.sb.highlevel.service.medias;
  const m = media.upload({
    locationId: w.locationId,
    name,
    file: { bytes: TEXT, contentType: "text/plain" },
    customField: { ownerId: oppId },
  });
  const url = await media.url(m, "http://sandbox.test");
  const key = crypto.randomUUID();
  const value = {
    ...(base && typeof base === "object" ? base : {}),
    [key]: { meta: { originalname: name, mimetype: "text/plain", size: TEXT.byteLength, uuid: key }, url },
  };
  w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: value }] });
}

/** Counts the Worker's custom-field uploads to HighLevel. */
function countUploads(): { n: number } {
  const count = { n: 0 };
  const inner = routes["sandbox.test"]!;
  routes["sandbox.test"] = async (r) => {
    if (r.method === "POST" && new URL(r.url).pathname.endsWith("/customFields/upload")) count.n++;
    return inner(r);
  };
  return count;
}

describe("attachments: a user's save of the file field racing our write", () => {
  it("landing right after our write from an older copy: our entry is merged back, both files stay and cross once", async () => {
    let inject: (() => Promise<void>) | null = null;
    const { w, docs, dealId, oppId } = await attachWorld({
      afterFieldWrite: async () => {
        const run = inject;
        inject = null;
        await run?.();
      },
    });
    const before = fieldValue(w, oppId, docs);
    inject = () => staleSave(w, oppId, docs, before, "meanwhile.txt");
    const uploads = countUploads();
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "mine.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();

    expect(names(filesOfValue(fieldValue(w, oppId, docs)))).toEqual(["meanwhile.txt", "mine.pdf"]);
    expect(fdNames(w, dealId)).toEqual(["meanwhile.txt", "mine.pdf"]);
    expect(uploads.n).toBe(1);
    expect((await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).map((l) => l.fileName).sort()).toEqual([
      "meanwhile.txt",
      "mine.pdf",
    ]);
  });

  it("drops that outlast the attempts: the job retries without a second upload, links nothing meanwhile, deletes nothing", async () => {
    let drops = 3;
    let linkedDuringDrops: number | null = null;
    const ctx: { w?: World; oppId?: string; docs?: string; dealId?: string; base?: unknown } = {};
    const { w, docs, dealId, oppId } = await attachWorld({
      afterFieldWrite: async () => {
        if (drops-- <= 0 || !ctx.w) return;
        // Every write of this job is undone by a save from the older copy.
        ctx.w.sb.highlevel.service.updateOpportunity(oppId, {
          customFields: [{ id: docs, field_value: (ctx.base ?? "") as never }],
        });
        linkedDuringDrops = (await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).length;
      },
    });
    Object.assign(ctx, { w, oppId, docs, dealId, base: fieldValue(w, oppId, docs) });
    const uploads = countUploads();
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "mine.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();

    expect(linkedDuringDrops).toBe(0);
    expect(names(filesOfValue(fieldValue(w, oppId, docs)))).toEqual(["mine.pdf"]);
    expect(fdNames(w, dealId)).toEqual(["mine.pdf"]);
    expect(uploads.n).toBe(1);
    expect(await attachmentLinksForDeal(env.DB, ACCOUNT, dealId)).toHaveLength(1);
    expect(w.handled.some((h) => h.kind === "sync.attachments" && h.outcome === "retry")).toBe(true);
  });

  it("landing between our last read and our write: overwritten by it (the documented residual window)", async () => {
    const { w, docs, dealId, oppId } = await attachWorld(undefined);
    const before = fieldValue(w, oppId, docs);
    let armed = true;
    const inner = routes["sandbox.test"]!;
    routes["sandbox.test"] = async (r) => {
      const u = new URL(r.url);
      if (armed && r.method === "PUT" && u.pathname.endsWith(`/opportunities/${oppId}`)) {
        armed = false;
        await staleSave(w, oppId, docs, before, "lost-in-the-window.txt");
      }
      return inner(r);
    };
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "mine.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    await w.settle();
    expect(armed).toBe(false);
    expect(names(filesOfValue(fieldValue(w, oppId, docs)))).toEqual(["mine.pdf"]);
    expect(fdNames(w, dealId)).toEqual(["mine.pdf"]);
  });
});
