/**
 * Browser tests of the operator console: Debian's Chromium (playwright-core) against the Worker
 * under `wrangler dev` and the sandbox over real HTTP, fresh state in a temp directory. Saves a
 * screenshot of each page under test-output/screenshots/ for reviewers.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type StartedSandbox } from "../../../sandbox/server.ts";
import { applyLocalMigrations, ensureDevVars, freePort, ROOT, startWorker, type RunningWorker } from "../../../scripts/lib/processes.ts";

const SHOTS = resolve(ROOT, "test-output/screenshots");
let sandbox: StartedSandbox;
let worker: RunningWorker;
let state: string;
let browser: Browser;
let page: Page;
let adminToken = "";
let fourDegreesKey = "";

function devVar(name: string): string {
  const line = readFileSync(resolve(ROOT, ".dev.vars"), "utf8").split("\n").find((l) => l.startsWith(`${name}=`));
  return (line?.slice(name.length + 1) ?? "").trim().replace(/^"(.*)"$/, "$1");
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ensureDevVars();
  adminToken = devVar("ADMIN_TOKEN");
  fourDegreesKey = devVar("FOURDEGREES_API_KEY");
  state = mkdtempSync(join(tmpdir(), "fdghl-browser-"));
  await applyLocalMigrations(state);
  sandbox = await startSandbox({ port: 0, seedDemo: true });
  worker = await startWorker({ port: await freePort(), sandboxUrl: sandbox.url, persistTo: state });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await sandbox?.close();
  if (state) rmSync(state, { recursive: true, force: true });
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
    await page.goto(`${worker.url}/console/login`);
    await page.fill("input[name=token]", adminToken);
    await Promise.all([page.waitForURL(/\/console\/connections/), page.click("button[type=submit]")]);
    const put = await fetch(`${worker.url}/api/accounts/acme/fourdegrees`, { method: "PUT", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ apiKey: fourDegreesKey, name: "Acme Ventures" }) });
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
    await shot("03-connections");
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

  it("happy: every page renders for the connected account (screenshots for review)", async () => {
    for (const [i, p] of ["activity", "problems", "backfill", "usage", "report", "notifications"].entries()) {
      const res = await page.goto(`${worker.url}/console/${p}?account=acme`);
      expect(res?.status(), p).toBe(200);
      expect(await page.textContent("h1")).toBeTruthy();
      await shot(`${String(i + 6).padStart(2, "0")}-${p}`);
    }
    // Usage reads the gate: the test connection made HighLevel calls, so a chart is drawn.
    await page.goto(`${worker.url}/console/usage?account=acme`);
    expect(await page.locator("section.card svg").count()).toBeGreaterThan(0);
  });
});
