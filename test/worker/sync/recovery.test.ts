/**
 * End-to-end: exactly-once effects under crashes and redelivery, confirmed deletes with
 * tombstones, the note round trip, reconcile catching a lost webhook, unmapped stages going to
 * review, test mode, read-only mode, pause/resume.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { completeWrite, getWrite, ledgerCounts } from "../../../src/store/ledger.ts";
import { noteLinkRowsForDeal, saveNoteLink } from "../../../src/store/links.ts";
import { sha256 } from "../../../src/lib/hash.ts";
import { tagOrigin } from "../../../src/sync/engine/notes.ts";
import { listPending } from "../../../src/store/pending.ts";
import { listEvents, listReview } from "../../../src/store/sync-events.ts";
import { runReconcile } from "../../../src/sync/jobs/reconcile.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import type { Outcome } from "../../../src/queue/consumer.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { ACCOUNT, API_VERSIONS, createWorld, type World } from "./world.ts";
import { ascending } from "../../support.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe.each(API_VERSIONS)("HIGHLEVEL_API_VERSION=%s", (apiVersion) => {
  describe("exactly-once effects (error)", () => {
    it("a crash between the HighLevel create and the saved link, then redelivery, creates no duplicate", async () => {
      let crashes = 1;
      const w = await createWorld(routes, {
        apiVersion,
        hooks: {
          afterCreate: (side) => {
            if (side === "highlevel" && crashes-- > 0)
              throw new Error("simulated crash after create, before the link is saved");
          },
        },
      });
      const deal = newDeal(w, { name: "Crashy Corp", stage: "Sourced", amountMinor: 42_00 });
      await w.settle();
      const copies = [...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === "Crashy Corp");
      expect(copies).toHaveLength(1);
      const link = await w.linkOf("fourdegrees", deal.id);
      expect(link?.hlOpportunityId).toBe(copies[0]?.id);
      // The failed attempt was retried (the queue redelivered it).
      expect(w.handled.some((h) => h.kind === "sync.record" && h.outcome === "retry")).toBe(true);
      await expectConverged(w);
    });

    it("security: without an external-id field, a crash after the HighLevel create then a retry still makes one opportunity", async () => {
      let crashes = 1;
      const w = await createWorld(routes, {
        apiVersion,
        mapping: (m) => ({ ...m, externalIdFieldId: null }),
        hooks: {
          afterCreate: (side) => {
            if (side === "highlevel" && crashes-- > 0)
              throw new Error("simulated crash after create, before the ledger completes");
          },
        },
      });
      expect(w.mapping.externalIdFieldId ?? null).toBeNull();
      const deal = newDeal(w, { name: "No Field Corp", stage: "Sourced", amountMinor: 7_00 });
      await w.settle();
      const copies = [...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === "No Field Corp");
      expect(copies).toHaveLength(1);
      expect((await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId).toBe(copies[0]?.id);
      expect(w.handled.some((h) => h.kind === "sync.record" && h.outcome === "retry")).toBe(true);
      expect((await ledgerCounts(env.DB, ACCOUNT)).pending).toBe(0);
      await expectConverged(w);
    });

    it.each(["pending", "done"] as const)(
      "security: HighLevel announcing our create before its link is saved makes no second deal (no external-id field; ledger %s)",
      async (ledgerState) => {
        // The opportunity's job runs while our create of it is unfinished: the ledger row pending
        // (the create not returned) or done (the extras and the external ref still to write), the
        // link not saved, and without the external-id field nothing else ties the two.
        const early: Array<Outcome["kind"]> = [];
        const holder: { w?: World; dealId?: string } = {};
        const w = await createWorld(routes, {
          apiVersion,
          mapping: (m) => ({ ...m, externalIdFieldId: null }),
          hooks: {
            afterCreate: async (side, id) => {
              const world = holder.w;
              if (side !== "highlevel" || !world || !holder.dealId || early.length > 0) return;
              if (ledgerState === "done")
                await completeWrite(
                  env.DB,
                  {
                    accountId: ACCOUNT,
                    targetSide: "highlevel",
                    sourceRecord: `fourdegrees:${holder.dealId}`,
                    changeHash: "create",
                  },
                  id,
                );
              const handler = syncHandlers(() => world.deps)["sync.record"];
              const msg = QueueMessageSchema.parse({
                v: 1,
                kind: "sync.record",
                accountId: ACCOUNT,
                side: "highlevel",
                record: "deal",
                recordId: id,
                locationId: world.locationId,
                force: true,
              });
              if (msg.kind === "sync.record" && handler) early.push((await handler(msg, world.ctx)).kind);
            },
          },
        });
        holder.w = w;
        const deal = newDeal(w, { name: "Announced Early", stage: "Sourced", amountMinor: 9_00 });
        holder.dealId = deal.id;
        await w.settle();
        expect(early).toEqual(["retry"]);
        expect(w.sb.fourdegrees.deals().filter((d) => d.name === "Announced Early")).toHaveLength(1);
        const copies = [...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === "Announced Early");
        expect(copies).toHaveLength(1);
        expect((await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId).toBe(copies[0]?.id);
        await expectConverged(w);
      },
    );

    it("a crash after the 4Degrees create replays the same Idempotency-Key: one deal", async () => {
      let crashes = 1;
      const w = await createWorld(routes, {
        apiVersion,
        hooks: {
          afterCreate: (side) => {
            if (side === "fourdegrees" && crashes-- > 0) throw new Error("simulated crash after the 4Degrees create");
          },
        },
      });
      const contact = w.sb.highlevel.service.createContact({
        locationId: w.locationId,
        name: "Ada Crash",
        email: "ada@crash.example",
      });
      const opp = w.sb.highlevel.service.createOpportunity({
        locationId: w.locationId,
        pipelineId: w.hlPipelineId,
        pipelineStageId: w.hlStage("Sourced"),
        name: "From HighLevel",
        status: "open",
        contactId: contact.id,
        monetaryValue: 12,
      });
      await w.settle();
      const deals = w.sb.fourdegrees.deals().filter((d) => d.name === "From HighLevel");
      expect(deals).toHaveLength(1);
      expect((await w.linkOf("highlevel", opp.id))?.fdDealId).toBe(deals[0]?.id);
      expect((await ledgerCounts(env.DB, ACCOUNT)).pending).toBe(0);
      await expectConverged(w);
    });

    it("redelivering every webhook of a finished sync writes nothing", async () => {
      const w = await createWorld(routes, { apiVersion });
      newDeal(w, { name: "Replayed", stage: "Sourced" });
      await w.settle();
      w.resetCounts();
      for (const d of [...w.sb.highlevel.deliveries(), ...w.sb.fourdegrees.deliveries()]) {
        const u = new URL(d.subscriber);
        const body: unknown = JSON.parse(d.body);
        if (!body || typeof body !== "object") continue;
        const rec = Object.fromEntries(Object.entries(body));
        const str = (v: unknown) => (typeof v === "string" ? v : "");
        w.queue.push(
          u.pathname.endsWith("highlevel")
            ? {
                body: {
                  v: 1,
                  kind: "highlevel.webhook",
                  webhookId: str(rec["webhookId"]) || d.id,
                  locationId: str(rec["locationId"]) || null,
                  type: str(rec["type"]),
                  receivedAt: Date.now(),
                  body: rec,
                },
                attempts: 0,
              }
            : {
                body: {
                  v: 1,
                  kind: "fourdegrees.webhook",
                  webhookId: d.id,
                  workspaceId: str(rec["workspace_id"]),
                  type: str(rec["type"]),
                  receivedAt: Date.now(),
                  body: rec,
                },
                attempts: 0,
              },
        );
      }
      await w.settle();
      expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    });
  });
});

describe("deletes", () => {
  it("propagate: a HighLevel delete archives the deal only after a 404 re-read, and a stray update does not resurrect it", async () => {
    const w = await createWorld(routes, { account: { deletePolicy: "propagate" } });
    const deal = newDeal(w, { name: "Doomed", stage: "Sourced" });
    await w.settle();
    const hlId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    w.sb.highlevel.service.deleteOpportunity(hlId);
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).archived_at).not.toBeNull();
    expect((await w.linkOf("fourdegrees", deal.id))?.state).toBe("deleted");
    // A stray OpportunityUpdate after the delete (HighLevel's [Delete, Update] fan-out, late).
    w.resetCounts();
    w.queue.push({
      body: {
        v: 1,
        kind: "highlevel.webhook",
        webhookId: "late-update",
        locationId: w.locationId,
        type: "OpportunityUpdate",
        receivedAt: Date.now(),
        body: { type: "OpportunityUpdate", id: hlId, locationId: w.locationId },
      },
      attempts: 0,
    });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    expect([...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === "Doomed")).toHaveLength(0);
    expect(w.sb.fourdegrees.deals().filter((d) => d.name === "Doomed" && !d.archived_at)).toHaveLength(0);
  });

  it("archive: a 4Degrees archive closes the opportunity as lost; later edits to it are not synced back", async () => {
    const w = await createWorld(routes, { account: { deletePolicy: "archive" } });
    const deal = newDeal(w, { name: "Shelved", stage: "Sourced" });
    await w.settle();
    const hlId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    w.sb.fourdegrees.archiveDealAsUser(deal.id);
    await w.settle();
    expect(w.sb.highlevel.store.opportunities.get(hlId)?.status).toBe("lost");
    w.resetCounts();
    w.sb.highlevel.service.updateOpportunity(hlId, { name: "Shelved (edited)" });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    const deletes = await listEvents(env.DB, ACCOUNT, { kind: "delete" });
    expect(deletes[0]?.outcome).toBe("archive");
  });

  it("ignore: the other side is left alone and the pair is unlinked", async () => {
    const w = await createWorld(routes, { account: { deletePolicy: "ignore" } });
    const deal = newDeal(w, { name: "Ignored", stage: "Sourced" });
    await w.settle();
    const hlId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    w.sb.highlevel.service.deleteOpportunity(hlId);
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).archived_at).toBeNull();
    expect((await w.linkOf("fourdegrees", deal.id))?.state).toBe("deleted");
  });
});

describe("notes", () => {
  it("round trip: a 4Degrees note appears on the contact in HighLevel, a HighLevel note and an edit come back, nothing bounces", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Chatty", stage: "Sourced" });
    await w.settle();
    const link = await w.linkOf("fourdegrees", deal.id);
    const contactId = link?.hlContactId ?? "";
    w.sb.fourdegrees.addNoteAsUser(deal.id, "Met the founders; strong team.");
    await w.settle();
    const hlNotes = w.sb.highlevel.store.notesOf(contactId);
    expect(hlNotes.map((n) => n.body.split("\n\n")[0])).toEqual(["Met the founders; strong team."]);
    expect(hlNotes[0]?.body).toMatch(/synced from 4Degrees note/);

    w.sb.highlevel.service.createNote(contactId, { body: "Sent the term sheet draft." });
    await w.settle();
    const fdBodies = w.sb.fourdegrees.notes(deal.id).map((n) => n.body.split("\n\n")[0]);
    expect(fdBodies.sort(ascending)).toEqual(["Met the founders; strong team.", "Sent the term sheet draft."]);

    const hlOwn = w.sb.highlevel.store.notesOf(contactId).find((n) => n.body === "Sent the term sheet draft.");
    w.sb.highlevel.service.updateNote(contactId, hlOwn?.id ?? "", { body: "Sent the term sheet draft (v2)." });
    await w.settle();
    expect(w.sb.fourdegrees.notes(deal.id).some((n) => n.body.startsWith("Sent the term sheet draft (v2)."))).toBe(
      true,
    );

    // Nothing bounces: two notes per side, and a further settle writes nothing.
    expect(w.sb.fourdegrees.notes(deal.id)).toHaveLength(2);
    expect(w.sb.highlevel.store.notesOf(contactId)).toHaveLength(2);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });
});

describe("note creates: the pending note link is the write-ahead record", () => {
  it("security: a crash after HighLevel's note create, before its link completes, leaves the link pending (no ledger row); the retry finds the copy by its footer and links it: one note", async () => {
    let crashes = 0;
    const seen: Array<{ pending: number; linked: number; ledger: unknown }> = [];
    const holder: { dealId?: string } = {};
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: async (side) => {
          if (side !== "highlevel" || crashes <= 0 || !holder.dealId) return;
          crashes--;
          const rows = await noteLinkRowsForDeal(env.DB, ACCOUNT, holder.dealId);
          const fdNoteId = rows.pending[0]?.fdNoteId ?? "";
          seen.push({
            pending: rows.pending.length,
            linked: rows.linked.length,
            ledger: await getWrite(env.DB, {
              accountId: ACCOUNT,
              targetSide: "highlevel",
              sourceRecord: `fourdegrees:note:${fdNoteId}`,
              changeHash: "create",
            }),
          });
          throw new Error("simulated crash after the HighLevel note create, before its link completes");
        },
      },
    });
    const deal = newDeal(w, { name: "Crashy Notes", stage: "Sourced" });
    await w.settle();
    holder.dealId = deal.id;
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? expect.fail("no contact");
    crashes = 1;
    w.sb.fourdegrees.addNoteAsUser(deal.id, "Crash right after the copy.");
    await w.settle();
    expect(seen, "at the crash: the link pending, no ledger row for the note").toEqual([
      { pending: 1, linked: 0, ledger: null },
    ]);
    expect(w.handled.some((h) => h.kind === "sync.record" && h.outcome === "retry")).toBe(true);
    const copies = w.sb.highlevel.store.notesOf(contactId).filter((n) => n.body.startsWith("Crash right after"));
    expect(copies).toHaveLength(1);
    const rows = await noteLinkRowsForDeal(env.DB, ACCOUNT, deal.id);
    expect(rows.pending).toEqual([]);
    expect(rows.linked.map((l) => l.hlNoteId)).toEqual([copies[0]?.id]);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });

  it("security: another job creates and links the note after this job listed the notes: its claim finds the link complete and makes no second copy", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Racing Notes", stage: "Sourced" });
    await w.settle();
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? expect.fail("no contact");
    const fdNote = w.sb.fourdegrees.addNoteAsUser(deal.id, "Raced between the listing and the create.");
    // The other job's create and link land right after this job's HighLevel listing is answered.
    const sandbox = routes["sandbox.test"] ?? expect.fail("the world routes sandbox.test");
    let raced = false;
    routes["sandbox.test"] = async (r) => {
      const res = await sandbox(r);
      const u = new URL(r.url);
      if (!raced && r.method === "GET" && u.pathname.endsWith(`/contacts/${contactId}/notes`)) {
        raced = true;
        const other = w.sb.highlevel.service.createNote(contactId, {
          body: tagOrigin(fdNote.body, "fourdegrees", fdNote.id),
        });
        await saveNoteLink(env.DB, {
          accountId: ACCOUNT,
          fdNoteId: fdNote.id,
          hlNoteId: other.id,
          fdDealId: deal.id,
          hlContactId: contactId,
          origin: "fourdegrees",
          bodyHash: await sha256(fdNote.body),
        });
      }
      return res;
    };
    await w.settle();
    expect(raced).toBe(true);
    const copies = w.sb.highlevel.store.notesOf(contactId).filter((n) => n.body.startsWith("Raced between"));
    expect(copies, "one copy: the other job's").toHaveLength(1);
    expect((await noteLinkRowsForDeal(env.DB, ACCOUNT, deal.id)).linked.map((l) => l.hlNoteId)).toEqual([
      copies[0]?.id,
    ]);
  });

  it("a pending create whose 4Degrees note is gone is removed, and no reader takes it for a link", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Stale Pending", stage: "Sourced" });
    await w.settle();
    const contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? expect.fail("no contact");
    // A create written ahead whose job died before calling HighLevel; the note is deleted since.
    await env.DB.prepare(
      "INSERT INTO note_links (account_id, fd_note_id, hl_note_id, fd_deal_id, hl_contact_id, origin, body_hash, updated_at) VALUES (?, 'gone-note', NULL, ?, ?, 'fourdegrees', 'h', 1)",
    )
      .bind(ACCOUNT, deal.id, contactId)
      .run();
    expect((await noteLinkRowsForDeal(env.DB, ACCOUNT, deal.id)).linked, "readers skip it").toEqual([]);
    w.sb.fourdegrees.addNoteAsUser(deal.id, "A later note of the deal.");
    await w.settle();
    const rows = await noteLinkRowsForDeal(env.DB, ACCOUNT, deal.id);
    expect(rows.pending).toEqual([]);
    expect(rows.linked).toHaveLength(1);
    expect(w.sb.highlevel.store.notesOf(contactId).filter((n) => n.body.startsWith("A later note"))).toHaveLength(1);
  });
});

describe("activity trail", () => {
  it("a notes job that copies a note leaves one `note` event with its write; a job that finds nothing leaves none", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Trail Co", stage: "Sourced" });
    await w.settle();
    w.sb.fourdegrees.addNoteAsUser(deal.id, "Trail: first call.");
    await w.settle();
    const notes = await listEvents(env.DB, ACCOUNT, { kind: "note" });
    expect(notes).toHaveLength(1);
    expect(notes[0]?.detail["writes"]).toEqual([expect.objectContaining({ side: "highlevel", op: "create_note" })]);
    const before = (await listEvents(env.DB, ACCOUNT, { limit: 200 })).length;
    // The deal's notes once more, nothing changed on either side: the job runs and writes nothing.
    w.queue.push({
      body: {
        v: 1,
        kind: "sync.record",
        accountId: ACCOUNT,
        side: "fourdegrees",
        record: "notes",
        recordId: deal.id,
        force: true,
      },
      attempts: 0,
    });
    await w.settle();
    expect(w.handled.at(-1)).toEqual({ kind: "sync.record", outcome: "ack" });
    expect((await listEvents(env.DB, ACCOUNT, { limit: 200 })).length).toBe(before);
  });
});

describe("reconcile", () => {
  it("catches a change whose webhook HighLevel dropped", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Silent", stage: "Sourced", amountMinor: 1_00 });
    await w.settle();
    const hlId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 99 });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(1_00);
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    // Scan until the cursor has passed every page of both sides.
    for (let tick = 0; tick < 6; tick++) await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100 });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(99_00);
    const ticks = await listEvents(env.DB, ACCOUNT, { kind: "reconcile" });
    expect(ticks.some((t) => t.outcome === "ok")).toBe(true);
    await expectConverged(w);
  });

  it("catches notes whose webhooks were dropped on either side, then stays quiet (no marks, no writes)", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Quiet Notes", stage: "Sourced" });
    await w.settle();
    const link = await w.linkOf("fourdegrees", deal.id);
    const contactId = link?.hlContactId ?? "";
    expect(contactId).not.toBe("");
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 1 });
    w.sb.fourdegrees.addNoteAsUser(deal.id, "lost 4Degrees note");
    w.sb.highlevel.service.createNote(contactId, { body: "lost HighLevel note" });
    await w.settle();
    const hlBodies = () => w.sb.highlevel.store.notesOf(contactId).map((n) => n.body);
    const fdBodies = () => w.sb.fourdegrees.notes(deal.id).map((n) => n.body);
    // The webhooks were lost: nothing crossed.
    expect(hlBodies().some((b) => b.startsWith("lost 4Degrees note"))).toBe(false);
    expect(fdBodies().some((b) => b.startsWith("lost HighLevel note"))).toBe(false);
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 0 });

    const tick = async () => {
      let marked = 0;
      for (let i = 0; i < 6; i++)
        for (const r of await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100 })) marked += r.marked;
      await w.settle();
      return marked;
    };
    expect(await tick()).toBeGreaterThan(0);
    expect(hlBodies().filter((b) => b.startsWith("lost 4Degrees note"))).toHaveLength(1);
    expect(fdBodies().filter((b) => b.startsWith("lost HighLevel note"))).toHaveLength(1);
    // Converged: a further full pass compares the notes again and finds nothing to do.
    w.resetCounts();
    expect(await tick()).toBe(0);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });

  it("skips the note comparison while the HighLevel quota is below twice the floor (deals are still scanned)", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Budget Notes", stage: "Sourced" });
    await w.settle();
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 1 });
    w.sb.fourdegrees.addNoteAsUser(deal.id, "waits for quota");
    await w.settle();
    // A floor of 0.6 → the note scan needs 120 % of the daily quota left: never.
    const [report] = await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100, quotaFloor: 0.6 });
    expect(report?.outcome).toBe("ok");
    expect(report?.notesCompared).toBe(0);
    const [full] = await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100 });
    expect(full?.notesCompared).toBeGreaterThan(0);
  });
});

describe("mapping guard rails", () => {
  it("a deal in an unmapped stage goes to review with a reason and an alert, never a guess", async () => {
    const w = await createWorld(routes, {
      mapping: (m) => ({
        ...m,
        pipelines: m.pipelines.map((p) => ({
          ...p,
          stages: p.stages.filter((s) => s.fourdegrees !== m.pipelines[0]?.stages[1]?.fourdegrees),
        })),
      }),
    });
    const deal = newDeal(w, { name: "Unmapped", stage: "First Meeting" });
    await w.settle();
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
    const review = await listReview(env.DB, ACCOUNT);
    expect(review.find((r) => r.recordId === deal.id)?.reason).toMatch(/First Meeting.*no HighLevel stage/);
    expect((await listEvents(env.DB, ACCOUNT, { kind: "alert" })).length).toBeGreaterThan(0);
    expect([...w.sb.highlevel.store.opportunities.values()].some((o) => o.name === "Unmapped")).toBe(false);
  });

  it("test mode computes the writes and makes none", async () => {
    const w = await createWorld(routes, { account: { testMode: true } });
    w.resetCounts();
    const deal = newDeal(w, { name: "Dry Run", stage: "Sourced" });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    const events = await listEvents(env.DB, ACCOUNT, { kind: "test_mode" });
    expect(events.find((e) => e.fdId === deal.id)?.detail["writes"]).toEqual([
      { side: "highlevel", op: "create", id: null },
    ]);
  });

  it("read-only mode syncs HighLevel → 4Degrees only, and says so", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Both Ways", stage: "Sourced", amountMinor: 5_00 });
    await w.settle();
    const hlId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    await w.patchAccount({ readOnly: true });
    w.resetCounts();
    newDeal(w, { name: "Not Exported", stage: "Sourced" });
    w.sb.fourdegrees.updateDealAsUser(deal.id, { name: "Renamed in 4Degrees" });
    w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 8 });
    await w.settle();
    expect(w.writes().highlevel).toBe(0);
    expect(w.sb.fourdegrees.deal(deal.id).value?.amount_minor).toBe(8_00);
    const skipped = await listEvents(env.DB, ACCOUNT, { kind: "sync" });
    expect(
      skipped.some((e) => typeof e.detail["reason"] === "string" && e.detail["reason"].includes("read-only")),
    ).toBe(true);
  });

  it("pause keeps changes marked dirty; resume syncs them", async () => {
    const w = await createWorld(routes);
    await w.patchAccount({ status: "paused" });
    const deal = newDeal(w, { name: "Later", stage: "Sourced" });
    await w.settle();
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
    expect((await listPending(env.DB, ACCOUNT)).some((p) => p.recordId === deal.id)).toBe(true);
    await w.patchAccount({ status: "active" });
    for (const p of await listPending(env.DB, ACCOUNT))
      w.queue.push({
        body: { v: 1, kind: "sync.record", accountId: ACCOUNT, side: p.side, record: p.kind, recordId: p.recordId },
        attempts: 0,
      });
    await w.settle();
    expect((await w.linkOf("fourdegrees", deal.id))?.state).toBe("active");
    await expectConverged(w);
  });
});
