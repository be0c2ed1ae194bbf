/**
 * Steps the browser tests share: opening the Worker's Custom Page inside the sandbox's HighLevel app
 * shell (and the frame it lands in), the operator's token sign-in, screenshots (test-output/ always,
 * docs/screenshots/ with DOCS_SCREENSHOTS=1), and the id-only label check on a rendered page.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Frame, Page } from "playwright-core";
import { idOnlyLabels } from "../../id-labels.ts";
import { ROOT } from "../../../scripts/lib/processes.ts";
import type { BrowserStack } from "./stack.ts";

const SHOTS = resolve(ROOT, "test-output/screenshots");
const DOCS_SHOTS = resolve(ROOT, "docs/screenshots");

/** A page showing the app shell, and the frame holding the Worker's Custom Page. */
export interface ShellView {
  page: Page;
  frame: Frame;
}

/**
 * Opens the app shell for `query` (`locationId`, `userId`, `userType`) in a fresh browser context,
 * framing the Worker's `/embed`, and resolves once HighLevel's sign-in has landed on `/embed/home`.
 */
export async function openAppShell(stack: BrowserStack, query: Record<string, string>): Promise<ShellView> {
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const params = new URLSearchParams({ app: `${stack.worker.url}/embed`, ...query });
  await page.goto(`${stack.sandbox.url}/_sandbox/highlevel/app-shell?${params.toString()}`);
  const frame = await (await page.waitForSelector("iframe#custom-page")).contentFrame();
  if (!frame) throw new Error("the app shell's iframe has no frame");
  await frame.waitForURL(/\/embed\/home/);
  return { page, frame };
}

/**
 * Clicks `selector` in `frame` and waits for the navigation it causes to land on a URL matching `url`
 * (a form post and its redirect), even when the frame's current URL already matches.
 */
export async function clickAndWait(frame: Frame, selector: string, url: RegExp): Promise<void> {
  const landed = frame.page().waitForEvent("framenavigated", { predicate: (f) => f === frame && url.test(f.url()) });
  await Promise.all([landed, frame.click(selector)]);
  await frame.waitForLoadState();
}

/** Signs the operator in with ADMIN_TOKEN on the console's login page (top level, as the operator works). */
export async function operatorSignIn(page: Page, workerUrl: string, token: string, next?: string): Promise<void> {
  const query = next ? `?next=${encodeURIComponent(next)}` : "";
  await page.goto(`${workerUrl}/console/login${query}`);
  await page.fill("input[name=token]", token);
  await Promise.all([page.waitForURL(/\/console\/(?!login)/), page.click("button[type=submit]")]);
}

/**
 * Saves a screenshot as test-output/screenshots/<name>.png, and with DOCS_SCREENSHOTS=1 and `docs`
 * also as docs/screenshots/<name>.png (or `<docs>.png` when `docs` is a name). With `frame`, the
 * viewport first grows to the framed page's height, so the app shell shows the whole Custom Page
 * rather than its first screen.
 */
export async function screenshot(
  page: Page,
  name: string,
  o: { frame?: Frame; docs?: boolean | string } = {},
): Promise<void> {
  const viewport = page.viewportSize();
  if (o.frame && viewport) {
    const inner = await o.frame.evaluate(() => document.documentElement.scrollHeight);
    const chrome = await page.evaluate(() => document.querySelector("header")?.getBoundingClientRect().height ?? 0);
    await page.setViewportSize({ width: viewport.width, height: Math.min(Math.ceil(inner + chrome) + 4, 4000) });
    // The framed page paints its newly visible part on the next frames, not at once.
    await o.frame.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  }
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  if (o.docs && process.env["DOCS_SCREENSHOTS"] === "1") {
    mkdirSync(DOCS_SHOTS, { recursive: true });
    await page.screenshot({ path: join(DOCS_SHOTS, `${o.docs === true ? name : o.docs}.png`), fullPage: true });
  }
  if (o.frame && viewport) await page.setViewportSize(viewport);
}

/** The id-only labels on what `target` (a page or a frame) shows now; [] when it speaks in names. */
export async function idLabelsShown(target: Page | Frame): Promise<string[]> {
  return idOnlyLabels(await target.content());
}
