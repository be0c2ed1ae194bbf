/**
 * The Filters and Duplicates console pages through the Worker's fetch (no browser): the form speaks
 * in names from the live lists, the preview counts without saving, bad input comes back as a flash
 * naming the field, and unlinking from the page deletes nothing. The browser walk is
 * test/node/browser/embed.test.ts (inside HighLevel's app shell).
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { consoleCookie } from "../helpers/console-session.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld } from "../sync/world.ts";

const routes: Record<string, RouteHandler> = { "worker.test": (r) => exports.default.fetch(r) };
useNetwork(routes);
const BASE = "http://worker.test";

describe("Filters and Duplicates pages", () => {
  it("names from the live lists, a preview that saves nothing, errors named by field, unlink keeps both records", async () => {
    const w = await createWorld(routes);
    const deal = newDeal(w, { name: "Page Co", stage: "Sourced", amountMinor: 2_000_00 });
    await w.settle();
    const oppId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    const cookie = await consoleCookie(BASE);
    const get = (path: string) => exports.default.fetch(`${BASE}${path}`, { headers: { cookie } });
    const post = (path: string, form: Array<[string, string]>) =>
      exports.default.fetch(`${BASE}${path}`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie, origin: BASE, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams([["account", ACCOUNT], ...form]),
      });
    const flash = (res: Response) => new URL(res.headers.get("location") ?? "", BASE).searchParams;

    const page = await (await get(`/console/filters?account=${ACCOUNT}`)).text();
    expect(page).toContain("Due Diligence");
    const [, alice] = [...w.sb.fourdegrees.store.users.values()];
    expect(page).toContain(alice?.name ?? "?");

    const preview = await post("/console/filters/preview", [
      ["pair", "0"],
      ["stage", w.fdStage("Sourced")],
    ]);
    expect(preview.status).toBe(200);
    const html = await preview.text();
    expect(html).toMatch(/data-testid="preview-selected">\d+</);
    expect((await w.account()).mapping?.pipelines[0]?.filter).toBeNull();

    const negative = await post("/console/filters/save", [
      ["pair", "0"],
      ["minValue", "-5"],
    ]);
    expect(negative.status).toBe(303);
    expect(flash(negative).get("error")).toMatch(/^minValue: /);
    const ghost = await post("/console/filters/save", [
      ["pair", "0"],
      ["owner", "no-such-user"],
    ]);
    expect(flash(ghost).get("error")).toContain("4Degrees user no-such-user does not exist");
    const saved = await post("/console/filters/save", [
      ["pair", "0"],
      ["minValue", "1000"],
    ]);
    expect(flash(saved).get("ok")).toContain("Filter saved.");
    expect((await w.account()).mapping?.pipelines[0]?.filter).toEqual({ minValue: 1000 });

    const dupes = await (await get(`/console/duplicates?account=${ACCOUNT}`)).text();
    expect(dupes).toContain("No possible matches");
    expect(dupes).toContain("Page Co");
    const unknown = await post("/console/duplicates/link", [
      ["fd", "no-such-deal"],
      ["hl", "no-such-opportunity"],
    ]);
    expect(flash(unknown).get("error")).toBe("4Degrees deal no-such-deal does not exist");
    const taken = await post("/console/duplicates/link", [
      ["fd", "no-such-deal"],
      ["hl", oppId],
    ]);
    expect(flash(taken).get("error")).toContain("is already linked");
    const keys = await post("/console/duplicates/match-keys", [["matchKeys", "external_id"]]);
    expect(flash(keys).get("ok")).toBe("Match keys saved.");
    expect((await w.account()).mapping?.matchKeys).toBe("external_id");
    const unlinked = await post("/console/duplicates/unlink", [["fd", deal.id]]);
    expect(flash(unlinked).get("ok")).toContain("Unlinked");
    expect(await w.linkOf("fourdegrees", deal.id)).toBeNull();
    expect(w.sb.highlevel.store.opportunities.has(oppId)).toBe(true);
    expect(w.sb.fourdegrees.deal(deal.id).archived_at).toBeNull();
  });
});
