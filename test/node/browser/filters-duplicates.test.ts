/**
 * Browser test of "Map without code" — which deals sync and duplicates: in Chromium, against the
 * Worker under `wrangler dev` and the sandbox over real HTTP, an operator sets a filter by picking
 * stages, sees its live count before saving, saves it, then links a possible duplicate by hand
 * from the review list. Screenshots go to test-output/screenshots/ (filters.png and duplicates.png
 * are the ones in docs/screenshots/).
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type StartedSandbox } from "../../../sandbox/server.ts";
import { connectDemo } from "../../../scripts/lib/demo.ts";
import { ROOT, type RunningWorker } from "../../../scripts/lib/processes.ts";
import { startBrowserStack, type BrowserStack } from "./stack.ts";

const SHOTS = resolve(ROOT, "test-output/screenshots");
/** A 4Degrees demo deal; two HighLevel opportunities of the same name make it a possible match. */
const TWIN = "Marlow & Finch — Pre-seed";
let sandbox: StartedSandbox;
let worker: RunningWorker;
let stack: BrowserStack | undefined;
let browser: Browser;
let page: Page;
let adminToken = "";

async function shot(name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function call(url: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<unknown> {
  const res = await fetch(url, {
    method: init.method ?? "GET",
    headers: {
      "content-type": "application/json",
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url} → ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const Backfill = z.object({ backfill: z.object({ state: z.string() }).nullable() });
const Links = z.object({ links: z.array(z.object({ fdDealId: z.string(), hlOpportunityId: z.string() })) });

beforeAll(async () => {
  stack = await startBrowserStack("filters");
  ({ browser, sandbox, worker } = stack);
  adminToken = stack.devVar("ADMIN_TOKEN");
  // Two look-alikes in HighLevel before the Worker hears of anything: the backfill cannot choose.
  for (let i = 0; i < 2; i++)
    await call(`${sandbox.url}/_sandbox/highlevel/opportunities`, {
      method: "POST",
      body: { name: TWIN, status: "open", monetaryValue: 250_000 },
    });
  await connectDemo({ sandboxUrl: sandbox.url, workerUrl: worker.url, backfill: true });
  // Waits for the bootstrap's backfill (expect.poll is for tests only).
  for (let i = 0; ; i++) {
    const run = Backfill.parse(await call(`${worker.url}/api/accounts/demo/backfill`, { token: adminToken }));
    if (run.backfill?.state === "done") break;
    if (i > 240) throw new Error(`the backfill did not finish: ${run.backfill?.state ?? "none"}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${worker.url}/console/login`);
  await page.fill("input[name=token]", adminToken);
  await Promise.all([page.waitForURL(/\/console\//), page.click("button[type=submit]")]);
}, 240_000);

afterAll(async () => {
  await stack?.stop();
});

describe("which deals sync and duplicates in Chromium", () => {
  it("happy: pick stages and a minimum value by name, see the live count, save the filter", async () => {
    await page.goto(`${worker.url}/console/filters?account=demo`);
    const form = page.locator("#filter-0");
    await form.locator("label", { hasText: "Sourced" }).locator("input").check();
    await form.locator("label", { hasText: "Due Diligence" }).locator("input").check();
    await form.locator("input[name=minValue]").fill("100000");
    await Promise.all([page.waitForURL(/\/console\/filters\/preview/), page.click("#preview-button-0")]);
    const count = Number((await page.locator("#preview-0 [data-testid=preview-selected]").textContent())?.trim());
    expect(count).toBeGreaterThan(0);
    expect(await page.textContent("#preview-0")).toMatch(/\d+ of \d+/);
    // The preview kept the choices, so saving saves what was counted.
    expect(await page.locator("#filter-0 input[name=minValue]").inputValue()).toBe("100000");
    await shot("filters");
    await Promise.all([page.waitForURL(/ok=/), page.click("#save-filter-0")]);
    expect(await page.textContent(".flash.ok")).toContain("Filter saved.");
    expect(await page.locator("#filter-0 label", { hasText: "Sourced" }).locator("input").isChecked()).toBe(true);
    // Saving the Mapping page (which has no filter fields) keeps the filter.
    await page.goto(`${worker.url}/console/mapping?account=demo`);
    await page.click("#save-mapping");
    await expect.poll(() => page.textContent("body")).toContain("Mapping saved");
    await page.goto(`${worker.url}/console/filters?account=demo`);
    expect(await page.locator("#filter-0 label", { hasText: "Sourced" }).locator("input").isChecked()).toBe(true);
    expect(await page.locator("#filter-0 input[name=minValue]").inputValue()).toBe("100000");
  });

  it("happy: a possible duplicate is shown by name on both sides and linked by hand", async () => {
    await page.goto(`${worker.url}/console/duplicates?account=demo`);
    const rows = page.locator("#possible-matches tr.possible-match");
    await expect.poll(() => rows.count()).toBe(2);
    expect(await page.textContent("#possible-matches")).toContain(TWIN);
    await shot("duplicates");
    await Promise.all([page.waitForURL(/ok=/), rows.first().locator("button.link-by-hand").click()]);
    expect(await page.textContent(".flash.ok")).toContain("Linked by hand and synced");
    expect(await page.textContent("main")).toContain("No possible matches");
    expect(await page.textContent("#linked-pairs")).toContain(TWIN);
    const links = Links.parse(await call(`${worker.url}/api/accounts/demo/links?limit=500`, { token: adminToken }));
    expect(links.links.length).toBeGreaterThan(0);
  });
});
