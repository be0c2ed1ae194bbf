import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { tokenGate } from "../../../src/gate/client.ts";
import { createHighLevelClient, HighLevelError } from "../../../src/highlevel/client.ts";
import { locationConnectionId } from "../../../src/store/connections.ts";
import { useNetwork } from "../helpers/network.ts";
import { createFakeHighLevel, type FakeHighLevel } from "./fake-highlevel.ts";

let fake: FakeHighLevel = createFakeHighLevel();
useNetwork(() => {
  fake = createFakeHighLevel();
  return { "sandbox.test": (r) => fake.fetch(r) };
});

async function client() {
  const locationId = `loc-${crypto.randomUUID()}`;
  const pair = fake.issue();
  const id = locationConnectionId(locationId);
  await tokenGate(env, id).installTokens({
    connectionId: id,
    kind: "location",
    locationId,
    companyId: null,
    tokenSource: "refresh",
    accessToken: pair.access,
    refreshToken: pair.refresh,
    expiresInSeconds: 86399,
    scopes: [],
    userId: null,
    appId: null,
  });
  return createHighLevelClient(env, loadConfig(env), locationId);
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

describe("HighLevel client", () => {
  it("happy: the search pager keeps location_id and every filter on every page", async () => {
    const hl = await client();
    fake.override("GET /opportunities/search", (_req, url) => {
      const after = url.searchParams.get("startAfterId");
      const page = after === null ? 1 : after === "o2" ? 2 : 3;
      const opportunities =
        page === 3
          ? [{ id: "o5", status: "won" }]
          : [{ id: `o${page * 2 - 1}` }, { id: `o${page * 2}`, customFields: [{ id: "cf", fieldValue: "x" }] }];
      const meta =
        page === 3
          ? { total: 5, startAfterId: null, startAfter: null, nextPage: null }
          : { total: 5, startAfterId: `o${page * 2}`, startAfter: 1_700_000_000_000 + page, nextPage: page + 1 };
      return json({ opportunities, meta });
    });
    const ids: string[] = [];
    for await (const page of hl.opportunities.search({ status: "open", pipelineId: "p1", limit: 2 }))
      ids.push(...page.opportunities.map((o) => o.id));
    expect(ids).toEqual(["o1", "o2", "o3", "o4", "o5"]);
    const searches = fake.queries.filter((q) => q.path === "/opportunities/search");
    expect(searches).toHaveLength(3);
    for (const q of searches) {
      expect(q.query.get("location_id")).toBe(hl.locationId);
      expect(q.query.get("status")).toBe("open");
      expect(q.query.get("pipeline_id")).toBe("p1");
      expect(q.query.get("limit")).toBe("2");
    }
    expect(searches[1]?.query.get("startAfterId")).toBe("o2");
    expect(searches[1]?.query.get("startAfter")).toBe("1700000000001");
  });

  it("happy: drifted shapes parse (missing fields, fieldValueString vs fieldValue)", async () => {
    const hl = await client();
    fake.override("GET /opportunities/o-drift", () =>
      json({
        opportunity: {
          id: "o-drift",
          customFields: [
            { id: "a", fieldValueString: "s" },
            { id: "b", fieldValue: 3 },
          ],
          extra: true,
        },
      }),
    );
    const opp = await hl.opportunities.get("o-drift");
    expect(opp.customFields).toEqual([
      { id: "a", type: null, value: "s" },
      { id: "b", type: null, value: 3 },
    ]);
    expect(opp.status).toBe("open");
    expect(opp.name).toBeNull();
  });

  it("error: a 422 is a permanent validation error carrying HighLevel's messages and traceId", async () => {
    const hl = await client();
    fake.override("PUT /opportunities/o1", () =>
      json(
        { statusCode: 422, message: ["property foo should not exist", "name must be a string"], traceId: "trace-422" },
        422,
      ),
    );
    const err = await hl.opportunities.update("o1", { name: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HighLevelError);
    expect(err).toMatchObject({ category: "validation", retryable: false, traceId: "trace-422", upstreamStatus: 422 });
    if (err instanceof HighLevelError) expect(err.upstreamMessage).toContain("property foo should not exist");
  });

  it("error: 429 with Retry-After is retryable rate_limited with retryAfterMs; 500 is retryable server; 404 permanent", async () => {
    const hl = await client();
    fake.override("GET /opportunities/o429", () =>
      json({ statusCode: 429, message: "Too many requests" }, 429, { "Retry-After": "7" }),
    );
    fake.override("GET /opportunities/o500", () =>
      json({ statusCode: 500, message: "Internal server error", traceId: "t5" }, 500),
    );
    fake.override("GET /opportunities/o404", () => json({ statusCode: 404, message: "Opportunity not found" }, 404));
    await expect(hl.opportunities.get("o429")).rejects.toMatchObject({
      category: "rate_limited",
      retryable: true,
      retryAfterMs: 7000,
    });
    // The 429 paused the location's lane: the next call is refused by the gate, HighLevel never sees it.
    await expect(hl.opportunities.get("o500")).rejects.toMatchObject({ category: "rate_limited" });
    expect(fake.calls.get("GET /opportunities/o500")).toBeUndefined();
    const other = await client();
    await expect(other.opportunities.get("o500")).rejects.toMatchObject({
      category: "server",
      retryable: true,
      traceId: "t5",
    });
    await expect(other.opportunities.get("o404")).rejects.toMatchObject({ category: "not_found", retryable: false });
  });

  it("error: a scope 401 is not refreshed (refreshing cannot add a scope)", async () => {
    const hl = await client();
    fake.override("POST /contacts/c1/notes", () =>
      json({ statusCode: 401, message: "The token is not authorized for this scope." }, 401),
    );
    await expect(hl.contacts.createNote("c1", { body: "hi" })).rejects.toMatchObject({
      category: "scope",
      retryable: false,
    });
    expect(fake.calls.get("POST /oauth/token")).toBeUndefined();
  });

  it("error: a network failure is a retryable network error", async () => {
    const hl = await client();
    fake.override("GET /opportunities/onet", () => {
      throw new TypeError("connection reset");
    });
    await expect(hl.opportunities.get("onet")).rejects.toMatchObject({ category: "network", retryable: true });
  });

  it("happy: pipelines are cached in KV and an unknown stage reloads them once", async () => {
    const hl = await client();
    expect((await hl.pipelines.list()).map((p) => p.id)).toEqual(["p1"]);
    await hl.pipelines.list();
    expect(fake.calls.get("GET /opportunities/pipelines")).toBe(1);
    fake.override("GET /opportunities/pipelines", () =>
      json({
        pipelines: [
          {
            id: "p1",
            name: "Sales",
            stages: [
              { id: "s1", name: "New", position: 0 },
              { id: "s2", name: "Won", position: 1 },
            ],
          },
        ],
      }),
    );
    const found = await hl.pipelines.findStage("s2");
    expect(found?.stage.name).toBe("Won");
    expect(fake.calls.get("GET /opportunities/pipelines")).toBe(2);
    expect(await hl.pipelines.findStage("s-missing")).toBeNull();
    const cached = await env.CACHE.get(`v1:hl:pipelines:${hl.locationId}`, "json");
    expect(JSON.stringify(cached)).toContain("s2");
  });

  it("security: the bearer token and Version header go on every call, and never into an error", async () => {
    const hl = await client();
    const seen: Headers[] = [];
    fake.override("GET /opportunities/ohdr", (req) => {
      seen.push(req.headers);
      return json({ statusCode: 400, message: "bad" }, 400);
    });
    const err = await hl.opportunities.get("ohdr").catch((e: unknown) => e);
    const headers = seen[0];
    expect(headers?.get("version")).toBe("2021-07-28");
    const bearer = headers?.get("authorization") ?? "";
    expect(bearer).toMatch(/^Bearer at-/);
    expect(JSON.stringify(err) + String(err)).not.toContain(bearer.slice(7));
  });
});
