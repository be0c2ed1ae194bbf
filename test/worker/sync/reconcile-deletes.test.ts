/**
 * Reconcile finds deletions whose webhook was lost (issue 5: "a delete is applied only after the
 * source confirms it"; issue 7's chaos seed 4). A deleted record leaves nothing on the scanned
 * pages, so reconcile verifies a few links per tick — re-reading both records — and marks a pair
 * with a record gone; the record job confirms with its own re-read and applies the account's
 * delete policy with tombstones.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hasTombstone, listLinks } from "../../../src/store/links.ts";
import { runReconcile, type ReconcileOptions, type ReconcileReport } from "../../../src/sync/jobs/reconcile.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { expectConverged, newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** One reconcile tick of the test account. */
async function tick(w: World, options: ReconcileOptions = { pageSize: 100 }): Promise<ReconcileReport> {
  const reports = await runReconcile(env, w.deps, w.ctx.log, options);
  const mine = reports.find((r) => r.accountId === ACCOUNT);
  expect(mine?.outcome, mine?.reason).toBe("ok");
  if (!mine) throw new Error("no reconcile report for the test account");
  return mine;
}

/**
 * A world whose demo records are already linked (reconcile finds the unlinked demo data first), so
 * each tick's `marked` counts only what the test does.
 */
async function quietWorld(deletePolicy: "propagate" | "archive" | "ignore"): Promise<World> {
  const w = await createWorld(routes, { account: { deletePolicy } });
  for (let pass = 0; pass < 5; pass++) {
    const marked = (await tick(w)).marked;
    await w.settle();
    if (marked === 0) return w;
  }
  throw new Error("the demo data did not settle");
}

/** A synced pair: the 4Degrees deal id and its linked opportunity id. */
async function pair(w: World, name: string): Promise<{ fdId: string; hlId: string }> {
  const deal = newDeal(w, { name, stage: "Sourced", amountMinor: 5_00 });
  await w.settle();
  const link = await w.linkOf("fourdegrees", deal.id);
  expect(link?.state).toBe("active");
  return { fdId: deal.id, hlId: link?.hlOpportunityId ?? "" };
}

describe("reconcile: deletions whose webhook was lost", () => {
  it("propagate: a HighLevel delete whose webhook was dropped archives the deal after reconcile, with tombstones, then reconcile is quiet", async () => {
    const w = await quietWorld("propagate");
    const { fdId, hlId } = await pair(w, "Silently Deleted");
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.highlevel.service.deleteOpportunity(hlId);
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    // The webhook was lost: nothing happened yet.
    expect((await w.linkOf("fourdegrees", fdId))?.state).toBe("active");
    expect(w.sb.fourdegrees.deal(fdId).archived_at).toBeNull();

    const report = await tick(w);
    expect(report.verified).toBeGreaterThan(0);
    expect(report.marked).toBeGreaterThan(0);
    await w.settle();
    expect(w.sb.fourdegrees.deal(fdId).archived_at).not.toBeNull();
    expect((await w.linkOf("fourdegrees", fdId))?.state).toBe("deleted");
    expect(await hasTombstone(env.DB, ACCOUNT, "highlevel", hlId)).toBe(true);
    expect(await hasTombstone(env.DB, ACCOUNT, "fourdegrees", fdId)).toBe(true);
    // Nothing left to find: the next ticks mark nothing and write nothing.
    w.resetCounts();
    expect((await tick(w)).marked).toBe(0);
    expect((await tick(w)).marked).toBe(0);
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    await expectConverged(w);
  });

  it("archive: a dropped HighLevel delete archives the deal; a deal gone from 4Degrees (404, invisible to the page scan) closes the opportunity as lost", async () => {
    const w = await quietWorld("archive");
    const a = await pair(w, "Gone In HighLevel");
    const b = await pair(w, "Purged In 4Degrees");
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.highlevel.service.deleteOpportunity(a.hlId);
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    // Removed outright (no webhook, no archived record left to list): only a re-read by id finds out.
    w.sb.fourdegrees.store.deals.delete(b.fdId);
    expect(w.sb.highlevel.store.opportunities.get(b.hlId)?.status).toBe("open");

    const report = await tick(w);
    expect(report.verified).toBeGreaterThanOrEqual(2);
    expect(report.marked).toBe(2);
    await w.settle();
    expect(w.sb.fourdegrees.deal(a.fdId).archived_at).not.toBeNull();
    expect(w.sb.highlevel.store.opportunities.get(b.hlId)?.status).toBe("lost");
    expect((await w.linkOf("fourdegrees", a.fdId))?.state).toBe("deleted");
    expect((await w.linkOf("fourdegrees", b.fdId))?.state).toBe("deleted");
  });

  it("archive: a 4Degrees archive whose webhook was dropped closes the opportunity as lost", async () => {
    const w = await quietWorld("archive");
    const { fdId, hlId } = await pair(w, "Archived In 4Degrees");
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 1 });
    w.sb.fourdegrees.archiveDealAsUser(fdId);
    await w.settle();
    w.sb.fourdegrees.faults.configure({ webhookDropRate: 0 });
    expect(w.sb.highlevel.store.opportunities.get(hlId)?.status).toBe("open");
    expect((await tick(w)).marked).toBeGreaterThan(0);
    await w.settle();
    expect(w.sb.highlevel.store.opportunities.get(hlId)?.status).toBe("lost");
    expect((await w.linkOf("fourdegrees", fdId))?.state).toBe("deleted");
  });

  it("ignore: a dropped HighLevel delete only unlinks the pair; the deal stays", async () => {
    const w = await quietWorld("ignore");
    const { fdId, hlId } = await pair(w, "Let Go");
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.highlevel.service.deleteOpportunity(hlId);
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    await tick(w);
    await w.settle();
    expect((await w.linkOf("fourdegrees", fdId))?.state).toBe("deleted");
    expect(w.sb.fourdegrees.deal(fdId).archived_at).toBeNull();
  });

  it("an error re-reading the opportunity is not a deletion: nothing is marked, and the next tick resumes at the same link", async () => {
    const w = await quietWorld("propagate");
    const { fdId, hlId } = await pair(w, "Flaky Read");
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.highlevel.service.deleteOpportunity(hlId);
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    // Every read of one opportunity fails (5xx): verification stops there and marks nothing.
    w.sb.highlevel.faults.script({
      count: 1_000,
      status: 503,
      method: "GET",
      path: "^/opportunities/(?!search)[^/]+$",
    });
    expect((await tick(w)).marked).toBe(0);
    await w.settle();
    expect(w.sb.fourdegrees.deal(fdId).archived_at).toBeNull();
    expect((await w.linkOf("fourdegrees", fdId))?.state).toBe("active");
    w.sb.highlevel.faults.reset();
    // The reads work again: the next tick starts at the link it could not read and finds the delete.
    expect((await tick(w)).marked).toBe(1);
    await w.settle();
    expect(w.sb.fourdegrees.deal(fdId).archived_at).not.toBeNull();
  });

  it("rotates through the links a few per tick and wraps around", async () => {
    const w = await quietWorld("propagate");
    const pairs = [await pair(w, "Rotate A"), await pair(w, "Rotate B"), await pair(w, "Rotate C")];
    const active = (await listLinks(env.DB, ACCOUNT, { limit: 1_000 })).length;
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    for (const p of pairs) w.sb.highlevel.service.deleteOpportunity(p.hlId);
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    const options = { pageSize: 100, verifyPerTick: 1 };
    // One link per tick: one rotation (plus the tick that finds the end) finds all three deletions.
    let marked = 0;
    let ticks = 0;
    while (marked < 3 && ticks <= active + 1) {
      const report = await tick(w, options);
      expect(report.verified).toBeLessThanOrEqual(1);
      marked += report.marked;
      ticks++;
    }
    expect(marked).toBe(3);
    expect(ticks).toBeGreaterThanOrEqual(3);
    await w.settle();
    for (const p of pairs) expect(w.sb.fourdegrees.deal(p.fdId).archived_at, p.fdId).not.toBeNull();
    // It wraps around: the remaining active links are verified again, the deleted pairs no longer.
    const verifiedAgain = new Set<number>();
    for (let i = 0; i <= active - 3 + 1; i++) verifiedAgain.add((await tick(w, options)).verified ?? 0);
    expect(verifiedAgain.has(1)).toBe(true);
  });

  it("skips link verification while the HighLevel quota is below twice the floor", async () => {
    const w = await quietWorld("propagate");
    const { fdId, hlId } = await pair(w, "Waits For Quota");
    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    w.sb.highlevel.service.deleteOpportunity(hlId);
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDropRate: 0 });
    // A floor of 0.6 → verification needs 120 % of the daily quota left: never.
    const starved = await tick(w, { pageSize: 100, quotaFloor: 0.6 });
    expect(starved.verified).toBe(0);
    await w.settle();
    expect((await w.linkOf("fourdegrees", fdId))?.state).toBe("active");
    expect((await tick(w)).marked).toBeGreaterThan(0);
  });
});
