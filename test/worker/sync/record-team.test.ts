/**
 * Followers ↔ the 4Degrees deal team through the user map, through both sandboxes: a pair of users
 * mapped by hand with different emails crosses both ways; a member nobody on the other side stands
 * for stays on its side and is reported in the Activity trail; duplicated deliveries and a crash
 * between a write and its record leave one follower call and nothing lost; a pair whose snapshot
 * still holds the team as emails syncs its next change without a team write or change.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { saveLink } from "../../../src/store/links.ts";
import { listEvents } from "../../../src/store/sync-events.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

async function oppOf(w: World, fdId: string) {
  const link = await w.linkOf("fourdegrees", fdId);
  const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
  if (!opp) throw new Error(`no opportunity linked to ${fdId}`);
  return opp;
}

/** Every queued message twice (a redelivered webhook / job). */
async function settleWithDuplicates(w: World): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const delivered = (await w.sb.highlevel.flush()) + (await w.sb.fourdegrees.flush());
    w.queue.push(...w.queue.map((q) => ({ body: q.body, attempts: 0 })));
    const processed = await w.drain();
    if (delivered === 0 && processed === 0) return;
  }
}

/** Records the provider calls the Worker makes (method + path); `crash` throws after a matching call answered. */
function recordCalls(crash?: (method: string, path: string) => boolean): string[] {
  const seen: string[] = [];
  const inner = routes["sandbox.test"]!;
  routes["sandbox.test"] = async (r) => {
    const u = new URL(r.url);
    const res = await inner(r);
    if (!u.pathname.startsWith("/_sandbox")) {
      seen.push(`${r.method} ${u.pathname}`);
      if (crash?.(r.method, u.pathname)) throw new Error(`simulated crash after ${r.method} ${u.pathname}`);
    }
    return res;
  };
  return seen;
}

/** A HighLevel user of the demo location (not in 4Degrees unless added there). */
function addHlUser(w: World, name: string, email: string): string {
  const template = [...w.sb.highlevel.store.users.values()].find((u) => u.locationIds?.includes(w.locationId));
  if (!template) throw new Error("the HighLevel demo has no user");
  const id = `hl_user_${name.replace(/\W/g, "_").toLowerCase()}`;
  const [firstName = name, lastName = ""] = name.split(" ");
  w.sb.highlevel.store.users.set(id, { ...template, id, firstName, lastName, email });
  return id;
}

/** The demo users on both sides with the same email: [4Degrees id, HighLevel id]. */
function sharedUsers(w: World): Array<{ fd: string; hl: string; email: string }> {
  const hl = [...w.sb.highlevel.store.users.values()];
  return [...w.sb.fourdegrees.store.users.values()].flatMap((u) => {
    const h = hl.find((x) => x.email?.toLowerCase() === u.email.toLowerCase());
    return h ? [{ fd: u.id, hl: h.id, email: u.email.toLowerCase() }] : [];
  });
}

/** A 4Degrees user and a HighLevel user with different emails, paired in the mapping's user map. */
async function mappedPartner(w: World): Promise<{ fd: string; hl: string }> {
  const fd = w.sb.fourdegrees.store.addUser({ name: "Venture Partner", email: "vp@fund-4d.example" }).id;
  const hl = addHlUser(w, "Venture Partner", "venture.partner@fund-hl.example");
  const users = [...w.mapping.users, { fourdegreesUserId: fd, highlevelUserId: hl }];
  w.mapping = MappingSchema.parse({ ...w.mapping, users });
  await saveMapping(env.DB, ACCOUNT, w.mapping);
  await refreshUsers(w);
  return { fd, hl };
}

/** Reloads both sides' cached users (the console's user lists do when the map is edited). */
async function refreshUsers(w: World): Promise<void> {
  const connectors = await w.deps.connectors(await w.account(), "live");
  for (const port of [connectors.fourdegrees, connectors.highlevel(w.locationId)])
    if ("refreshStructure" in port && typeof port.refreshStructure === "function")
      await (port as { refreshStructure(): Promise<void> }).refreshStructure();
}

/** The `skipped` reasons of the account's recent sync events. */
async function skippedReasons(): Promise<string[]> {
  const events = await listEvents(env.DB, ACCOUNT, { kind: "sync", limit: 200 });
  return events.flatMap((e) => {
    const skipped = e.detail["skipped"];
    return Array.isArray(skipped) ? skipped.map((s: { reason?: string }) => s.reason ?? "") : [];
  });
}

describe("followers ↔ team through the user map", () => {
  it("a user paired by hand with different emails crosses both ways; duplicates add no second follower", async () => {
    const w = await createWorld(routes);
    const partner = await mappedPartner(w);
    const deal = newDeal(w, { name: "Mapped Team", stage: "Sourced" });
    await w.settle();
    const opp = await oppOf(w, deal.id);
    const calls = recordCalls();

    w.sb.fourdegrees.updateDealAsUser(deal.id, { team_ids: [partner.fd] });
    await settleWithDuplicates(w);
    expect((await oppOf(w, deal.id)).followers).toEqual([partner.hl]);
    expect(calls.filter((c) => c.startsWith("POST") && c.endsWith(`/opportunities/${opp.id}/followers`))).toHaveLength(
      1,
    );

    w.sb.highlevel.service.removeFollowers(opp.id, [partner.hl], false);
    await settleWithDuplicates(w);
    expect(w.sb.fourdegrees.deal(deal.id).team_ids).toEqual([]);

    w.sb.highlevel.service.addFollowers(opp.id, [partner.hl]);
    await settleWithDuplicates(w);
    expect(w.sb.fourdegrees.deal(deal.id).team_ids).toEqual([partner.fd]);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("a member nobody on the other side stands for is reported, kept on its side, and never removed by the other side", async () => {
    const w = await createWorld(routes);
    const [a, b] = sharedUsers(w);
    if (!a || !b) throw new Error("the demo needs two users on both sides");
    const loner = w.sb.fourdegrees.store.addUser({ name: "Lone Partner", email: "lone.partner@fund.example" });
    const hlOnly = addHlUser(w, "Marketing Lead", "marketing.lead@acmecapital-hl.example");
    const deal = newDeal(w, { name: "Partly Mapped", stage: "Sourced" });
    await w.settle();
    const opp = await oppOf(w, deal.id);

    w.sb.fourdegrees.updateDealAsUser(deal.id, { team_ids: [a.fd, loner.id] });
    await w.settle();
    expect((await oppOf(w, deal.id)).followers).toEqual([a.hl]);
    expect(await skippedReasons()).toContainEqual(expect.stringContaining("4Degrees team member Lone Partner"));

    // HighLevel's changes leave the member it cannot see in place, and its own unmatched follower is reported.
    w.sb.highlevel.service.addFollowers(opp.id, [b.hl, hlOnly]);
    await w.settle();
    expect([...w.sb.fourdegrees.deal(deal.id).team_ids].sort()).toEqual([a.fd, b.fd, loner.id].sort());
    expect(await skippedReasons()).toContainEqual(expect.stringContaining("HighLevel follower Marketing Lead"));
    w.sb.highlevel.service.removeFollowers(opp.id, [a.hl], false);
    await w.settle();
    expect([...w.sb.fourdegrees.deal(deal.id).team_ids].sort()).toEqual([b.fd, loner.id].sort());
    expect([...(await oppOf(w, deal.id)).followers].sort()).toEqual([b.hl, hlOnly].sort());
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });

  it("a crash after the follower call and after the 4Degrees team write: the retries write the rest once, nothing lost", async () => {
    const w = await createWorld(routes);
    const partner = await mappedPartner(w);
    const [a] = sharedUsers(w);
    if (!a) throw new Error("the demo needs a user on both sides");
    const deal = newDeal(w, { name: "Crash Team", stage: "Sourced" });
    await w.settle();
    const opp = await oppOf(w, deal.id);
    let crashes = 2;
    const calls = recordCalls(
      (method, path) =>
        ((method === "POST" && path.endsWith("/followers")) || (method === "PATCH" && path.includes("/deals/"))) &&
        crashes-- > 0,
    );

    // To HighLevel: the follower call answers, the job dies before the name update and the link.
    w.sb.fourdegrees.updateDealAsUser(deal.id, { team_ids: [partner.fd], name: "Crash Team Renamed" });
    await settleWithDuplicates(w);
    const after = await oppOf(w, deal.id);
    expect([after.name, after.followers]).toEqual(["Crash Team Renamed", [partner.hl]]);
    expect(calls.filter((c) => c.startsWith("POST") && c.endsWith(`/opportunities/${opp.id}/followers`))).toHaveLength(
      1,
    );

    // To 4Degrees: the team PATCH answers, the job dies before the link records it.
    const version = w.sb.fourdegrees.deal(deal.id).version;
    w.sb.highlevel.service.addFollowers(opp.id, [a.hl]);
    await settleWithDuplicates(w);
    expect([...w.sb.fourdegrees.deal(deal.id).team_ids].sort()).toEqual([partner.fd, a.fd].sort());
    // The client's retry of the lost answer replays the PATCH under its Idempotency-Key: one version step.
    expect(w.sb.fourdegrees.deal(deal.id).version).toBe(version + 1);
    expect(crashes).toBeLessThanOrEqual(0);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });
});

describe("team members that cannot cross, on creates", () => {
  it("are reported when either side's new record creates the pair", async () => {
    const w = await createWorld(routes);
    const [a] = sharedUsers(w);
    if (!a) throw new Error("the demo needs a user on both sides");
    const loner = w.sb.fourdegrees.store.addUser({ name: "Lone Partner", email: "lone.partner@fund.example" });
    const hlOnly = addHlUser(w, "Marketing Lead", "marketing.lead@acmecapital-hl.example");
    await refreshUsers(w);
    const deal = w.sb.fourdegrees.createDealAsUser({
      name: "Born With A Stranger",
      pipeline_id: w.fdPipelineId,
      stage_id: w.fdStage("Sourced"),
      team_ids: [a.fd, loner.id],
    });
    const contact = w.sb.highlevel.service.createContact({ locationId: w.locationId, name: "Fo Llower" });
    const opp = w.sb.highlevel.service.createOpportunity({
      locationId: w.locationId,
      pipelineId: w.hlPipelineId,
      pipelineStageId: w.hlStage("Sourced"),
      name: "HL Born With A Stranger",
      status: "open",
      contactId: contact.id,
      followers: [a.hl, hlOnly],
    });
    await w.settle();
    expect((await oppOf(w, deal.id)).followers).toEqual([a.hl]);
    const created = w.sb.fourdegrees.deal((await w.linkOf("highlevel", opp.id))?.fdDealId ?? "");
    expect(created.team_ids).toEqual([a.fd]);
    const reasons = await skippedReasons();
    expect(reasons).toContainEqual(expect.stringContaining("4Degrees team member Lone Partner"));
    expect(reasons).toContainEqual(expect.stringContaining("HighLevel follower Marketing Lead"));
  });
});

describe("a snapshot that holds the team as emails", () => {
  it("reads as user-map keys: the first change on either side after it is no conflict, the name-only change writes no team", async () => {
    const w = await createWorld(routes);
    const partner = await mappedPartner(w);
    const [a, b] = sharedUsers(w);
    if (!a || !b) throw new Error("the demo needs two users on both sides");
    const deals = ["Old Snapshot One", "Old Snapshot Two", "Old Snapshot Three"].map((name) =>
      newDeal(w, { name, stage: "Sourced" }),
    );
    await w.settle();
    for (const deal of deals) {
      w.sb.fourdegrees.updateDealAsUser(deal.id, { team_ids: [a.fd, partner.fd] });
      await w.settle();
      expect([...(await oppOf(w, deal.id)).followers].sort()).toEqual([a.hl, partner.hl].sort());
      // As synced when teams compared as emails: the hand-mapped pair could not be in it.
      const link = await w.linkOf("fourdegrees", deal.id);
      if (!link) throw new Error("no link");
      await saveLink(env.DB, { ...link, base: { ...link.base, team: [a.email] } }, link.syncedAt);
    }
    const [one, two, three] = deals as [{ id: string }, { id: string }, { id: string }];
    const calls = recordCalls();
    w.sb.fourdegrees.updateDealAsUser(one.id, { team_ids: [a.fd, partner.fd, b.fd] });
    w.sb.highlevel.service.removeFollowers((await oppOf(w, two.id)).id, [a.hl], false);
    w.sb.fourdegrees.updateDealAsUser(three.id, { name: "Old Snapshot Three Renamed" });
    await w.settle();

    expect([...(await oppOf(w, one.id)).followers].sort()).toEqual([a.hl, partner.hl, b.hl].sort());
    expect(w.sb.fourdegrees.deal(two.id).team_ids).toEqual([partner.fd]);
    expect((await oppOf(w, three.id)).name).toBe("Old Snapshot Three Renamed");
    // Read as emails, each would be a change of both sides against the snapshot: a conflict.
    expect(await listEvents(env.DB, ACCOUNT, { kind: "conflict" })).toEqual([]);
    const opp3 = (await oppOf(w, three.id)).id;
    expect(
      calls.filter(
        (c) =>
          c.includes(`/opportunities/${opp3}/followers`) || (c.includes(`/deals/${three.id}`) && c.startsWith("PATCH")),
      ),
    ).toEqual([]);
    const key = (id: string) => `4d:${id}`;
    expect((await w.linkOf("fourdegrees", three.id))?.base["team"]).toEqual([key(a.fd), key(partner.fd)].sort());
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });
});
