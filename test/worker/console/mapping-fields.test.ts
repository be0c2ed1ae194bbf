/**
 * The Mapping page's custom fields and owners, posted as the form does, against both sandboxes:
 * validation errors name the fields, a saved value map is applied by the sync both ways, unmapped
 * options are shown on the page and reported as skipped, and the owner map (map, then email, then
 * the default owner) is what the engine assigns.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getAccount } from "../../../src/store/accounts.ts";
import { listEvents } from "../../../src/store/sync-events.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { consoleCookie } from "../helpers/console-session.ts";
import { ACCOUNT, createWorld, type World } from "../sync/world.ts";
import { newDeal } from "../sync/checks.ts";

const BASE = "http://worker.test";
const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** The form as the page posts it for the world's current mapping, plus `extra`. */
function mappingForm(w: World, extra: Record<string, string>): Record<string, string> {
  const m = w.mapping;
  const p = m.pipelines[0];
  if (!p) throw new Error("the world has no pipeline pair");
  const form: Record<string, string> = {
    account: ACCOUNT,
    "p.0.fd": p.fourdegreesPipelineId,
    "p.0.loc": p.highlevelLocationId,
    "p.0.hl": p.highlevelPipelineId,
    "p.0.won": p.wonStageId ?? "",
    "p.0.lost": p.lostStageId ?? "",
    notes: m.notes,
    abandonedAs: m.abandonedAs,
    currency: m.currency,
    closeDateFieldId: m.closeDateFieldId ?? "",
    externalIdFieldId: m.externalIdFieldId ?? "",
    conflictPolicy: "newest",
    deletePolicy: "archive",
  };
  for (const s of p.stages) form[`p.0.stage.${s.fourdegrees}`] = s.highlevel;
  for (const [k, v] of Object.entries(m.directions)) form[`dir.${k}`] = v;
  return { ...form, ...extra };
}

async function post(cookie: string, form: Record<string, string>) {
  return exports.default.fetch(`${BASE}/console/mapping`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, origin: BASE, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
}

/** The world with HighLevel's "Round" options spelled differently and a text field to mis-pick. */
async function setUp() {
  const w = await createWorld(routes);
  // Someone HighLevel does not have (the default owner's case), added before the user lists are cached.
  const stranger = w.sb.fourdegrees.store.addUser({ name: "Sam Stranger", email: "sam@elsewhere.example" });
  const fdRound = [...w.sb.fourdegrees.store.fields.values()].find((f) => f.name === "Round");
  const hlRound = [...w.sb.highlevel.store.customFields.values()].find((f) => f.name === "Round");
  if (!fdRound || !hlRound) throw new Error("the demo has no Round field");
  hlRound.picklistOptions = ["Pre-Seed", "Seed", "A", "B"];
  w.sb.highlevel.store.customFields.set("cf_notes_text", {
    id: "cf_notes_text",
    locationId: w.locationId,
    name: "Deal notes",
    fieldKey: "opportunity.deal_notes",
    dataType: "TEXT",
    model: "opportunity",
    position: 70,
    placeholder: "",
  });
  return { w, fdRound, hlRound, stranger, cookie: await consoleCookie(BASE) };
}

const roundMap = (fdId: string, hlId: string) => ({
  "f.0.present": "1",
  "f.0.fd": fdId,
  "f.0.hl": hlId,
  "f.0.dir": "both",
  "f.0.vm.0.fd": "Pre-seed",
  "f.0.vm.0.hl": "Pre-Seed",
  "f.0.vm.1.fd": "Seed",
  "f.0.vm.1.hl": "Seed",
  "f.0.vm.2.fd": "Series A",
  "f.0.vm.2.hl": "A",
  "f.0.vm.3.fd": "Series B",
  "f.0.vm.3.hl": "",
});

describe("console mapping: custom fields and owners without code", () => {
  it("lists both sides' fields by name, and rejects an incompatible pick or an unknown option by name", async () => {
    const { w, fdRound, cookie } = await setUp();
    const page = await (
      await exports.default.fetch(`${BASE}/console/mapping?account=${ACCOUNT}`, { headers: { cookie } })
    ).text();
    expect(page).not.toContain("JSON list");
    expect(page).toContain("Custom fields");
    expect(page).toMatch(/<option value="[^"]+"[^>]*>Round \(single choice\)<\/option>/);
    expect(page).toContain(">Deal notes</option>");

    const bad = await post(
      cookie,
      mappingForm(w, { "f.0.present": "1", "f.0.fd": fdRound.id, "f.0.hl": "cf_notes_text" }),
    );
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(html).toContain("4Degrees field “Round” (single choice) cannot map to HighLevel field “Deal notes” (text)");

    const hlRound = [...w.sb.highlevel.store.customFields.values()].find((f) => f.name === "Round")?.id ?? "";
    const unknown = await post(cookie, mappingForm(w, { ...roundMap(fdRound.id, hlRound), "f.0.vm.2.hl": "Series Z" }));
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("“Series Z” is not an option of HighLevel field “Round”");
    // The same HighLevel user for two 4Degrees users: the error names the user, not an id.
    const [u1, u2] = [...w.sb.fourdegrees.store.users.values()];
    const hlUser = [...w.sb.highlevel.store.users.values()].find((u) => u.email === u2?.email);
    const twice = await post(
      cookie,
      mappingForm(w, { [`u.${u1?.id}`]: hlUser?.id ?? "", [`u.${u2?.id}`]: hlUser?.id ?? "" }),
    );
    expect(twice.status).toBe(400);
    const twiceHtml = await twice.text();
    expect(twiceHtml).toMatch(/HighLevel user [^<]*\(priya\.shah@acmecapital\.example\) is mapped twice/);
    expect(twiceHtml).not.toContain(`HighLevel user ${hlUser?.id}`);
    expect((await getAccount(env.DB, ACCOUNT))?.mapping?.fields).toEqual([]);
  });

  it("a saved value map is applied both ways; an unmapped option is shown and reported as skipped", async () => {
    const { w, fdRound, hlRound, cookie } = await setUp();
    const saved = await post(cookie, mappingForm(w, roundMap(fdRound.id, hlRound.id)));
    expect(saved.status).toBe(303);
    const account = await getAccount(env.DB, ACCOUNT);
    const field = account?.mapping?.fields[0];
    expect(field).toMatchObject({ key: "f_round", fourdegreesFieldId: fdRound.id, highlevelFieldId: hlRound.id });
    expect(field?.valueMap).toEqual([
      { fourdegrees: "Pre-seed", highlevel: "Pre-Seed" },
      { fourdegrees: "Seed", highlevel: "Seed" },
      { fourdegrees: "Series A", highlevel: "A" },
    ]);
    w.mapping = account!.mapping!;
    const page = await (
      await exports.default.fetch(`${BASE}/console/mapping?account=${ACCOUNT}`, { headers: { cookie } })
    ).text();
    expect(page).toMatch(/Not synced \(no partner option\): 4Degrees “Series B”, “Growth”; HighLevel “B”/);

    // 4Degrees → HighLevel: "Series A" arrives as "A".
    const deal = newDeal(w, { name: "Quill Robotics", stage: "Sourced" });
    w.sb.fourdegrees.updateDealAsUser(deal.id, { fields: { [fdRound.id]: "Series A" } });
    await w.settle();
    const link = await w.linkOf("fourdegrees", deal.id);
    const opp = () => w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "");
    expect(opp()?.customFields.find((f) => f.id === hlRound.id)?.value).toBe("A");

    // HighLevel → 4Degrees: "Pre-Seed" arrives as "Pre-seed".
    w.sb.highlevel.service.updateOpportunity(link?.hlOpportunityId ?? "", {
      customFields: [{ id: hlRound.id, field_value: "Pre-Seed" }],
    });
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).fields[fdRound.id]).toBe("Pre-seed");

    // An unmapped 4Degrees option is not written, and the event says why.
    w.sb.fourdegrees.updateDealAsUser(deal.id, { fields: { [fdRound.id]: "Growth" } });
    await w.settle();
    expect(opp()?.customFields.find((f) => f.id === hlRound.id)?.value).toBe("Pre-Seed");
    const events = await listEvents(env.DB, ACCOUNT, { limit: 50 });
    const skipped = events.flatMap((e) => (Array.isArray(e.detail["skipped"]) ? e.detail["skipped"] : []));
    expect(skipped).toContainEqual({
      field: "field.f_round",
      reason: '4Degrees value "Growth" of field f_round has no HighLevel option in the value map',
    });
    // Shown on Activity, not only in the event's JSON.
    const activity = await (
      await exports.default.fetch(`${BASE}/console/activity?account=${ACCOUNT}`, { headers: { cookie } })
    ).text();
    expect(activity).toContain(
      "skipped: 4Degrees value &quot;Growth&quot; of field f_round has no HighLevel option in the value map",
    );
  });

  it("owners: the user map first, then the email, then the default owner", async () => {
    const { w, cookie, stranger } = await setUp();
    const fdUsers = [...w.sb.fourdegrees.store.users.values()];
    const hlUsers = [...w.sb.highlevel.store.users.values()];
    const [alex, priya, jordan] = fdUsers;
    const hlOf = (email: string | undefined) => hlUsers.find((u) => u.email?.toLowerCase() === email?.toLowerCase());
    if (!alex || !priya || !jordan) throw new Error("the demo has fewer than three users");
    // The page prefills by email.
    const page = await (
      await exports.default.fetch(`${BASE}/console/mapping?account=${ACCOUNT}`, { headers: { cookie } })
    ).text();
    expect(page).toMatch(
      new RegExp(`name="u\\.${alex.id}">[\\s\\S]*?<option value="${hlOf(alex.email)?.id}" selected`),
    );

    // Alex → Jordan's HighLevel user (map); Priya by email; a stranger gets the default (Alex's HighLevel user).
    const form = mappingForm(w, {
      [`u.${alex.id}`]: hlOf(jordan.email)?.id ?? "",
      "defaultOwner.hl": hlOf(alex.email)?.id ?? "",
    });
    expect((await post(cookie, form)).status).toBe(303);
    w.mapping = (await getAccount(env.DB, ACCOUNT))!.mapping!;
    expect(w.mapping.users).toEqual([{ fourdegreesUserId: alex.id, highlevelUserId: hlOf(jordan.email)?.id }]);
    expect(w.mapping.defaultOwner).toEqual({ highlevel: hlOf(alex.email)?.id });

    const assigned = async (ownerId: string) => {
      const d = newDeal(w, { name: `Owned by ${ownerId}`, stage: "Sourced", ownerId });
      await w.settle();
      const link = await w.linkOf("fourdegrees", d.id);
      return { deal: d, opp: w.sb.highlevel.store.opportunities.get(link?.hlOpportunityId ?? "") };
    };
    expect((await assigned(alex.id)).opp?.assignedTo).toBe(hlOf(jordan.email)?.id);
    expect((await assigned(priya.id)).opp?.assignedTo).toBe(hlOf(priya.email)?.id);
    const { deal, opp } = await assigned(stranger.id);
    expect(opp?.assignedTo).toBe(hlOf(alex.email)?.id);
    // The default owner stands in: the 4Degrees owner is not overwritten by the echo.
    w.resetCounts();
    await w.settle();
    expect(w.sb.fourdegrees.deal(deal.id).owner_id).toBe(stranger.id);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
  });
});
