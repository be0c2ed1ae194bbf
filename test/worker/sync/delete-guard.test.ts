/**
 * The mass-delete guard (src/sync/engine/delete-guard.ts) under a burst of deletes, through both
 * sandboxes: past the account's limit of deletes from one side within an hour, further deletes are
 * held — nothing is deleted on the other side — until approved (the delete policy applies, once) or
 * discarded (the pair is unlinked, the other record left alone).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { applyDecision, deleteLimit } from "../../../src/sync/engine/delete-guard.ts";
import { listHeldDeletes } from "../../../src/store/held-deletes.ts";
import { hasTombstone } from "../../../src/store/links.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

/** `count` synced pairs: each deal's id and its opportunity's id. */
async function pairs(w: World, count: number): Promise<Array<{ fdId: string; hlId: string }>> {
  const deals = Array.from({ length: count }, (_, i) => newDeal(w, { name: `Burst ${i}`, stage: "Sourced" }));
  await w.settle();
  const out: Array<{ fdId: string; hlId: string }> = [];
  for (const d of deals) {
    const link = await w.linkOf("fourdegrees", d.id);
    expect(link?.state).toBe("active");
    out.push({ fdId: d.id, hlId: link?.hlOpportunityId ?? "" });
  }
  return out;
}

const archived = (w: World, fdId: string) => w.sb.fourdegrees.deal(fdId).archived_at !== null;
/** What the console's buttons do: decide, then send the forced record jobs (into this world's queue). */
const decide = (w: World, fdId: string | null, decision: "approved" | "discarded") =>
  applyDecision(env.DB, (m) => w.deps.enqueue(m), ACCOUNT, fdId, decision);

describe("mass-delete guard", () => {
  it("the limit is the lower of N and M % of the pairs, never below the percentage floor", () => {
    expect(deleteLimit({ deleteGuard: { maxDeletes: 10, maxPercent: 20 } }, 1000)).toBe(10);
    expect(deleteLimit({ deleteGuard: { maxDeletes: 10, maxPercent: 20 } }, 40)).toBe(8);
    expect(deleteLimit({ deleteGuard: { maxDeletes: 10, maxPercent: 20 } }, 6)).toBe(5);
    expect(deleteLimit({ deleteGuard: { maxDeletes: 3, maxPercent: 20 } }, 6)).toBe(3);
  });

  it("15 deletes in HighLevel within an hour: 10 propagate, 5 are held with nothing archived in 4Degrees; approve one, discard one, approve all do what they say, once", async () => {
    const w = await createWorld(routes, {
      account: { deletePolicy: "propagate", deleteGuard: { maxDeletes: 10, maxPercent: 100 } },
    });
    const burst = await pairs(w, 15);
    for (const p of burst) w.sb.highlevel.service.deleteOpportunity(p.hlId);
    await w.settle();

    const done = burst.filter((p) => archived(w, p.fdId));
    const kept = burst.filter((p) => !archived(w, p.fdId));
    expect(done).toHaveLength(10);
    expect(kept).toHaveLength(5);
    const held = await listHeldDeletes(env.DB, ACCOUNT);
    expect(held.map((h) => h.fdDealId).sort()).toEqual(kept.map((p) => p.fdId).sort());
    expect(held.every((h) => h.goneSide === "highlevel")).toBe(true);
    for (const p of kept) {
      expect((await w.linkOf("fourdegrees", p.fdId))?.state).toBe("active");
      expect(await hasTombstone(env.DB, ACCOUNT, "fourdegrees", p.fdId)).toBe(false);
    }

    // While held, more traffic on a held pair (its deal edited in 4Degrees) still writes nothing.
    const [first, second, ...rest] = kept;
    if (!first || !second) throw new Error("expected held pairs");
    w.sb.fourdegrees.updateDealAsUser(first.fdId, { name: "Edited while held" });
    w.resetCounts();
    await w.settle();
    expect(archived(w, first.fdId)).toBe(false);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });

    // Approve one: that deal is archived, exactly once (a second click decides nothing).
    w.resetCounts();
    expect(await decide(w, first.fdId, "approved")).toHaveLength(1);
    expect(await decide(w, first.fdId, "approved")).toHaveLength(0);
    await w.settle();
    expect(archived(w, first.fdId)).toBe(true);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 1 });
    expect((await w.linkOf("fourdegrees", first.fdId))?.state).toBe("deleted");
    expect(rest.every((p) => !archived(w, p.fdId))).toBe(true);

    // Discard one: the pair is unlinked, the deal is left alone — and stays alone after an edit.
    w.resetCounts();
    expect(await decide(w, second.fdId, "discarded")).toHaveLength(1);
    await w.settle();
    expect(archived(w, second.fdId)).toBe(false);
    expect((await w.linkOf("fourdegrees", second.fdId))?.state).toBe("deleted");
    w.sb.fourdegrees.updateDealAsUser(second.fdId, { name: "Kept after discard" });
    await w.settle();
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 0 });
    expect(w.sb.highlevel.opportunity(second.hlId)).toBeUndefined();

    // Approve all: the remaining three are archived, once each; nothing is left on hold.
    w.resetCounts();
    expect(await decide(w, null, "approved")).toHaveLength(3);
    await w.settle();
    expect(rest.every((p) => archived(w, p.fdId))).toBe(true);
    expect(w.writes()).toEqual({ highlevel: 0, fourdegrees: 3 });
    expect(await listHeldDeletes(env.DB, ACCOUNT)).toEqual([]);
    expect(await decide(w, null, "approved")).toHaveLength(0);
  });

  it("the default percentage rule: 8 of 20 deals archived in 4Degrees close 5 opportunities as lost, 3 wait untouched", async () => {
    const w = await createWorld(routes, { account: { deletePolicy: "archive" } });
    expect((await w.account()).deleteGuard).toEqual({ maxDeletes: 10, maxPercent: 20 });
    const all = await pairs(w, 20);
    const gone = all.slice(0, 8);
    for (const p of gone) w.sb.fourdegrees.archiveDealAsUser(p.fdId);
    await w.settle();
    const status = (p: { hlId: string }) => w.sb.highlevel.opportunity(p.hlId)?.["status"];
    expect(gone.filter((p) => status(p) === "lost")).toHaveLength(5);
    const held = await listHeldDeletes(env.DB, ACCOUNT);
    expect(held).toHaveLength(3);
    expect(held.every((h) => h.goneSide === "fourdegrees")).toBe(true);
    for (const h of held) expect(status({ hlId: h.hlOpportunityId })).toBe("open");
    expect(all.slice(8).every((p) => status(p) === "open")).toBe(true);

    // Approved (the job starts from the surviving opportunity), the three close as lost, once.
    w.resetCounts();
    expect(await decide(w, null, "approved")).toHaveLength(3);
    await w.settle();
    expect(gone.every((p) => status(p) === "lost")).toBe(true);
    expect(w.writes()).toEqual({ highlevel: 3, fourdegrees: 0 });
    expect(all.slice(8).every((p) => status(p) === "open")).toBe(true);
  });

  it("a normal hour's deletes are not held", async () => {
    const w = await createWorld(routes, { account: { deletePolicy: "propagate" } });
    const few = await pairs(w, 4);
    for (const p of few) w.sb.highlevel.service.deleteOpportunity(p.hlId);
    await w.settle();
    expect(few.every((p) => archived(w, p.fdId))).toBe(true);
    expect(await listHeldDeletes(env.DB, ACCOUNT)).toEqual([]);
  });
});
