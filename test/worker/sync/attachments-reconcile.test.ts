/**
 * Reconcile finds the files whose webhook was lost: a 4Degrees attachment whose `attachment.created`
 * never arrived, and a file a HighLevel user put in the opportunity's file field whose webhook was
 * dropped, are copied by the next passes exactly once (the webhook's job, ledger-guarded); later
 * passes copy nothing more; the scan is bounded per tick.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { filesOfValue } from "../../../src/highlevel/files.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { runReconcile, type ReconcileReport } from "../../../src/sync/jobs/reconcile.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const PDF = new TextEncoder().encode("%PDF-1.4\n% a small test file\n1 0 obj << >> endobj\n%%EOF\n");
const TEXT = new TextEncoder().encode("minutes of the partner meeting\n");

/** A world syncing attachments through the demo "Documents" field, with `pairs` linked deals. */
async function attachWorld(pairs = 1) {
  const w = await createWorld(routes);
  const docs = w.sb.highlevel.demo!.documentsFieldId;
  await saveMapping(env.DB, ACCOUNT, { ...w.mapping, attachmentsFieldId: docs });
  const deals = Array.from({ length: pairs }, (_, i) => newDeal(w, { name: `Lost Files ${i}`, stage: "Sourced" }));
  await w.settle();
  const pairsOut = [];
  for (const d of deals) {
    const link = await w.linkOf("fourdegrees", d.id);
    if (link?.state !== "active") throw new Error(`deal ${d.id} is not linked`);
    pairsOut.push({ dealId: d.id, oppId: link.hlOpportunityId });
  }
  return { w, docs, pairs: pairsOut };
}

const hlFiles = (w: World, oppId: string, docs: string) =>
  filesOfValue(w.sb.highlevel.store.opportunities.get(oppId)?.customFields.find((f) => f.id === docs)?.value);
const fdFiles = (w: World, dealId: string) =>
  [...w.sb.fourdegrees.store.attachments.values()].filter((a) => a.record.deal_id === dealId);

/** A HighLevel user putting a file in the opportunity's field (storage upload + field update). */
async function attachInHighLevel(w: World, oppId: string, docs: string, name: string, bytes: Uint8Array) {
  const media = w.sb.highlevel.service.medias;
  const m = media.upload({
    locationId: w.locationId,
    name,
    file: { bytes, contentType: "text/plain" },
    customField: { ownerId: oppId },
  });
  const url = await media.url(m, "http://sandbox.test");
  const key = crypto.randomUUID();
  const current = w.sb.highlevel.store.opportunities.get(oppId)?.customFields.find((f) => f.id === docs)?.value;
  const value = {
    ...(current && typeof current === "object" ? current : {}),
    [key]: { meta: { originalname: name, mimetype: "text/plain", size: bytes.byteLength, uuid: key }, url },
  };
  w.sb.highlevel.service.updateOpportunity(oppId, { customFields: [{ id: docs, field_value: value }] });
}

/** Reconcile ticks (enough to visit every pipeline page), each followed by the jobs it enqueued. */
async function reconcilePasses(w: World, options: { attachmentsPerTick?: number } = {}, ticks = 4) {
  const reports: ReconcileReport[] = [];
  for (let t = 0; t < ticks; t++) {
    reports.push(...(await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100, ...options })));
    await w.settle();
  }
  return reports;
}

const queued = (reports: ReconcileReport[]) => reports.reduce((n, r) => n + (r.attachmentsQueued ?? 0), 0);

describe("reconcile: attachments whose webhook was lost", () => {
  it("a 4Degrees attachment without its webhook reaches HighLevel once; the next passes copy nothing", async () => {
    const { w, docs, pairs } = await attachWorld();
    const [{ dealId, oppId }] = pairs as [{ dealId: string; oppId: string }];
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 1 });
    await w.sb.fourdegrees.addAttachmentAsUser(dealId, {
      file_name: "deck.pdf",
      content_type: "application/pdf",
      bytes: PDF,
    });
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 0 });
    await w.settle();
    expect(hlFiles(w, oppId, docs)).toEqual([]);

    expect(queued(await reconcilePasses(w))).toBe(1);
    expect(hlFiles(w, oppId, docs).map((f) => f.name)).toEqual(["deck.pdf"]);
    expect(fdFiles(w, dealId)).toHaveLength(1);

    w.resetCounts();
    expect(queued(await reconcilePasses(w))).toBe(0);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    expect(hlFiles(w, oppId, docs)).toHaveLength(1);
  });

  it("a HighLevel field file whose webhook was dropped reaches 4Degrees once; the next passes copy nothing", async () => {
    const { w, docs, pairs } = await attachWorld();
    const [{ dealId, oppId }] = pairs as [{ dealId: string; oppId: string }];
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    await attachInHighLevel(w, oppId, docs, "minutes.txt", TEXT);
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    await w.settle();
    expect(fdFiles(w, dealId)).toEqual([]);

    expect(queued(await reconcilePasses(w))).toBe(1);
    expect(fdFiles(w, dealId).map((a) => [a.record.file_name, a.bytes])).toEqual([["minutes.txt", TEXT]]);

    w.resetCounts();
    expect(queued(await reconcilePasses(w))).toBe(0);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    expect(fdFiles(w, dealId)).toHaveLength(1);
    expect(hlFiles(w, oppId, docs)).toHaveLength(1);
  });

  it("compares at most attachmentsPerTick pairs a tick: the rest follow on the next passes", async () => {
    const { w, docs, pairs } = await attachWorld(3);
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 1 });
    for (const p of pairs)
      await w.sb.fourdegrees.addAttachmentAsUser(p.dealId, {
        file_name: "term-sheet.pdf",
        content_type: "application/pdf",
        bytes: PDF,
      });
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 0 });
    await w.settle();

    const first = await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100, attachmentsPerTick: 1 });
    expect(first.map((r) => [r.attachmentsCompared, r.attachmentsQueued])).toEqual([[1, 1]]);
    await w.settle();
    expect(pairs.filter((p) => hlFiles(w, p.oppId, docs).length > 0)).toHaveLength(1);

    // The cursor moves on over every link (the demo deals this reconcile paired too), one a tick.
    const rest: ReconcileReport[] = [];
    for (let tick = 0; tick < 30 && pairs.some((p) => hlFiles(w, p.oppId, docs).length === 0); tick++)
      rest.push(...(await reconcilePasses(w, { attachmentsPerTick: 1 }, 1)));
    expect(rest.every((r) => (r.attachmentsCompared ?? 0) <= 1)).toBe(true);
    expect(queued(rest)).toBe(2);
    for (const p of pairs) expect(hlFiles(w, p.oppId, docs).map((f) => f.name)).toEqual(["term-sheet.pdf"]);
  });
});
