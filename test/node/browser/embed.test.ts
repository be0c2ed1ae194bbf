/**
 * The Worker inside HighLevel, in Chromium: the sandbox's app shell frames the Worker's Custom Page
 * (`/embed`, under `wrangler dev`), answers its REQUEST_USER_DATA with the encrypted user context,
 * and the Worker signs that user in with a scoped session. A location user sees only the account of
 * the location the page is opened in; the operator (ADMIN_TOKEN) sees every account. The screenshot
 * test-output/screenshots/embed-location-user.png is the one in docs/screenshots/ (README "Inside HighLevel").
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Frame, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StartedSandbox } from "../../../sandbox/server.ts";
import type { DemoData } from "../../../sandbox/highlevel/index.ts";
import { appShellUrl, ROOT, type RunningWorker } from "../../../scripts/lib/processes.ts";
import { startBrowserStack, type BrowserStack } from "./stack.ts";

const SHOTS = resolve(ROOT, "test-output/screenshots");
let sandbox: StartedSandbox;
let worker: RunningWorker;
let stack: BrowserStack | undefined;
let browser: Browser;
let demo: DemoData;
let adminToken = "";
let fourDegreesKey = "";

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${worker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Opens the app shell for `query` in a fresh browser context; resolves with the page and the Worker's frame. */
async function openInShell(query: Record<string, string>): Promise<{ page: Page; frame: Frame }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const params = new URLSearchParams({ app: `${worker.url}/embed`, ...query });
  await page.goto(`${sandbox.url}/_sandbox/highlevel/app-shell?${params.toString()}`);
  const frame = (await (await page.waitForSelector("iframe#custom-page")).contentFrame())!;
  await frame.waitForURL(/\/embed\/home/);
  return { page, frame };
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startBrowserStack("embed");
  ({ browser, sandbox, worker } = stack);
  adminToken = stack.devVar("ADMIN_TOKEN");
  fourDegreesKey = stack.devVar("FOURDEGREES_API_KEY");
  const seeded = await fetch(`${sandbox.url}/_sandbox/highlevel/seed`, { method: "POST" });
  demo = ((await seeded.json()) as { demo: DemoData }).demo;
  // One account per sub-account of the demo agency.
  expect((await api("PUT", "/api/accounts/acme", { name: "Acme Ventures", locations: [demo.locationId] })).status).toBe(
    201,
  );
  const other = await api("PUT", "/api/accounts/harbor", { name: "Harbor Capital", locations: [demo.otherLocationId] });
  expect(other.status).toBe(201);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("inside HighLevel's app shell, in Chromium", () => {
  it("npm start's banner URL is the app shell framing /embed for the demo location", () => {
    const url = new URL(appShellUrl(sandbox.url, worker.url, demo.locationId));
    expect(url.pathname).toBe("/_sandbox/highlevel/app-shell");
    expect(url.searchParams.get("app")).toBe(`${worker.url}/embed`);
    expect(url.searchParams.get("locationId")).toBe(demo.locationId);
  });

  it("a location user is signed in by HighLevel's context and sees only that location's account", async () => {
    const { page, frame } = await openInShell({ locationId: demo.locationId, userId: demo.userIds[1]! });
    expect(await frame.textContent("#embed-who")).toContain("Priya Shah");
    const accounts = await frame
      .locator("#embed-accounts tbody tr")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-account")));
    expect(accounts).toEqual(["acme"]);
    await page.screenshot({ path: join(SHOTS, "embed-location-user.png"), fullPage: true });

    // The 4Degrees key, entered inside HighLevel, goes through the account's set-key route.
    expect(await frame.textContent('tr[data-account="acme"]')).toContain("not set");
    await frame.fill('form.fd-key[data-account="acme"] input[name=apiKey]', fourDegreesKey);
    await Promise.all([frame.waitForNavigation(), frame.click('form.fd-key[data-account="acme"] button')]);
    expect(await frame.textContent('tr[data-account="acme"]')).toContain(`set (…${fourDegreesKey.slice(-4)})`);

    // The console inside the frame: the picker lists only this account…
    await frame.goto(`${worker.url}/console/activity`);
    const options = await frame
      .locator("select[name=account] option")
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    expect(options).toEqual(["acme"]);
    // …and the other location's account is refused, on the page and through /api.
    const direct = await frame.goto(`${worker.url}/console/activity?account=harbor`);
    expect(direct?.status()).toBe(403);
    // Fetch from the embedded home page, whose CSP allows this origin's fetches (the console's allows none).
    await frame.goto(`${worker.url}/embed/home`);
    const viaApi = await frame.evaluate(async () => {
      const res = await fetch("/api/accounts/harbor", { credentials: "same-origin" });
      const list = (await (await fetch("/api/accounts", { credentials: "same-origin" })).json()) as {
        accounts: Array<{ id: string }>;
      };
      return { status: res.status, ids: list.accounts.map((a) => a.id) };
    });
    expect(viaApi).toEqual({ status: 403, ids: ["acme"] });
    await page.context().close();
  });

  it("the same user opened in the other sub-account sees that account instead", async () => {
    const { page, frame } = await openInShell({ locationId: demo.otherLocationId, userId: demo.userIds[0]! });
    const accounts = await frame
      .locator("#embed-accounts tbody tr")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-account")));
    expect(accounts).toEqual(["harbor"]);
    await page.context().close();
  });

  it("the operator, signed in with ADMIN_TOKEN, sees both accounts", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${worker.url}/console/login`);
    await page.fill("input[name=token]", adminToken);
    await Promise.all([page.waitForURL(/\/console\/connections/), page.click("button[type=submit]")]);
    const response = await page.goto(`${worker.url}/console/activity?account=harbor`);
    expect(response?.status()).toBe(200);
    const options = await page
      .locator("select[name=account] option")
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    expect(options).toEqual(expect.arrayContaining(["acme", "harbor"]));
    await context.close();
  });
});
