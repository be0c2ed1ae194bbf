/**
 * The 4Degrees client and connector against a scripted 4Degrees (the assumed contract), through a
 * counting gate: headers, idempotency, versions and 409s, paging, the error envelope, 429s.
 */
import { describe, expect, it } from "vitest";
import { FourDegreesClient, type GateRunner } from "../../../src/fourdegrees/client.ts";
import { FourDegreesConnector } from "../../../src/fourdegrees/connector.ts";
import { FourDegreesError, isRetryable, parseRetryAfter } from "../../../src/fourdegrees/errors.ts";
import { useNetwork } from "../helpers/network.ts";

const BASE = "http://sandbox.test/4degrees/v1";

function rawDeal(over: Record<string, unknown> = {}) {
  return {
    id: "deal_1",
    version: 3,
    name: "Acme Series A",
    pipeline_id: "pl_1",
    stage_id: "st_2",
    status: "open",
    owner_id: "usr_1",
    value: { amount_minor: 250_000_00, currency: "USD" },
    expected_close_date: "2026-12-31",
    company_id: null,
    contact_ids: ["ct_1"],
    tags: ["seed"],
    fields: { fld_sector: "Fintech" },
    external_refs: [{ system: "highlevel", id: "opp_9" }],
    created_at: "2026-11-01T10:00:00Z",
    updated_at: "2026-11-20T10:00:00Z",
    archived_at: null,
    ...over,
  };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers });
const envelope = (status: number, code: string, message: string) =>
  json({ error: { type: "invalid_request", code, message, request_id: "req_42" } }, status);

/** A scripted 4Degrees: each test pushes handlers; every request is recorded. */
function scripted() {
  const requests: Array<{ method: string; path: string; query: URLSearchParams; headers: Headers; body: unknown }> = [];
  let handler: (r: {
    method: string;
    path: string;
    query: URLSearchParams;
    headers: Headers;
    body: unknown;
    n: number;
  }) => Response = () => json({}, 500);
  return {
    requests,
    on(h: typeof handler) {
      handler = h;
    },
    async fetch(request: Request): Promise<Response> {
      const url = new URL(request.url);
      const text = await request.text();
      const r = {
        method: request.method,
        path: url.pathname.replace("/4degrees/v1", ""),
        query: url.searchParams,
        headers: request.headers,
        body: text ? JSON.parse(text) : undefined,
      };
      requests.push(r);
      return handler({ ...r, n: requests.length });
    },
  };
}

function setup(options: { maxInlineWaitMs?: number } = {}) {
  const sleeps: number[] = [];
  let gated = 0;
  const gate: GateRunner = async (doFetch) => {
    gated++;
    return doFetch();
  };
  let keys = 0;
  const client = new FourDegreesClient({
    baseUrl: BASE,
    apiKey: "4d_test_key",
    gate,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    newIdempotencyKey: () => `key-${++keys}`,
    ...options,
  });
  return { client, connector: new FourDegreesConnector(client), sleeps, gated: () => gated };
}

describe("4Degrees client", () => {
  const api = scripted();
  useNetwork({ "sandbox.test": (r) => api.fetch(r) });

  it("happy: pages deals changed since a time, through the gate, with the bearer key", async () => {
    api.requests.length = 0;
    api.on(({ query }) =>
      query.get("cursor") === null
        ? json({ data: [rawDeal()], next_cursor: "c2" })
        : json({ data: [rawDeal({ id: "deal_2", value: null, owner_id: null })], next_cursor: null }),
    );
    const { connector, gated } = setup();
    const first = await connector.pageDeals({ updatedSince: "2026-11-01T00:00:00Z", limit: 500 });
    expect(first.nextCursor).toBe("c2");
    expect(first.items[0]).toMatchObject({
      id: "deal_1",
      version: "3",
      value: { amountMinor: 25_000_000, currency: "USD" },
      stage: { id: "st_2" },
      status: "open",
      externalRefs: [{ system: "highlevel", id: "opp_9" }],
    });
    const second = await connector.pageDeals({ updatedSince: "2026-11-01T00:00:00Z", cursor: first.nextCursor });
    expect(second.nextCursor).toBeNull();
    expect(second.items[0]).toMatchObject({ id: "deal_2", value: null, owner: null });
    expect(api.requests[0]!.headers.get("authorization")).toBe("Bearer 4d_test_key");
    expect(api.requests[0]!.query.get("updated_since")).toBe("2026-11-01T00:00:00Z");
    expect(api.requests[0]!.query.get("limit")).toBe("100"); // capped at the contract's maximum
    expect(api.requests[1]!.query.get("cursor")).toBe("c2");
    expect(gated()).toBe(2);
  });

  it("happy: lists pipelines (stages ordered), users and fields, following next_cursor", async () => {
    api.requests.length = 0;
    api.on(({ path, query }) => {
      if (path === "/pipelines")
        return json({
          data: [
            {
              id: "pl_1",
              name: "Deals",
              stages: [
                { id: "st_b", name: "Won", position: 2, kind: "won" },
                { id: "st_a", name: "Sourced", position: 1, kind: "open" },
              ],
            },
          ],
        });
      if (path === "/users")
        return query.get("cursor")
          ? json({ data: [{ id: "usr_2", email: "b@x.test", name: "B" }], next_cursor: null })
          : json({ data: [{ id: "usr_1", email: "a@x.test", name: "A" }], next_cursor: "u2" });
      if (path === "/pipelines/pl_1/fields")
        return json({
          data: [
            { id: "fld_1", name: "Sector", type: "single_select", options: [{ id: "o1", name: "Fintech" }] },
            { id: "fld_2", name: "Score", type: "formula", read_only: true },
          ],
        });
      return json({}, 404);
    });
    const { connector } = setup();
    const [pipeline] = await connector.listPipelines();
    expect(pipeline!.stages.map((s) => s.name)).toEqual(["Sourced", "Won"]);
    expect((await connector.listUsers()).map((u) => u.email)).toEqual(["a@x.test", "b@x.test"]);
    expect(await connector.listFields("pl_1")).toEqual([
      { id: "fld_1", name: "Sector", type: "single_select", readOnly: false, options: ["Fintech"] },
      { id: "fld_2", name: "Score", type: "formula", readOnly: true, options: [] },
    ]);
  });

  it("happy: whoAmI names the workspace and our actor (api_key → integration)", async () => {
    api.on(() => json({ workspace: { id: "ws_1", name: "Demo" }, actor: { type: "api_key", id: "key_7" } }));
    const { connector } = setup();
    expect(await connector.whoAmI()).toEqual({ scopeId: "ws_1", actor: { type: "integration", id: "key_7" } });
  });

  it("happy: a create carries an Idempotency-Key that stays the same across a retried 503", async () => {
    api.requests.length = 0;
    api.on(({ n }) =>
      n === 1 ? envelope(503, "unavailable", "try later") : json(rawDeal({ id: "deal_new", version: 1 }), 201),
    );
    const { connector, sleeps } = setup();
    const deal = await connector.createDeal(
      {
        name: "New",
        pipeline: { id: "pl_1", name: null },
        stage: { id: "st_1", name: "Sourced" },
        status: "open",
        owner: null,
        value: { amountMinor: 100, currency: "EUR" },
        expectedCloseDate: null,
        companyId: null,
        contacts: [],
        tags: [],
        fields: {},
        externalRefs: [{ system: "highlevel", id: "opp_1" }],
      },
      { idempotencyKey: "ledger-abc" },
    );
    expect(deal.id).toBe("deal_new");
    expect(api.requests.map((r) => r.headers.get("idempotency-key"))).toEqual(["ledger-abc", "ledger-abc"]);
    expect(api.requests[1]!.body).toEqual({
      name: "New",
      pipeline_id: "pl_1",
      stage_id: "st_1",
      owner_id: null,
      value: { amount_minor: 100, currency: "EUR" },
      expected_close_date: null,
      company_id: null,
      contact_ids: [],
      tags: [],
      fields: {},
      external_refs: [{ system: "highlevel", id: "opp_1" }],
    });
    expect(api.requests[1]!.body).not.toHaveProperty("status");
    expect(sleeps).toEqual([250]);
  });

  it("happy: a 409 version_conflict re-reads and re-applies the patch on the fresh version", async () => {
    api.requests.length = 0;
    api.on(({ method, headers }) => {
      if (method === "GET") return json(rawDeal({ version: 5, name: "Renamed elsewhere" }));
      return headers.get("if-match") === '"5"'
        ? json(rawDeal({ version: 6, stage_id: "st_3", name: "Renamed elsewhere" }))
        : envelope(409, "version_conflict", "stale version");
    });
    const { connector } = setup();
    const updated = await connector.updateDeal(
      "deal_1",
      { stage: { id: "st_3", name: null } },
      { expectedVersion: "3", idempotencyKey: "w1" },
    );
    expect(updated).toMatchObject({ version: "6", stage: { id: "st_3" }, name: "Renamed elsewhere" });
    const patches = api.requests.filter((r) => r.method === "PATCH");
    expect(patches.map((r) => r.headers.get("if-match"))).toEqual(['"3"', '"5"']);
    expect(patches.map((r) => r.headers.get("idempotency-key"))).toEqual(["w1", "w1:retry-1"]);
    expect(patches[1]!.body).toEqual({ stage_id: "st_3" });
  });

  it("happy: a conflict resolver can abandon the update and get the current record", async () => {
    api.on(({ method }) =>
      method === "GET" ? json(rawDeal({ version: 9 })) : envelope(409, "version_conflict", "stale"),
    );
    const { connector } = setup();
    const seen: string[] = [];
    const out = await connector.updateDeal(
      "deal_1",
      { name: "Mine" },
      {
        expectedVersion: "3",
        onConflict: (current) => {
          seen.push(current.version ?? "");
          return null;
        },
      },
    );
    expect(seen).toEqual(["9"]);
    expect(out.version).toBe("9");
  });

  it("error: conflicts that never settle end in a permanent conflict error", async () => {
    api.on(({ method }) =>
      method === "GET" ? json(rawDeal({ version: 9 })) : envelope(409, "version_conflict", "stale"),
    );
    const { connector } = setup();
    const err = await connector
      .updateDeal("deal_1", { name: "Mine" }, { expectedVersion: "3" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FourDegreesError);
    expect(err).toMatchObject({ code: "conflict", retryable: false, upstreamCode: "version_conflict" });
  });

  it("happy: notes — list, create, update, delete (each write with its own key)", async () => {
    api.requests.length = 0;
    const note = {
      id: "note_1",
      deal_id: "deal_1",
      body: "hello",
      author_id: "usr_1",
      created_at: "2026-11-02T09:00:00+01:00",
      updated_at: null,
    };
    api.on(({ method, path }) => {
      if (method === "GET" && path === "/deals/deal_1/notes") return json({ data: [note], next_cursor: null });
      if (method === "POST") return json(note, 201);
      if (method === "PATCH") return json({ ...note, body: "edited" });
      if (method === "DELETE") return new Response(null, { status: 204 });
      return json({}, 404);
    });
    const { connector } = setup();
    const notes = await connector.listNotes("deal_1");
    expect(notes[0]).toEqual({
      id: "note_1",
      dealId: "deal_1",
      body: "hello",
      authorId: "usr_1",
      createdAt: "2026-11-02T08:00:00.000Z",
      updatedAt: null,
    });
    expect((await connector.createNote("deal_1", "hello")).id).toBe("note_1");
    expect((await connector.updateNote("note_1", "edited")).body).toBe("edited");
    expect(await connector.deleteNote("note_1")).toBe(true);
    const writes = api.requests.filter((r) => r.method !== "GET");
    expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /deals/deal_1/notes",
      "PATCH /notes/note_1",
      "DELETE /notes/note_1",
    ]);
    expect(new Set(writes.map((r) => r.headers.get("idempotency-key"))).size).toBe(3);
    expect(writes.every((r) => r.headers.get("idempotency-key"))).toBe(true);
  });

  it("happy: a missing deal reads as null and archiving it again answers false", async () => {
    api.on(() => envelope(404, "not_found", "no such deal"));
    const { connector } = setup();
    expect(await connector.getDeal("deal_x")).toBeNull();
    expect(await connector.archiveDeal("deal_x")).toBe(false);
  });

  it("error: a validation error maps the envelope to a permanent unprocessable error", async () => {
    api.on(() => envelope(422, "invalid_stage", "stage st_9 is not in pipeline pl_1"));
    const { connector } = setup();
    const err = await connector
      .updateDeal("deal_1", { stage: { id: "st_9", name: null } }, { expectedVersion: "3" })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "unprocessable",
      retryable: false,
      upstreamStatus: 422,
      upstreamCode: "invalid_stage",
      upstreamRequestId: "req_42",
    });
    expect(isRetryable(err)).toBe(false);
  });

  it("error: a 401 is a permanent forbidden that points at the API key", async () => {
    api.on(() => envelope(401, "invalid_api_key", "bad key"));
    const { connector } = setup();
    const err = await connector.listUsers().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "forbidden", retryable: false });
    expect(String((err as Error).message)).toMatch(/API key/);
  });

  it("happy: a short 429 Retry-After is waited out in-process and the call retried", async () => {
    api.on(({ n }) =>
      n % 2 === 1 ? json({ error: { code: "rate_limited" } }, 429, { "Retry-After": "1" }) : json(rawDeal()),
    );
    const { connector, sleeps } = setup();
    expect((await connector.getDeal("deal_1"))?.id).toBe("deal_1");
    expect(sleeps).toEqual([1000]);
  });

  it("error: a long 429 Retry-After becomes a retryable rate_limited error carrying the wait", async () => {
    api.on(() =>
      json({ error: { type: "rate_limit", code: "rate_limited", message: "slow down", request_id: "r" } }, 429, {
        "Retry-After": "30",
      }),
    );
    const { connector, sleeps } = setup();
    const err = await connector.getDeal("deal_1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "rate_limited", retryable: true, retryAfterMs: 30_000 });
    expect((err as FourDegreesError).headers["Retry-After"]).toBe("30");
    expect(sleeps).toEqual([]);
  });

  it("error: persistent 5xx ends retryable after the retries; network errors too", async () => {
    api.on(() => new Response("bad gateway", { status: 502 }));
    const { connector, sleeps } = setup();
    const err = await connector.getDeal("deal_1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "upstream_unavailable", retryable: true, upstreamStatus: 502 });
    expect(sleeps).toEqual([250, 500]);
  });

  it("error: an answer outside the assumed contract is a permanent contract-drift error", async () => {
    api.on(() => json({ id: "deal_1", version: "three" }));
    const { connector } = setup();
    const err = await connector.getDeal("deal_1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "internal", retryable: false });
    expect(String((err as Error).message)).toMatch(/assumed contract/);
  });

  it("error: a create that names its stage only by name is refused before any call", async () => {
    api.requests.length = 0;
    const { connector } = setup();
    const err = await connector
      .createDeal({
        name: "X",
        pipeline: { id: "pl_1", name: null },
        stage: { id: null, name: "Sourced" },
        status: null,
        owner: null,
        value: null,
        expectedCloseDate: null,
        companyId: null,
        contacts: [],
        tags: [],
        fields: {},
        externalRefs: [],
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "unprocessable" });
    expect(String((err as Error).message)).toMatch(/"Sourced"/);
    expect(api.requests).toHaveLength(0);
  });
});

describe("Retry-After parsing", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter("Wed, 21 Oct 2026 07:28:10 GMT", Date.parse("Wed, 21 Oct 2026 07:28:00 GMT"))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
  });
});
