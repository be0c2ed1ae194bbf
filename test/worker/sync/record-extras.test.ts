/**
 * Lost reasons and the deal team, both ways through both sandboxes: a status change goes through
 * HighLevel's `PUT /opportunities/{id}/status` with the mapped lost reason; an unmapped reason
 * crosses as 4Degrees `pass_reason_text` (or, to HighLevel, as the status without a reason); the
 * followers and the 4Degrees team follow each other through the users. Duplicated deliveries and a
 * crash between two HighLevel calls leave one copy of everything and nothing lost.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runReconcile } from "../../../src/sync/jobs/reconcile.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

async function oppOf(w: World, fdId: string) {
  const link = await w.linkOf("fourdegrees", fdId);
  const opp = w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
  if (!opp) throw new Error(`no opportunity linked to ${fdId}`);
  return opp;
}

const fdReason = (w: World, name: string) =>
  [...w.sb.fourdegrees.store.passReasons.values()].find((r) => r.name === name)?.id ?? "";
const hlReason = (w: World, name: string) =>
  [...w.sb.highlevel.store.lostReasons.values()].find((r) => r.name === name)?.id ?? "";

/** Records the sandbox calls the Worker makes (method + path). */
function recordCalls(w: World): Array<string> {
  const seen: string[] = [];
  const inner = routes["sandbox.test"];
  routes["sandbox.test"] = async (r) => {
    const u = new URL(r.url);
    if (!u.pathname.startsWith("/_sandbox")) seen.push(`${r.method} ${u.pathname}`);
    return inner!(r);
  };
  void w;
  return seen;
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

describe("lost reasons", () => {
  it("4Degrees lost with a pass reason HighLevel knows by name → PUT /status with that lostReasonId, zero ping-pong", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Pass Team", stage: "Due Diligence" });
    await w.settle();
    const calls = recordCalls(w);
    w.sb.fourdegrees.updateDealAsUser(deal.id, {
      stage_id: w.fdStage("Passed"),
      pass_reason_id: fdReason(w, "Passed: team"),
    });
    await settleWithDuplicates(w);
    const opp = await oppOf(w, deal.id);
    expect([opp.status, opp.lostReasonId]).toEqual(["lost", hlReason(w, "Passed: team")]);
    expect(calls.filter((c) => c.endsWith(`/opportunities/${opp.id}/status`))).toHaveLength(1);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("an explicit mapping pair wins over names", async () => {
    const w = await createWorld(routes, {
      mapping: (m) => ({
        ...m,
        lostReasons: [{ fourdegrees: "pr_placeholder", highlevel: "lr_placeholder" }],
      }),
    });
    // The pair names real ids once the sandboxes are seeded.
    const pair = { fourdegrees: fdReason(w, "Outside our thesis"), highlevel: hlReason(w, "Passed: market size") };
    w.mapping.lostReasons.splice(0, 1, pair);
    const { saveMapping } = await import("../../../src/store/accounts.ts");
    const { env } = await import("cloudflare:workers");
    await saveMapping(env.DB, "acct-e2e", w.mapping);
    const deal = newDeal(w, { name: "Thesis", stage: "Sourced" });
    await w.settle();
    w.sb.fourdegrees.updateDealAsUser(deal.id, {
      stage_id: w.fdStage("Passed"),
      pass_reason_id: pair.fourdegrees,
    });
    await w.settle();
    expect((await oppOf(w, deal.id)).lostReasonId).toBe(pair.highlevel);
    // And back: HighLevel's reason of the pair becomes the 4Degrees reason of the pair.
    const other = newDeal(w, { name: "Thesis Back", stage: "Sourced" });
    await w.settle();
    w.sb.highlevel.service.setStatus((await oppOf(w, other.id)).id, "lost", pair.highlevel);
    await w.settle();
    expect(w.sb.fourdegrees.deal(other.id).pass_reason_id).toBe(pair.fourdegrees);
    await expectConverged(w);
  });

  it("4Degrees lost with a reason HighLevel lacks → lost without a reason on HighLevel, the 4Degrees text kept, no ping-pong", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Too Early Co", stage: "Sourced" });
    await w.settle();
    w.sb.fourdegrees.updateDealAsUser(deal.id, { stage_id: w.fdStage("Passed"), pass_reason_text: "Too early" });
    await w.settle();
    const opp = await oppOf(w, deal.id);
    expect([opp.status, opp.lostReasonId]).toEqual(["lost", null]);
    expect(w.sb.fourdegrees.deal(deal.id).pass_reason_text).toBe("Too early");
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });

  it("HighLevel lost with a mapped reason → 4Degrees pass_reason_id; with a reason 4Degrees lacks → pass_reason_text", async () => {
    const w = await createWorld(routes);
    const a = newDeal(w, { name: "HL Mapped", stage: "Sourced" });
    const b = newDeal(w, { name: "HL Unmapped", stage: "Sourced" });
    await w.settle();
    const tooSmall = w.sb.highlevel.service.addLostReason(w.locationId, "Round too small");
    w.sb.highlevel.service.setStatus((await oppOf(w, a.id)).id, "lost", hlReason(w, "Lost to another investor"));
    w.sb.highlevel.service.setStatus((await oppOf(w, b.id)).id, "lost", tooSmall.id);
    await settleWithDuplicates(w);
    const da = w.sb.fourdegrees.deal(a.id);
    const db = w.sb.fourdegrees.deal(b.id);
    expect([da.stage_id, da.pass_reason_id]).toEqual([w.fdStage("Passed"), fdReason(w, "Lost to another investor")]);
    expect([db.stage_id, db.pass_reason_id, db.pass_reason_text]).toEqual([
      w.fdStage("Passed"),
      null,
      "Round too small",
    ]);
    // The reasons are not sent back: HighLevel keeps its own ids.
    expect((await oppOf(w, b.id)).lostReasonId).toBe(tooSmall.id);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("a crash after the status call and before the stage/field update: the retry writes the rest, one status call", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Crashy Loss", stage: "Sourced", amountMinor: 1_00 });
    await w.settle();
    const inner = routes["sandbox.test"]!;
    let crashes = 1;
    const calls: string[] = [];
    routes["sandbox.test"] = async (r) => {
      const u = new URL(r.url);
      if (!u.pathname.startsWith("/_sandbox")) calls.push(`${r.method} ${u.pathname}`);
      const res = await inner(r);
      if (r.method === "PUT" && u.pathname.endsWith("/status") && crashes-- > 0)
        throw new Error("simulated crash after the status write");
      return res;
    };
    w.sb.fourdegrees.updateDealAsUser(deal.id, {
      stage_id: w.fdStage("Passed"),
      pass_reason_id: fdReason(w, "Passed: market size"),
      value: { amount_minor: 9_00, currency: "USD" },
    });
    await w.settle();
    const opp = await oppOf(w, deal.id);
    expect([opp.status, opp.lostReasonId, opp.monetaryValue]).toEqual(["lost", hlReason(w, "Passed: market size"), 9]);
    expect(calls.filter((c) => c.startsWith("PUT") && c.endsWith("/status")).length).toBeLessThanOrEqual(2);
    await expectConverged(w);
  });
});

describe("followers ↔ the 4Degrees deal team", () => {
  it("HighLevel followers added and removed reach the team; a 4Degrees team edit reaches the followers; duplicates change nothing", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Team Co", stage: "Sourced" });
    await w.settle();
    const fdUsers = [...w.sb.fourdegrees.store.users.values()];
    const hlUsers = [...w.sb.highlevel.store.users.values()];
    const hlOf = (email: string) => hlUsers.find((u) => u.email?.toLowerCase() === email.toLowerCase())?.id ?? "";
    const [u1, u2] = fdUsers.filter((u) => hlOf(u.email));
    if (!u1 || !u2) throw new Error("the demo needs two users on both sides");
    const opp = await oppOf(w, deal.id);

    w.sb.highlevel.service.addFollowers(opp.id, [hlOf(u1.email), hlOf(u2.email)]);
    await settleWithDuplicates(w);
    expect([...w.sb.fourdegrees.deal(deal.id).team_ids].sort()).toEqual([u1.id, u2.id].sort());

    w.sb.highlevel.service.removeFollowers(opp.id, [hlOf(u1.email)], false);
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).team_ids).toEqual([u2.id]);

    w.sb.fourdegrees.updateDealAsUser(deal.id, { team_ids: [u1.id] });
    await settleWithDuplicates(w);
    expect((await oppOf(w, deal.id)).followers).toEqual([hlOf(u1.email)]);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });
});

describe("lost reason and team on creates", () => {
  it("a 4Degrees deal created lost with a reason and a team → the new opportunity is lost with that reason and followed", async () => {
    const w = await createWorld(routes);
    const hlUsers = [...w.sb.highlevel.store.users.values()];
    const member = [...w.sb.fourdegrees.store.users.values()].find((u) =>
      hlUsers.some((h) => h.email?.toLowerCase() === u.email.toLowerCase()),
    );
    const deal = w.sb.fourdegrees.createDealAsUser({
      name: "Born Lost",
      pipeline_id: w.fdPipelineId,
      stage_id: w.fdStage("Passed"),
      pass_reason_id: fdReason(w, "Passed: market size"),
      team_ids: [member?.id ?? ""],
    });
    await settleWithDuplicates(w);
    const opp = await oppOf(w, deal.id);
    expect([opp.status, opp.lostReasonId]).toEqual(["lost", hlReason(w, "Passed: market size")]);
    const follower = hlUsers.find((h) => h.email?.toLowerCase() === member?.email.toLowerCase());
    expect(opp.followers).toEqual([follower?.id]);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("a HighLevel opportunity created lost with a reason and followers → the new deal carries the pass reason and the team", async () => {
    const w = await createWorld(routes);
    const hlUsers = [...w.sb.highlevel.store.users.values()];
    const fdUser = [...w.sb.fourdegrees.store.users.values()].find((u) =>
      hlUsers.some((h) => h.email?.toLowerCase() === u.email.toLowerCase()),
    );
    const follower = hlUsers.find((h) => h.email?.toLowerCase() === fdUser?.email.toLowerCase());
    const contact = w.sb.highlevel.service.createContact({ locationId: w.locationId, name: "Lo St" });
    const opp = w.sb.highlevel.service.createOpportunity({
      locationId: w.locationId,
      pipelineId: w.hlPipelineId,
      pipelineStageId: w.hlStage("Sourced"),
      name: "HL Born Lost",
      status: "lost",
      lostReasonId: hlReason(w, "Passed: team"),
      contactId: contact.id,
      followers: [follower?.id ?? ""],
    });
    await settleWithDuplicates(w);
    const deal = w.sb.fourdegrees.deal((await w.linkOf("highlevel", opp.id))?.fdDealId ?? "");
    expect([deal.stage_id, deal.pass_reason_id, deal.team_ids]).toEqual([
      w.fdStage("Passed"),
      fdReason(w, "Passed: team"),
      [fdUser?.id],
    ]);
    w.resetCounts();
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });
});

describe("a follower change whose webhook looks like an echo", () => {
  it("with no HighLevel-only field mapped, the payload cannot show followers: reconcile syncs the change", async () => {
    const w = await createWorld(routes, { mapping: (m) => ({ ...m, closeDateFieldId: null }) });
    const deal = newDeal(w, { name: "Quiet Team", stage: "Sourced" });
    await w.settle();
    const hlUsers = [...w.sb.highlevel.store.users.values()];
    const fdUser = [...w.sb.fourdegrees.store.users.values()].find((u) =>
      hlUsers.some((h) => h.email?.toLowerCase() === u.email.toLowerCase()),
    );
    const follower = hlUsers.find((h) => h.email?.toLowerCase() === fdUser?.email.toLowerCase());
    w.sb.highlevel.service.addFollowers((await oppOf(w, deal.id)).id, [follower?.id ?? ""]);
    await w.settle();
    for (let tick = 0; tick < 6; tick++) await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100 });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).team_ids).toEqual([fdUser?.id]);
    await expectConverged(w);
  });
});
