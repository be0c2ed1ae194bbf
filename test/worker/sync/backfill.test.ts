/**
 * Backfill end to end: 1,000 4Degrees deals against a HighLevel location that already holds some
 * of them — linked in D1, carrying the 4Degrees id, or only matching by exact name (one of them
 * twice: ambiguous) — plus opportunities that exist only in HighLevel. A crash in the middle is
 * resumed from the page checkpoint. Afterwards every record exists once on each side and linked.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getBackfill } from "../../../src/store/backfill-runs.ts";
import { saveLink } from "../../../src/store/links.ts";
import { listReview } from "../../../src/store/sync-events.ts";
import { beginBackfill } from "../../../src/sync/jobs/backfill.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged } from "./checks.ts";
import { ACCOUNT, createWorld } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const N = 1_000;
const name = (i: number) => `Deal ${String(i).padStart(4, "0")}`;

describe("backfill", () => {
  it("happy: 1,000 deals with partial links, id-carrying and name-matching opportunities, an ambiguous pair and HighLevel-only records; resumes after a crash", async () => {
    let hlCreates = 0;
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: (side) => {
          // Crash once in the middle of a page: the page is retried from its checkpoint.
          if (side === "highlevel" && ++hlCreates === 120) throw new Error("simulated crash mid-backfill");
        },
      },
    });
    // Webhooks of the backfill's own writes are not the subject here (echoes are tested elsewhere).
    w.sb.highlevel.unsubscribe("http://worker.test/webhooks/highlevel");
    w.sb.fourdegrees.webhooks.subscribers.clear();

    const deals: string[] = [];
    for (let i = 1; i <= N; i++) {
      const d = w.sb.fourdegrees.createDealAsUser({
        name: name(i),
        pipeline_id: w.fdPipelineId,
        stage_id: w.fdStage("Sourced"),
        value: { amount_minor: i * 100, currency: "USD" },
      });
      deals.push(d.id);
    }
    const opp = (i: number, extra: { externalId?: string } = {}) =>
      w.sb.highlevel.service.createOpportunity({
        locationId: w.locationId,
        pipelineId: w.hlPipelineId,
        pipelineStageId: w.hlStage("Sourced"),
        name: name(i),
        status: "open",
        // HighLevel refuses a second opportunity of one contact in a pipeline (location setting): one contact each.
        contactId: w.sb.highlevel.service.createContact({ locationId: w.locationId, name: `${name(i)} contact` }).id,
        monetaryValue: i,
        ...(extra.externalId
          ? { customFields: [{ id: w.mapping.externalIdFieldId ?? "", field_value: extra.externalId }] }
          : {}),
      });
    // 1–200: already linked in D1 (a previous partial run).
    for (let i = 1; i <= 200; i++) {
      const o = opp(i);
      await saveLink(env.DB, {
        accountId: ACCOUNT,
        fdDealId: deals[i - 1] ?? "",
        hlOpportunityId: o.id,
        hlLocationId: w.locationId,
        hlContactId: o.contactId,
        base: {},
        fdUpdatedAt: null,
        fdVersion: null,
        hlUpdatedAt: null,
      });
    }
    // 201–400: carry the 4Degrees id in the external-id field, not linked.
    for (let i = 201; i <= 400; i++) opp(i, { externalId: deals[i - 1] ?? "" });
    // 401–450: same exact name only.
    for (let i = 401; i <= 450; i++) opp(i);
    // 451: two look-alikes → ambiguous.
    opp(451);
    opp(451);
    // HighLevel-only.
    for (let i = 1; i <= 30; i++)
      w.sb.highlevel.service.createOpportunity({
        locationId: w.locationId,
        pipelineId: w.hlPipelineId,
        pipelineStageId: w.hlStage("Due Diligence"),
        name: `HL Only ${i}`,
        status: "open",
        contactId: w.sb.highlevel.service.createContact({ locationId: w.locationId, name: `HL Only ${i} contact` }).id,
        monetaryValue: 1_000 + i,
      });

    const started = Date.now();
    await beginBackfill(env.DB, w.deps, ACCOUNT);
    await w.drain();
    const elapsed = Date.now() - started;

    const run = await getBackfill(env.DB, ACCOUNT);
    expect(run?.state).toBe("done");
    expect(run?.done).toBe(run?.total);
    expect(run?.done).toBeGreaterThanOrEqual(N + 30);
    expect(w.handled.some((h) => h.kind === "sync.backfill" && h.outcome === "retry")).toBe(true);

    // Every deal except the ambiguous one is linked to exactly one opportunity of its name.
    const oppsByName = new Map<string, number>();
    for (const o of w.sb.highlevel.store.opportunities.values())
      oppsByName.set(o.name, (oppsByName.get(o.name) ?? 0) + 1);
    for (let i = 1; i <= N; i++) {
      if (i === 451) continue;
      expect(oppsByName.get(name(i)), name(i)).toBe(1);
      const link = await w.linkOf("fourdegrees", deals[i - 1] ?? "");
      expect(link?.state, name(i)).toBe("active");
    }
    // The ambiguous pair is on the review list, never merged.
    expect(oppsByName.get(name(451))).toBe(2);
    expect(await w.linkOf("fourdegrees", deals[450] ?? "")).toBeNull();
    const review = await listReview(env.DB, ACCOUNT, 1000);
    expect(review.filter((r) => r.recordId === deals[450] || r.reason.startsWith("ambiguous"))).toHaveLength(3);
    // HighLevel-only opportunities now exist once in 4Degrees.
    for (let i = 1; i <= 30; i++)
      expect(
        w.sb.fourdegrees.deals().filter((d) => d.name === `HL Only ${i}`),
        `HL Only ${i}`,
      ).toHaveLength(1);
    await expectConverged(w);
    // Sized to keep the whole suite fast on 2 cores.
    expect(elapsed).toBeLessThan(180_000);
  }, 300_000);
});
