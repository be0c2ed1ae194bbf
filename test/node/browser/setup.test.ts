/**
 * The guided setup in Chromium, from nothing to a live account: the Worker under `wrangler dev`
 * and the sandbox over real HTTP (as `npm start` runs them), fresh state in a temp directory. The
 * operator signs in, names the account, connects HighLevel through the sandbox's OAuth page (and
 * comes back to the wizard), enters a wrong then the right 4Degrees key, picks the pipelines,
 * reviews them, runs the test (dry-run, nothing written), backfills in test mode and goes live.
 * Each step passes the id-only label check; its screenshot is written to test-output/screenshots/setup-*.png;
 * with DOCS_SCREENSHOTS=1 also to docs/screenshots/ (README "Guided setup"), so a plain test run leaves the
 * tree unchanged. The same walk inside HighLevel, as a location user, is embed.test.ts.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StartedSandbox } from "../../../sandbox/server.ts";
import type { DemoData } from "../../../sandbox/highlevel/index.ts";
import { type RunningWorker } from "../../../scripts/lib/processes.ts";
import { idLabelsShown, operatorSignIn, screenshot } from "./shell.ts";
import { startBrowserStack, type BrowserStack } from "./stack.ts";

let sandbox: StartedSandbox;
let worker: RunningWorker;
let stack: BrowserStack | undefined;
let browser: Browser;
let page: Page;
let demo: DemoData;
let adminToken = "";
let fourDegreesKey = "";

/** The page passes the id-only label check; its screenshot is setup-<name> (docs/screenshots/ too with DOCS_SCREENSHOTS=1). */
async function shot(name: string): Promise<void> {
  expect(await idLabelsShown(page), `id-only labels on ${page.url()}`).toEqual([]);
  await screenshot(page, `setup-${name}`, { docs: true });
}

/** Each step's state as the step list shows it. */
async function stepStates(): Promise<Record<string, string>> {
  const items = await page
    .locator("#setup-steps li")
    .evaluateAll((lis) => lis.map((li) => [li.getAttribute("data-step") ?? "", li.getAttribute("data-state") ?? ""]));
  return Object.fromEntries(items);
}

beforeAll(async () => {
  stack = await startBrowserStack("setup");
  ({ browser, sandbox, worker } = stack);
  adminToken = stack.devVar("ADMIN_TOKEN");
  fourDegreesKey = stack.devVar("FOURDEGREES_API_KEY");
  const seeded = await fetch(`${sandbox.url}/_sandbox/highlevel/seed`, { method: "POST" });
  demo = ((await seeded.json()) as { demo: DemoData }).demo;
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("guided setup in Chromium", () => {
  it("walks a new account from nothing to live, each step leaving and resuming through the page", async () => {
    await operatorSignIn(page, worker.url, adminToken, "/console/setup");
    expect(new URL(page.url()).pathname).toBe("/console/setup");
    expect(await stepStates()).toMatchObject({ account: "next", live: "todo" });
    await shot("1-account");

    await page.fill("#setup-account-form input[name=name]", "Acme Ventures");
    await page.fill("#setup-account-form input[name=id]", "acme");
    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-create-account")]);
    expect(await stepStates()).toMatchObject({ account: "done", highlevel: "next" });
    await shot("2-connect-highlevel");

    // Connect HighLevel: the sandbox's install page, then back to the wizard.
    await Promise.all([page.waitForURL(/chooselocation/), page.click("#setup-connect-highlevel")]);
    await Promise.all([page.waitForURL(/\/console\/setup\?account=acme/), page.click("button.approve")]);
    await page.selectOption("#setup-attach-form select[name=location]", demo.locationId);
    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-attach")]);
    expect(await stepStates()).toMatchObject({ highlevel: "done", key: "next" });

    await page.fill("#setup-key-form input[name=apiKey]", "4d_this_is_not_the_key");
    await page.click("#setup-save-key");
    await expect.poll(() => page.textContent(".flash.error")).toContain("4Degrees refused the key");
    await shot("3-key-refused");
    await page.fill("#setup-key-form input[name=apiKey]", fourDegreesKey);
    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-save-key")]);
    expect(await stepStates()).toMatchObject({ key: "done", pipelines: "next" });
    await shot("4-pipelines");

    // Leave the wizard and come back: it resumes at the same step.
    await page.goto(`${worker.url}/console/activity?account=acme`);
    await page.click('nav a[href^="/console/setup"]');
    await expect.poll(() => page.locator("section.card h2").textContent()).toBe("Pick pipelines");

    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-save-pipelines")]);
    expect(await stepStates()).toMatchObject({ pipelines: "done", review: "next" });
    // Owners by name on both sides, matched by email.
    expect(await page.textContent(".review-owners")).not.toContain("no HighLevel user with this email");
    await shot("5-review");
    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-reviewed")]);

    await page.click("#setup-run-test");
    await expect.poll(() => page.textContent(".flash")).toContain("Test passed: nothing was written");
    expect(await page.locator("#setup-dry-run tr[data-direction=to_highlevel]").count()).toBe(5);
    expect(await page.locator("#setup-dry-run tr[data-direction=to_fourdegrees]").count()).toBeGreaterThan(0);
    await shot("6-test");

    await page.goto(`${worker.url}/console/setup?account=acme`);
    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-start-backfill")]);
    await page.goto(`${worker.url}/console/setup?account=acme&step=backfill`);
    await expect
      .poll(
        async () => {
          await page.reload();
          return (await stepStates())["backfill"];
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe("done");
    expect(await page.textContent("#setup-backfill-progress")).toContain("done");
    await shot("7-backfill-test-mode");

    await page.goto(`${worker.url}/console/setup?account=acme&step=live`);
    await Promise.all([page.waitForURL(/ok=/), page.click("#setup-go-live")]);
    await expect.poll(() => page.textContent("#setup-live")).toContain("is live");
    const states = await stepStates();
    expect(Object.values(states)).toEqual(Array(8).fill("done"));
    const account = await fetch(`${worker.url}/api/accounts/acme`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const body = (await account.json()) as { account: { testMode: boolean; status: string } };
    expect(body.account).toMatchObject({ testMode: false, status: "active" });
    await shot("8-live");
  }, 240_000);
});
