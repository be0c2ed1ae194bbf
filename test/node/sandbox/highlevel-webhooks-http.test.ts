/**
 * HighLevel sandbox webhooks over real HTTP (sandbox/server.ts on a free port, receivers on
 * node:http): per-subscriber location scoping through the documented control API, next to an
 * unscoped subscriber (the `npm start` way) that keeps receiving every event. Manual delivery mode,
 * so each flush delivers what is due and nothing depends on timing.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSandbox, type RunningSandbox } from "./helpers.ts";

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

let sb: RunningSandbox;
let receiver: Server;
let base: string;
const hits: Hit[] = [];

beforeAll(async () => {
  sb = await startTestSandbox();
  receiver = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString("utf8")));
    req.on("end", () => {
      hits.push({ path: req.url ?? "", headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  await sb.control("PUT", "/webhooks/mode", { mode: "manual" });
});

afterAll(async () => {
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await sb?.close();
});

/** The events each receiver path got, as `type@locationId`. */
const byPath = (path: string) =>
  hits
    .filter((h) => h.path === path)
    .map((h) => {
      const location = h.body.locationId;
      return `${String(h.body.type)}@${typeof location === "string" ? location : `company:${String(h.body.companyId)}`}`;
    });

describe("HighLevel sandbox webhooks over HTTP: per-subscriber scoping", () => {
  it("happy: scoped subscribers get their location's (or their installed locations') events; an unscoped one gets everything", async () => {
    const d = sb.demo;
    await sb.control("POST", "/webhooks/subscribers", { url: `${base}/all` });
    await sb.control("POST", "/webhooks/subscribers", { url: `${base}/main`, locationId: d.locationId });
    await sb.control("POST", "/webhooks/subscribers", { url: `${base}/europe`, locationId: d.otherLocationId });
    await sb.control("POST", "/webhooks/subscribers", { url: `${base}/installed`, installed: true });
    const listed = await sb.control<{ subscriptions: Array<Record<string, unknown>> }>("GET", "/webhooks");
    expect(listed.subscriptions).toEqual(
      expect.arrayContaining([
        { url: `${base}/all` },
        { url: `${base}/main`, locationId: d.locationId },
        { url: `${base}/installed`, installed: true },
      ]),
    );

    const { contact: europe } = await sb.control<{ contact: { id: string } }>("POST", "/contacts", {
      locationId: d.otherLocationId,
      firstName: "Eva",
      email: `eva-${Date.now()}@eu.example`,
    });
    await sb.control("POST", `/contacts/${europe.id}/notes`, { body: "Europe note" });
    await sb.control("POST", `/contacts/${d.contactIds[0]}/notes`, { body: "Main note" });
    await sb.control("POST", "/oauth/connect", { locationId: d.otherLocationId });
    await sb.control("POST", `/contacts/${europe.id}/notes`, { body: "Europe note, app installed" });
    await sb.control("POST", "/webhooks/flush");

    expect(byPath("/all")).toEqual([
      `NoteCreate@${d.otherLocationId}`,
      `NoteCreate@${d.locationId}`,
      `INSTALL@${d.otherLocationId}`,
      `NoteCreate@${d.otherLocationId}`,
    ]);
    expect(byPath("/main")).toEqual([`NoteCreate@${d.locationId}`]);
    expect(byPath("/europe")).toEqual([
      `NoteCreate@${d.otherLocationId}`,
      `INSTALL@${d.otherLocationId}`,
      `NoteCreate@${d.otherLocationId}`,
    ]);
    expect(byPath("/installed")).toEqual([`INSTALL@${d.otherLocationId}`, `NoteCreate@${d.otherLocationId}`]);
    expect(hits.find((h) => h.path === "/installed" && h.body.type === "NoteCreate")?.body.body).toBe(
      "Europe note, app installed",
    );
    for (const h of hits) expect(h.headers["x-ghl-signature"]).toEqual(expect.any(String));
  });

  it("error: an unknown location or agency is a 404, a malformed scope a 400 — never a 5xx", async () => {
    const post = (body: unknown) =>
      fetch(`${sb.url}/_sandbox/highlevel/webhooks/subscribers`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post({ url: `${base}/x`, locationId: "noSuchLocation000000" })).status).toBe(404);
    expect((await post({ url: `${base}/x`, companyId: "noSuchCompany0000000" })).status).toBe(404);
    for (const bad of [
      { url: `${base}/x`, installed: 1 },
      { url: `${base}/x`, locationId: 5 },
      { url: `${base}/x`, scope: "all" },
      { locationId: sb.demo.locationId },
      "just text",
    ]) {
      const res = await post(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    const { subscribers } = await sb.control<{ subscribers: string[] }>("GET", "/webhooks");
    expect(subscribers).not.toContain(`${base}/x`);
  });
});
