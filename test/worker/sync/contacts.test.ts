/**
 * The primary contact crosses with its name, email and phone, through both sandboxes: the other
 * side's contact is matched by email, then by phone, and created only when nobody matches — never a
 * second contact for the same person, with duplicated deliveries and a crash right after a create.
 */
import { describe, expect, it } from "vitest";
import type { MappingInput } from "../../../src/domain/mapping-config.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged } from "./checks.ts";
import { createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const both = { mapping: (m: MappingInput): MappingInput => ({ ...m, directions: { contact: "both" } }) };

async function settleWithDuplicates(w: World): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const delivered = (await w.sb.highlevel.flush()) + (await w.sb.fourdegrees.flush());
    w.queue.push(...w.queue.map((q) => ({ body: q.body, attempts: 0 })));
    const processed = await w.drain();
    if (delivered === 0 && processed === 0) return;
  }
}

function dealWithContact(w: World, name: string, contactId: string) {
  return w.sb.fourdegrees.createDealAsUser({
    name,
    pipeline_id: w.fdPipelineId,
    stage_id: w.fdStage("Sourced"),
    contact_ids: [contactId],
  });
}

function oppWithContact(w: World, name: string, contactId: string) {
  return w.sb.highlevel.service.createOpportunity({
    locationId: w.locationId,
    pipelineId: w.hlPipelineId,
    pipelineStageId: w.hlStage("Sourced"),
    name,
    status: "open",
    contactId,
  });
}

const hlContacts = (w: World) => w.sb.highlevel.store.contactsOf(w.locationId);

describe("4Degrees → HighLevel", () => {
  it("matches an existing HighLevel contact by email, then by phone, and creates a new one with name, email and phone", async () => {
    const w = await createWorld(routes);
    const byEmail = w.sb.highlevel.service.createContact({
      locationId: w.locationId,
      name: "Ada L",
      email: "ada@x.example",
    });
    const byPhone = w.sb.highlevel.service.createContact({
      locationId: w.locationId,
      name: "Bo P",
      phone: "+1 415 555 0101",
    });
    const fdAda = w.sb.fourdegrees.store.addContact({ name: "Ada Lovelace", email: "ADA@x.example" });
    const fdBo = w.sb.fourdegrees.store.addContact({ name: "Bo Phone", phone: "+14155550101" });
    const fdCy = w.sb.fourdegrees.store.addContact({
      name: "Cy New",
      email: "cy@new.example",
      phone: "+1 212 555 0199",
    });
    const before = hlContacts(w).length;
    const a = dealWithContact(w, "Deal Ada", fdAda.id);
    const b = dealWithContact(w, "Deal Bo", fdBo.id);
    const c = dealWithContact(w, "Deal Cy", fdCy.id);
    await settleWithDuplicates(w);
    const contactOf = async (id: string) =>
      w.sb.highlevel.store.opportunities.get((await w.linkOf("fourdegrees", id))?.hlOpportunityId ?? "")?.contactId;
    expect(await contactOf(a.id)).toBe(byEmail.id);
    expect(await contactOf(b.id)).toBe(byPhone.id);
    const cy = hlContacts(w).find((x) => x.email === "cy@new.example");
    expect(await contactOf(c.id)).toBe(cy?.id);
    expect([cy?.phone?.replace(/\D/g, ""), w.sb.highlevel.store.contactName(cy!)]).toEqual(["12125550199", "Cy New"]);
    // One new contact (Cy's) and no second contact for anyone.
    expect(hlContacts(w).length).toBe(before + 1);
    await expectConverged(w);
  });

  it("a crash right after the HighLevel contact create: the retry finds it, no second contact", async () => {
    const w = await createWorld(routes);
    const inner = routes["sandbox.test"]!;
    let crashes = 1;
    routes["sandbox.test"] = async (r) => {
      const res = await inner(r);
      const u = new URL(r.url);
      if (
        r.method === "POST" &&
        /\/contacts\/?$/.test(u.pathname) &&
        u.pathname.includes("/highlevel/") &&
        crashes-- > 0
      )
        throw new Error("simulated crash after the HighLevel contact create");
      return res;
    };
    const fdDi = w.sb.fourdegrees.store.addContact({ name: "Di Crash", email: "di@crash.example" });
    const deal = dealWithContact(w, "Deal Di", fdDi.id);
    await w.settle();
    expect(crashes).toBeLessThan(1);
    expect(hlContacts(w).filter((x) => x.email === "di@crash.example")).toHaveLength(1);
    const link = await w.linkOf("fourdegrees", deal.id);
    const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
    expect(opp?.contactId).toBe(hlContacts(w).find((x) => x.email === "di@crash.example")?.id);
  });
});

describe("HighLevel → 4Degrees", () => {
  it("matches an existing 4Degrees contact by email, then by phone, and creates a new one otherwise", async () => {
    const w = await createWorld(routes, both);
    const fdEve = w.sb.fourdegrees.store.addContact({ name: "Eve E", email: "eve@x.example" });
    const fdFlo = w.sb.fourdegrees.store.addContact({ name: "Flo F", phone: "+44 20 7946 0001" });
    const eve = w.sb.highlevel.service.createContact({ locationId: w.locationId, name: "Eve", email: "Eve@x.example" });
    const flo = w.sb.highlevel.service.createContact({ locationId: w.locationId, name: "Flo", phone: "+442079460001" });
    const gus = w.sb.highlevel.service.createContact({
      locationId: w.locationId,
      name: "Gus New",
      email: "gus@new.example",
      phone: "+1 303 555 0123",
    });
    const before = w.sb.fourdegrees.store.contacts.size;
    const oe = oppWithContact(w, "Opp Eve", eve.id);
    const of = oppWithContact(w, "Opp Flo", flo.id);
    const og = oppWithContact(w, "Opp Gus", gus.id);
    await settleWithDuplicates(w);
    const contactsOf = async (id: string) =>
      w.sb.fourdegrees.deal((await w.linkOf("highlevel", id))?.fdDealId ?? "").contact_ids;
    expect(await contactsOf(oe.id)).toEqual([fdEve.id]);
    expect(await contactsOf(of.id)).toEqual([fdFlo.id]);
    const fdGus = [...w.sb.fourdegrees.store.contacts.values()].find((x) => x.email === "gus@new.example");
    expect(await contactsOf(og.id)).toEqual([fdGus?.id]);
    expect([fdGus?.name, fdGus?.phone?.replace(/\D/g, "")]).toEqual(["Gus New", "13035550123"]);
    expect(w.sb.fourdegrees.store.contacts.size).toBe(before + 1);
    await expectConverged(w);
  });
});

describe("HighLevel → 4Degrees, crash", () => {
  it("a crash right after the 4Degrees contact create: the retry replays it (Idempotency-Key), no second contact", async () => {
    const w = await createWorld(routes, both);
    const inner = routes["sandbox.test"]!;
    let crashes = 1;
    routes["sandbox.test"] = async (r) => {
      const res = await inner(r);
      const u = new URL(r.url);
      if (r.method === "POST" && u.pathname.endsWith("/4degrees/v1/contacts") && crashes-- > 0)
        throw new Error("simulated crash after the 4Degrees contact create");
      return res;
    };
    const hc = w.sb.highlevel.service.createContact({
      locationId: w.locationId,
      name: "Hal Crash",
      phone: "+1 646 555 0142",
    });
    const opp = oppWithContact(w, "Opp Hal", hc.id);
    await settleWithDuplicates(w);
    expect(crashes).toBeLessThan(1);
    const hal = [...w.sb.fourdegrees.store.contacts.values()].filter((x) => x.name === "Hal Crash");
    expect(hal).toHaveLength(1);
    const deal = w.sb.fourdegrees.deal((await w.linkOf("highlevel", opp.id))?.fdDealId ?? "");
    expect(deal.contact_ids).toEqual([hal[0]?.id]);
  });
});
