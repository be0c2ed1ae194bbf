/** Assertions shared by the end-to-end sync tests. */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { listLinks } from "../../../src/store/links.ts";
import { directionOf, flatten, fromDeal, fromOpportunity } from "../../../src/sync/engine/mapping.ts";
import { same } from "../../../src/sync/engine/merge.ts";
import { ACCOUNT, type World } from "./world.ts";

/** Creates a deal in the 4Degrees sandbox as a UI user would (emits its webhook). */
export function newDeal(
  w: World,
  input: { name: string; stage: string; amountMinor?: number; ownerId?: string | null; closeDate?: string },
): { id: string } {
  const deal = w.sb.fourdegrees.createDealAsUser({
    name: input.name,
    pipeline_id: w.fdPipelineId,
    stage_id: w.fdStage(input.stage),
    ...(input.amountMinor === undefined ? {} : { value: { amount_minor: input.amountMinor, currency: "USD" } }),
    ...(input.ownerId ? { owner_id: input.ownerId } : {}),
    ...(input.closeDate ? { expected_close_date: input.closeDate } : {}),
  });
  return { id: deal.id };
}

/**
 * Both sides hold the same values on every mapped (two-way) field of every active link, and no
 * record exists twice (one opportunity per 4Degrees id, one deal per HighLevel id).
 */
export async function expectConverged(w: World): Promise<void> {
  const account = await w.account();
  const connectors = await w.deps.connectors(account, "live");
  const fdCtx = {
    pipelines: await connectors.fourdegrees.listPipelines(),
    users: await connectors.fourdegrees.listUsers(),
  };
  const hl = connectors.highlevel(w.locationId);
  const hlCtx = { users: await hl.listUsers(), nativeCloseDate: hl.nativeCloseDate };
  let after = "";
  for (;;) {
    const links = await listLinks(env.DB, ACCOUNT, { after, limit: 100 });
    if (links.length === 0) break;
    for (const link of links) {
      after = link.fdDealId;
      const deal = await connectors.fourdegrees.getDeal(link.fdDealId);
      const opp = await hl.getOpportunity(link.hlOpportunityId);
      expect(deal, `deal ${link.fdDealId}`).not.toBeNull();
      expect(opp, `opportunity ${link.hlOpportunityId}`).not.toBeNull();
      if (!deal || !opp) continue;
      const f = fromDeal(deal, w.mapping, fdCtx);
      const h = fromOpportunity(opp, w.locationId, w.mapping, hlCtx);
      expect(f.ok && h.ok, `both sides translate for ${link.fdDealId}`).toBe(true);
      if (!f.ok || !h.ok) continue;
      const ff = flatten(f.canonical);
      const hf = flatten(h.canonical);
      for (const key of Object.keys(ff)) {
        if (!(key in hf) || directionOf(w.mapping, key) !== "both") continue;
        expect(
          same(ff[key], hf[key]),
          `${key} of ${link.fdDealId}: 4Degrees ${JSON.stringify(ff[key])} vs HighLevel ${JSON.stringify(hf[key])}`,
        ).toBe(true);
      }
    }
  }
  // No record twice.
  const byExternal = new Map<string, number>();
  for (const o of w.sb.highlevel.store.opportunities.values()) {
    const v = o.customFields.find((c) => c.id === w.mapping.externalIdFieldId)?.value;
    if (typeof v === "string") byExternal.set(v, (byExternal.get(v) ?? 0) + 1);
  }
  expect(
    [...byExternal.entries()].filter(([, n]) => n > 1),
    "opportunities carrying the same 4Degrees id",
  ).toEqual([]);
  const byRef = new Map<string, number>();
  for (const d of w.sb.fourdegrees.deals()) {
    if (d.archived_at) continue;
    for (const r of d.external_refs ?? []) if (r.system === "highlevel") byRef.set(r.id, (byRef.get(r.id) ?? 0) + 1);
  }
  expect(
    [...byRef.entries()].filter(([, n]) => n > 1),
    "deals carrying the same HighLevel id",
  ).toEqual([]);
}

/** Provider calls per side — reads (GET, POST …/search) and writes — and each request's line. */
export interface ProviderCalls {
  highlevel: { reads: number; writes: number };
  fourdegrees: { reads: number; writes: number };
  requests: string[];
}

export function noProviderCalls(): ProviderCalls {
  return { highlevel: { reads: 0, writes: 0 }, fourdegrees: { reads: 0, writes: 0 }, requests: [] };
}

/** Counts one request to the sandbox into `calls` (the control API `/_sandbox` is not a provider call). */
export function countProviderCall(calls: ProviderCalls, r: Request): void {
  const u = new URL(r.url);
  if (u.pathname.startsWith("/_sandbox")) return;
  const side = u.pathname.startsWith("/4degrees/") ? calls.fourdegrees : calls.highlevel;
  if (r.method === "GET" || (r.method === "POST" && u.pathname.endsWith("/search"))) side.reads++;
  else side.writes++;
  calls.requests.push(`${r.method} ${u.pathname}`);
}
