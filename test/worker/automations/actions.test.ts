/**
 * Every action kind through the sandboxes, and the guarantees around them: field and stage writes
 * go through the engine (the other side follows like a user's change), a rule never fires on its own
 * change, chains stop at the depth limit, duplicate deliveries and a crash between an action and its
 * ledger completion never double an action, test mode and pause act as they say, and a failing
 * action becomes a replayable failure on Problems while the sync goes on.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import { createRule } from "../../../src/http/notifications.ts";
import { patchAutomation } from "../../../src/http/automations.ts";
import { NewRuleSchema } from "../../../src/notify/rules.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { listFailures } from "../../../src/store/failures.ts";
import { listDeliveries } from "../../../src/store/notifications.ts";
import { replayMessage } from "../../../src/queue/replay.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld, type World } from "../sync/world.ts";
import { addRule, hlIdOf, remindersOf, runsOf, tasksOf } from "./helpers.ts";

const routes: Record<string, RouteHandler> = { "hooks.notify.test": () => new Response(null, { status: 204 }) };
useNetwork(routes);

/** Maps the demo "Round" select field both ways as `round`. */
async function withRound(w: World): Promise<{ fdRound: string; hlRound: string }> {
  const hlRound =
    [...w.sb.highlevel.store.customFields.values()].find((f) => f.name === "Round" && f.locationId === w.locationId)
      ?.id ?? "";
  const fdRound = w.sb.fourdegrees.store.fieldsOf(w.fdPipelineId).find((f) => f.name === "Round")?.id ?? "";
  expect([hlRound, fdRound]).not.toContain("");
  const mapping = MappingSchema.parse({
    ...w.mapping,
    fields: [{ key: "round", fourdegreesFieldId: fdRound, highlevelFieldId: hlRound, direction: "both" }],
  });
  await saveMapping(env.DB, ACCOUNT, mapping);
  w.mapping = mapping;
  return { fdRound, hlRound };
}

const contactOf = (w: World, hlId: string) => {
  const opp = w.sb.highlevel.store.opportunities.get(hlId);
  const contact = opp?.contactId ? w.sb.highlevel.store.contacts.get(opp.contactId) : undefined;
  if (!contact) throw new Error(`no contact for ${hlId}`);
  return contact;
};

describe("actions", () => {
  it("tags, a 4Degrees reminder for the owner and a notification, each once", async () => {
    const w = await createWorld(routes);
    const { rule: target } = await createRule(
      env.DB,
      loadConfig(env),
      NewRuleSchema.parse({
        accountId: ACCOUNT,
        name: "Automation target",
        trigger: "deal_won",
        params: {},
        target: { kind: "webhook", url: "https://hooks.notify.test/a" },
      }),
    );
    const owner = [...w.sb.fourdegrees.store.users.values()].find((u) => u.email === "alex.morgan@acmecapital.example");
    await addRule({
      name: "won: tag, reminder, notify",
      trigger: { kind: "won" },
      actions: [
        { kind: "hl_tag", op: "add", tag: "portfolio" },
        { kind: "hl_tag", op: "remove", tag: "prospect" },
        { kind: "fd_reminder", title: "Send the closing docs", dueInDays: 3 },
        { kind: "notify", notificationRuleId: target.id, text: "we won" },
      ],
    });
    const deal = newDeal(w, { name: "Tagged", stage: "Term Sheet", ownerId: owner?.id ?? null });
    await w.settle();
    const hlId = await hlIdOf(w, deal.id);
    contactOf(w, hlId).tags = ["prospect", "vip"];
    w.sb.highlevel.service.setStatus(hlId, "won");
    await w.settle();
    expect(contactOf(w, hlId).tags.sort()).toEqual(["portfolio", "vip"]);
    const reminders = remindersOf(w, deal.id);
    expect(reminders.map((r) => [r.title, r.assignee_id])).toEqual([["Send the closing docs", owner?.id]]);
    // The target rule is a "deal won" rule too: its own delivery is the other one.
    const deliveries = (await listDeliveries(env.DB, { ruleId: target.id })).filter((d) =>
      d.changeKey.startsWith("automation:"),
    );
    expect(deliveries).toHaveLength(1);
    expect(JSON.stringify(deliveries[0])).toContain("we won");
  });

  it("move to a stage and set a field through the engine: the other side follows", async () => {
    const w = await createWorld(routes);
    const { hlRound } = await withRound(w);
    await addRule({
      name: "new deal → Due Diligence on HighLevel, round Seed on 4Degrees",
      trigger: { kind: "deal_created" },
      actions: [
        { kind: "move_stage", side: "highlevel", stage: "Due Diligence" },
        { kind: "set_field", side: "fourdegrees", field: "round", value: "Seed" },
      ],
    });
    const deal = newDeal(w, { name: "Moved", stage: "Sourced" });
    await w.settle();
    const hlId = await hlIdOf(w, deal.id);
    const fd = w.sb.fourdegrees.deal(deal.id);
    expect(fd.stage_id).toBe(w.fdStage("Due Diligence"));
    expect(Object.values(fd.fields)).toContain("Seed");
    const opp = w.sb.highlevel.store.opportunities.get(hlId);
    expect(opp?.pipelineStageId).toBe(w.hlStage("Due Diligence"));
    expect(JSON.stringify(opp?.customFields ?? [])).toContain("Seed");
    expect(hlRound).not.toBe("");
  });

  it("a rule never fires on its own change, and a chain of rules stops at depth 3", async () => {
    const w = await createWorld(routes);
    await withRound(w);
    const self = await addRule({
      name: "any round → Series A",
      trigger: { kind: "field_set", field: "round" },
      actions: [{ kind: "set_field", side: "fourdegrees", field: "round", value: "Series A" }],
    });
    const a = await addRule({
      name: "First Meeting → Due Diligence",
      trigger: { kind: "stage_entered", stage: "First Meeting" },
      actions: [{ kind: "move_stage", side: "fourdegrees", stage: "Due Diligence" }],
    });
    const b = await addRule({
      name: "Due Diligence → First Meeting",
      trigger: { kind: "stage_entered", stage: "Due Diligence" },
      actions: [{ kind: "move_stage", side: "highlevel", stage: "First Meeting" }],
    });
    const deal = newDeal(w, { name: "Loop", stage: "Sourced" });
    await w.settle();
    const fdRound = w.sb.fourdegrees.store.fieldsOf(w.fdPipelineId).find((f) => f.name === "Round")?.id ?? "";
    w.sb.fourdegrees.updateDealAsUser(deal.id, { fields: { [fdRound]: "Seed" } });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).fields[fdRound]).toBe("Series A");
    expect((await runsOf(self.id)).map((r) => r.state)).toEqual(["done"]);

    w.sb.fourdegrees.updateDealAsUser(deal.id, { stage_id: w.fdStage("First Meeting") });
    await w.settle();
    // person → a (depth 0) → b (1) → a (2) → b refused at depth 3.
    expect((await runsOf(a.id)).map((r) => r.state)).toEqual(["done", "done"]);
    expect((await runsOf(b.id)).map((r) => r.state)).toEqual(["done"]);
    expect(w.sb.fourdegrees.deal(deal.id).stage_id).toBe(w.fdStage("Due Diligence"));
  });

  it("duplicate deliveries and a forced re-sync create one task; a crash before the ledger completion does not double it", async () => {
    const w = await createWorld(routes);
    const rule = await addRule({
      name: "won → task and reminder",
      trigger: { kind: "won" },
      actions: [
        { kind: "hl_task", title: "Kick-off call", dueInDays: 1 },
        { kind: "fd_reminder", title: "Wire the funds", dueInDays: 5 },
      ],
    });
    const deal = newDeal(w, { name: "Dup", stage: "Term Sheet" });
    await w.settle();
    const hlId = await hlIdOf(w, deal.id);
    w.sb.highlevel.faults.configure({ webhookDuplicateRate: 1 });
    w.sb.highlevel.service.setStatus(hlId, "won");
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDuplicateRate: 0 });
    const force = {
      v: 1 as const,
      kind: "sync.record" as const,
      accountId: ACCOUNT,
      side: "highlevel" as const,
      record: "deal" as const,
      recordId: hlId,
      locationId: w.locationId,
      force: true,
    };
    w.queue.push({ body: force, attempts: 1 });
    await w.settle();
    expect((await tasksOf(w)).map((t) => t.title)).toEqual(["Kick-off call"]);
    const [run] = await runsOf(rule.id);
    expect(run?.state).toBe("done");

    // The crash: both actions happened, the ledger still says pending and the run is queued again.
    await env.DB.prepare(
      "UPDATE write_ledger SET state = 'pending', target_id = NULL WHERE account_id = ? AND substr(source_record, 1, ?) = ?",
    )
      .bind(ACCOUNT, `automation:${rule.id}:`.length, `automation:${rule.id}:`)
      .run();
    await env.DB.prepare("UPDATE automation_runs SET state = 'queued' WHERE rule_id = ?").bind(rule.id).run();
    w.queue.push({
      body: { v: 1, kind: "automation.run", accountId: ACCOUNT, ruleId: rule.id, occurrence: run?.occurrence ?? "" },
      attempts: 0,
    });
    await w.settle();
    expect((await tasksOf(w)).map((t) => t.title)).toEqual(["Kick-off call"]);
    expect(remindersOf(w, deal.id).map((r) => r.title)).toEqual(["Wire the funds"]);
    expect((await runsOf(rule.id)).map((r) => r.state)).toEqual(["done"]);
  });

  it("test mode records what would be done and does nothing; a paused rule does not fire", async () => {
    const w = await createWorld(routes);
    const rule = await addRule({
      name: "entered DD",
      trigger: { kind: "stage_entered", stage: "Due Diligence" },
      actions: [{ kind: "hl_task", title: "DD checklist" }],
    });
    const paused = await addRule({
      name: "paused",
      enabled: false,
      trigger: { kind: "stage_entered", stage: "Due Diligence" },
      actions: [{ kind: "hl_task", title: "never" }],
    });
    const deal = newDeal(w, { name: "Test mode", stage: "Sourced" });
    await w.settle();
    await w.patchAccount({ testMode: true });
    w.sb.fourdegrees.updateDealAsUser(deal.id, { stage_id: w.fdStage("Due Diligence") });
    await w.settle();
    expect(await tasksOf(w)).toEqual([]);
    const runs = await runsOf(rule.id);
    expect(runs.map((r) => r.state)).toEqual(["test_mode"]);
    expect(JSON.stringify(runs[0]?.result)).toContain('create HighLevel task \\"DD checklist\\"');
    expect(await runsOf(paused.id)).toEqual([]);
  });

  it("a failing action is a replayable failure on Problems and the sync goes on", async () => {
    const w = await createWorld(routes);
    const rule = await addRule({
      name: "to a stage that is not there",
      trigger: { kind: "deal_created" },
      actions: [{ kind: "move_stage", side: "fourdegrees", stage: "Nowhere" }],
    });
    const deal = newDeal(w, { name: "Fails", stage: "Sourced" });
    await w.settle();
    expect(await w.linkOf("fourdegrees", deal.id)).not.toBeNull();
    const failures = (await listFailures(env.DB, ACCOUNT)).filter((f) => f.id.startsWith("automation:"));
    expect(failures).toHaveLength(1);
    expect(failures[0]?.reason).toContain('no stage named "Nowhere"');
    expect((await runsOf(rule.id)).map((r) => r.state)).toEqual(["failed"]);

    await patchAutomation(env.DB, ACCOUNT, rule.id, {
      actions: [{ kind: "move_stage", side: "fourdegrees", stage: "First Meeting" }],
    });
    const again = failures[0] ? replayMessage(failures[0]) : null;
    expect(again?.kind).toBe("automation.run");
    if (again) w.queue.push({ body: again, attempts: 0 });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).stage_id).toBe(w.fdStage("First Meeting"));
    expect((await runsOf(rule.id)).map((r) => r.state)).toEqual(["done"]);
  });
});
