/**
 * The 4Degrees sandbox's API (the ASSUMED partner contract) in-process inside workerd: every
 * endpoint's happy and error paths, the envelope, versions, If-Match, idempotency, actors, rate
 * limits and seeded faults.
 */
import { describe, expect, it } from "vitest";
import { apiKeyId } from "../../../sandbox/fourdegrees/index.ts";
import { harness, KEY } from "./fourdegrees-helpers.ts";

const ACTOR = { type: "api_key", id: apiKeyId(KEY) };

function expectEnvelope(res: { status: number; json: any }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.json.error.code).toBe(code);
  expect(typeof res.json.error.type).toBe("string");
  expect(res.json.error.message.length).toBeGreaterThan(0);
  expect(res.json.error.request_id).toMatch(/^req_/);
}

describe("4Degrees sandbox: authentication", () => {
  it("error: no Authorization header is a 401 missing_api_key envelope", async () => {
    const h = await harness();
    const res = await h.call("GET", "/me", { key: null });
    expectEnvelope(res, 401, "missing_api_key");
    expect(res.json.error.type).toBe("authentication_error");
  });

  it("security: a wrong key is a 401 invalid_api_key and reveals nothing", async () => {
    const h = await harness();
    const res = await h.call("GET", "/deals", { key: "4d_wrong" });
    expectEnvelope(res, 401, "invalid_api_key");
    expect(res.text).not.toContain("Deal Flow");
  });

  it("happy: the API key comes from FOURDEGREES_API_KEY", async () => {
    const h = await harness({ settings: { FOURDEGREES_API_KEY: "4d_custom_key_123" } });
    expect((await h.call("GET", "/me")).status).toBe(401);
    const res = await h.call("GET", "/me", { key: "4d_custom_key_123" });
    expect(res.status).toBe(200);
    expect(res.json.actor).toEqual({ type: "api_key", id: apiKeyId("4d_custom_key_123") });
  });

  it("security: a read-only key reads but gets 403 on writes", async () => {
    const h = await harness();
    await h.control("POST", "/api-keys", { key: "4d_readonly_key", scopes: ["read"] });
    expect((await h.call("GET", "/deals", { key: "4d_readonly_key" })).status).toBe(200);
    const res = await h.call("POST", "/deals", {
      key: "4d_readonly_key",
      body: { name: "X", pipeline_id: h.pipeline().id },
    });
    expectEnvelope(res, 403, "insufficient_scope");
  });
});

describe("4Degrees sandbox: workspace reads", () => {
  it("happy: /me names the workspace and the key's actor", async () => {
    const h = await harness();
    const res = await h.call("GET", "/me");
    expect(res.status).toBe(200);
    expect(res.json.workspace.id).toBe(h.sandbox.fourdegrees.store.workspace.id);
    expect(res.json.actor).toEqual(ACTOR);
  });

  it("happy: /users lists the demo users with emails", async () => {
    const h = await harness();
    const res = await h.call("GET", "/users");
    expect(res.json.data.map((u: { email: string }) => u.email)).toEqual([
      "alex.morgan@acmecapital.example",
      "priya.shah@acmecapital.example",
      "jordan.lee@acmecapital.example",
    ]);
    for (const u of res.json.data) expect(u.id).toMatch(/^usr_/);
  });

  it("happy: /pipelines gives ordered stages with open/won/lost kinds", async () => {
    const h = await harness();
    const res = await h.call("GET", "/pipelines");
    const pipeline = res.json.data[0];
    expect(pipeline.id).toMatch(/^pl_/);
    expect(pipeline.stages.map((s: { position: number }) => s.position)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(new Set(pipeline.stages.map((s: { kind: string }) => s.kind))).toEqual(new Set(["open", "won", "lost"]));
    for (const s of pipeline.stages) expect(s.id).toMatch(/^st_/);
  });

  it("happy: /pipelines/{id}/fields lists typed fields, formula and linked deals read-only", async () => {
    const h = await harness();
    const res = await h.call("GET", `/pipelines/${h.pipeline().id}/fields`);
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.json.data.map((f: { name: string }) => [f.name, f]));
    expect(byName["Sector"].type).toBe("single_select");
    expect(byName["Sector"].options).toContain("Fintech");
    expect(byName["Value (k)"].read_only).toBe(true);
    expect(byName["Related deals"].read_only).toBe(true);
    expect(byName["Source"].read_only).toBe(false);
  });

  it("error: fields of an unknown pipeline are a 404", async () => {
    const h = await harness();
    expectEnvelope(await h.call("GET", "/pipelines/pl_nope/fields"), 404, "pipeline_not_found");
  });

  it("error: an unknown route is a 404 envelope, not a crash", async () => {
    const h = await harness();
    expectEnvelope(await h.call("GET", "/widgets"), 404, "route_not_found");
  });
});

describe("4Degrees sandbox: deals", () => {
  it("happy: create answers 201 with the contract's shape, version 1, ETag and money in minor units", async () => {
    const h = await harness();
    const owner = [...h.sandbox.fourdegrees.store.users.values()][1]!;
    const res = await h.call("POST", "/deals", {
      body: {
        name: "Acme — Seed",
        pipeline_id: h.pipeline().id,
        stage_id: h.stage("First Meeting"),
        owner_id: owner.id,
        value: { amount_minor: 50_000_000, currency: "USD" },
        expected_close_date: "2027-03-31",
        tags: ["seed"],
        external_refs: [{ system: "highlevel", id: "opp_1" }],
      },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("etag")).toBe('"1"');
    expect(Object.keys(res.json)).toEqual([
      "id",
      "version",
      "name",
      "pipeline_id",
      "stage_id",
      "status",
      "pass_reason_id",
      "pass_reason_text",
      "owner_id",
      "team_ids",
      "value",
      "expected_close_date",
      "company_id",
      "contact_ids",
      "tags",
      "fields",
      "external_refs",
      "created_at",
      "updated_at",
      "archived_at",
    ]);
    expect(res.json).toMatchObject({
      version: 1,
      status: "open",
      owner_id: owner.id,
      value: { amount_minor: 50_000_000, currency: "USD" },
      archived_at: null,
    });
    expect(res.json.id).toMatch(/^deal_/);
    expect(res.json.created_at).toBe(new Date(h.clock.now()).toISOString());
    expect((await h.call("GET", `/deals/${res.json.id}`)).json).toEqual(res.json);
  });

  it("happy: without stage_id a deal starts in the first stage", async () => {
    const h = await harness();
    const res = await h.call("POST", "/deals", { body: { name: "No stage", pipeline_id: h.pipeline().id } });
    expect(res.json.stage_id).toBe(h.stage("Sourced"));
  });

  it("error: create validates required, types, references and unknown fields", async () => {
    const h = await harness();
    const pl = h.pipeline().id;
    expectEnvelope(await h.call("POST", "/deals", { body: { pipeline_id: pl } }), 422, "validation_failed");
    expectEnvelope(await h.call("POST", "/deals", { body: { name: "", pipeline_id: pl } }), 422, "validation_failed");
    expectEnvelope(
      await h.call("POST", "/deals", {
        body: { name: "X", pipeline_id: pl, value: { amount_minor: 10.5, currency: "USD" } },
      }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/deals", {
        body: { name: "X", pipeline_id: pl, value: { amount_minor: 10, currency: "usd" } },
      }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, expected_close_date: "2027-02-30" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: "pl_nope" } }),
      422,
      "unknown_pipeline",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, stage_id: "st_nope" } }),
      422,
      "unknown_stage",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, owner_id: "usr_nope" } }),
      422,
      "unknown_user",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, contact_ids: ["ct_nope"] } }),
      422,
      "unknown_contact",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, colour: "red" } }),
      422,
      "unknown_field",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, status: "won" } }),
      422,
      "read_only_field",
    );
    expectEnvelope(await h.call("POST", "/deals", { body: "{not json" }), 400, "invalid_json");
    expectEnvelope(await h.call("POST", "/deals", { body: "[1,2]" }), 400, "invalid_json");
    expectEnvelope(
      await h.call("POST", "/deals", {
        body: "name=X",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
      415,
      "unsupported_media_type",
    );
    expect(h.sandbox.fourdegrees.deals()).toHaveLength(6);
  });

  it("error: custom fields are checked against the list's definitions (exact select options, read-only formula)", async () => {
    const h = await harness();
    const pl = h.pipeline().id;
    const fields = (await h.call("GET", `/pipelines/${pl}/fields`)).json.data as Array<{ id: string; name: string }>;
    const id = (name: string) => fields.find((f) => f.name === name)!.id;
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, fields: { [id("Sector")]: "fintech" } } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, fields: { [id("Value (k)")]: 3 } } }),
      422,
      "read_only_field",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: pl, fields: { fld_nope: "x" } } }),
      422,
      "unknown_custom_field",
    );
    const ok = await h.call("POST", "/deals", {
      body: {
        name: "X",
        pipeline_id: pl,
        value: { amount_minor: 123_456_00, currency: "USD" },
        fields: { [id("Sector")]: "Fintech", [id("Ownership %")]: 7.5 },
      },
    });
    expect(ok.status).toBe(201);
    expect(ok.json.fields[id("Sector")]).toBe("Fintech");
    expect(ok.json.fields[id("Value (k)")]).toBe(123.46);
  });

  it("happy: PATCH bumps the version, moves status with the stage kind and records updated_at from the sandbox clock", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    h.clock.advance(60_000);
    const res = await h.call("PATCH", `/deals/${deal.id}`, {
      body: { stage_id: h.stage("Closed") },
      headers: { "if-match": `"${deal.version}"` },
    });
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(deal.version + 1);
    expect(res.json.status).toBe("won");
    expect(res.json.updated_at).toBe(new Date(h.clock.now()).toISOString());
    expect(res.headers.get("etag")).toBe(`"${deal.version + 1}"`);
    const lost = await h.call("PATCH", `/deals/${deal.id}`, { body: { stage_id: h.stage("Passed") } });
    expect(lost.json).toMatchObject({ status: "lost", version: deal.version + 2 });
  });

  it("error: a stale If-Match is a 409 version_conflict and changes nothing", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    await h.call("PATCH", `/deals/${deal.id}`, { body: { name: "Bluebird — Seed" } });
    const res = await h.call("PATCH", `/deals/${deal.id}`, {
      body: { name: "Stale write" },
      headers: { "if-match": `"${deal.version}"` },
    });
    expectEnvelope(res, 409, "version_conflict");
    expect(res.json.error.type).toBe("conflict_error");
    expect(h.sandbox.fourdegrees.deal(deal.id).name).toBe("Bluebird — Seed");
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { name: "Y" }, headers: { "if-match": "latest" } }),
      400,
      "invalid_if_match",
    );
  });

  it("error: status is read-only on PATCH (422) — it follows the stage", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    expectEnvelope(await h.call("PATCH", `/deals/${deal.id}`, { body: { status: "won" } }), 422, "read_only_field");
    expectEnvelope(await h.call("PATCH", `/deals/${deal.id}`, { body: { version: 9 } }), 422, "read_only_field");
  });

  it("happy: a PATCH that changes nothing keeps the version and emits no event", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    const before = h.sandbox.fourdegrees.events.length;
    const res = await h.call("PATCH", `/deals/${deal.id}`, { body: { name: deal.name, tags: deal.tags } });
    expect(res.json.version).toBe(deal.version);
    expect(h.sandbox.fourdegrees.events.length).toBe(before);
  });

  it("happy: DELETE archives — the deal stays readable, flagged, and listed unless include_archived=false", async () => {
    const h = await harness();
    const deal = h.dealNamed("Marlow & Finch — Pre-seed");
    const res = await h.call("DELETE", `/deals/${deal.id}`);
    expect(res.status).toBe(200);
    expect(res.json.archived_at).toBe(new Date(h.clock.now()).toISOString());
    expect(res.json.version).toBe(deal.version + 1);
    expect((await h.call("GET", `/deals/${deal.id}`)).json.archived_at).not.toBeNull();
    expect((await h.call("GET", "/deals")).json.data.map((d: { id: string }) => d.id)).toContain(deal.id);
    expect(
      (await h.call("GET", "/deals?include_archived=false")).json.data.map((d: { id: string }) => d.id),
    ).not.toContain(deal.id);
    const again = await h.call("DELETE", `/deals/${deal.id}`);
    expect(again.json.version).toBe(deal.version + 1);
    expectEnvelope(await h.call("PATCH", `/deals/${deal.id}`, { body: { name: "Back" } }), 409, "deal_archived");
  });

  it("error: unknown deal ids are 404 on every verb", async () => {
    const h = await harness();
    expectEnvelope(await h.call("GET", "/deals/deal_nope"), 404, "deal_not_found");
    expectEnvelope(await h.call("PATCH", "/deals/deal_nope", { body: { name: "x" } }), 404, "deal_not_found");
    expectEnvelope(await h.call("DELETE", "/deals/deal_nope"), 404, "deal_not_found");
    expectEnvelope(await h.call("GET", "/deals/deal_nope/notes"), 404, "deal_not_found");
  });
});

describe("4Degrees sandbox: listing deals", () => {
  it("happy: cursor paging with limit walks every deal once, in updated_at order", async () => {
    const h = await harness();
    for (let i = 0; i < 7; i++) {
      h.clock.advance(1_000);
      await h.call("POST", "/deals", { body: { name: `Paged ${i}`, pipeline_id: h.pipeline().id } });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { json: { data: Array<{ id: string; updated_at: string }>; next_cursor: string | null } } =
        await h.call("GET", `/deals?limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...res.json.data.map((d) => d.id));
      cursor = res.json.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(13);
    expect(new Set(seen).size).toBe(13);
  });

  it("happy: updated_since returns only deals changed at or after it; pipeline_id filters", async () => {
    const h = await harness();
    h.clock.advance(10_000);
    const since = new Date(h.clock.now()).toISOString();
    const deal = h.dealNamed("Ledgerline — Seed extension");
    await h.call("PATCH", `/deals/${deal.id}`, { body: { tags: ["fintech", "follow-on"] } });
    const res = await h.call("GET", `/deals?updated_since=${encodeURIComponent(since)}&pipeline_id=${h.pipeline().id}`);
    expect(res.json.data.map((d: { id: string }) => d.id)).toEqual([deal.id]);
    expect(res.json.next_cursor).toBeNull();
  });

  it("error: limit above 100, a bad timestamp, a forged cursor and an unknown pipeline are rejected", async () => {
    const h = await harness();
    expectEnvelope(await h.call("GET", "/deals?limit=101"), 400, "invalid_parameter");
    expectEnvelope(await h.call("GET", "/deals?limit=0"), 400, "invalid_parameter");
    expectEnvelope(await h.call("GET", "/deals?updated_since=yesterday"), 400, "invalid_parameter");
    expectEnvelope(await h.call("GET", "/deals?cursor=not-a-cursor"), 400, "invalid_cursor");
    expectEnvelope(await h.call("GET", "/deals?pipeline_id=pl_nope"), 404, "pipeline_not_found");
  });
});

describe("4Degrees sandbox: notes", () => {
  it("happy: create, list, update and delete notes of a deal", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    const created = await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "Call with the CFO went well." } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ deal_id: deal.id, body: "Call with the CFO went well.", author_id: null });
    expect(Object.keys(created.json)).toEqual(["id", "deal_id", "body", "author_id", "created_at", "updated_at"]);
    const listed = await h.call("GET", `/deals/${deal.id}/notes`);
    expect(listed.json.data.map((n: { id: string }) => n.id)).toEqual([created.json.id]);
    h.clock.advance(5_000);
    const updated = await h.call("PATCH", `/notes/${created.json.id}`, { body: { body: "Edited." } });
    expect(updated.json.body).toBe("Edited.");
    expect(updated.json.updated_at).not.toBe(created.json.updated_at);
    const deleted = await h.call("DELETE", `/notes/${created.json.id}`);
    expect(deleted.json).toEqual({ id: created.json.id, deleted: true });
    expect((await h.call("GET", `/deals/${deal.id}/notes`)).json.data).toEqual([]);
  });

  it("error: empty bodies, unknown authors, unknown notes and archived deals are refused", async () => {
    const h = await harness();
    const deal = h.dealNamed("Northwind Analytics — Series A");
    expectEnvelope(await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "  " } }), 422, "validation_failed");
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "x", author_id: "usr_nope" } }),
      422,
      "unknown_user",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "x", pinned: true } }),
      422,
      "unknown_field",
    );
    expectEnvelope(await h.call("PATCH", "/notes/note_nope", { body: { body: "x" } }), 404, "note_not_found");
    expectEnvelope(await h.call("DELETE", "/notes/note_nope"), 404, "note_not_found");
    await h.call("DELETE", `/deals/${deal.id}`);
    expectEnvelope(await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "late" } }), 409, "deal_archived");
  });

  it("happy: note paging returns every note once", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    for (let i = 0; i < 4; i++) {
      h.clock.advance(1_000);
      await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: `note ${i}` } });
    }
    const first = await h.call("GET", `/deals/${deal.id}/notes?limit=3`);
    const second = await h.call("GET", `/deals/${deal.id}/notes?limit=3&cursor=${first.json.next_cursor}`);
    expect([...first.json.data, ...second.json.data]).toHaveLength(5);
    expect(second.json.next_cursor).toBeNull();
  });
});

describe("4Degrees sandbox: contacts (sandbox extension)", () => {
  it("happy: find a contact by email, read it, create one; duplicates are a 409", async () => {
    const h = await harness();
    const found = await h.call("GET", "/contacts?email=NORA@northwind.example");
    expect(found.json.data).toHaveLength(1);
    expect((await h.call("GET", `/contacts/${found.json.data[0].id}`)).json.email).toBe("nora@northwind.example");
    const created = await h.call("POST", "/contacts", { body: { name: "New Person", email: "new@person.example" } });
    expect(created.status).toBe(201);
    expectEnvelope(
      await h.call("POST", "/contacts", { body: { name: "Again", email: "new@person.example" } }),
      409,
      "duplicate_contact",
    );
    expectEnvelope(await h.call("GET", "/contacts/ct_nope"), 404, "contact_not_found");
  });
});

describe("4Degrees sandbox: idempotency", () => {
  it("happy: a replayed POST returns the first response and creates nothing new", async () => {
    const h = await harness();
    const body = { name: "Once only", pipeline_id: h.pipeline().id };
    const first = await h.call("POST", "/deals", { body, headers: { "idempotency-key": "create-once-1" } });
    const second = await h.call("POST", "/deals", { body, headers: { "idempotency-key": "create-once-1" } });
    expect(second.status).toBe(201);
    expect(second.json).toEqual(first.json);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.headers.get("etag")).toBe('"1"');
    expect(h.sandbox.fourdegrees.deals().filter((d) => d.name === "Once only")).toHaveLength(1);
  });

  it("error: the same key with a different body is a 422 idempotency_key_reused", async () => {
    const h = await harness();
    await h.call("POST", "/deals", {
      body: { name: "A", pipeline_id: h.pipeline().id },
      headers: { "idempotency-key": "k-reuse" },
    });
    expectEnvelope(
      await h.call("POST", "/deals", {
        body: { name: "B", pipeline_id: h.pipeline().id },
        headers: { "idempotency-key": "k-reuse" },
      }),
      422,
      "idempotency_key_reused",
    );
  });

  it("happy: a failed request is not recorded, so a retry with the same key runs", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    const stale = await h.call("PATCH", `/deals/${deal.id}`, {
      body: { name: "Retried" },
      headers: { "idempotency-key": "k-retry", "if-match": '"99"' },
    });
    expect(stale.status).toBe(409);
    const retry = await h.call("PATCH", `/deals/${deal.id}`, {
      body: { name: "Retried" },
      headers: { "idempotency-key": "k-retry", "if-match": `"${deal.version}"` },
    });
    expect(retry.status).toBe(200);
    expect(retry.json.name).toBe("Retried");
  });

  it("happy: keys expire after 24 hours of sandbox time", async () => {
    const h = await harness();
    const body = { name: "Daily", pipeline_id: h.pipeline().id };
    await h.call("POST", "/deals", { body, headers: { "idempotency-key": "k-day" } });
    h.clock.advance(24 * 3_600_000 + 1);
    const again = await h.call("POST", "/deals", { body, headers: { "idempotency-key": "k-day" } });
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(h.sandbox.fourdegrees.deals().filter((d) => d.name === "Daily")).toHaveLength(2);
  });
});

describe("4Degrees sandbox: actor and version on every change", () => {
  it("happy: API writes carry the api_key actor; each change bumps the version once", async () => {
    const h = await harness();
    const created = await h.call("POST", "/deals", { body: { name: "Actor check", pipeline_id: h.pipeline().id } });
    await h.call("PATCH", `/deals/${created.json.id}`, {
      body: { owner_id: [...h.sandbox.fourdegrees.store.users.keys()][2] },
    });
    await h.call("PATCH", `/deals/${created.json.id}`, { body: { value: { amount_minor: 1_00, currency: "USD" } } });
    const events = h.sandbox.fourdegrees.events.filter((e) => e.data.object.id === created.json.id);
    expect(events.map((e) => e.type)).toEqual(["deal.created", "deal.owner_changed", "deal.updated"]);
    for (const e of events) expect(e.actor).toEqual(ACTOR);
    expect(events.map((e) => (e.data.object as { version: number }).version)).toEqual([1, 2, 3]);
  });

  it("happy: a change made in the control API ('the UI') carries the user actor", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    const user = [...h.sandbox.fourdegrees.store.users.values()][1]!;
    const res = await h.control("PATCH", `/deals/${deal.id}?as=${user.id}`, { stage_id: h.stage("Due Diligence") });
    expect(res.status).toBe(200);
    expect(res.json.version).toBe(deal.version + 1);
    expect(h.sandbox.fourdegrees.events.at(-1)).toMatchObject({
      type: "deal.stage_changed",
      actor: { type: "user", id: user.id },
    });
    await h.control("PATCH", `/deals/${deal.id}?as=automation:auto_stage_rule`, { tags: ["auto"] });
    expect(h.sandbox.fourdegrees.events.at(-1)!.actor).toEqual({ type: "automation", id: "auto_stage_rule" });
  });
});

describe("4Degrees sandbox: rate limits", () => {
  it("happy: every answer carries X-RateLimit-Limit/Remaining/Reset", async () => {
    const h = await harness({ settings: { FOURDEGREES_RATE_LIMIT: "10" } });
    const res = await h.call("GET", "/users");
    expect(res.headers.get("x-ratelimit-limit")).toBe("10");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("9");
    expect(res.headers.get("x-ratelimit-reset")).toBe("1");
    const err = await h.call("GET", "/deals/deal_nope");
    expect(err.headers.get("x-ratelimit-remaining")).toBe("8");
  });

  it("error: the 11th request within a second is a 429 with Retry-After; the window rolls with the sandbox clock", async () => {
    const h = await harness({ settings: { FOURDEGREES_RATE_LIMIT: "10" } });
    for (let i = 0; i < 10; i++) expect((await h.call("GET", "/users")).status).toBe(200);
    const limited = await h.call("GET", "/users");
    expectEnvelope(limited, 429, "rate_limited");
    expect(limited.json.error.type).toBe("rate_limit_error");
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    h.clock.advance(1_000);
    expect((await h.call("GET", "/users")).status).toBe(200);
  });

  it("happy: limits are per key and configurable through the control API (time-scaled windows)", async () => {
    const h = await harness();
    await h.control("PUT", "/ratelimit", { max: 2, intervalMs: 50 });
    await h.control("POST", "/api-keys", { key: "4d_second_key_1" });
    expect((await h.call("GET", "/users")).status).toBe(200);
    expect((await h.call("GET", "/users")).status).toBe(200);
    expect((await h.call("GET", "/users")).status).toBe(429);
    expect((await h.call("GET", "/users", { key: "4d_second_key_1" })).status).toBe(200);
    h.clock.advance(50);
    expect((await h.call("GET", "/users")).status).toBe(200);
  });
});

describe("4Degrees sandbox: faults", () => {
  it("happy: a scripted fault fails exactly the matching requests, with Retry-After when asked", async () => {
    const h = await harness();
    expect(
      (await h.control("POST", "/faults/script", { status: 503, method: "GET", path: "^/deals$", count: 2 })).status,
    ).toBe(201);
    await h.control("POST", "/faults/script", { status: 429, path: "/users", retryAfter: 7 });
    expectEnvelope(await h.call("GET", "/deals"), 503, "injected_fault");
    expect((await h.call("GET", "/pipelines")).status).toBe(200);
    expect((await h.call("GET", "/deals")).status).toBe(503);
    expect((await h.call("GET", "/deals")).status).toBe(200);
    const limited = await h.call("GET", "/users");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
  });

  it("happy: seeded error faults replay identically for the same seed", async () => {
    async function run(seed: number) {
      const h = await harness({ seed });
      await h.control("PUT", "/faults", { seed, errorRate: 0.4, rateLimitRate: 0.1 });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await h.call("GET", "/users")).status);
      return statuses;
    }
    const a = await run(1234);
    expect(await run(1234)).toEqual(a);
    expect(a.some((s) => s >= 500)).toBe(true);
    expect(a.some((s) => s === 200)).toBe(true);
    expect(await run(99)).not.toEqual(a);
  });

  it("error: bad fault settings are a 422, not a crash", async () => {
    const h = await harness();
    const bad = await h.control("PUT", "/faults", { errorRate: 3 });
    expect(bad.status).toBe(400);
    expect(bad.json.issues[0]).toContain("errorRate");
    expect((await h.control("PUT", "/faults", "nope")).status).toBe(400);
    const badPath = await h.control("POST", "/faults/script", { status: 500, path: "(" });
    expect(badPath.status).toBe(400);
    expect(badPath.json.issues).toContain("path: path must be a valid regular expression");
  });

  it("happy: the request log records method, route, status, Idempotency-Key and If-Match", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    await h.call("PATCH", `/deals/${deal.id}`, {
      body: { name: "Logged" },
      headers: { "idempotency-key": "k-log", "if-match": `"${deal.version}"` },
    });
    const res = await h.control("GET", "/requests");
    expect(res.json.byRoute["PATCH /deals/:id"]).toBe(1);
    expect(res.json.log.at(-1)).toMatchObject({
      method: "PATCH",
      route: "/deals/:id",
      status: 200,
      idempotencyKey: "k-log",
      ifMatch: `"${deal.version}"`,
    });
  });
});
