/**
 * The Problems page's "Alerts" and "Deletes on hold" parts (src/http/console/pages/held-deletes.tsx):
 * signed in, an operator sees the held deletes and the account's alerts, and approve one, discard
 * one and approve all decide exactly what they name, once; a cross-site POST decides nothing.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount } from "../../../src/store/accounts.ts";
import { recordAlertOnce } from "../../../src/store/alerts.ts";
import { getHeldDelete, holdDelete, listHeldDeletes } from "../../../src/store/held-deletes.ts";
import { consoleCookie } from "../helpers/console-session.ts";
import { useNetwork } from "../helpers/network.ts";

const BASE = "https://worker.test";
const ACC = "held-con";
let cookie = "";

const page = async () => {
  const res = await exports.default.fetch(`${BASE}/console/problems?account=${ACC}`, { headers: { cookie } });
  expect(res.status).toBe(200);
  return res.text();
};
const post = (path: string, form: Record<string, string>, origin = BASE) =>
  exports.default.fetch(`${BASE}/console/problems/held/${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
const flash = (res: Response) => decodeURIComponent((res.headers.get("location") ?? "").replaceAll("+", " "));
const stateOf = async (fd: string) => (await getHeldDelete(env.DB, ACC, fd))?.state;

describe("console: deletes on hold and alerts", () => {
  // The providers are unreachable here: the Mapping page says so and still validates the form.
  useNetwork({ "sandbox.test": () => new Response("unavailable", { status: 503 }) });

  beforeAll(async () => {
    cookie = await consoleCookie(BASE);
    await createAccount(env.DB, { id: ACC, name: "Held Co", locations: ["locHeldCon"] });
    for (const fd of ["d1", "d2", "d3"])
      await holdDelete(env.DB, {
        accountId: ACC,
        fdDealId: fd,
        hlOpportunityId: `o-${fd}`,
        hlLocationId: "locHeldCon",
        goneSide: "highlevel",
      });
    await recordAlertOnce(env.DB, ACC, "activity:deletes:1", {
      summary: "25 deletes this hour (baseline allows 10)",
      event: {},
    });
  });

  it("the page lists the held deletes, the guard's settings and the account's alerts", async () => {
    const html = await page();
    expect(html).toContain("Deletes on hold (3)");
    for (const fd of ["d1", "d2", "d3"]) expect(html).toContain(`data-held="${fd}"`);
    expect(html).toContain("more than 10 deletes, or more than 20 % of the pairs");
    expect(html).toContain("Alerts (1 in the last 7 days)");
    expect(html).toContain("25 deletes this hour (baseline allows 10)");
  });

  it("the Mapping form refuses a bad guard threshold next to its field, keeping what was typed", async () => {
    const bad = await exports.default.fetch(`${BASE}/console/mapping`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, origin: BASE, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ account: ACC, maxDeletes: "0", maxPercent: "150" }),
    });
    expect(bad.status).toBe(400);
    const text = await bad.text();
    expect(text).toContain('data-field="deleteGuard.maxDeletes"');
    expect(text).toContain('data-field="deleteGuard.maxPercent"');
    expect(text).toContain('name="maxDeletes" min="1" value="0"');
    expect(text).toContain('name="maxPercent" min="1" max="100" value="150"');
  });

  it("security: a cross-site POST decides nothing", async () => {
    const res = await post("approve", { account: ACC }, "https://evil.example");
    expect(res.status).toBe(403);
    expect(await listHeldDeletes(env.DB, ACC)).toHaveLength(3);
  });

  it("approve one, discard one, approve all: each decides what it names, once", async () => {
    const one = await post("approve", { account: ACC, id: "d1" });
    expect(one.status).toBe(303);
    expect(flash(one)).toContain("Approved 1 held delete(s)");
    expect(await stateOf("d1")).toBe("approved");
    expect(await stateOf("d2")).toBe("held");

    const again = await post("approve", { account: ACC, id: "d1" });
    expect(flash(again)).toContain("no delete of d1 is on hold");

    const discard = await post("discard", { account: ACC, id: "d2" });
    expect(flash(discard)).toContain("Discarded 1 held delete(s)");
    expect(await stateOf("d2")).toBe("discarded");
    expect(flash(await post("discard", { account: ACC }))).toContain("id: name the held delete");

    const all = await post("approve", { account: ACC });
    expect(flash(all)).toContain("Approved 1 held delete(s)");
    expect(await stateOf("d3")).toBe("approved");
    expect(await listHeldDeletes(env.DB, ACC)).toEqual([]);
    expect(flash(await post("approve", { account: ACC }))).toContain("No delete is on hold.");
    expect(await page()).toContain("Deletes on hold (0)");

    expect(flash(await post("approve", { account: "nobody" }))).toContain("account: choose an existing account");
  });
});
