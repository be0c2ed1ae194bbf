/**
 * The time-driven triggers (the cron scan over the pairs' last-synced state, each finding once per
 * situation) and the `/api/accounts/:id/automations` routes: validation with reasons (400), unknown
 * rules and records (404), a taken name or an unpaired record (409), and the dry run.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/lib/log.ts";
import { scanAutomations } from "../../../src/sync/jobs/automation.ts";
import type { QueueMessageInput } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld, type World } from "../sync/world.ts";
import { addRule, remindersOf, runsOf, tasksOf } from "./helpers.ts";

const routes: Record<string, RouteHandler> = { "worker.test": (r) => exports.default.fetch(r) };
useNetwork(routes);

const DAY = 86_400_000;
const log = createLogger("error");

async function scanAt(w: World, at: number) {
  const found = await scanAutomations(env, { ...w.deps, now: () => at }, log);
  await w.settle();
  return found;
}

const auth = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "application/json" };
const api = (path: string, init: { method?: string; body?: unknown } = {}) =>
  exports.default.fetch(`http://worker.test/api/accounts/${path}`, {
    method: init.method ?? "GET",
    headers: auth,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });

describe("cron-driven triggers", () => {
  it("close date within N days, no activity for N days, N days in a stage: once per situation", async () => {
    const w = await createWorld(routes);
    const close = await addRule({
      name: "closing",
      trigger: { kind: "close_date", withinDays: 7 },
      actions: [{ kind: "hl_task", title: "Closing soon" }],
    });
    const quiet = await addRule({
      name: "quiet",
      trigger: { kind: "no_activity", days: 14 },
      actions: [{ kind: "fd_reminder", title: "Check in" }],
    });
    const stuck = await addRule({
      name: "stuck",
      trigger: { kind: "days_in_stage", days: 30, stage: "Due Diligence" },
      actions: [{ kind: "hl_task", title: "Stuck in DD" }],
    });
    const now = Date.now();
    const soon = new Date(now + 10 * DAY).toISOString().slice(0, 10);
    const a = newDeal(w, { name: "Closing", stage: "Term Sheet", closeDate: soon });
    const b = newDeal(w, { name: "In DD", stage: "Due Diligence" });
    await w.settle();

    await scanAt(w, now);
    expect(await tasksOf(w)).toEqual([]);
    await scanAt(w, now + 4 * DAY);
    expect((await tasksOf(w)).map((t) => t.title)).toEqual(["Closing soon"]);
    expect((await runsOf(close.id)).map((r) => r.context && (r.context as { fdId: string }).fdId)).toEqual([a.id]);

    await scanAt(w, now + 15 * DAY);
    expect(remindersOf(w, a.id).map((r) => r.title)).toEqual(["Check in"]);
    expect(remindersOf(w, b.id).map((r) => r.title)).toEqual(["Check in"]);
    await scanAt(w, now + 31 * DAY);
    await scanAt(w, now + 32 * DAY);
    expect((await tasksOf(w)).map((t) => t.title).sort()).toEqual(["Closing soon", "Stuck in DD"]);
    expect(await runsOf(quiet.id)).toHaveLength(2);
    expect((await runsOf(stuck.id)).map((r) => (r.context as { fdId: string }).fdId)).toEqual([b.id]);
  });
});

describe("the automations API", () => {
  it("creates, lists, patches, dry-runs and deletes, with 400 / 404 / 409 reasons", async () => {
    const w = await createWorld(routes);
    const rule = {
      name: "Term Sheet → task",
      trigger: { kind: "stage_entered", stage: "Term Sheet" },
      conditions: [{ kind: "value", min: 100_000_00, max: null }],
      actions: [{ kind: "hl_task", title: "Prepare the term sheet", dueInDays: 2 }],
    };
    const created = await api(`${ACCOUNT}/automations`, { method: "POST", body: rule });
    expect(created.status).toBe(201);
    const { rule: stored } = await created.json<{ rule: { id: string; v: number } }>();
    expect(stored.v).toBe(1);

    const dup = await api(`${ACCOUNT}/automations`, { method: "POST", body: rule });
    expect(dup.status).toBe(409);
    const bad = await api(`${ACCOUNT}/automations`, {
      method: "POST",
      body: { ...rule, name: "bad", trigger: { kind: "value_changed" }, actions: [] },
    });
    expect(bad.status).toBe(400);
    const badText = await bad.text();
    expect(badText).toContain("trigger.by");
    expect(badText).toContain("actions");
    const unknownField = await api(`${ACCOUNT}/automations`, {
      method: "POST",
      body: { ...rule, name: "f", actions: [{ kind: "set_field", side: "fourdegrees", field: "nope", value: 1 }] },
    });
    expect(unknownField.status).toBe(400);
    expect(await unknownField.text()).toContain("actions.0.field");
    expect((await api(`nobody/automations`)).status).toBe(404);
    expect((await api(`${ACCOUNT}/automations/auto_00000000000000000000`)).status).toBe(404);

    const list = await (await api(`${ACCOUNT}/automations`)).json<{ rules: Array<{ id: string }> }>();
    expect(list.rules.map((r) => r.id)).toEqual([stored.id]);

    const deal = newDeal(w, { name: "Big round", stage: "Term Sheet", amountMinor: 250_000_00 });
    const small = newDeal(w, { name: "Small round", stage: "Term Sheet", amountMinor: 10_00 });
    // Not paired yet: 409; unknown: 404.
    const early = await api(`${ACCOUNT}/automations/${stored.id}/test`, {
      method: "POST",
      body: { fourdegreesDealId: deal.id },
    });
    expect(early.status).toBe(409);
    const unknown = await api(`${ACCOUNT}/automations/${stored.id}/test`, {
      method: "POST",
      body: { fourdegreesDealId: "deal_nope" },
    });
    expect(unknown.status).toBe(404);
    // Nothing ran yet (the rule exists), so pause it before the pairs sync: the dry run changes nothing either way.
    await api(`${ACCOUNT}/automations/${stored.id}`, { method: "PATCH", body: { enabled: false } });
    await w.settle();
    const dry = await api(`${ACCOUNT}/automations/${stored.id}/test`, {
      method: "POST",
      body: { fourdegreesDealId: deal.id },
    });
    expect(dry.status).toBe(200);
    const answer = await dry.json<{ wouldFire: boolean; actions: Array<{ summary: string; status: string }> }>();
    expect(answer.wouldFire).toBe(true);
    expect(answer.actions[0]?.status).toBe("planned");
    expect(answer.actions[0]?.summary).toContain('create HighLevel task "Prepare the term sheet"');
    const smallHl = (await w.linkOf("fourdegrees", small.id))?.hlOpportunityId ?? "";
    const no = await api(`${ACCOUNT}/automations/${stored.id}/test`, {
      method: "POST",
      body: { highlevelOpportunityId: smallHl },
    });
    expect((await no.json<{ wouldFire: boolean; reason: string }>()).reason).toContain("condition value");
    expect(await tasksOf(w)).toEqual([]);

    const badPatch = await api(`${ACCOUNT}/automations/${stored.id}`, { method: "PATCH", body: { bogus: 1 } });
    expect(badPatch.status).toBe(400);
    const one = await (
      await api(`${ACCOUNT}/automations/${stored.id}`)
    ).json<{ rule: { enabled: boolean }; runs: unknown[] }>();
    expect(one.rule.enabled).toBe(false);
    expect(one.runs).toEqual([]);
    expect((await api(`${ACCOUNT}/automations/${stored.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(`${ACCOUNT}/automations/${stored.id}`)).status).toBe(404);
  });
});

describe("runs whose message was lost, and a paused account", () => {
  it("the scan re-sends a run left queued; a run that arrives while the account is paused is skipped", async () => {
    const w = await createWorld(routes);
    const rule = await addRule({
      name: "created",
      trigger: { kind: "deal_created" },
      actions: [{ kind: "hl_task", title: "Lost message" }],
    });
    const deal = newDeal(w, { name: "Lost message", stage: "Sourced" });
    // The record job's automation.run message never arrives (dropped on its way to the queue).
    const enqueue = w.deps.enqueue;
    const dropped: QueueMessageInput[] = [];
    w.deps.enqueue = async (body, delay) => {
      if (body.kind === "automation.run") dropped.push(body);
      else await enqueue(body, delay);
    };
    await w.settle();
    w.deps.enqueue = enqueue;
    expect(dropped).toHaveLength(1);
    expect(await w.linkOf("fourdegrees", deal.id)).not.toBeNull();
    expect((await runsOf(rule.id)).map((r) => r.state)).toEqual(["queued"]);
    expect(await tasksOf(w)).toEqual([]);

    // Too early: nothing re-sent. Ten minutes later: re-sent once and run.
    expect((await scanAt(w, Date.now())).resent).toBe(0);
    expect((await scanAt(w, Date.now() + 11 * 60_000)).resent).toBe(1);
    expect((await tasksOf(w)).map((t) => t.title)).toEqual(["Lost message"]);

    // A paused account: the run is recorded as skipped, nothing is done.
    await w.patchAccount({ status: "paused" });
    const message = dropped[0];
    if (message) w.queue.push({ body: message, attempts: 0 });
    await env.DB.prepare("UPDATE automation_runs SET state = 'queued' WHERE rule_id = ?").bind(rule.id).run();
    await w.drain();
    expect((await runsOf(rule.id)).map((r) => r.state)).toEqual(["skipped"]);
    expect(await tasksOf(w)).toHaveLength(1);
  });
});
