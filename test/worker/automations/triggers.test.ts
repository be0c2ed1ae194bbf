/**
 * Change-driven triggers, end to end through both sandboxes: a user's change on either side is
 * synced, the record job reports the recorded pair change, the matching rule's run is claimed once
 * and its `automation.run` job acts (a HighLevel task here, the simplest visible action).
 */
import { describe, expect, it } from "vitest";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { createWorld, type World } from "../sync/world.ts";
import { addRule, hlIdOf, runsOf, tasksOf } from "./helpers.ts";
import type { NewAutomationInput } from "../../../src/domain/automation-rule.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const task = (title: string) => [{ kind: "hl_task" as const, title, dueInDays: 2 }];
const OWNER = "priya.shah@acmecapital.example";

async function ownerId(w: World, email: string): Promise<string> {
  const u = [...w.sb.fourdegrees.store.users.values()].find((x) => x.email === email);
  if (!u) throw new Error(`no user ${email}`);
  return u.id;
}

async function ruleThenDeal(w: World, rule: Omit<NewAutomationInput, "name" | "actions">, title: string) {
  const r = await addRule({ name: title, actions: task(title), ...rule });
  const deal = newDeal(w, {
    name: `Deal for ${title}`,
    stage: "Sourced",
    amountMinor: 50_000_00,
    ownerId: await ownerId(w, OWNER),
  });
  await w.settle();
  return { rule: r, deal, hlId: await hlIdOf(w, deal.id) };
}

const titles = async (w: World) => (await tasksOf(w)).map((t) => t.title);

describe("change-driven triggers", () => {
  it("deal created fires once, for the owner, on the opportunity's contact", async () => {
    const w = await createWorld(routes);
    const { hlId } = await ruleThenDeal(w, { trigger: { kind: "deal_created" } }, "New deal");
    const tasks = await tasksOf(w);
    expect(tasks.map((t) => t.title)).toEqual(["New deal"]);
    const opp = w.sb.highlevel.store.opportunities.get(hlId);
    expect(tasks[0]?.contactId).toBe(opp?.contactId);
    const hlOwner = [...w.sb.highlevel.store.users.values()].find((u) => u.email === OWNER);
    expect(tasks[0]?.assignedTo).toBe(hlOwner?.id);
  });

  it("entered stage by its 4Degrees name (from 4Degrees) and by its HighLevel name (from HighLevel)", async () => {
    const w = await createWorld(routes);
    const { deal, hlId } = await ruleThenDeal(w, { trigger: { kind: "stage_entered", stage: "term sheet" } }, "TS");
    expect(await titles(w)).toEqual([]);
    w.sb.fourdegrees.updateDealAsUser(deal.id, { stage_id: w.fdStage("Term Sheet") });
    await w.settle();
    expect(await titles(w)).toEqual(["TS"]);
    // Back and forth from HighLevel: entering again is a new occurrence.
    w.sb.highlevel.service.updateOpportunity(hlId, { pipelineStageId: w.hlStage("Due Diligence") });
    await w.settle();
    w.sb.highlevel.service.updateOpportunity(hlId, { pipelineStageId: w.hlStage("Term Sheet") });
    await w.settle();
    expect(await titles(w)).toEqual(["TS", "TS"]);
  });

  it("won and lost (lost only with the named reason)", async () => {
    const w = await createWorld(routes);
    await addRule({ name: "won", trigger: { kind: "won" }, actions: task("Won!") });
    const lost = await addRule({
      name: "lost",
      trigger: { kind: "lost", reason: "price" },
      actions: task("Lost on price"),
    });
    const a = newDeal(w, { name: "A", stage: "Sourced" });
    const b = newDeal(w, { name: "B", stage: "Sourced" });
    await w.settle();
    w.sb.fourdegrees.updateDealAsUser(a.id, { stage_id: w.fdStage("Closed") });
    w.sb.fourdegrees.updateDealAsUser(b.id, { stage_id: w.fdStage("Passed") });
    await w.settle();
    expect(await titles(w)).toEqual(["Won!"]);
    const runs = await runsOf(lost.id);
    expect(runs.map((r) => r.state)).toEqual(["skipped"]);
    expect(JSON.stringify(runs[0]?.result)).toContain("lost reason is not set");

    // Lost on HighLevel with a reason that names the rule's: it fires.
    const c = newDeal(w, { name: "C", stage: "Sourced" });
    await w.settle();
    await addRule({
      name: "lost to another",
      trigger: { kind: "lost", reason: "another investor" },
      actions: task("Debrief"),
    });
    const reason = [...w.sb.highlevel.store.lostReasons.values()].find(
      (r) => r.locationId === w.locationId && r.name === "Lost to another investor",
    );
    w.sb.highlevel.service.setStatus(await hlIdOf(w, c.id), "lost", reason?.id);
    await w.settle();
    expect((await titles(w)).sort()).toEqual(["Debrief", "Won!"]);
  });

  it("value changed by more than N, and crossing a threshold", async () => {
    const w = await createWorld(routes);
    await addRule({ name: "by", trigger: { kind: "value_changed", by: 10_000_00 }, actions: task("Big move") });
    await addRule({
      name: "cross",
      trigger: { kind: "value_changed", threshold: 1_000_000_00 },
      actions: task("Crossed 1M"),
    });
    const d = newDeal(w, { name: "V", stage: "Sourced", amountMinor: 500_000_00 });
    await w.settle();
    const hlId = await hlIdOf(w, d.id);
    w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 505_000 });
    await w.settle();
    expect(await titles(w)).toEqual([]);
    w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: 1_200_000 });
    await w.settle();
    expect((await titles(w)).sort()).toEqual(["Big move", "Crossed 1M"]);
  });

  it("owner changed", async () => {
    const w = await createWorld(routes);
    const { deal } = await ruleThenDeal(w, { trigger: { kind: "owner_changed" } }, "New owner");
    expect(await titles(w)).toEqual([]);
    w.sb.fourdegrees.updateDealAsUser(deal.id, { owner_id: await ownerId(w, "jordan.lee@acmecapital.example") });
    await w.settle();
    expect(await titles(w)).toEqual(["New owner"]);
  });

  it("note added on either side", async () => {
    const w = await createWorld(routes);
    const { deal } = await ruleThenDeal(w, { trigger: { kind: "note_added" } }, "Read the note");
    w.sb.fourdegrees.addNoteAsUser(deal.id, "Met the founders");
    await w.settle();
    expect(await titles(w)).toEqual(["Read the note"]);
  });
});
