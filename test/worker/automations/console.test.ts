/**
 * The Automations console page: the form (never JSON) creates a rule that then acts on a real
 * change, bad input comes back as a flash naming the field, pause/resume, the dry run, an example
 * enabled with one click, and a form from another origin is refused.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { listAutomations } from "../../../src/store/automations.ts";
import { env } from "cloudflare:workers";
import { consoleCookie } from "../helpers/console-session.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld } from "../sync/world.ts";
import { tasksOf } from "./helpers.ts";

const routes: Record<string, RouteHandler> = { "worker.test": (r) => exports.default.fetch(r) };
useNetwork(routes);
const BASE = "http://worker.test";

const post = (cookie: string, path: string, form: Record<string, string>, origin = BASE) =>
  exports.default.fetch(`${BASE}/console${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
const flashOf = (res: Response) => new URL(res.headers.get("location") ?? "", BASE).searchParams;

describe("the Automations page", () => {
  it("a rule made with the form creates its task on the next matching change", async () => {
    const w = await createWorld(routes);
    const cookie = await consoleCookie();
    const page = await exports.default.fetch(`${BASE}/console/automations?account=${ACCOUNT}`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('id="automation-form"');
    expect(html).toContain('<option value="Term Sheet">'); // the live stage list

    const bad = await post(cookie, "/automations", {
      account: ACCOUNT,
      name: "x",
      trigger: "stage_entered",
      a_kind: "hl_task",
    });
    expect(bad.status).toBe(303);
    expect(flashOf(bad).get("error")).toContain("trigger.stage");

    const made = await post(cookie, "/automations", {
      account: ACCOUNT,
      name: "Term Sheet → owner task",
      trigger: "stage_entered",
      t_stage: "Term Sheet",
      c_kind: "value",
      c_min: "1000",
      a_kind: "hl_task",
      a_title: "Draft the term sheet",
      a_due: "3",
    });
    expect(flashOf(made).get("ok")).toContain("added");
    const [rule] = await listAutomations(env.DB, ACCOUNT);
    expect(rule?.conditions).toEqual([{ kind: "value", min: 1000_00, max: null }]);

    const deal = newDeal(w, { name: "Form deal", stage: "Term Sheet", amountMinor: 5000_00 });
    await w.settle();
    expect((await tasksOf(w)).map((t) => t.title)).toEqual(["Draft the term sheet"]);

    const dry = await post(cookie, "/automations/test", { account: ACCOUNT, id: rule?.id ?? "", record: deal.id });
    expect(flashOf(dry).get("ok")).toContain('would create HighLevel task "Draft the term sheet"');
    const paused = await post(cookie, "/automations/toggle", { account: ACCOUNT, id: rule?.id ?? "" });
    expect(flashOf(paused).get("ok")).toContain("paused");
    expect((await listAutomations(env.DB, ACCOUNT))[0]?.enabled).toBe(false);

    const example = await post(cookie, "/automations/example", { account: ACCOUNT, example: "quiet-reminder" });
    expect(flashOf(example).get("ok")).toContain("No activity for 14 days → reminder");
    const slack = await post(cookie, "/automations/example", { account: ACCOUNT, example: "won-slack" });
    expect(flashOf(slack).get("error")).toContain("Slack notification target");

    const foreign = await post(
      cookie,
      "/automations/delete",
      { account: ACCOUNT, id: rule?.id ?? "" },
      "https://evil.example",
    );
    expect(foreign.status).toBe(403);
    const gone = await post(cookie, "/automations/delete", { account: ACCOUNT, id: rule?.id ?? "" });
    expect(flashOf(gone).get("ok")).toContain("deleted");
    expect((await listAutomations(env.DB, ACCOUNT)).map((r) => r.name)).toEqual(["No activity for 14 days → reminder"]);
  });
});
