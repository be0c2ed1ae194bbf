/**
 * The 4Degrees sandbox's webhooks in-process inside workerd: Standard Webhooks signatures checked
 * with WebCrypto, the event envelope and types, retries with backoff on any non-2xx in sandbox
 * time, seeded drop/duplicate/reorder faults, secret rotation and the control API around them.
 */
import { describe, expect, it } from "vitest";
import { SandboxClock } from "../../../sandbox/core/clock.ts";
import { createSandbox } from "../../../sandbox/index.ts";
import { apiKeyId } from "../../../sandbox/fourdegrees/index.ts";
import { harness, HOOK_URL, KEY, SECRET, verifySignature } from "./fourdegrees-helpers.ts";

const OTHER_SECRET = "whsec_b3RoZXItc2VjcmV0LWZvci1yb3RhdGlvbi10ZXN0cw==";

describe("4Degrees sandbox webhooks: signing and envelope", () => {
  it("happy: an API change is delivered once per event, signed so WebCrypto verifies it with FOURDEGREES_WEBHOOK_SECRET", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    await h.call("PATCH", `/deals/${deal.id}`, { body: { name: "Bluebird Health — Seed+" } });
    expect(h.received).toHaveLength(0);
    expect(await h.sandbox.fourdegrees.flush()).toBe(1);
    expect(h.received).toHaveLength(1);
    const { headers, body } = h.received[0]!;
    expect(await verifySignature(SECRET, headers, body)).toBe(true);
    expect(headers.get("webhook-timestamp")).toBe(String(Math.floor(h.clock.now() / 1000)));
    const event = JSON.parse(body);
    expect(headers.get("webhook-id")).toBe(event.id);
    expect(Object.keys(event)).toEqual(["id", "type", "created_at", "workspace_id", "actor", "data", "changes"]);
    expect(event).toMatchObject({
      type: "deal.updated",
      workspace_id: h.sandbox.fourdegrees.store.workspace.id,
      actor: { type: "api_key", id: apiKeyId(KEY) },
      data: { object: { id: deal.id, version: deal.version + 1, name: "Bluebird Health — Seed+" } },
      changes: { name: ["Bluebird Health — Seed", "Bluebird Health — Seed+"] },
    });
    expect(event.id).toMatch(/^evt_/);
  });

  it("security: the signature fails for another secret and for a tampered body", async () => {
    const h = await harness();
    await h.call("POST", "/deals", { body: { name: "Signed", pipeline_id: h.pipeline().id } });
    await h.sandbox.fourdegrees.flush();
    const { headers, body } = h.received[0]!;
    expect(await verifySignature(OTHER_SECRET, headers, body)).toBe(false);
    expect(await verifySignature(SECRET, headers, body.replace("Signed", "Forged"))).toBe(false);
  });

  it("happy: the signing secret comes from FOURDEGREES_WEBHOOK_SECRET", async () => {
    const h = await harness({ settings: { FOURDEGREES_WEBHOOK_SECRET: OTHER_SECRET } });
    await h.call("POST", "/deals", { body: { name: "Custom secret", pipeline_id: h.pipeline().id } });
    await h.sandbox.fourdegrees.flush();
    expect(await verifySignature(OTHER_SECRET, h.received[0]!.headers, h.received[0]!.body)).toBe(true);
    expect(await verifySignature(SECRET, h.received[0]!.headers, h.received[0]!.body)).toBe(false);
  });

  it("happy: during rotation every delivery carries one signature per active secret", async () => {
    const h = await harness();
    const res = await h.control("PUT", "/webhooks", { secrets: [OTHER_SECRET, SECRET] });
    expect(res.json.secrets).toBe(2);
    await h.call("POST", "/deals", { body: { name: "Rotating", pipeline_id: h.pipeline().id } });
    await h.sandbox.fourdegrees.flush();
    const { headers, body } = h.received[0]!;
    expect(headers.get("webhook-signature")!.split(" ")).toHaveLength(2);
    expect(await verifySignature(SECRET, headers, body)).toBe(true);
    expect(await verifySignature(OTHER_SECRET, headers, body)).toBe(true);
    expect((await h.control("PUT", "/webhooks", { secrets: ["not-a-secret"] })).status).toBe(400);
  });

  it("happy: each kind of change emits its event types with the changed fields", async () => {
    const h = await harness();
    const pl = h.pipeline().id;
    const users = [...h.sandbox.fourdegrees.store.users.keys()];
    const created = (await h.call("POST", "/deals", { body: { name: "Lifecycle", pipeline_id: pl } })).json;
    await h.call("PATCH", `/deals/${created.id}`, { body: { stage_id: h.stage("Closed") } });
    await h.call("PATCH", `/deals/${created.id}`, { body: { owner_id: users[0] } });
    await h.call("PATCH", `/deals/${created.id}`, {
      body: { stage_id: h.stage("First Meeting"), owner_id: users[1], expected_close_date: "2027-06-30" },
    });
    const note = (await h.call("POST", `/deals/${created.id}/notes`, { body: { body: "first" } })).json;
    await h.call("PATCH", `/notes/${note.id}`, { body: { body: "second" } });
    await h.call("DELETE", `/notes/${note.id}`);
    await h.call("DELETE", `/deals/${created.id}`);
    await h.sandbox.fourdegrees.flush();
    const events = h.received.map((r) => JSON.parse(r.body));
    expect(events.map((e) => e.type)).toEqual([
      "deal.created",
      "deal.stage_changed",
      "deal.owner_changed",
      "deal.stage_changed",
      "deal.owner_changed",
      "deal.updated",
      "note.created",
      "note.updated",
      "note.deleted",
      "deal.deleted",
    ]);
    expect(events[1].changes).toEqual({ stage_id: [h.stage("Sourced"), h.stage("Closed")], status: ["open", "won"] });
    expect(events[2].changes).toEqual({ owner_id: [null, users[0]] });
    expect(events[5].changes).toEqual({ expected_close_date: [null, "2027-06-30"] });
    expect(events[3].data.object.version).toBe(4);
    expect(events[7].changes).toEqual({ body: ["first", "second"] });
    expect(events[8].data.object).toMatchObject({ id: note.id, deal_id: created.id });
    expect(events[9].changes.archived_at[0]).toBeNull();
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });

  it("happy: changes made 'in the UI' through the control API are delivered with the user actor", async () => {
    const h = await harness();
    const deal = h.dealNamed("Marlow & Finch — Pre-seed");
    const user = [...h.sandbox.fourdegrees.store.users.values()][2]!;
    await h.control("POST", `/deals/${deal.id}/notes?as=${user.id}`, { body: "Met the founders." });
    const flushed = await h.control("POST", "/webhooks/flush");
    expect(flushed.json).toEqual({ attempted: 1, pending: 0 });
    const event = JSON.parse(h.received[0]!.body);
    expect(event).toMatchObject({
      type: "note.created",
      actor: { type: "user", id: user.id },
      data: { object: { author_id: user.id } },
    });
  });
});

describe("4Degrees sandbox webhooks: retries with backoff", () => {
  it("happy: a non-2xx is retried after 5 s, 5 min, 30 min … in sandbox time with the same webhook-id and a fresh timestamp", async () => {
    const h = await harness();
    h.answers.push(500, 404, 429);
    await h.call("POST", "/deals", { body: { name: "Flaky receiver", pipeline_id: h.pipeline().id } });
    const start = h.clock.now();
    await h.sandbox.fourdegrees.flush();
    expect(h.received).toHaveLength(1);
    h.clock.advance(4_999);
    expect(await h.sandbox.fourdegrees.flush()).toBe(0);
    h.clock.advance(1);
    await h.sandbox.fourdegrees.flush();
    h.clock.advance(300_000);
    await h.sandbox.fourdegrees.flush();
    h.clock.advance(1_799_999);
    expect(await h.sandbox.fourdegrees.flush()).toBe(0);
    h.clock.advance(1);
    await h.sandbox.fourdegrees.flush();
    expect(h.received.map((r) => r.at - start)).toEqual([0, 5_000, 305_000, 2_105_000]);
    expect(new Set(h.received.map((r) => r.headers.get("webhook-id"))).size).toBe(1);
    expect(h.received.map((r) => Number(r.headers.get("webhook-timestamp")))).toEqual(
      h.received.map((r) => Math.floor(r.at / 1000)),
    );
    for (const r of h.received) expect(await verifySignature(SECRET, r.headers, r.body)).toBe(true);
    const delivery = h.sandbox.fourdegrees.deliveries().at(-1)!;
    expect(delivery.state).toBe("delivered");
    expect(delivery.attempts.map((a) => a.status)).toEqual([500, 404, 429, 204]);
  });

  it("error: a delivery that keeps failing is marked failed once the schedule is exhausted", async () => {
    const h = await harness();
    await h.control("PUT", "/webhooks", { retrySchedule: [1_000, 2_000] });
    h.answers.push(503, 503, 503, 503);
    await h.call("POST", "/deals", { body: { name: "Always down", pipeline_id: h.pipeline().id } });
    await h.sandbox.fourdegrees.flush();
    h.clock.advance(1_000);
    await h.sandbox.fourdegrees.flush();
    h.clock.advance(2_000);
    await h.sandbox.fourdegrees.flush();
    h.clock.advance(86_400_000);
    expect(await h.sandbox.fourdegrees.flush()).toBe(0);
    expect(h.received).toHaveLength(3);
    const log = await h.control("GET", "/webhooks/deliveries?state=failed");
    expect(log.json.deliveries).toHaveLength(1);
    expect(log.json.deliveries[0].attempts).toHaveLength(3);
  });

  it("happy: a network error counts as a failure and is retried", async () => {
    const clock = new SandboxClock();
    clock.freeze();
    let calls = 0;
    const sandbox = createSandbox({
      clock,
      seed: 3,
      webhookMode: "manual",
      fetch: async () => {
        calls++;
        if (calls === 1) throw new Error("connection refused");
        return new Response("ok");
      },
    });
    await sandbox.fourdegrees.seedDemo();
    sandbox.fourdegrees.subscribe(HOOK_URL);
    sandbox.fourdegrees.addNoteAsUser(sandbox.fourdegrees.deals()[0]!.id, "network test");
    await sandbox.fourdegrees.flush();
    expect(sandbox.fourdegrees.deliveries()[0]!.state).toBe("retrying");
    expect(sandbox.fourdegrees.deliveries()[0]!.attempts[0]!.error).toContain("connection refused");
    clock.advance(5_000);
    await sandbox.fourdegrees.flush();
    expect(sandbox.fourdegrees.deliveries()[0]!.state).toBe("delivered");
  });

  it("happy: auto mode delivers at once without a flush", async () => {
    const received: string[] = [];
    const sandbox = createSandbox({
      seed: 5,
      webhookMode: "auto",
      fetch: async (r) => (received.push(await r.text()), new Response(null, { status: 200 })),
    });
    await sandbox.fourdegrees.seedDemo();
    sandbox.fourdegrees.subscribe(HOOK_URL);
    sandbox.fourdegrees.updateDealAsUser(sandbox.fourdegrees.deals()[0]!.id, { tags: ["auto"] });
    await sandbox.fourdegrees.webhooks.idle();
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!).type).toBe("deal.updated");
  });
});

describe("4Degrees sandbox webhooks: seeded delivery faults", () => {
  async function run(seed: number) {
    const h = await harness({ seed });
    await h.control("PUT", "/faults", {
      seed,
      webhookDropRate: 0.2,
      webhookDuplicateRate: 0.2,
      webhookReorderRate: 0.2,
      webhookReorderDelayMs: 100,
    });
    const before = h.sandbox.fourdegrees.events.length;
    for (const d of h.sandbox.fourdegrees.deals()) h.sandbox.fourdegrees.addNoteAsUser(d.id, `note on ${d.name}`);
    for (const d of h.sandbox.fourdegrees.deals()) h.sandbox.fourdegrees.updateDealAsUser(d.id, { tags: ["faulty"] });
    h.clock.advance(100);
    await h.sandbox.fourdegrees.flush();
    return {
      h,
      emitted: h.sandbox.fourdegrees.events.length - before,
      ids: h.received.map((r) => r.headers.get("webhook-id")!),
    };
  }

  it("happy: the same seed drops, duplicates and reorders the same deliveries", async () => {
    const a = await run(777);
    const b = await run(777);
    expect(b.ids).toEqual(a.ids);
    const counts = a.h.sandbox.fourdegrees.faults.counts;
    expect(counts.dropped + counts.duplicated + counts.reordered).toBeGreaterThan(0);
    expect(a.emitted).toBe(12);
    expect(a.ids.length).toBe(a.emitted - counts.dropped + counts.duplicated);
    if (counts.duplicated > 0) expect(new Set(a.ids).size).toBeLessThan(a.ids.length);
    const c = await run(778);
    expect(c.ids).not.toEqual(a.ids);
  });

  it("happy: a duplicated delivery is due with its original: a flush right after the change, clock frozen, delivers both", async () => {
    const h = await harness();
    await h.control("PUT", "/faults", { webhookDuplicateRate: 1 });
    await h.call("POST", "/deals", { body: { name: "Same moment", pipeline_id: h.pipeline().id } });
    expect(await h.sandbox.fourdegrees.flush()).toBe(2);
    expect(h.received.map((r) => r.at)).toEqual([h.clock.now(), h.clock.now()]);
    expect(h.received[1]!.headers.get("webhook-id")).toBe(h.received[0]!.headers.get("webhook-id"));
    const [original, copy] = h.sandbox.fourdegrees.deliveries();
    expect(copy!.duplicateOf).toBe(original!.id);
  });

  it("happy: a duplicated delivery carries the same webhook-id and body (receivers dedupe on it)", async () => {
    const h = await harness();
    await h.control("PUT", "/faults", { webhookDuplicateRate: 1 });
    await h.call("POST", "/deals", { body: { name: "Twice", pipeline_id: h.pipeline().id } });
    h.clock.advance(1);
    await h.sandbox.fourdegrees.flush();
    expect(h.received).toHaveLength(2);
    expect(h.received[0]!.headers.get("webhook-id")).toBe(h.received[1]!.headers.get("webhook-id"));
    expect(h.received[0]!.body).toBe(h.received[1]!.body);
  });
});

describe("4Degrees sandbox webhooks: control API", () => {
  it("happy: subscribers can be listed, added and removed; bad URLs are refused", async () => {
    const h = await harness({ subscribe: false });
    expect((await h.control("POST", "/subscribers", { url: HOOK_URL })).status).toBe(201);
    expect((await h.control("GET", "/webhooks")).json.subscribers).toEqual([HOOK_URL]);
    expect((await h.control("POST", "/webhooks/subscribers", { url: "not a url" })).status).toBe(400);
    expect(
      (await h.control("DELETE", `/webhooks/subscribers?url=${encodeURIComponent(HOOK_URL)}`)).json.subscribers,
    ).toEqual([]);
    expect((await h.control("POST", "/subscribers", { url: HOOK_URL })).status).toBe(201);
    expect((await h.control("DELETE", "/subscribers", { url: HOOK_URL })).json.subscribers).toEqual([]);
    await h.call("POST", "/deals", { body: { name: "Nobody listens", pipeline_id: h.pipeline().id } });
    expect(await h.sandbox.fourdegrees.flush()).toBe(0);
    expect(h.sandbox.fourdegrees.events.at(-1)!.type).toBe("deal.created");
  });

  it("happy: the delivery log and event log are readable and filterable", async () => {
    const h = await harness();
    await h.call("POST", "/deals", { body: { name: "Logged", pipeline_id: h.pipeline().id } });
    await h.sandbox.fourdegrees.flush();
    const deliveries = await h.control("GET", "/webhooks/deliveries?type=deal.created");
    expect(deliveries.json.deliveries).toHaveLength(1);
    expect(deliveries.json.deliveries[0]).toMatchObject({
      subscriber: HOOK_URL,
      eventType: "deal.created",
      state: "delivered",
    });
    expect(h.sandbox.fourdegrees.deliveries("deal.created")[0]!.payload.data.object).toMatchObject({ name: "Logged" });
    const events = await h.control("GET", "/events?type=deal.created&limit=1");
    expect(events.json.events[0].data.object.name).toBe("Logged");
    expect((await h.control("GET", "/webhooks/deliveries?limit=0")).status).toBe(400);
  });

  it("happy: reset clears data, subscribers, faults and counters; seed restores the demo", async () => {
    const h = await harness();
    await h.control("PUT", "/faults", { errorRate: 1 });
    expect((await h.control("POST", "/reset")).status).toBe(200);
    expect(h.sandbox.fourdegrees.deals()).toHaveLength(0);
    expect(h.sandbox.fourdegrees.webhooks.subscribers.size).toBe(0);
    expect(h.sandbox.fourdegrees.faults.settings.errorRate).toBe(0);
    const seeded = await h.control("POST", "/seed");
    expect(seeded.json.demo.dealIds).toHaveLength(6);
    const again = await h.control("POST", "/seed");
    expect(again.json.demo).toEqual(seeded.json.demo);
    expect((await h.call("GET", "/deals")).json.data).toHaveLength(6);
  });
});

describe("4Degrees sandbox control API: errors", () => {
  it("error: bad input is a 400 with the reason, an unknown record a 404, an archived deal a 409 — never a 500", async () => {
    const h = await harness();
    const demo = h.sandbox.fourdegrees.demo!;
    const badStage = await h.control("PATCH", `/deals/${demo.dealIds[0]}`, { stage_id: "st_nope" });
    expect(badStage.status).toBe(400);
    expect(badStage.json.code).toBe("unknown_stage");
    expect((await h.control("PATCH", `/deals/${demo.dealIds[0]}?as=usr_nope`, { name: "x" })).status).toBe(400);
    expect((await h.control("PATCH", `/deals/${demo.dealIds[0]}`, "{oops")).status).toBe(400);
    expect(
      (await h.control("POST", "/users", { name: "Dup", email: "alex.morgan@acmecapital.example" })).json.code,
    ).toBe("duplicate_email");
    expect((await h.control("GET", "/deals/deal_nope")).status).toBe(404);
    expect((await h.control("GET", "/nothing-here")).status).toBe(404);
    await h.control("DELETE", `/deals/${demo.dealIds[1]}`);
    expect((await h.control("PATCH", `/deals/${demo.dealIds[1]}`, { name: "x" })).status).toBe(409);
  });

  it("happy: demo ids are the same whatever the sandbox seed", async () => {
    const a = (await harness({ seed: 1 })).sandbox.fourdegrees.demo!;
    const b = (await harness({ seed: 2 })).sandbox.fourdegrees.demo!;
    expect(b).toEqual(a);
  });
});
