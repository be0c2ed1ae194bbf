/**
 * Which deals sync and duplicates, as JSON (mounted under `/api`, behind `adminAuth` and the
 * session's scope). Bodies are validated (400 naming the field); unknown records are 404; a record
 * already linked is 409. See docs/sync.md#which-deals-sync and #duplicates.
 *
 * | method + path | body | what |
 * |---|---|---|
 * | PUT `/accounts/{id}/pipelines/{index}/filter` | `{filter}` (null: all deals) | save pair `index`'s filter |
 * | POST `/accounts/{id}/pipelines/{index}/filter/preview` | `{filter}` | count what it selects (nothing saved) |
 * | PUT `/accounts/{id}/match-keys` | `{matchKeys}` | how unlinked records pair with existing ones |
 * | GET `/accounts/{id}/links?after=&limit=` | – | linked pairs |
 * | POST `/accounts/{id}/links` | `{fdDealId, hlOpportunityId}` | link two records by hand and sync them |
 * | DELETE `/accounts/{id}/links/{fdDealId}` | – | unlink: the link goes, both records stay, neither syncs |
 * | GET `/accounts/{id}/possible-matches` | – | the matcher's unsure cases, both sides by name |
 * | POST `/accounts/{id}/possible-matches/reject` | `{fdDealId, hlOpportunityId}` | tell them apart (remembered) |
 */
import { Hono, type Context } from "hono";
import * as z from "zod";
import { DealFilterSchema, MatchKeysSchema } from "../domain/mapping-config.ts";
import { AppError, parseInput } from "../lib/errors.ts";
import { requireAccount } from "../store/accounts.ts";
import { listLinks } from "../store/links.ts";
import { liveConnectors } from "../sync/connectors.ts";
import { linkByHand, listPossibleMatches, tellApart, unlinkPair, type DuplicateDeps } from "../sync/jobs/duplicates.ts";
import { previewFilter, saveFilter, saveMatchKeys } from "../sync/jobs/filter-preview.ts";
import type { AppEnv } from "./context.ts";

const AccountId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "account ids are 1–64 characters of A–Z, a–z, 0–9, _ and -");
const RecordId = z.string().trim().min(1).max(200);
const PairBody = z.object({ fdDealId: RecordId, hlOpportunityId: RecordId }).strict();
const FilterBody = z.object({ filter: DealFilterSchema.strict().nullable() }).strict();
const LinksQuery = z.object({
  after: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

/** The deps of the duplicate and filter operations for a request. */
export function matchingDeps(c: Context<AppEnv>): DuplicateDeps {
  return { db: c.env.DB, connectors: liveConnectors(c.env, c.var.config), log: c.var.log, now: () => Date.now() };
}

async function account(c: Context<AppEnv>) {
  return requireAccount(c.env.DB, parseInput(AccountId, c.req.param("id"), "account id"));
}

const pairIndex = (c: Context<AppEnv>) =>
  parseInput(z.coerce.number().int().min(0).max(99), c.req.param("index"), "pipeline pair index");

const json = (c: Context<AppEnv>) => c.req.json().catch(() => undefined);

export const matchingApi = new Hono<AppEnv>()
  .put("/accounts/:id/pipelines/:index/filter", async (c) => {
    const acct = await account(c);
    const index = pairIndex(c);
    const { filter } = parseInput(FilterBody, await json(c), "filter body");
    const mapping = await saveFilter(matchingDeps(c), acct, index, filter);
    return c.json({ filter: mapping.pipelines[index]?.filter ?? null });
  })
  .post("/accounts/:id/pipelines/:index/filter/preview", async (c) => {
    const acct = await account(c);
    const index = pairIndex(c);
    const { filter } = parseInput(FilterBody, await json(c), "filter body");
    if (!acct.mapping) throw new AppError("conflict", `account ${acct.id} has no mapping yet`);
    return c.json({ preview: await previewFilter(matchingDeps(c), acct, acct.mapping, index, filter) });
  })
  .put("/accounts/:id/match-keys", async (c) => {
    const acct = await account(c);
    const { matchKeys } = parseInput(
      z.object({ matchKeys: MatchKeysSchema }).strict(),
      await json(c),
      "match keys body",
    );
    const mapping = await saveMatchKeys(matchingDeps(c), acct, matchKeys);
    return c.json({ matchKeys: mapping.matchKeys });
  })
  .get("/accounts/:id/links", async (c) => {
    const acct = await account(c);
    const q = parseInput(LinksQuery, c.req.query(), "query");
    const links = await listLinks(c.env.DB, acct.id, {
      ...(q.after ? { after: q.after } : {}),
      limit: q.limit ?? 100,
    });
    return c.json({
      links: links.map((l) => ({
        fdDealId: l.fdDealId,
        hlOpportunityId: l.hlOpportunityId,
        hlLocationId: l.hlLocationId,
        name: typeof l.base["name"] === "string" ? l.base["name"] : null,
        syncedAt: l.syncedAt,
      })),
    });
  })
  .post("/accounts/:id/links", async (c) => {
    const acct = await account(c);
    const input = parseInput(PairBody, await json(c), "link body");
    const result = await linkByHand(matchingDeps(c), acct, input.fdDealId, input.hlOpportunityId);
    return c.json({ linked: { fdDealId: input.fdDealId, hlOpportunityId: input.hlOpportunityId }, result }, 201);
  })
  .delete("/accounts/:id/links/:fdDealId", async (c) => {
    const acct = await account(c);
    const fdDealId = parseInput(RecordId, c.req.param("fdDealId"), "deal id");
    const { hlId } = await unlinkPair(matchingDeps(c), acct, fdDealId);
    return c.json({ unlinked: { fdDealId, hlOpportunityId: hlId } });
  })
  .get("/accounts/:id/possible-matches", async (c) => {
    const acct = await account(c);
    return c.json({ possibleMatches: await listPossibleMatches(matchingDeps(c), acct) });
  })
  .post("/accounts/:id/possible-matches/reject", async (c) => {
    const acct = await account(c);
    const input = parseInput(PairBody, await json(c), "reject body");
    const left = await tellApart(matchingDeps(c), acct, input.fdDealId, input.hlOpportunityId);
    return c.json({ toldApart: input, candidatesLeft: left });
  });
