/**
 * The id-only label check (test/id-labels.ts): every console page, and the embedded landing page,
 * rendered for a demo-like world (linked deals, a record on the review list, a failure, a saved
 * custom field and owner map), names what it shows.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { saveMapping } from "../../../src/store/accounts.ts";
import { recordFailure } from "../../../src/store/failures.ts";
import { claimDelivery, insertRule } from "../../../src/store/notifications.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { consoleCookie } from "../helpers/console-session.ts";
import { ACCOUNT, createWorld } from "../sync/world.ts";
import { newDeal } from "../sync/checks.ts";
import { idOnlyLabels } from "../../id-labels.ts";
import { encryptUserContext } from "../../../sandbox/highlevel/sso.ts";
import { TEST_BINDINGS } from "../../bindings.ts";

const BASE = "http://worker.test";
const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe("console: the id-only label check", () => {
  it("the check itself: flags an id shown as a label, not one in a title or a collapsed detail", () => {
    expect(idOnlyLabels("<td>4D deal_vBvVKdzQX6ClJ2pg ↔ HL tu9AQQQPdk5g2Sv3QUUU</td>")).toHaveLength(1);
    expect(idOnlyLabels("<td>tu9AQQQPdk5g2Sv3QUUU</td>")).toHaveLength(1);
    expect(idOnlyLabels('<option value="st_abcdef12">st_abcdef12</option>')).toHaveLength(1);
    expect(idOnlyLabels('<a title="deal_vBvVKdzQX6ClJ2pg">Marlow &amp; Finch — Pre-seed</a>')).toEqual([]);
    expect(idOnlyLabels("<details><summary>ids</summary><code>deal_vBvVKdzQX6ClJ2pg</code></details>")).toEqual([]);
    expect(idOnlyLabels("<td>Pre-seed</td><td>abcdefghijklmnopqrst</td>")).toEqual([]);
  });

  it("every console page speaks in names", async () => {
    const w = await createWorld(routes);
    const fdRound = [...w.sb.fourdegrees.store.fields.values()].find((f) => f.name === "Round");
    const hlRound = [...w.sb.highlevel.store.customFields.values()].find((f) => f.name === "Round");
    const fdUsers = [...w.sb.fourdegrees.store.users.values()];
    const hlUsers = [...w.sb.highlevel.store.users.values()];
    w.mapping = {
      ...w.mapping,
      fields: [
        {
          key: "round",
          fourdegreesFieldId: fdRound?.id ?? "",
          highlevelFieldId: hlRound?.id ?? "",
          direction: "both",
          valueMap: [{ fourdegrees: "Seed", highlevel: "Seed" }],
        },
      ],
      users: [{ fourdegreesUserId: fdUsers[0]?.id ?? "", highlevelUserId: hlUsers[1]?.id ?? "" }],
      defaultOwner: { highlevel: hlUsers[0]?.id ?? "" },
    };
    await saveMapping(env.DB, ACCOUNT, w.mapping);
    const linked = newDeal(w, { name: "Marlow & Finch — Pre-seed", stage: "Sourced", ownerId: fdUsers[1]?.id ?? null });
    newDeal(w, { name: "Harbor Analytics", stage: "Due Diligence", amountMinor: 120_000_00 });
    // A stage the mapping leaves out puts the deal on the review list.
    const stage = w.mapping.pipelines[0]?.stages[0];
    await w.settle();
    const link = await w.linkOf("fourdegrees", linked.id);
    expect(link).not.toBeNull();
    if (stage) {
      w.mapping = {
        ...w.mapping,
        pipelines: w.mapping.pipelines.map((p) => ({ ...p, stages: p.stages.filter((s) => s !== stage) })),
      };
      await saveMapping(env.DB, ACCOUNT, w.mapping);
      newDeal(w, {
        name: "Quarry Bio",
        stage:
          [...w.sb.fourdegrees.store.pipelines.values()][0]?.stages.find((s) => s.id === stage.fourdegrees)?.name ?? "",
      });
      await w.settle();
    }
    await recordFailure(env.DB, {
      id: "failure-names-1",
      accountId: ACCOUNT,
      source: "dead_letter",
      message: {
        v: 1,
        kind: "sync.record",
        accountId: ACCOUNT,
        side: "fourdegrees",
        record: "deal",
        recordId: linked.id,
      },
      reason: "4Degrees answered 500 three times",
    });

    // A failure no account could be found for: a HighLevel location this Worker does not know.
    await recordFailure(env.DB, {
      id: "failure-names-unassigned",
      accountId: null,
      source: "dead_letter",
      message: { kind: "highlevel.webhook", locationId: "Zq3BgH7sPv0KdXw2LmNa" },
      reason: "no account has this location",
    });
    // A notification delivery about the linked deal (its change key is all ids).
    await insertRule(env.DB, {
      id: "rule-names",
      accountId: ACCOUNT,
      name: "Stage alerts",
      trigger: "stage_entered",
      params: { stage: "Sourced" },
      targetKind: "webhook",
      targetUrlEnc: "not-read-by-this-test",
      targetHint: "example.test",
      signingSecretEnc: null,
      keyId: "k1",
      enabled: true,
      createdAt: Date.now(),
      updatedAt: Date.now(),
    });
    await claimDelivery(env.DB, {
      ruleId: "rule-names",
      changeKey: `deal:${linked.id}:${link?.hlOpportunityId}:1`,
      accountId: ACCOUNT,
      event: {
        kind: "deal_changed",
        accountId: ACCOUNT,
        changeId: "1",
        dealName: "Marlow & Finch — Pre-seed",
        fourdegreesId: linked.id,
        highlevelId: link?.hlOpportunityId ?? null,
        source: "fourdegrees",
        before: null,
        after: { stageId: null, stageName: "Sourced", status: "open", value: null },
      },
    });
    const cookie = await consoleCookie(BASE);
    const paths = [
      "connections",
      "mapping",
      "activity",
      `activity/record?fd=${linked.id}`,
      "problems",
      "backfill",
      "usage",
      "report",
      "notifications",
      "automations",
      "filters",
      "duplicates",
      "setup",
      "setup?step=highlevel",
      "setup?step=pipelines",
      "setup?step=review",
    ];
    const found: Record<string, string[]> = {};
    for (const p of paths) {
      const url = `${BASE}/console/${p}${p.includes("?") ? "&" : "?"}account=${ACCOUNT}`;
      const res = await exports.default.fetch(url, { headers: { cookie } });
      expect(res.status, p).toBe(200);
      const html = await res.text();
      const labels = idOnlyLabels(html);
      if (labels.length) found[p] = labels;
      if (p === "activity" || p === "notifications") expect(html, p).toContain("Marlow &amp; Finch — Pre-seed");
      // The demo location by its name wherever a location is shown.
      if (["connections", "mapping", "usage"].includes(p)) expect(html, p).toContain("Acme Capital Partners");
    }
    // The embedded landing page, as a user of the account's location signed in by HighLevel.
    const location = [...w.sb.highlevel.store.locations.values()].find((l) => l.id === w.locationId);
    const user = [...w.sb.highlevel.store.users.values()].find((u) => u.locationIds.includes(w.locationId));
    const payload = await encryptUserContext(
      {
        userId: user?.id ?? "",
        companyId: location?.companyId ?? "",
        role: "user",
        type: "location",
        activeLocation: w.locationId,
        userName: "Priya Shah",
        email: "priya@example.com",
        isAgencyOwner: false,
      },
      TEST_BINDINGS.HIGHLEVEL_SSO_KEY,
    );
    const session = await exports.default.fetch(`${BASE}/embed/session`, {
      method: "POST",
      headers: { origin: BASE, "content-type": "application/json" },
      body: JSON.stringify({ encryptedData: payload }),
    });
    expect(session.status).toBe(200);
    const embedded = (session.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const home = await exports.default.fetch(`${BASE}/embed/home`, { headers: { cookie: embedded } });
    expect(home.status).toBe(200);
    const homeHtml = await home.text();
    expect(homeHtml).toContain("Acme Capital Partners");
    const homeLabels = idOnlyLabels(homeHtml);
    if (homeLabels.length) found["embed/home"] = homeLabels;
    expect(found).toEqual({});

    // Searchable by name (and by id) on Activity and Problems.
    const activity = await (
      await exports.default.fetch(`${BASE}/console/activity?account=${ACCOUNT}&record=marlow`, { headers: { cookie } })
    ).text();
    expect(activity).toContain("Marlow &amp; Finch — Pre-seed");
    expect(activity).not.toContain("Harbor Analytics");
    const byId = await (
      await exports.default.fetch(`${BASE}/console/activity?account=${ACCOUNT}&record=${link?.hlOpportunityId}`, {
        headers: { cookie },
      })
    ).text();
    expect(byId).toContain("Marlow &amp; Finch — Pre-seed");
    const problems = await (
      await exports.default.fetch(`${BASE}/console/problems?account=${ACCOUNT}&q=quarry`, { headers: { cookie } })
    ).text();
    expect(problems).toContain("Quarry Bio");
    expect(problems).not.toContain("Marlow &amp; Finch");
  });
});
