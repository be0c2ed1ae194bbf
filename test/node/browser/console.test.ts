/**
 * Browser tests of the operator console: Chromium (playwright-core; whichever test/node/browser/chromium.ts
 * finds: CHROMIUM_PATH, a system one, or the packaged @sparticuz/chromium) against the Worker
 * under `wrangler dev` and the sandbox over real HTTP, fresh state in a temp directory. Saves a
 * screenshot of each page under test-output/screenshots/ for reviewers; with DOCS_SCREENSHOTS=1 the
 * pages the README shows are also written to docs/screenshots/ (to check in). Every page of the
 * synced account passes the id-only label check (test/id-labels.ts).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type StartedSandbox } from "../../../sandbox/server.ts";
import { startBrowserStack, type BrowserStack } from "./stack.ts";
import { type RunningWorker } from "../../../scripts/lib/processes.ts";
import { idLabelsShown, operatorSignIn, screenshot } from "./shell.ts";

let sandbox: StartedSandbox;
let worker: RunningWorker;
let stack: BrowserStack | undefined;
let browser: Browser;
let page: Page;
let adminToken = "";
let fourDegreesKey = "";

/** Screenshot <name> for reviewers; the README's pages also go to docs/screenshots/<docsName> with DOCS_SCREENSHOTS=1. */
async function shot(name: string, docsName?: string): Promise<void> {
  await screenshot(page, name, docsName ? { docs: docsName } : {});
}

beforeAll(async () => {
  stack = await startBrowserStack("browser");
  ({ browser, sandbox, worker } = stack);
  adminToken = stack.devVar("ADMIN_TOKEN");
  fourDegreesKey = stack.devVar("FOURDEGREES_API_KEY");
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("operator console in Chromium", () => {
  it("security: the console sends an unauthenticated browser to the login page; a wrong token is refused", async () => {
    await page.goto(`${worker.url}/console/activity`);
    expect(new URL(page.url()).pathname).toBe("/console/login");
    await page.fill("input[name=token]", "definitely-not-the-admin-token");
    await page.click("button[type=submit]");
    await expect.poll(() => page.textContent("body")).toContain("That token is not the admin token.");
    await shot("01-login-refused");
  });

  it("happy: sign in, create an account through the API, connect HighLevel through the sandbox's OAuth page, attach the location", async () => {
    await operatorSignIn(page, worker.url, adminToken);
    expect(new URL(page.url()).pathname).toBe("/console/connections");
    const put = await fetch(`${worker.url}/api/accounts/acme/fourdegrees`, {
      method: "PUT",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ apiKey: fourDegreesKey, name: "Acme Ventures" }),
    });
    expect(put.status).toBe(200);

    await page.goto(`${worker.url}/console/connections`);
    await Promise.all([page.waitForURL(/chooselocation/), page.click("#connect-highlevel")]);
    await shot("02-highlevel-oauth-choose-location");
    await Promise.all([page.waitForURL(/\/oauth\/callback/), page.click("button.approve")]);
    await expect.poll(() => page.textContent("body")).toContain("HighLevel connected");

    await page.goto(`${worker.url}/console/connections?account=acme`);
    await expect.poll(() => page.locator("#highlevel-connections").textContent()).toContain("connected");
    await Promise.all([page.waitForURL(/ok=/), page.click("#attach-form button[type=submit]")]);
    await expect.poll(() => page.textContent(".flash.ok")).toContain("now syncs with Acme Ventures");
    await page.click("#test-connection");
    await expect.poll(() => page.locator("#test-results").textContent()).toMatch(/pipeline\(s\)/);
    await shot("03-connections", "console-connections");
  });

  it("error then happy: a mapping with a bad currency shows the reason next to the field; fixed, it saves", async () => {
    await page.goto(`${worker.url}/console/mapping?account=acme`);
    await shot("04-mapping");
    await page.fill("input[name=currency]", "dollars");
    await page.click("#save-mapping");
    await expect.poll(() => page.locator('.fielderror[data-field="currency"]').textContent()).toContain("ISO 4217");
    await shot("05-mapping-validation-error");
    await page.fill("input[name=currency]", "USD");
    await page.click("#save-mapping");
    await expect.poll(() => page.textContent("body")).toMatch(/Mapping saved|Not saved/);
    const body = (await page.textContent("body")) ?? "";
    expect(body, "the suggested mapping should save as is").toContain("Mapping saved");
  });

  it("happy: the Backfill page starts a backfill that links the demo deals, its progress reaching done", async () => {
    // As `npm start` does (scripts/lib/demo.ts): both sandboxes deliver their webhooks to the Worker.
    await sandboxCall("POST", "/_sandbox/highlevel/webhooks/subscribers", { url: `${worker.url}/webhooks/highlevel` });
    await sandboxCall("POST", "/_sandbox/4degrees/webhooks/subscribers", { url: `${worker.url}/webhooks/4degrees` });
    await page.goto(`${worker.url}/console/backfill?account=acme`);
    await expect.poll(() => page.textContent("main")).toContain("No backfill has run for this account yet.");
    await Promise.all([page.waitForURL(/ok=/), page.click("#backfill-start")]);
    await expect.poll(() => page.textContent(".flash.ok")).toContain("Backfill started.");
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.textContent("#backfill-run");
        },
        { timeout: 90_000, interval: 500 },
      )
      .toMatch(/\bdone\b/);
    const figures = (await page.textContent("#backfill-figures")) ?? "";
    const [, done, total] = /([\d,]+) of ([\d,]+) records \(100%\)/.exec(figures) ?? [];
    expect(Number(done?.replace(/,/g, "")), figures).toBeGreaterThan(0);
    expect(done).toBe(total);
    await shot("06-backfill-done");
  });

  it("happy: a stage change made in the 4Degrees sandbox appears in Activity and reaches HighLevel", async () => {
    const target = await pickStageMove();
    await sandboxCall("PATCH", `/_sandbox/4degrees/deals/${target.dealId}`, { stage_id: target.toStage.fourdegrees });
    await page.goto(`${worker.url}/console/activity?account=acme&record=${target.dealId}`);
    await expect
      .poll(
        async () => {
          await page.reload();
          return (await eventRows()).some(
            (e) =>
              e.kind === "sync" && e.direction === "to_highlevel" && e.outcome === "ok" && e.what.includes("stage"),
          );
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(true);
    await expect.poll(() => hlStageOf(target.oppId), { timeout: 30_000 }).toBe(target.toStage.highlevel);
    await shot("07-activity-after-sandbox-change");
    await Promise.all([
      page.waitForURL(/activity\/record/),
      page.locator(`table.events a[href*="fd=${target.dealId}"]`).first().click(),
    ]);
    expect(await page.textContent("h1")).toContain("History of");
    // The snapshot names the stage (its id is on hover).
    expect(await page.textContent("#snapshot")).toContain(target.toStage.name);
    await shot("08-record-history", "console-record-history");
  });

  it("happy: a rule made with the Automations form creates its task in the HighLevel sandbox", async () => {
    const target = await pickStageMove();
    await page.goto(`${worker.url}/console/automations?account=acme`);
    await page.fill("#automation-form input[name=name]", "Browser rule");
    await page.selectOption("#automation-form select[name=trigger]", "stage_entered");
    // The stage field offers the live stage names (a datalist); the name is typed as a person would.
    expect(await page.locator(`#stage-names option[value="${target.toStage.name}"]`).count()).toBe(1);
    await page.fill("#automation-form input[name=t_stage]", target.toStage.name);
    await page.selectOption("#automation-form select[name=a_kind]", "hl_task");
    await page.fill("#automation-form input[name=a_title]", "Browser task");
    await page.fill("#automation-form input[name=a_due]", "2");
    await Promise.all([page.waitForURL(/ok=/), page.click("#automation-form button[type=submit]")]);
    expect(await page.textContent(".flash.ok")).toContain("Browser rule");
    expect(await page.textContent("#automations")).toContain(`enters “${target.toStage.name}”`);
    await shot("08b-automations");
    await sandboxCall("PATCH", `/_sandbox/4degrees/deals/${target.dealId}`, { stage_id: target.toStage.fourdegrees });
    const titles = async () =>
      HlTasks.parse(await sandboxCall("GET", "/_sandbox/highlevel/tasks")).tasks.map((t) => t.title);
    await expect.poll(titles, { timeout: 60_000, interval: 500 }).toContain("Browser task");
    expect((await titles()).filter((t) => t === "Browser task")).toHaveLength(1);
    // Removed again, so the later tests' stage moves create no tasks.
    await page.goto(`${worker.url}/console/automations?account=acme`);
    await Promise.all([page.waitForURL(/ok=/), page.click("#automations button:has-text('Delete')")]);
    expect(await page.textContent(".flash.ok")).toContain("deleted");
  });

  it("error then happy: HighLevel refusing a write (422) shows on Problems with its reason and diff; fixed, Replay resolves it", async () => {
    const target = await pickStageMove();
    // The cause: HighLevel answers 422 to every update of this opportunity until the fault is removed.
    await sandboxCall("POST", "/_sandbox/highlevel/faults/script", {
      status: 422,
      method: "PUT",
      path: `^/opportunities/${target.oppId}$`,
      count: 1000,
    });
    await sandboxCall("PATCH", `/_sandbox/4degrees/deals/${target.dealId}`, { stage_id: target.toStage.fourdegrees });
    await page.goto(`${worker.url}/console/problems?account=acme`);
    const row = page.locator(`#failures tr:has(a[href*="fd=${target.dealId}"])`);
    await expect
      .poll(
        async () => {
          await page.reload();
          return row.count();
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(1);
    expect(await row.locator("td").nth(3).textContent()).toMatch(/422/);
    // The diff preview: the stage differs between the last synced state and 4Degrees now.
    const stageRow = row.locator("table.diff tr", { hasText: "stage" });
    expect(await stageRow.locator("td.diff-old").textContent()).toBe(target.fromStage.name);
    expect(await stageRow.locator("td.diff-new").textContent()).toBe(target.toStage.name);
    expect(await hlStageOf(target.oppId)).toBe(target.fromStage.highlevel);
    await shot("09-problems-failure", "console-problems");

    // The fix: HighLevel accepts the write again. Replay the failure from the page.
    await sandboxCall("DELETE", "/_sandbox/highlevel/faults");
    await Promise.all([page.waitForURL(/ok=/), row.locator("button", { hasText: "Replay" }).click()]);
    await expect.poll(() => page.textContent(".flash.ok")).toContain("Replayed");
    await expect.poll(() => hlStageOf(target.oppId), { timeout: 60_000, interval: 500 }).toBe(target.toStage.highlevel);
    await page.reload();
    expect(await page.textContent("main")).toContain("No open failures");
    await shot("10-problems-resolved");
    await page.goto(`${worker.url}/console/activity?account=acme&record=${target.dealId}`);
    const rows = await eventRows();
    // Newest first: the replayed sync succeeded after the recorded failure.
    expect(rows[0]).toMatchObject({ kind: "sync", direction: "to_highlevel", outcome: "ok" });
    const failed = rows.findIndex((e) => e.kind === "failure" && e.outcome === "failed");
    expect(failed).toBeGreaterThan(0);
    expect(rows[failed]?.what).toContain("422");
  });

  it("happy: every page renders the synced account's real data (screenshots for review)", async () => {
    for (const [i, p] of [
      "connections",
      "mapping",
      "activity",
      "problems",
      "backfill",
      "usage",
      "report",
      "notifications",
    ].entries()) {
      const res = await page.goto(`${worker.url}/console/${p}?account=acme`);
      expect(res?.status(), p).toBe(200);
      expect(await page.textContent("h1")).toBeTruthy();
      expect(await idLabelsShown(page), p).toEqual([]);
      await shot(
        `${String(i + 11).padStart(2, "0")}-${p}`,
        ["usage", "activity"].includes(p) ? `console-${p}` : undefined,
      );
    }
    // Usage reads the gate: the backfill and the syncs made HighLevel calls, drawn per hour.
    await page.goto(`${worker.url}/console/usage?account=acme`);
    expect(Number((await page.textContent('[data-figure="calls24h"]'))?.replace(/,/g, ""))).toBeGreaterThan(0);
    expect(await page.textContent('[data-figure="rateLimited24h"]')).toBe("0");
    expect(await page.locator("section.usage svg rect[data-value]").count()).toBe(24);
    // Report reads both systems: the demo deals are counted on both sides, and all are in sync.
    await page.goto(`${worker.url}/console/report?account=acme`);
    const report = page.locator("section.pipeline-report").first();
    expect(await report.locator("svg").count()).toBe(1);
    const counts = await report
      .locator("tbody tr")
      .evaluateAll((trs) => trs.map((tr) => [tr.children[1]?.textContent ?? "", tr.children[3]?.textContent ?? ""]));
    const sum = (col: 0 | 1) => counts.reduce((n, r) => n + Number((r[col] ?? "0").replace(/,/g, "")), 0);
    expect(sum(0)).toBeGreaterThan(0);
    expect(sum(0)).toBe(sum(1));
    expect(await report.locator('[id^="out-of-sync-"]').textContent()).toBe("0");
  });

  it("happy: map a custom field with a value map and an owner by picking from lists; the sync applies the value map", async () => {
    await page.goto(`${worker.url}/console/mapping?account=acme`);
    // The add row: the 4Degrees field and a HighLevel field of the same type, by name.
    const addRow = page.locator("#custom-fields tr[data-field-row]").last();
    await addRow.locator("select[name$='.fd']").selectOption({ label: "Round (single choice)" });
    await addRow.locator("select[name$='.hl']").selectOption({ label: "Round" });
    await Promise.all([page.waitForURL(/ok=/), page.click("#save-mapping")]);
    await expect.poll(() => page.textContent(".flash.ok")).toContain("Mapping saved");
    // Now the pair has a value map, prefilled by option name: "Growth" is left out, "Series B" sent as "Growth".
    const vm = page.locator('table[data-valuemap="f_round"]');
    await vm.locator('tr:has(input[value="Growth"])').locator("select").selectOption({ label: "— not mapped —" });
    await vm.locator('tr:has(input[value="Series B"])').locator("select").selectOption({ label: "Growth" });
    await vm.locator('tr:has(input[value="Series A"])').locator("select").selectOption({ label: "— not mapped —" });
    // The owner map: the first two 4Degrees users swap HighLevel users; a default owner for the rest.
    const rows = page.locator("#owners tbody tr");
    const prefilled = async (i: number) => (await rows.nth(i).locator("select option:checked").textContent()) ?? "";
    const [first, second] = [await prefilled(0), await prefilled(1)];
    expect(first).not.toMatch(/^—/);
    await rows.nth(0).locator("select").selectOption({ label: second });
    await rows.nth(1).locator("select").selectOption({ label: first });
    await page.locator("select[name='defaultOwner.hl']").selectOption({ label: first });
    await Promise.all([
      page.waitForResponse((r) => r.url().includes("/console/mapping") && r.request().method() === "POST"),
      page.click("#save-mapping"),
    ]);
    await page.waitForLoadState();
    const flash = (await page.textContent(".flash")) ?? "";
    expect(flash, (await page.locator(".fielderror").allTextContents()).join("; ")).toContain("Mapping saved");
    await expect.poll(() => page.textContent('[data-unmapped="f_round"]')).toContain("“Series A”");
    await shot("20-mapping-fields-owners", "console-mapping");

    const saved = SavedMapping.parse(
      await (
        await fetch(`${worker.url}/api/accounts/acme/mapping`, { headers: { authorization: `Bearer ${adminToken}` } })
      ).json(),
    ).mapping;
    const round = saved.fields.find((f) => f.key === "f_round");
    expect(round?.valueMap).toContainEqual({ fourdegrees: "Series B", highlevel: "Growth" });
    expect(round?.valueMap.some((v) => v.fourdegrees === "Series A")).toBe(false);
    // Every row is saved as shown: the email prefills of the first save and the swap of the second.
    expect(saved.users.length).toBeGreaterThanOrEqual(2);
    expect(new Set(saved.users.map((u) => u.highlevelUserId)).size).toBe(saved.users.length);
    expect(saved.defaultOwner.highlevel).toBeTruthy();

    // A 4Degrees deal set to "Series B" reaches HighLevel as "Growth".
    const target = await pickStageMove();
    const fdRound = FourFields.parse(
      await sandboxCall(
        "GET",
        `/4degrees/v1/pipelines/${saved.pipelines[0]?.fourdegreesPipelineId}/fields`,
        undefined,
        {
          authorization: `Bearer ${fourDegreesKey}`,
        },
      ),
    ).data.find((f) => f.name === "Round");
    const roundId = fdRound?.id ?? "";
    const hlRound = async () => {
      const all = HlOppFields.parse(await sandboxCall("GET", "/_sandbox/highlevel/opportunities")).opportunities;
      const opp = all.find((o) => o.id === target.oppId);
      return opp?.customFields.find((f) => f.id === round?.highlevelFieldId)?.fieldValue ?? null;
    };
    // A demo deal may already be in "Series B" (setting it again changes nothing): move it off first.
    const deal = FourDealFields.parse(await sandboxCall("GET", `/_sandbox/4degrees/deals/${target.dealId}`));
    if (deal.fields[roundId] === "Series B") {
      await sandboxCall("PATCH", `/_sandbox/4degrees/deals/${target.dealId}`, { fields: { [roundId]: "Seed" } });
      await expect.poll(hlRound, { timeout: 60_000, interval: 500 }).toBe("Seed");
    }
    await sandboxCall("PATCH", `/_sandbox/4degrees/deals/${target.dealId}`, { fields: { [roundId]: "Series B" } });
    await expect
      .poll(hlRound, { timeout: 60_000, interval: 500 })
      .toBe("Growth")
      .catch(async (err: unknown) => {
        // What the sync did instead, for the failure message.
        await page.goto(`${worker.url}/console/activity?account=acme&record=${target.dealId}`);
        throw new Error(`${String(err)}\n${(await page.locator("main").textContent()) ?? ""}`);
      });
  }, 120_000);
});

const SavedMapping = z.object({
  mapping: z.object({
    pipelines: z.array(z.object({ fourdegreesPipelineId: z.string() })),
    fields: z.array(
      z.object({
        key: z.string(),
        highlevelFieldId: z.string(),
        valueMap: z.array(z.object({ fourdegrees: z.string(), highlevel: z.string() })),
      }),
    ),
    users: z.array(z.object({ fourdegreesUserId: z.string(), highlevelUserId: z.string() })),
    defaultOwner: z.object({ highlevel: z.string().optional(), fourdegrees: z.string().optional() }),
  }),
});
const FourDealFields = z.object({ fields: z.record(z.string(), z.unknown()) });
const FourFields = z.object({ data: z.array(z.object({ id: z.string(), name: z.string() })) });
const HlOppFields = z.object({
  opportunities: z.array(
    z.object({
      id: z.string(),
      customFields: z.array(z.object({ id: z.string(), fieldValue: z.unknown() })).default([]),
    }),
  ),
});

/** The Activity table's rows on the current page, newest first. */
async function eventRows(): Promise<Array<{ kind: string; direction: string; outcome: string; what: string }>> {
  return page.locator("table.events tbody tr").evaluateAll((trs) =>
    trs.map((tr) => {
      const cell = (i: number) => (tr.children[i]?.textContent ?? "").trim();
      return {
        kind: cell(1),
        direction: tr.children[2]?.getAttribute("data-direction") ?? "",
        outcome: cell(3),
        what: cell(5),
      };
    }),
  );
}

// ---------- sandbox helpers ----------

async function sandboxCall(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const res = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const MappingAnswer = z.object({
  mapping: z.object({
    pipelines: z.array(
      z.object({
        fourdegreesPipelineId: z.string(),
        highlevelPipelineId: z.string(),
        stages: z.array(z.object({ fourdegrees: z.string(), highlevel: z.string() })),
      }),
    ),
  }),
});
const FourDeals = z.object({
  deals: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      pipeline_id: z.string(),
      stage_id: z.string(),
      archived_at: z.string().nullable().optional(),
    }),
  ),
});
const FourPipelines = z.object({
  data: z.array(z.object({ id: z.string(), stages: z.array(z.object({ id: z.string(), name: z.string() })) })),
});
const HlTasks = z.object({ tasks: z.array(z.object({ id: z.string(), title: z.string() })) });
const HlOpps = z.object({
  opportunities: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      pipelineStageId: z.string().nullable().optional(),
      status: z.string(),
    }),
  ),
});

/** The HighLevel stage of an opportunity, read from the sandbox. */
async function hlStageOf(oppId: string): Promise<string | null> {
  const all = HlOpps.parse(await sandboxCall("GET", "/_sandbox/highlevel/opportunities")).opportunities;
  return all.find((o) => o.id === oppId)?.pipelineStageId ?? null;
}

/**
 * A linked, open demo deal and a mapped stage to move it to (each call picks a different deal):
 * its 4Degrees id, the HighLevel opportunity it is linked to, and the stage pair before and after.
 */
const moved = new Set<string>();
async function pickStageMove() {
  const res = await fetch(`${worker.url}/api/accounts/acme/mapping`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  const pair = MappingAnswer.parse(await res.json()).mapping.pipelines[0];
  if (!pair || pair.stages.length < 2) throw new Error("the saved mapping has fewer than two stage pairs");
  const deals = FourDeals.parse(await sandboxCall("GET", "/_sandbox/4degrees/deals")).deals;
  const opps = HlOpps.parse(await sandboxCall("GET", "/_sandbox/highlevel/opportunities")).opportunities;
  const pipelines = FourPipelines.parse(
    await sandboxCall("GET", "/4degrees/v1/pipelines", undefined, { authorization: `Bearer ${fourDegreesKey}` }),
  ).data;
  const stageName = (id: string) => pipelines.flatMap((p) => p.stages).find((s) => s.id === id)?.name ?? id;
  for (const deal of deals) {
    const from = pair.stages.find((s) => s.fourdegrees === deal.stage_id);
    const opp = opps.find((o) => o.name === deal.name && o.status === "open");
    if (
      moved.has(deal.id) ||
      deal.archived_at ||
      deal.pipeline_id !== pair.fourdegreesPipelineId ||
      !from ||
      !opp ||
      opp.pipelineStageId !== from.highlevel
    )
      continue;
    const to = pair.stages.find((s) => s !== from);
    if (!to) continue;
    moved.add(deal.id);
    return {
      dealId: deal.id,
      oppId: opp.id,
      fromStage: { ...from, name: stageName(from.fourdegrees) },
      toStage: { ...to, name: stageName(to.fourdegrees) },
    };
  }
  throw new Error("no linked open demo deal in a mapped stage");
}
