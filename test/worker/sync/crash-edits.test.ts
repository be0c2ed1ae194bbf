/**
 * A user edit made while a create's link is not saved yet (the job crashed after the create) is
 * not lost when the redelivered job finds the pair (chaos seed 20: a value a user had replaced came
 * back). The merge base of a pair found after a crash is the record as it was created, so edits
 * made since — on either side — are changes that flow, never overwritten by the create's content.
 * Values are checked in both units: 4Degrees `amount_minor` (cents) and HighLevel `monetaryValue`.
 */
import { describe, expect, it } from "vitest";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe("user edits between a create and its saved link", () => {
  it("4Degrees edits made after the HighLevel create, before the link was saved, reach HighLevel (not reverted)", async () => {
    let world: World | null = null;
    let dealId = "";
    let crashes = 1;
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: (side) => {
          if (side !== "highlevel" || crashes-- <= 0 || !world) return;
          // The user edits the deal while the job is dying between "created" and "link saved".
          world.sb.fourdegrees.updateDealAsUser(dealId, {
            name: "Edited After Create",
            value: { amount_minor: 151_000_00, currency: "USD" },
            stage_id: world.fdStage("Due Diligence"),
          });
          throw new Error("simulated crash after the HighLevel create");
        },
      },
    });
    world = w;
    dealId = newDeal(w, { name: "Created First", stage: "Sourced", amountMinor: 287_000_00 }).id;
    await w.settle();

    const deal = w.sb.fourdegrees.deal(dealId);
    expect(deal.name).toBe("Edited After Create");
    expect(deal.value?.amount_minor).toBe(151_000_00);
    expect(deal.stage_id).toBe(w.fdStage("Due Diligence"));
    const link = await w.linkOf("fourdegrees", dealId);
    const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
    expect(opp?.name).toBe("Edited After Create");
    expect(opp?.monetaryValue).toBe(151_000);
    expect(opp?.pipelineStageId).toBe(w.hlStage("Due Diligence"));
    expect(
      [...w.sb.highlevel.store.opportunities.values()].filter(
        (o) => o.name.startsWith("Created First") || o.name === "Edited After Create",
      ),
    ).toHaveLength(1);
    await expectConverged(w);
  });

  it("HighLevel edits made after the 4Degrees create, before the link was saved, reach 4Degrees although the retried create replays the first answer", async () => {
    let world: World | null = null;
    let oppId = "";
    let crashes = 1;
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: (side) => {
          if (side !== "fourdegrees" || crashes-- <= 0 || !world) return;
          world.sb.highlevel.service.updateOpportunity(oppId, { name: "Renamed In HighLevel", monetaryValue: 19_000 });
          throw new Error("simulated crash after the 4Degrees create");
        },
      },
    });
    world = w;
    const contact = w.sb.highlevel.service.createContact({
      locationId: w.locationId,
      name: "Val Ue",
      email: "val@crash.example",
    });
    oppId = w.sb.highlevel.service.createOpportunity({
      locationId: w.locationId,
      pipelineId: w.hlPipelineId,
      pipelineStageId: w.hlStage("Sourced"),
      name: "From HighLevel",
      status: "open",
      contactId: contact.id,
      monetaryValue: 156_000,
    }).id;
    await w.settle();

    const opp = w.sb.highlevel.store.opportunities.get(oppId);
    expect(opp?.name).toBe("Renamed In HighLevel");
    expect(opp?.monetaryValue).toBe(19_000);
    const link = await w.linkOf("highlevel", oppId);
    const deals = w.sb.fourdegrees
      .deals()
      .filter((d) => !d.archived_at && (d.name === "From HighLevel" || d.name === "Renamed In HighLevel"));
    expect(deals.map((d) => d.id)).toEqual([link?.fdDealId]);
    expect(deals[0]?.name).toBe("Renamed In HighLevel");
    expect(deals[0]?.value?.amount_minor).toBe(19_000_00);
    await expectConverged(w);
  });

  it("an opportunity deleted after its 4Degrees deal was created, before the link was saved, archives the deal instead of getting a new opportunity", async () => {
    let world: World | null = null;
    let oppId = "";
    let crashes = 1;
    const w = await createWorld(routes, {
      account: { deletePolicy: "propagate" },
      hooks: {
        afterCreate: (side) => {
          if (side !== "fourdegrees" || crashes-- <= 0 || !world) return;
          world.sb.highlevel.service.deleteOpportunity(oppId);
          throw new Error("simulated crash after the 4Degrees create");
        },
      },
    });
    world = w;
    const contact = w.sb.highlevel.service.createContact({
      locationId: w.locationId,
      name: "Del Eted",
      email: "deleted@crash.example",
    });
    oppId = w.sb.highlevel.service.createOpportunity({
      locationId: w.locationId,
      pipelineId: w.hlPipelineId,
      pipelineStageId: w.hlStage("Sourced"),
      name: "Short Lived",
      status: "open",
      contactId: contact.id,
      monetaryValue: 7,
    }).id;
    await w.settle();

    expect(crashes).toBe(0);
    expect(w.sb.fourdegrees.deals().filter((d) => d.name === "Short Lived" && !d.archived_at)).toEqual([]);
    expect([...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === "Short Lived")).toEqual([]);
  });

  it("a deal archived after its opportunity was created, before the link was saved, deletes the opportunity instead of getting a new deal", async () => {
    let world: World | null = null;
    let dealId = "";
    let crashes = 1;
    const w = await createWorld(routes, {
      account: { deletePolicy: "propagate" },
      hooks: {
        afterCreate: (side) => {
          if (side !== "highlevel" || crashes-- <= 0 || !world) return;
          world.sb.fourdegrees.archiveDealAsUser(dealId);
          throw new Error("simulated crash after the HighLevel create");
        },
      },
    });
    world = w;
    dealId = newDeal(w, { name: "Archived Early", stage: "Sourced", amountMinor: 3_00 }).id;
    await w.settle();

    expect(crashes).toBe(0);
    expect([...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === "Archived Early")).toEqual([]);
    expect(w.sb.fourdegrees.deals().filter((d) => d.name === "Archived Early" && !d.archived_at)).toEqual([]);
  });

  it("a HighLevel note edited while its 4Degrees copy's job crashed ends as one copy with the edited text", async () => {
    let world: World | null = null;
    let armed = false;
    let contactId = "";
    let noteId = "";
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: (side) => {
          if (side !== "fourdegrees" || !armed || !world) return;
          armed = false;
          world.sb.highlevel.service.updateNote(contactId, noteId, { body: "Call notes (edited)" });
          throw new Error("simulated crash after the 4Degrees note create");
        },
      },
    });
    world = w;
    const deal = newDeal(w, { name: "Noted", stage: "Sourced" });
    await w.settle();
    contactId = (await w.linkOf("fourdegrees", deal.id))?.hlContactId ?? "";
    expect(contactId).not.toBe("");
    armed = true;
    noteId = w.sb.highlevel.service.createNote(contactId, { body: "Call notes" }).id;
    await w.settle();
    expect(armed).toBe(false);
    const copies = w.sb.fourdegrees
      .notes(deal.id)
      .map((n) => n.body)
      .filter((b) => b.startsWith("Call notes"));
    // The copy's author line sits between the text and the origin tag (the note has no author).
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatch(
      new RegExp(
        `^Call notes \\(edited\\)\\n\\n— by an unknown author · [^\\n]+\\n— synced from HighLevel note ${noteId}$`,
      ),
    );
    // Nothing bounced back to HighLevel either.
    expect(w.sb.highlevel.store.notesOf(contactId).map((n) => n.body)).toEqual(["Call notes (edited)"]);
  });
});
