/**
 * The HighLevel sandbox imported in-process inside workerd (as Worker tests use it): webhook
 * fan-out and event shapes (ghl/webhook-events/*.md), signatures that verify with the public keys
 * the Worker is configured with, HighLevel's 429-only retry policy, and seeded faults that replay.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import { pemToDer, fromBase64 } from "../../../sandbox/highlevel/keys.ts";
import type { JsonBody } from "../../support.ts";

const HOOK = "http://worker.test/webhooks/highlevel";

/** Documented keys of every opportunity event (webhook-events/Opportunity*.md) plus the envelope. */
const OPPORTUNITY_KEYS = [
  "type",
  "locationId",
  "id",
  "assignedTo",
  "contactId",
  "monetaryValue",
  "name",
  "pipelineId",
  "pipelineStageId",
  "source",
  "status",
  "dateAdded",
  "timestamp",
  "webhookId",
  "appId",
  "versionId",
];
const NOTE_KEYS = [
  "type",
  "locationId",
  "id",
  "body",
  "contactId",
  "dateAdded",
  "timestamp",
  "webhookId",
  "appId",
  "versionId",
];

interface Received {
  body: string;
  headers: Headers;
}

/** A manual-mode sandbox whose webhook deliveries land in `received`, answered by `answer`. */
async function setup(options: { seed?: number; answer?: (n: number) => number } = {}): Promise<{
  sb: Sandbox;
  received: Received[];
  api: (method: string, path: string, body?: unknown) => Promise<Response>;
}> {
  const received: Received[] = [];
  const sb = createSandbox({
    webhookMode: "manual",
    seed: options.seed ?? 99,
    fetch: async (request) => {
      received.push({ body: await request.text(), headers: request.headers });
      return new Response(null, { status: options.answer?.(received.length) ?? 200 });
    },
  });
  await sb.seedDemo();
  sb.highlevel.subscribe(HOOK);
  const pit = sb.highlevel.demo!.pit;
  const api = (method: string, path: string, body?: unknown) =>
    sb.fetch(
      new Request(`http://sandbox.test/highlevel${path}`, {
        method,
        headers: { Authorization: `Bearer ${pit}`, Version: "2021-07-28", "Content-Type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
  return { sb, received, api };
}

const types = (received: Received[]) => received.map((r) => (JSON.parse(r.body) as { type: string }).type);

describe("HighLevel sandbox webhooks (in-process, workerd)", () => {
  it("happy: every change fans out as HighLevel does, with the documented event shapes", async () => {
    const { sb, received, api } = await setup();
    sb.clock.freeze();
    const d = sb.highlevel.demo!;
    const step = async (run: () => Promise<unknown>, expected: string[]) => {
      received.length = 0;
      await run();
      await sb.highlevel.flush();
      expect(types(received)).toEqual(expected);
    };
    let id = "";
    const contact = sb.highlevel.service.createContact({
      locationId: d.locationId,
      firstName: "Hook",
      email: "hook@example.com",
    });
    await step(async () => {
      const res = await api("POST", "/opportunities/", {
        pipelineId: d.pipelineId,
        locationId: d.locationId,
        name: "Webhook deal",
        status: "open",
        contactId: contact.id,
        monetaryValue: 10,
      });
      expect(res.status).toBe(201);
      id = ((await res.json()) as { opportunity: { id: string } }).opportunity.id;
    }, ["OpportunityCreate", "OpportunityUpdate"]);
    await step(
      () => api("PUT", `/opportunities/${id}`, { pipelineStageId: d.stageIds[1] }),
      ["OpportunityUpdate", "OpportunityStageUpdate"],
    );
    await step(
      () => api("PUT", `/opportunities/${id}/status`, { status: "won" }),
      ["OpportunityUpdate", "OpportunityStatusUpdate"],
    );
    await step(
      () => api("PUT", `/opportunities/${id}`, { monetaryValue: 99 }),
      ["OpportunityUpdate", "OpportunityMonetaryValueUpdate"],
    );
    await step(
      () => api("PUT", `/opportunities/${id}`, { assignedTo: d.userIds[2] }),
      ["OpportunityUpdate", "OpportunityAssignedToUpdate"],
    );
    const last = JSON.parse(received[1]!.body) as Record<string, unknown>;
    expect(Object.keys(last).sort()).toEqual([...OPPORTUNITY_KEYS].sort());
    expect(last).toMatchObject({
      id,
      locationId: d.locationId,
      assignedTo: d.userIds[2],
      monetaryValue: 99,
      status: "won",
      pipelineStageId: d.stageIds[1],
    });
    expect(last.timestamp).toBe(new Date(sb.clock.now()).toISOString());
    await step(() => api("DELETE", `/opportunities/${id}`), ["OpportunityDelete", "OpportunityUpdate"]);

    let noteId = "";
    await step(async () => {
      const res = await api("POST", `/contacts/${d.contactIds[0]}/notes`, { body: "first" });
      noteId = ((await res.json()) as { note: { id: string } }).note.id;
    }, ["NoteCreate"]);
    expect(Object.keys(JSON.parse(received[0]!.body) as object).sort()).toEqual([...NOTE_KEYS].sort());
    await step(() => api("PUT", `/contacts/${d.contactIds[0]}/notes/${noteId}`, { body: "edited" }), ["NoteUpdate"]);
    await step(() => api("DELETE", `/contacts/${d.contactIds[0]}/notes/${noteId}`), ["NoteDelete"]);

    const ids = sb.highlevel.deliveries().map((x) => x.payload.webhookId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("happy: changes made through the control API (as a UI user) emit webhooks too", async () => {
    const { sb, received } = await setup();
    const d = sb.highlevel.demo!;
    const res = await sb.fetch(
      new Request(`http://sandbox.test/_sandbox/highlevel/opportunities/${d.opportunityIds[0]}/stage`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ stageName: "Term Sheet" }),
      }),
    );
    expect(res.status).toBe(200);
    await sb.highlevel.flush();
    expect(types(received)).toEqual(["OpportunityUpdate", "OpportunityStageUpdate"]);
    expect(JSON.parse(received[1]!.body)).toMatchObject({ id: d.opportunityIds[0], pipelineStageId: d.stageIds[4] });
  });

  it("security: x-ghl-signature (Ed25519) and x-wh-signature (RSA) verify with the Worker's configured public keys, and not over a changed body", async () => {
    const { sb, received } = await setup();
    sb.highlevel.service.createNote(sb.highlevel.demo!.contactIds[1]!, { body: "signed" });
    await sb.highlevel.flush();
    const { body, headers } = received[0]!;
    const pem = (v: string | undefined) => {
      expect(v, "the Worker's test bindings carry the sandbox public keys").toBeDefined();
      return (v ?? "").replace(/\\n/g, "\n");
    };
    const ed = await crypto.subtle.importKey(
      "spki",
      pemToDer(pem(env.HIGHLEVEL_WEBHOOK_PUBLIC_KEY)),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    const rsa = await crypto.subtle.importKey(
      "spki",
      pemToDer(pem(env.HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY)),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const bytes = new TextEncoder().encode(body);
    const ghlSig = fromBase64(headers.get("x-ghl-signature")!);
    const whSig = fromBase64(headers.get("x-wh-signature")!);
    expect(await crypto.subtle.verify({ name: "Ed25519" }, ed, ghlSig, bytes)).toBe(true);
    expect(await crypto.subtle.verify({ name: "RSASSA-PKCS1-v1_5" }, rsa, whSig, bytes)).toBe(true);
    const tampered = new TextEncoder().encode(body.replace("signed", "forged"));
    expect(await crypto.subtle.verify({ name: "Ed25519" }, ed, ghlSig, tampered)).toBe(false);
    expect(await crypto.subtle.verify({ name: "RSASSA-PKCS1-v1_5" }, rsa, whSig, tampered)).toBe(false);
  });

  it("error: deliveries are retried only after a 429, about 10 minutes apart in sandbox time, up to 6 more times", async () => {
    const { sb, received } = await setup({ answer: (n) => (n === 1 ? 429 : 200) });
    sb.clock.freeze();
    sb.highlevel.service.createNote(sb.highlevel.demo!.contactIds[1]!, { body: "retry me" });
    await sb.highlevel.flush();
    const [delivery] = sb.highlevel.deliveries("NoteCreate");
    expect(delivery!.state).toBe("retrying");
    await sb.highlevel.flush();
    expect(received).toHaveLength(1); // not due yet
    sb.clock.advance(10 * 60_000);
    await sb.highlevel.flush();
    expect(received).toHaveLength(2);
    expect(sb.highlevel.deliveries("NoteCreate")[0]!.state).toBe("delivered");
    expect(received[0]!.body).toBe(received[1]!.body); // the same event, same webhookId
  });

  it("happy: a duplicated delivery is due with its original: a flush right after the change (clock frozen) delivers both, the copy second", async () => {
    const { sb, received } = await setup();
    sb.clock.freeze();
    sb.highlevel.faults.configure({ webhookDuplicateRate: 1 });
    sb.highlevel.service.createNote(sb.highlevel.demo!.contactIds[1]!, { body: "twice" });
    expect(await sb.highlevel.flush()).toBe(2);
    expect(received).toHaveLength(2);
    expect(received[1]!.body).toBe(received[0]!.body);
    const [original, copy] = sb.highlevel.deliveries("NoteCreate");
    expect(copy!.duplicateOf).toBe(original!.id);
    expect(copy!.dueAt).toBe(original!.dueAt);
    expect([original!.state, copy!.state]).toEqual(["delivered", "delivered"]);
    expect(sb.highlevel.webhooks.pending()).toEqual([]);
  });

  it("happy: duplicates keep their place among other events, and a reordered original's copy is late with it", async () => {
    const { sb, received } = await setup();
    sb.clock.freeze();
    const d = sb.highlevel.demo!;
    sb.highlevel.faults.configure({ webhookDuplicateRate: 1, webhookReorderRate: 1, webhookReorderDelayMs: 5_000 });
    sb.highlevel.service.createNote(d.contactIds[1]!, { body: "late" });
    sb.highlevel.faults.configure({ webhookDuplicateRate: 1, webhookReorderRate: 0 });
    sb.highlevel.service.createNote(d.contactIds[1]!, { body: "first" });
    sb.highlevel.service.createNote(d.contactIds[2]!, { body: "second" });
    await sb.highlevel.flush();
    const bodies = () => received.map((r) => (JSON.parse(r.body) as { body: string }).body);
    expect(bodies()).toEqual(["first", "first", "second", "second"]);
    sb.clock.advance(4_999);
    expect(await sb.highlevel.flush()).toBe(0);
    sb.clock.advance(1);
    expect(await sb.highlevel.flush()).toBe(2);
    expect(bodies()).toEqual(["first", "first", "second", "second", "late", "late"]);
    const late = sb.highlevel.deliveries().filter((x) => x.payload.body === "late");
    expect(late.map((x) => [x.reordered, Boolean(x.duplicateOf)])).toEqual([
      [true, false],
      [true, true],
    ]);
  });

  it("error: a 5xx loses the event for good; a receiver stuck on 429 gets 7 tries in all", async () => {
    const lost = await setup({ answer: () => 500 });
    lost.sb.highlevel.service.createNote(lost.sb.highlevel.demo!.contactIds[1]!, { body: "lost" });
    await lost.sb.highlevel.flush();
    lost.sb.clock.advance(60 * 60_000);
    await lost.sb.highlevel.flush();
    expect(lost.received).toHaveLength(1);
    expect(lost.sb.highlevel.deliveries()[0]!.state).toBe("failed");

    const stuck = await setup({ answer: () => 429 });
    stuck.sb.clock.freeze();
    stuck.sb.highlevel.service.createNote(stuck.sb.highlevel.demo!.contactIds[1]!, { body: "stuck" });
    for (let i = 0; i < 10; i++) {
      await stuck.sb.highlevel.flush();
      stuck.sb.clock.advance(10 * 60_000);
    }
    expect(stuck.received).toHaveLength(7);
    expect(stuck.sb.highlevel.deliveries()[0]!.state).toBe("failed");
  });

  it("happy: INSTALL on a new connection and UNINSTALL on uninstall reach the app's webhook URL", async () => {
    const { sb, received } = await setup();
    const d = sb.highlevel.demo!;
    const tokens = sb.highlevel.connect();
    await sb.highlevel.flush();
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      type: "INSTALL",
      locationId: d.locationId,
      companyId: d.companyId,
      appId: expect.any(String),
    });
    sb.highlevel.uninstall(d.locationId);
    await sb.highlevel.flush();
    expect(JSON.parse(received[1]!.body)).toMatchObject({ type: "UNINSTALL", locationId: d.locationId });
    const after = await sb.fetch(
      new Request(`http://sandbox.test/highlevel/opportunities/${d.opportunityIds[0]}`, {
        headers: { Authorization: `Bearer ${String(tokens.access_token)}`, Version: "2021-07-28" },
      }),
    );
    expect(after.status).toBe(401);
  });

  it("happy: faults replay exactly with the same seed", async () => {
    /** Runs the same scenario under faults and records what happened. */
    const run = async (seed: number) => {
      const { sb, api } = await setup({ seed });
      sb.highlevel.faults.configure({
        seed,
        errorRate: 0.2,
        webhookDropRate: 0.2,
        webhookDuplicateRate: 0.2,
        webhookReorderRate: 0.2,
      });
      const d = sb.highlevel.demo!;
      const statuses: number[] = [];
      for (let i = 0; i < 15; i++) {
        statuses.push(
          (await api("PUT", `/opportunities/${d.opportunityIds[i % 4]}`, { monetaryValue: 1000 + i })).status,
        );
        sb.highlevel.service.createNote(d.contactIds[i % 6]!, { body: `note ${i}` });
      }
      sb.clock.advance(1000);
      await sb.highlevel.flush();
      const deliveries = sb.highlevel
        .deliveries()
        .map(
          (x) =>
            `${x.eventType}:${x.state}:${x.duplicateOf ? "dup" : ""}:${x.reordered ? "late" : ""}:${String(x.payload.id)}`,
        );
      return { statuses, deliveries, counts: { ...sb.highlevel.faults.counts } };
    };
    const a = await run(1234);
    const b = await run(1234);
    expect(b).toEqual(a);
    expect(a.statuses.filter((s) => s >= 500).length).toBeGreaterThan(0);
    expect(a.counts.dropped + a.counts.duplicated + a.counts.reordered).toBeGreaterThan(0);
    const c = await run(4321);
    expect(c.deliveries).not.toEqual(a.deliveries);
  });
});

describe("HighLevel sandbox webhooks: per-subscriber location scoping", () => {
  /** Every subscriber's deliveries as `type@locationId` (agency-level events as `type@company:<id>`). */
  const seen = (sb: Sandbox, url: string) =>
    sb.highlevel
      .deliveries()
      .filter((x) => x.subscriber === url)
      .map(
        (x) =>
          `${String(x.payload.type)}@${typeof x.payload.locationId === "string" ? x.payload.locationId : `company:${String(x.payload.companyId)}`}`,
      );

  const MAIN = "http://main.test/hook";
  const EUROPE = "http://europe.test/hook";
  const AGENCY = "http://agency.test/hook";
  const INSTALLED = "http://installed.test/hook";

  /** A note in each demo location (one event each), made as a UI user would. */
  const noteInEach = (sb: Sandbox, contacts: { main: string; europe: string }, text: string) => {
    sb.highlevel.service.createNote(contacts.main, { body: `${text} (main)` });
    sb.highlevel.service.createNote(contacts.europe, { body: `${text} (europe)` });
  };

  async function scoped() {
    const { sb, received } = await setup();
    const d = sb.highlevel.demo!;
    const europeContact = sb.highlevel.service.createContact({
      locationId: d.otherLocationId,
      firstName: "Elsa",
      email: "elsa@eu.example",
    });
    return { sb, d, received, contacts: { main: d.contactIds[0]!, europe: europeContact.id } };
  }

  it("happy: a subscriber scoped to a location gets that location's events only; an unscoped one still gets every event", async () => {
    const { sb, d, contacts } = await scoped();
    sb.highlevel.subscribe(MAIN, { locationId: d.locationId });
    sb.highlevel.subscribe(EUROPE, { locationId: d.otherLocationId });
    noteInEach(sb, contacts, "hello");
    sb.highlevel.service.updateOpportunity(d.opportunityIds[0]!, { monetaryValue: 1 });
    await sb.highlevel.flush();
    expect(seen(sb, MAIN)).toEqual([
      `NoteCreate@${d.locationId}`,
      `OpportunityUpdate@${d.locationId}`,
      `OpportunityMonetaryValueUpdate@${d.locationId}`,
    ]);
    expect(seen(sb, EUROPE)).toEqual([`NoteCreate@${d.otherLocationId}`]);
    expect(seen(sb, HOOK)).toEqual([
      `NoteCreate@${d.locationId}`,
      `NoteCreate@${d.otherLocationId}`,
      `OpportunityUpdate@${d.locationId}`,
      `OpportunityMonetaryValueUpdate@${d.locationId}`,
    ]);
  });

  it("happy: a subscriber scoped to an agency gets the events of its locations and its agency-level INSTALL, not another agency's", async () => {
    const { sb, d, contacts } = await scoped();
    sb.highlevel.store.companies.set("otherAgency000000001", { id: "otherAgency000000001", name: "Other Agency" });
    sb.highlevel.store.locations.set("otherAgencyLocation1", {
      id: "otherAgencyLocation1",
      companyId: "otherAgency000000001",
      name: "Elsewhere",
      address: "",
      timezone: "UTC",
      active: true,
    });
    const elsewhere = sb.highlevel.service.createContact({ locationId: "otherAgencyLocation1", firstName: "Far" });
    sb.highlevel.subscribe(AGENCY, { companyId: d.companyId });
    noteInEach(sb, contacts, "agency");
    sb.highlevel.service.createNote(elsewhere.id, { body: "not for Acme" });
    sb.highlevel.connect({ companyId: d.companyId, userType: "Company" });
    sb.highlevel.connect({ companyId: "otherAgency000000001", userType: "Company" });
    await sb.highlevel.flush();
    expect(seen(sb, AGENCY)).toEqual([
      `NoteCreate@${d.locationId}`,
      `NoteCreate@${d.otherLocationId}`,
      `INSTALL@company:${d.companyId}`,
    ]);
    expect(seen(sb, HOOK)).toContain("NoteCreate@otherAgencyLocation1");
    expect(seen(sb, HOOK)).toContain("INSTALL@company:otherAgency000000001");
  });

  it("happy: a subscriber scoped to the app's installed locations gets nothing before the install, a location's events while installed, and its UNINSTALL", async () => {
    const { sb, d, contacts } = await scoped();
    sb.highlevel.subscribe(INSTALLED, { installed: true });
    noteInEach(sb, contacts, "before");
    sb.highlevel.connect({ locationId: d.locationId });
    noteInEach(sb, contacts, "installed");
    sb.highlevel.uninstall(d.locationId);
    noteInEach(sb, contacts, "after");
    await sb.highlevel.flush();
    expect(seen(sb, INSTALLED)).toEqual([
      `INSTALL@${d.locationId}`,
      `NoteCreate@${d.locationId}`,
      `UNINSTALL@${d.locationId}`,
    ]);
    const bodies = sb.highlevel
      .deliveries("NoteCreate")
      .filter((x) => x.subscriber === INSTALLED)
      .map((x) => x.payload.body);
    expect(bodies).toEqual(["installed (main)"]);
  });

  it("happy: an agency-wide install covers every location of the agency for an installed-scoped subscriber, combined with a location scope", async () => {
    const { sb, d, contacts } = await scoped();
    sb.highlevel.subscribe(INSTALLED, { installed: true });
    sb.highlevel.subscribe(EUROPE, { installed: true, locationId: d.otherLocationId });
    sb.highlevel.connect({ companyId: d.companyId, userType: "Company" });
    noteInEach(sb, contacts, "agency-wide");
    await sb.highlevel.flush();
    expect(seen(sb, INSTALLED)).toEqual([
      `INSTALL@company:${d.companyId}`,
      `NoteCreate@${d.locationId}`,
      `NoteCreate@${d.otherLocationId}`,
    ]);
    expect(seen(sb, EUROPE)).toEqual([`INSTALL@company:${d.companyId}`, `NoteCreate@${d.otherLocationId}`]);
  });

  it("happy: subscribing a URL again without a scope makes it receive everything; unsubscribing drops it and its scope", async () => {
    const { sb, d, contacts } = await scoped();
    sb.highlevel.subscribe(MAIN, { locationId: d.locationId });
    expect(sb.highlevel.subscriptions()).toEqual([{ url: HOOK }, { url: MAIN, locationId: d.locationId }]);
    sb.highlevel.subscribe(MAIN);
    expect(sb.highlevel.subscriptions()).toEqual([{ url: HOOK }, { url: MAIN }]);
    noteInEach(sb, contacts, "all");
    await sb.highlevel.flush();
    expect(seen(sb, MAIN)).toHaveLength(2);
    sb.highlevel.unsubscribe(MAIN);
    sb.highlevel.subscribe(MAIN, { installed: true });
    expect(sb.highlevel.subscriptions()).toEqual([{ url: HOOK }, { url: MAIN, installed: true }]);
    expect(() => sb.highlevel.subscribe(EUROPE, { locationId: "noSuchLocation000000" })).toThrow(RangeError);
    expect(sb.highlevel.subscriptions().map((s) => s.url)).not.toContain(EUROPE);
  });

  it("happy: the control API takes an optional locationId / companyId / installed and lists the scopes; bad input is a 400, an unknown location a 404", async () => {
    const { sb, d } = await scoped();
    const control = async (method: string, path: string, body?: unknown) => {
      const res = await sb.fetch(
        new Request(`http://sandbox.test/_sandbox/highlevel${path}`, {
          method,
          headers: { "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        }),
      );
      return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
    };
    const added = await control("POST", "/webhooks/subscribers", {
      url: MAIN,
      locationId: d.locationId,
      installed: true,
    });
    expect(added.status).toBe(201);
    expect(added.json.subscribers).toEqual([HOOK, MAIN]);
    expect(added.json.subscriptions).toEqual([{ url: HOOK }, { url: MAIN, locationId: d.locationId, installed: true }]);
    expect((await control("GET", "/webhooks")).json.subscriptions).toEqual(added.json.subscriptions);
    expect(
      (await control("POST", "/webhooks/subscribers", { url: EUROPE, locationId: "noSuchLocation000000" })).status,
    ).toBe(404);
    expect(
      (await control("POST", "/webhooks/subscribers", { url: EUROPE, companyId: "noSuchCompany0000000" })).status,
    ).toBe(404);
    expect((await control("POST", "/webhooks/subscribers", { url: EUROPE, installed: "yes" })).status).toBe(400);
    expect((await control("POST", "/webhooks/subscribers", { url: EUROPE, locationId: "" })).status).toBe(400);
    expect((await control("POST", "/webhooks/subscribers", { url: EUROPE, location: d.locationId })).status).toBe(400);
    const removed = await control("DELETE", `/webhooks/subscribers?url=${encodeURIComponent(MAIN)}`);
    expect(removed.json.subscriptions).toEqual([{ url: HOOK }]);
  });
});
