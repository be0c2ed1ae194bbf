/**
 * The Worker inside HighLevel, in Chromium: every step runs in the sandbox's app shell, inside the
 * iframe that frames the Worker's Custom Page (`/embed`, under `wrangler dev`), signed in by the
 * shell's encrypted user context. The app is installed on location A from the Marketplace listing
 * (no `state`, so it lands unattached); a user of location A then walks the guided setup from
 * nothing to live, maps a custom field with a value map and an owner, sets a filter and sees its
 * count, and links a possible duplicate by hand, all by picking from lists. Location B's account
 * (seeded by the operator beforehand) never shows to that user, and naming it, on a page or at
 * `/api`, answers 403. The operator (ADMIN_TOKEN, top level) sees both. Each framed page passes the
 * id-only label check and is screenshotted (docs/screenshots/inside-highlevel-*.png with
 * DOCS_SCREENSHOTS=1; README "Inside HighLevel").
 */
import type { Frame, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { DemoData } from "../../../sandbox/highlevel/index.ts";
import { appShellUrl } from "../../../scripts/lib/processes.ts";
import { clickAndWait, idLabelsShown, openAppShell, operatorSignIn, screenshot, type ShellView } from "./shell.ts";
import { startBrowserStack, type BrowserStack } from "./stack.ts";

/** A 4Degrees demo deal; two HighLevel opportunities of the same name make it a possible match. */
const TWIN = "Marlow & Finch — Pre-seed";
let stack: BrowserStack;
let demo: DemoData;
let adminToken = "";
let fourDegreesKey = "";
/** Location A's user (Priya Shah, who has access to A only) inside the app shell. */
let shell: ShellView;
let page: Page;
let frame: Frame;

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${stack.worker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function sandboxPost(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${stack.sandbox.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path} → ${res.status}: ${(await res.text()).slice(0, 300)}`);
}

/** The framed page passes the id-only label check; its screenshot inside the app shell is `inside-highlevel-<name>`. */
async function look(name: string): Promise<void> {
  expect(await idLabelsShown(frame), `id-only labels on ${frame.url()}`).toEqual([]);
  await screenshot(page, `inside-highlevel-${name}`, { frame, docs: true });
}

/** Each setup step's state as the framed step list shows it. */
async function stepStates(): Promise<Record<string, string>> {
  const items = await frame
    .locator("#setup-steps li")
    .evaluateAll((lis) => lis.map((li) => [li.getAttribute("data-step") ?? "", li.getAttribute("data-state") ?? ""]));
  return Object.fromEntries(items);
}

/** Reloads the framed page (the frame's own navigation, not the shell's). */
const reloadFrame = () => frame.goto(frame.url());

const Backfill = z.object({ backfill: z.object({ state: z.string() }).nullable() });
const AccountAnswer = z.object({
  account: z.object({ testMode: z.boolean(), status: z.string(), locations: z.array(z.string()) }),
});
const SavedMapping = z.object({
  mapping: z.object({
    fields: z.array(
      z.object({ key: z.string(), valueMap: z.array(z.object({ fourdegrees: z.string(), highlevel: z.string() })) }),
    ),
    users: z.array(z.object({ fourdegreesUserId: z.string(), highlevelUserId: z.string() })),
    defaultOwner: z.object({ highlevel: z.string().optional() }),
  }),
});
const Links = z.object({ links: z.array(z.object({ fdDealId: z.string(), hlOpportunityId: z.string() })) });

beforeAll(async () => {
  // Marketplace-listing installs carry no `state`: this deployment accepts them (they land unattached).
  stack = await startBrowserStack("embed", { workerVars: { HIGHLEVEL_ALLOW_STATELESS_INSTALL: "true" } });
  adminToken = stack.devVar("ADMIN_TOKEN");
  fourDegreesKey = stack.devVar("FOURDEGREES_API_KEY");
  const seeded = await fetch(`${stack.sandbox.url}/_sandbox/highlevel/seed`, { method: "POST" });
  demo = ((await seeded.json()) as { demo: DemoData }).demo;
  // Two look-alikes in location A before the Worker hears of anything: the backfill cannot choose.
  for (let i = 0; i < 2; i++)
    await sandboxPost("/_sandbox/highlevel/opportunities", { name: TWIN, status: "open", monetaryValue: 250_000 });
  // Location B already has its account, set up by the operator.
  const other = await api("PUT", "/api/accounts/harbor", { name: "Harbor Capital", locations: [demo.otherLocationId] });
  expect(other.status).toBe(201);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("inside HighLevel's app shell, in Chromium", () => {
  it("npm start's banner URL is the app shell framing /embed for the demo location", () => {
    const url = new URL(appShellUrl(stack.sandbox.url, stack.worker.url, demo.locationId));
    expect(url.pathname).toBe("/_sandbox/highlevel/app-shell");
    expect(url.searchParams.get("app")).toBe(`${stack.worker.url}/embed`);
    expect(url.searchParams.get("locationId")).toBe(demo.locationId);
  });

  it("location A installs the app from the Marketplace listing: connected, attached to no account", async () => {
    const context = await stack.browser.newContext();
    const install = await context.newPage();
    // The listing's install link is the app's authorize URL (the one /oauth/install sends to) without a `state`.
    const started = await fetch(`${stack.worker.url}/oauth/install`, {
      redirect: "manual",
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const url = new URL(started.headers.get("location") ?? "");
    expect(`${url.origin}${url.pathname}`).toBe(`${stack.sandbox.url}/marketplace/v2/oauth/chooselocation`);
    url.searchParams.delete("state");
    await install.goto(url.toString());
    await install.check(`input[value="location:${demo.locationId}"]`);
    await Promise.all([install.waitForURL(/\/oauth\/callback/), install.click("button.approve")]);
    expect(await install.textContent("body")).toContain("not attached to any account");
    await context.close();
  });

  it("a user of location A walks the guided setup from nothing to live inside the app shell", async () => {
    shell = await openAppShell(stack, { locationId: demo.locationId, userId: demo.userIds[1]! });
    ({ page, frame } = shell);
    expect(await frame.textContent("#embed-who")).toContain("Priya Shah");
    expect(await frame.textContent("#embed-who")).toContain("Acme Capital Partners");
    // Harbor Capital (location B) is not offered: this location has no account yet.
    expect(await frame.locator("#embed-no-account").count()).toBe(1);
    expect(await frame.textContent("main")).not.toContain("Harbor Capital");
    await look("01-no-account");

    await clickAndWait(frame, "#embed-start-setup", /\/console\/setup/);
    expect(await stepStates()).toMatchObject({ account: "next", live: "todo" });
    expect(await frame.textContent("#setup-account-form")).toContain("Acme Capital Partners");
    await look("02-setup-account");
    await frame.fill("#setup-account-form input[name=name]", "Acme Ventures");
    await frame.fill("#setup-account-form input[name=id]", "acme");
    await clickAndWait(frame, "#setup-create-account", /ok=/);
    // The account syncs the user's own location, which the Marketplace install connected.
    expect(await stepStates()).toMatchObject({ account: "done", highlevel: "done", key: "next" });

    await frame.fill("#setup-key-form input[name=apiKey]", "4d_this_is_not_the_key");
    await frame.click("#setup-save-key");
    await expect.poll(() => frame.textContent(".flash.error")).toContain("4Degrees refused the key");
    await look("03-key-refused");
    await frame.fill("#setup-key-form input[name=apiKey]", fourDegreesKey);
    await clickAndWait(frame, "#setup-save-key", /ok=/);
    expect(await stepStates()).toMatchObject({ key: "done", pipelines: "next" });
    await look("04-pipelines");

    // Leave the wizard for the landing page and come back: it resumes at the same step.
    await frame.goto(`${stack.worker.url}/embed/home`);
    await clickAndWait(frame, 'tr[data-account="acme"] a.setup-link', /\/console\/setup/);
    await expect.poll(() => frame.locator("section.card h2").textContent()).toBe("Pick pipelines");

    await clickAndWait(frame, "#setup-save-pipelines", /ok=/);
    expect(await stepStates()).toMatchObject({ pipelines: "done", review: "next" });
    expect(await frame.textContent(".review-owners")).not.toContain("no HighLevel user with this email");
    await look("05-review");
    await clickAndWait(frame, "#setup-reviewed", /ok=/);

    await frame.click("#setup-run-test");
    await expect.poll(() => frame.textContent(".flash")).toContain("Test passed: nothing was written");
    // The reads name the location, as everything else does (ids only on hover).
    expect(await frame.textContent("#setup-reads")).toContain("Acme Capital Partners: one opportunity search");
    expect(await frame.textContent("#setup-reads")).not.toContain(demo.locationId);
    expect(await frame.locator("#setup-dry-run tr[data-direction=to_highlevel]").count()).toBe(5);
    expect(await frame.locator("#setup-dry-run tr[data-direction=to_fourdegrees]").count()).toBeGreaterThan(0);
    await look("06-test");

    await frame.goto(`${stack.worker.url}/console/setup?account=acme`);
    await clickAndWait(frame, "#setup-start-backfill", /ok=/);
    await frame.goto(`${stack.worker.url}/console/setup?account=acme&step=backfill`);
    await expect
      .poll(
        async () => {
          await reloadFrame();
          return (await stepStates())["backfill"];
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe("done");
    expect(await frame.textContent("#setup-backfill-progress")).toContain("done");
    await look("07-backfill-test-mode");

    await frame.goto(`${stack.worker.url}/console/setup?account=acme&step=live`);
    await clickAndWait(frame, "#setup-go-live", /ok=/);
    await expect.poll(() => frame.textContent("#setup-live")).toContain("is live");
    expect(Object.values(await stepStates())).toEqual(Array(8).fill("done"));
    await look("08-live");
    const account = AccountAnswer.parse(await (await api("GET", "/api/accounts/acme")).json()).account;
    expect(account).toEqual({ testMode: false, status: "active", locations: [demo.locationId] });
    // The live backfill that going live started links what exists (and finds the look-alikes).
    await expect
      .poll(
        async () => Backfill.parse(await (await api("GET", "/api/accounts/acme/backfill")).json()).backfill?.state,
        { timeout: 90_000, interval: 500 },
      )
      .toBe("done");
  }, 240_000);

  it("maps a custom field with a value map and an owner by picking from lists", async () => {
    await frame.goto(`${stack.worker.url}/console/mapping?account=acme`);
    const addRow = frame.locator("#custom-fields tr[data-field-row]").last();
    await addRow.locator("select[name$='.fd']").selectOption({ label: "Round (single choice)" });
    await addRow.locator("select[name$='.hl']").selectOption({ label: "Round" });
    await clickAndWait(frame, "#save-mapping", /ok=/);
    await expect.poll(() => frame.textContent(".flash.ok")).toContain("Mapping saved");
    // The value map, prefilled by option name: "Series B" sent as "Growth", "Series A" left out.
    const vm = frame.locator('table[data-valuemap="f_round"]');
    await vm.locator('tr:has(input[value="Growth"])').locator("select").selectOption({ label: "— not mapped —" });
    await vm.locator('tr:has(input[value="Series B"])').locator("select").selectOption({ label: "Growth" });
    await vm.locator('tr:has(input[value="Series A"])').locator("select").selectOption({ label: "— not mapped —" });
    // The owner map: the first two 4Degrees users swap HighLevel users; a default owner for the rest.
    const rows = frame.locator("#owners tbody tr");
    const prefilled = async (i: number) => (await rows.nth(i).locator("select option:checked").textContent()) ?? "";
    const [first, second] = [await prefilled(0), await prefilled(1)];
    expect(first).not.toMatch(/^—/);
    await rows.nth(0).locator("select").selectOption({ label: second });
    await rows.nth(1).locator("select").selectOption({ label: first });
    await frame.locator("select[name='defaultOwner.hl']").selectOption({ label: first });
    await clickAndWait(frame, "#save-mapping", /ok=/);
    const flash = (await frame.textContent(".flash")) ?? "";
    expect(flash, (await frame.locator(".fielderror").allTextContents()).join("; ")).toContain("Mapping saved");
    await expect.poll(() => frame.textContent('[data-unmapped="f_round"]')).toContain("“Series A”");
    await look("09-mapping");

    const saved = SavedMapping.parse(await (await api("GET", "/api/accounts/acme/mapping")).json()).mapping;
    const round = saved.fields.find((f) => f.key === "f_round");
    expect(round?.valueMap).toContainEqual({ fourdegrees: "Series B", highlevel: "Growth" });
    expect(round?.valueMap.some((v) => v.fourdegrees === "Series A")).toBe(false);
    expect(new Set(saved.users.map((u) => u.highlevelUserId)).size).toBe(saved.users.length);
    expect(saved.defaultOwner.highlevel).toBeTruthy();
  });

  it("sets a filter by picking stages and a minimum value, sees the live count, saves it", async () => {
    await frame.goto(`${stack.worker.url}/console/filters?account=acme`);
    const form = frame.locator("#filter-0");
    await form.locator("label", { hasText: "Sourced" }).locator("input").check();
    await form.locator("label", { hasText: "Due Diligence" }).locator("input").check();
    await form.locator("input[name=minValue]").fill("100000");
    await clickAndWait(frame, "#preview-button-0", /\/console\/filters\/preview/);
    const count = Number((await frame.locator("#preview-0 [data-testid=preview-selected]").textContent())?.trim());
    expect(count).toBeGreaterThan(0);
    expect(await frame.textContent("#preview-0")).toMatch(/\d+ of \d+/);
    // The preview kept the choices, so saving saves what was counted.
    expect(await frame.locator("#filter-0 input[name=minValue]").inputValue()).toBe("100000");
    await look("10-filters");
    await clickAndWait(frame, "#save-filter-0", /ok=/);
    expect(await frame.textContent(".flash.ok")).toContain("Filter saved.");
    // Saving the Mapping page (which has no filter fields) keeps the filter.
    await frame.goto(`${stack.worker.url}/console/mapping?account=acme`);
    await clickAndWait(frame, "#save-mapping", /ok=/);
    await frame.goto(`${stack.worker.url}/console/filters?account=acme`);
    expect(await frame.locator("#filter-0 label", { hasText: "Sourced" }).locator("input").isChecked()).toBe(true);
    expect(await frame.locator("#filter-0 input[name=minValue]").inputValue()).toBe("100000");
  });

  it("links a possible duplicate by hand, both records shown by name", async () => {
    await frame.goto(`${stack.worker.url}/console/duplicates?account=acme`);
    const rows = frame.locator("#possible-matches tr.possible-match");
    await expect.poll(() => rows.count()).toBe(2);
    expect(await frame.textContent("#possible-matches")).toContain(TWIN);
    await look("11-duplicates");
    await Promise.all([frame.waitForURL(/ok=/), rows.first().locator("button.link-by-hand").click()]);
    expect(await frame.textContent(".flash.ok")).toContain("Linked by hand and synced");
    expect(await frame.textContent("main")).toContain("No possible matches");
    expect(await frame.textContent("#linked-pairs")).toContain(TWIN);
    const links = Links.parse(await (await api("GET", "/api/accounts/acme/links?limit=500")).json()).links;
    expect(links.length).toBeGreaterThan(0);
  });

  it("the location A user cannot see or reach location B's account, on a page or at /api", async () => {
    await frame.goto(`${stack.worker.url}/embed/home`);
    const accounts = await frame
      .locator("#embed-accounts tbody tr")
      .evaluateAll((trs) => trs.map((r) => r.getAttribute("data-account")));
    expect(accounts).toEqual(["acme"]);
    expect(await frame.textContent('tr[data-account="acme"]')).toContain(`set (…${fourDegreesKey.slice(-4)})`);
    await look("location-user");
    // The landing page's key form calls the account's /api route from the frame: a wrong key is refused there.
    await frame.fill('form.fd-key[data-account="acme"] input[name=apiKey]', "4d_this_is_not_the_key");
    await frame.click('form.fd-key[data-account="acme"] button');
    await expect.poll(() => frame.textContent('form.fd-key[data-account="acme"] output')).toMatch(/Not saved \(400\)/);

    // Every account picker lists only this location's account.
    await frame.goto(`${stack.worker.url}/console/activity`);
    const options = await frame
      .locator("select[name=account] option")
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    expect(options).toEqual(["acme"]);
    expect(await frame.textContent("body")).not.toContain("Harbor Capital");
    // A URL naming B's account is refused with the reason, on every page.
    for (const p of ["activity", "setup", "mapping", "filters", "duplicates", "problems", "backfill"]) {
      const direct = await frame.goto(`${stack.worker.url}/console/${p}?account=harbor`);
      expect(direct?.status(), p).toBe(403);
      expect(await frame.textContent("#error-reason"), p).toBe("account harbor is outside this session's scope");
    }
    await look("12-other-location-refused");
    // …and at /api (from the landing page, whose CSP allows this origin's fetches; the console's allows none).
    await frame.goto(`${stack.worker.url}/embed/home`);
    const viaApi = await frame.evaluate(async () => {
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(path, {
          method,
          credentials: "same-origin",
          headers: { "content-type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const answer = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
        return { status: res.status, message: answer?.error?.message ?? "" };
      };
      const list = (await (await fetch("/api/accounts", { credentials: "same-origin" })).json()) as {
        accounts: Array<{ id: string }>;
      };
      return {
        ids: list.accounts.map((a) => a.id),
        read: await call("GET", "/api/accounts/harbor"),
        mapping: await call("GET", "/api/accounts/harbor/mapping"),
        key: await call("PUT", "/api/accounts/harbor/fourdegrees", { apiKey: "4d_someone_elses_key" }),
        links: await call("GET", "/api/accounts/harbor/links"),
      };
    });
    expect(viaApi.ids).toEqual(["acme"]);
    for (const [what, answer] of Object.entries(viaApi).filter(([k]) => k !== "ids")) {
      expect(answer, what).toEqual({ status: 403, message: expect.stringContaining("outside this session's scope") });
    }
    // A console form naming B's account is refused the same way.
    const form = await frame.evaluate(async () => {
      const res = await fetch("/console/setup/live", {
        method: "POST",
        credentials: "same-origin",
        body: new URLSearchParams({ account: "harbor" }),
      });
      return res.status;
    });
    expect(form).toBe(403);
    await page.context().close();
  });

  it("a user with access to both, opened in sub-account B, sees B's account there", async () => {
    const other = await openAppShell(stack, { locationId: demo.otherLocationId, userId: demo.userIds[0]! });
    const accounts = await other.frame
      .locator("#embed-accounts tbody tr")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-account")));
    expect(accounts).toEqual(["harbor"]);
    expect(await idLabelsShown(other.frame)).toEqual([]);
    await other.page.context().close();
  });

  it("the operator, signed in with ADMIN_TOKEN at the top level, sees both accounts", async () => {
    const context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const operator = await context.newPage();
    await operatorSignIn(operator, stack.worker.url, adminToken);
    const response = await operator.goto(`${stack.worker.url}/console/activity?account=harbor`);
    expect(response?.status()).toBe(200);
    const options = await operator
      .locator("select[name=account] option")
      .evaluateAll((o) => o.map((x) => (x as HTMLOptionElement).value));
    expect(options).toEqual(expect.arrayContaining(["acme", "harbor"]));
    await operator.goto(`${stack.worker.url}/console/connections`);
    expect(await operator.textContent("main")).toContain("Acme Ventures");
    expect(await operator.textContent("main")).toContain("Harbor Capital");
    expect(await idLabelsShown(operator)).toEqual([]);
    await screenshot(operator, "inside-highlevel-operator-connections");
    await context.close();
  });
});
