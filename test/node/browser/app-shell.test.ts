/**
 * The sandbox's app shell in Chromium: a Custom Page on another origin, written as HighLevel's docs
 * write one (post REQUEST_USER_DATA to the parent, send the payload to its backend, which decrypts
 * it with src/highlevel/sso.ts), framed by the shell for a chosen location and user.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Frame, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandbox, type StartedSandbox } from "../../../sandbox/server.ts";
import type { DemoData } from "../../../sandbox/highlevel/index.ts";
import { decryptUserContext } from "../../../src/highlevel/sso.ts";
import { ROOT } from "../../../scripts/lib/processes.ts";
import { launchChromium } from "./chromium.ts";

const SECRET = "browser-test-shared-secret";
const SHOTS = resolve(ROOT, "test-output/screenshots");

/** The Custom Page: HighLevel's documented getUserData(), then shows what its backend decrypted. */
const CUSTOM_PAGE = `<!doctype html><html><body><h1>Custom Page</h1><pre id="result">waiting</pre><script>
(async () => {
  const payload = await new Promise((resolve) => {
    window.parent.postMessage({ message: "REQUEST_USER_DATA" }, "*");
    const handler = ({ data }) => {
      if (data && data.message === "REQUEST_USER_DATA_RESPONSE") {
        window.removeEventListener("message", handler);
        resolve(data.payload);
      }
    };
    window.addEventListener("message", handler);
  });
  const res = await fetch("/decrypt", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ encryptedData: payload }),
  });
  document.getElementById("result").textContent = res.status + " " + (await res.text());
})();
</script></body></html>`;

let sandbox: StartedSandbox;
let demo: DemoData;
let customPage: Server;
let customPageUrl = "";
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  sandbox = await startSandbox({ port: 0, seedDemo: true, settings: { HIGHLEVEL_SSO_KEY: SECRET } });
  const seeded = await fetch(`${sandbox.url}/_sandbox/highlevel/seed`, { method: "POST" });
  demo = ((await seeded.json()) as { demo: DemoData }).demo;
  customPage = createServer((req, res) => {
    if (req.method === "POST" && req.url === "/decrypt") {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        const { encryptedData } = JSON.parse(body) as { encryptedData: string };
        decryptUserContext(encryptedData, SECRET).then(
          (context) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(context)),
          (err: Error) => {
            res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: err.name }));
          },
        );
      });
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(CUSTOM_PAGE);
  });
  await new Promise<void>((ok) => customPage.listen(0, "127.0.0.1", ok));
  customPageUrl = `http://127.0.0.1:${(customPage.address() as AddressInfo).port}/`;
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await sandbox?.close();
  await new Promise<void>((ok) => (customPage ? customPage.close(() => ok()) : ok()));
});

async function framedResult(query: Record<string, string>): Promise<string> {
  const params = new URLSearchParams({ app: customPageUrl, ...query });
  await page.goto(`${sandbox.url}/_sandbox/highlevel/app-shell?${params}`);
  const frame: Frame = (await (await page.waitForSelector("iframe#custom-page")).contentFrame())!;
  await expect.poll(() => frame.textContent("#result")).not.toBe("waiting");
  return (await frame.textContent("#result"))!;
}

describe("app shell in Chromium", () => {
  it("answers the framed Custom Page's REQUEST_USER_DATA; its backend decrypts the chosen location user", async () => {
    const result = await framedResult({ locationId: demo.locationId, userId: demo.userIds[1]! });
    expect(result.startsWith("200 ")).toBe(true);
    expect(JSON.parse(result.slice(4))).toEqual({
      userId: demo.userIds[1],
      companyId: demo.companyId,
      role: "user",
      type: "location",
      activeLocation: demo.locationId,
      userName: "Priya Shah",
      email: "priya.shah@acmecapital.example",
      isAgencyOwner: false,
    });
    await expect.poll(() => page.textContent("#sso-log")).toBe("REQUEST_USER_DATA answered 1×");
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, "highlevel-app-shell.png") });
  });

  it("switching to the other sub-account through the pickers gives that location's context", async () => {
    await framedResult({ locationId: demo.locationId, userId: demo.userIds[0]! });
    await page.selectOption("select[name=locationId]", demo.otherLocationId);
    await Promise.all([page.waitForURL(/locationId=/), page.click("header button[type=submit]")]);
    const frame = (await (await page.waitForSelector("iframe#custom-page")).contentFrame())!;
    await expect.poll(() => frame.textContent("#result")).not.toBe("waiting");
    const result = (await frame.textContent("#result"))!;
    const context = JSON.parse(result.slice(4)) as Record<string, unknown>;
    expect(context).toMatchObject({ userId: demo.userIds[0], activeLocation: demo.otherLocationId, type: "location" });
  });
});
