/**
 * The 4Degrees sandbox's ASSUMED contract extensions in-process inside workerd: deal attachments
 * (multipart upload, size cap, type allow-list, signed expiring download URLs, webhooks), pass
 * reasons, the deal team, contacts, reminders (and the control API's list of them), and notes
 * imported with their author and time.
 */
import { describe, expect, it } from "vitest";
import { apiKeyId } from "../../../sandbox/fourdegrees/index.ts";
import { API, harness, KEY, SECRET, verifySignature, type Harness } from "./fourdegrees-helpers.ts";

const ACTOR = { type: "api_key", id: apiKeyId(KEY) };
const PDF = new TextEncoder().encode("%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n");
const ATTACHMENT_KEYS = [
  "id",
  "deal_id",
  "file_name",
  "content_type",
  "size",
  "author_id",
  "created_at",
  "download_url",
];

function expectEnvelope(res: { status: number; json: any }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.json.error.code).toBe(code);
  expect(res.json.error.message.length).toBeGreaterThan(0);
  expect(res.json.error.request_id).toMatch(/^req_/);
}

interface Upload {
  name?: string;
  type?: string;
  bytes?: Uint8Array;
  fields?: Record<string, string>;
  headers?: Record<string, string>;
  key?: string;
  noFile?: boolean;
}

/** A multipart upload through the API (a fresh FormData, so a fresh boundary, on every call). */
async function upload(h: Harness, dealId: string, o: Upload = {}) {
  const form = new FormData();
  if (!o.noFile)
    form.append(
      "file",
      new File([(o.bytes ?? PDF) as Uint8Array<ArrayBuffer>], o.name ?? "Term sheet.pdf", {
        type: o.type ?? "application/pdf",
      }),
    );
  for (const [k, v] of Object.entries(o.fields ?? {})) form.append(k, v);
  const res = await h.sandbox.fetch(
    new Request(`${API}/deals/${dealId}/attachments`, {
      method: "POST",
      headers: { authorization: `Bearer ${o.key ?? KEY}`, ...o.headers },
      body: form,
    }),
  );
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: JSON.parse(text) };
}

async function download(h: Harness, url: string) {
  const res = await h.sandbox.fetch(new Request(url));
  const bytes = new Uint8Array(await res.arrayBuffer());
  let json: any = null;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

/** Deliveries received since the harness started, parsed, after a flush. */
async function delivered(h: Harness) {
  await h.sandbox.fourdegrees.flush();
  return h.received.map((r) => ({ ...r, event: JSON.parse(r.body) }));
}

function dealId(h: Harness, name = "Northwind Analytics — Series A") {
  return h.dealNamed(name).id;
}

describe("4Degrees sandbox: attachments", () => {
  it("happy: an upload answers 201 with the attachment, and its download_url serves the same bytes", async () => {
    const h = await harness();
    const id = dealId(h);
    const res = await upload(h, id);
    expect(res.status).toBe(201);
    expect(Object.keys(res.json)).toEqual(ATTACHMENT_KEYS);
    expect(res.json).toMatchObject({
      deal_id: id,
      file_name: "Term sheet.pdf",
      content_type: "application/pdf",
      size: PDF.byteLength,
      author_id: null,
      created_at: new Date(h.clock.now()).toISOString(),
    });
    expect(res.json.id).toMatch(/^att_/);
    expect(res.json.download_url).toMatch(
      /^http:\/\/sandbox\.test\/4degrees\/files\/att_\w+\?expires=\d+&signature=[\w-]+$/,
    );

    const file = await download(h, res.json.download_url);
    expect(file.status).toBe(200);
    expect(file.bytes).toEqual(PDF);
    expect(file.headers.get("content-type")).toBe("application/pdf");
    expect(file.headers.get("content-length")).toBe(String(PDF.byteLength));
    expect(file.headers.get("content-disposition")).toBe("attachment; filename*=UTF-8''Term%20sheet.pdf");
  });

  it("happy: the deal's list and GET /attachments/{id} give the record with a fresh signed URL; list pages", async () => {
    const h = await harness();
    const id = dealId(h);
    const first = (await upload(h, id, { name: "a.pdf" })).json;
    h.clock.advance(1_000);
    const second = (
      await upload(h, id, { name: "notes.txt", type: "text/plain", bytes: new TextEncoder().encode("hello") })
    ).json;
    h.clock.advance(60_000);
    const page1 = await h.call("GET", `/deals/${id}/attachments?limit=1`);
    expect(page1.status).toBe(200);
    expect(page1.json.data.map((a: { id: string }) => a.id)).toEqual([first.id]);
    expect(page1.json.data[0].download_url).not.toBe(first.download_url);
    const page2 = await h.call("GET", `/deals/${id}/attachments?limit=1&cursor=${page1.json.next_cursor}`);
    expect(page2.json.data.map((a: { id: string }) => a.id)).toEqual([second.id]);
    expect(page2.json.next_cursor).toBeNull();
    const one = await h.call("GET", `/attachments/${second.id}`);
    expect({ ...one.json, download_url: null }).toEqual({ ...second, download_url: null });
    expect((await download(h, one.json.download_url)).bytes).toEqual(new TextEncoder().encode("hello"));
    expect((await h.call("GET", `/deals/${dealId(h, "Bluebird Health — Seed")}/attachments`)).json).toEqual({
      data: [],
      next_cursor: null,
    });
    expectEnvelope(await h.call("GET", "/attachments/att_missing"), 404, "attachment_not_found");
    expectEnvelope(await h.call("GET", "/deals/deal_missing/attachments"), 404, "deal_not_found");
  });

  it("happy: upload and delete emit signed attachment.created / attachment.deleted with the contract's envelope", async () => {
    const h = await harness();
    const id = dealId(h);
    const created = (await upload(h, id)).json;
    const del = await h.call("DELETE", `/attachments/${created.id}`);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ id: created.id, deleted: true });
    const events = await delivered(h);
    expect(events.map((e) => e.event.type)).toEqual(["attachment.created", "attachment.deleted"]);
    for (const e of events) {
      expect(await verifySignature(SECRET, e.headers, e.body)).toBe(true);
      expect(e.headers.get("webhook-id")).toBe(e.event.id);
      expect(Object.keys(e.event)).toEqual(["id", "type", "created_at", "workspace_id", "actor", "data", "changes"]);
      expect(e.event.actor).toEqual(ACTOR);
      expect(e.event.workspace_id).toBe(h.sandbox.fourdegrees.store.workspace.id);
    }
    expect(events[0]!.event.data.object).toEqual(created);
    expect(events[1]!.event.data.object).toEqual({ ...created, download_url: null });
    // The event's URL works until the file is gone.
    const gone = await download(h, created.download_url);
    expectEnvelope(gone, 404, "attachment_not_found");
    expect((await h.call("GET", `/deals/${id}/attachments`)).json.data).toEqual([]);
    expectEnvelope(await h.call("DELETE", `/attachments/${created.id}`), 404, "attachment_not_found");
    expect(h.sandbox.fourdegrees.store.attachments.size).toBe(0);
  });

  it("security: the download URL expires after its TTL and refuses a forged or missing signature", async () => {
    const h = await harness();
    const att = (await upload(h, dealId(h))).json;
    const url = new URL(att.download_url);
    const expires = Number(url.searchParams.get("expires"));
    expect(expires).toBe(Math.floor(h.clock.now() / 1000) + 900);

    h.clock.advance(899_000);
    expect((await download(h, att.download_url)).status).toBe(200);
    h.clock.advance(1_000);
    const expired = await download(h, att.download_url);
    expectEnvelope(expired, 403, "url_expired");
    expect(expired.bytes.length).toBeLessThan(400);

    const later = new URL(att.download_url);
    later.searchParams.set("expires", String(expires + 3_600));
    expectEnvelope(await download(h, later.toString()), 403, "invalid_signature");
    const forged = new URL(att.download_url);
    forged.searchParams.set("signature", "A".repeat(43));
    expectEnvelope(await download(h, forged.toString()), 403, "invalid_signature");
    expectEnvelope(await download(h, `${url.origin}${url.pathname}`), 403, "invalid_signature");
    // Another attachment's signature does not open this one.
    const other = new URL((await h.call("GET", `/attachments/${att.id}`)).json.download_url);
    other.pathname = other.pathname.replace(att.id, "att_someoneelse");
    expectEnvelope(await download(h, other.toString()), 403, "invalid_signature");

    const fresh = (await h.call("GET", `/attachments/${att.id}`)).json.download_url;
    expect((await download(h, fresh)).bytes).toEqual(PDF);
  });

  it("happy: the TTL and size cap come from settings and the control API", async () => {
    const h = await harness({
      settings: { FOURDEGREES_DOWNLOAD_URL_TTL_SECONDS: "60", FOURDEGREES_ATTACHMENT_MAX_BYTES: "100" },
    });
    expect((await h.control("GET", "/attachments/settings")).json).toEqual({
      maxBytes: 100,
      downloadUrlTtlSeconds: 60,
    });
    const att = (await upload(h, dealId(h))).json;
    expect(Number(new URL(att.download_url).searchParams.get("expires"))).toBe(Math.floor(h.clock.now() / 1000) + 60);
    expectEnvelope(
      await upload(h, dealId(h), { type: "text/plain", bytes: new Uint8Array(101).fill(65) }),
      413,
      "file_too_large",
    );
    expect((await h.control("PUT", "/attachments/settings", { maxBytes: 200 })).json).toEqual({
      maxBytes: 200,
      downloadUrlTtlSeconds: 60,
    });
    expect((await upload(h, dealId(h), { type: "text/plain", bytes: new Uint8Array(101).fill(65) })).status).toBe(201);
    expect((await h.control("PUT", "/attachments/settings", { maxBytes: 0 })).status).toBe(400);
  });

  it("error: a file over 25 MiB is 413 in the error envelope — declared or streamed without a length", async () => {
    const h = await harness();
    const id = dealId(h);
    const big = new Uint8Array(25 * 1024 * 1024 + 1).fill(65);
    const res = await upload(h, id, { type: "text/plain", bytes: big });
    expectEnvelope(res, 413, "file_too_large");
    expect(res.json.error.message).toContain(String(25 * 1024 * 1024));

    // A chunked body (no Content-Length) is cut off once it passes the cap.
    const boundary = "----sandboxboundary";
    const head = new TextEncoder().encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`,
    );
    let sent = 0;
    const chunk = new Uint8Array(1024 * 1024).fill(66);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(head);
        if (sent > 40) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const chunked = await h.sandbox.fetch(
      new Request(`${API}/deals/${id}/attachments`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": `multipart/form-data; boundary=${boundary}` },
        body: stream,
      }),
    );
    expectEnvelope({ status: chunked.status, json: await chunked.json() }, 413, "file_too_large");
    expect(sent).toBeLessThan(40);
    expect(h.sandbox.fourdegrees.store.attachments.size).toBe(0);
  });

  it("error: types outside the allow-list are 415, a mislabelled file 422, and bad forms are refused", async () => {
    const h = await harness();
    const id = dealId(h);
    const exe = await upload(h, id, {
      name: "setup.exe",
      type: "application/x-msdownload",
      bytes: new Uint8Array([0x4d, 0x5a, 0x90]),
    });
    expectEnvelope(exe, 415, "unsupported_file_type");
    expect(exe.json.error.message).toContain("application/pdf");
    expectEnvelope(
      await upload(h, id, { name: "blob.bin", type: "application/octet-stream" }),
      415,
      "unsupported_file_type",
    );
    expectEnvelope(await upload(h, id, { name: "logo.png", type: "image/png" }), 422, "content_type_mismatch");
    expectEnvelope(await upload(h, id, { noFile: true, fields: { note: "x" } }), 422, "file_required");
    expectEnvelope(await upload(h, id, { noFile: true, fields: { file: "not a file" } }), 422, "file_required");
    expectEnvelope(
      await upload(h, id, { name: "empty.txt", type: "text/plain", bytes: new Uint8Array(0) }),
      422,
      "empty_file",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${id}/attachments`, { body: { file: "x" } }),
      415,
      "unsupported_media_type",
    );
    const broken = await h.call("POST", `/deals/${id}/attachments`, {
      body: "--nope\r\nnot multipart",
      headers: { "content-type": "multipart/form-data; boundary=zzz" },
    });
    expectEnvelope(broken, 400, "invalid_multipart");
    expectEnvelope(await upload(h, "deal_missing"), 404, "deal_not_found");
    await h.control("POST", "/api-keys", { key: "4d_readonly_key", scopes: ["read"] });
    expectEnvelope(await upload(h, id, { key: "4d_readonly_key" }), 403, "insufficient_scope");
    h.sandbox.fourdegrees.archiveDealAsUser(id);
    expectEnvelope(await upload(h, id), 409, "deal_archived");
    expect(h.sandbox.fourdegrees.store.attachments.size).toBe(0);
  });

  it("happy: a path in the filename is dropped and a valid png/pdf/docx passes its magic check", async () => {
    const h = await harness();
    const id = dealId(h);
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    const res = await upload(h, id, { name: "C:\\fakepath\\logo.png", type: "image/png", bytes: png });
    expect(res.status).toBe(201);
    expect(res.json.file_name).toBe("logo.png");
    const docx = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]);
    expect(
      (
        await upload(h, id, {
          name: "memo.docx",
          type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          bytes: docx,
        })
      ).status,
    ).toBe(201);
  });

  it("happy: an Idempotency-Key replay returns the first answer (a new boundary is the same request); other bytes are 422", async () => {
    const h = await harness();
    const id = dealId(h);
    const headers = { "idempotency-key": "upload-1" };
    const first = await upload(h, id, { headers });
    const again = await upload(h, id, { headers });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    expect(h.sandbox.fourdegrees.store.attachments.size).toBe(1);
    expect((await delivered(h)).filter((e) => e.event.type === "attachment.created")).toHaveLength(1);
    expectEnvelope(
      await upload(h, id, { headers, bytes: new TextEncoder().encode("%PDF-1.7 other") }),
      422,
      "idempotency_key_reused",
    );
    expectEnvelope(await upload(h, id, { headers, name: "Other name.pdf" }), 422, "idempotency_key_reused");
  });

  it("happy: author_id and created_at import with an import-scoped key; another key gets 403; the UI user is the author", async () => {
    const h = await harness();
    const id = dealId(h);
    const user = [...h.sandbox.fourdegrees.store.users.values()][2]!;
    const res = await upload(h, id, { fields: { author_id: user.id, created_at: "2025-06-01T09:30:00+02:00" } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ author_id: user.id, created_at: "2025-06-01T07:30:00.000Z" });
    expectEnvelope(await upload(h, id, { fields: { author_id: "usr_nobody" } }), 422, "unknown_user");
    expectEnvelope(await upload(h, id, { fields: { created_at: "yesterday" } }), 422, "validation_failed");
    expectEnvelope(
      await upload(h, id, { fields: { created_at: new Date(h.clock.now() + 60_000).toISOString() } }),
      422,
      "invalid_created_at",
    );
    await h.control("POST", "/api-keys", { key: "4d_plain_write_key", scopes: ["read", "write"] });
    expectEnvelope(
      await upload(h, id, { key: "4d_plain_write_key", fields: { author_id: user.id } }),
      403,
      "insufficient_scope",
    );
    expect((await upload(h, id, { key: "4d_plain_write_key" })).json.author_id).toBeNull();

    const asUser = await h.sandbox.fourdegrees.addAttachmentAsUser(
      id,
      { file_name: "ui.txt", content_type: "text/plain", bytes: new TextEncoder().encode("from the UI") },
      { userId: user.id },
    );
    expect(asUser.author_id).toBe(user.id);
    const events = (await delivered(h)).filter((e) => e.event.type === "attachment.created");
    expect(events.at(-1)!.event.actor).toEqual({ type: "user", id: user.id });
    expect((await download(h, asUser.download_url!)).bytes).toEqual(new TextEncoder().encode("from the UI"));
  });

  it("happy: the control API uploads as a user, lists with URLs, deletes, and scripted faults hit downloads", async () => {
    const h = await harness();
    const id = dealId(h);
    const user = [...h.sandbox.fourdegrees.store.users.values()][1]!;
    const form = new FormData();
    form.append("file", new File([PDF as Uint8Array<ArrayBuffer>], "ic-memo.pdf", { type: "application/pdf" }));
    const res = await h.sandbox.fetch(
      new Request(`http://sandbox.test/_sandbox/4degrees/deals/${id}/attachments?as=${user.id}`, {
        method: "POST",
        body: form,
      }),
    );
    expect(res.status).toBe(201);
    const att = (await res.json()) as { id: string; author_id: string; download_url: string };
    expect(att.author_id).toBe(user.id);
    const listed = await h.control("GET", `/deals/${id}/attachments`);
    expect(listed.json.attachments.map((a: { id: string }) => a.id)).toEqual([att.id]);
    expect((await h.control("GET", "")).json.counts.attachments).toBe(1);

    await h.control("POST", "/faults/script", { count: 1, status: 503, method: "GET", path: "^/files/" });
    expectEnvelope(await download(h, att.download_url), 503, "injected_fault");
    expect((await download(h, att.download_url)).status).toBe(200);

    expect((await h.control("DELETE", `/attachments/${att.id}?as=${user.id}`)).status).toBe(200);
    const events = await delivered(h);
    expect(events.map((e) => [e.event.type, e.event.actor.id])).toEqual([
      ["attachment.created", user.id],
      ["attachment.deleted", user.id],
    ]);
    expect((await h.control("DELETE", `/attachments/${att.id}`)).status).toBe(404);
  });
});

describe("4Degrees sandbox: pass reasons", () => {
  it("happy: GET /pass-reasons lists the workspace's reasons; the demo's passed deal carries one", async () => {
    const h = await harness();
    const res = await h.call("GET", "/pass-reasons");
    expect(res.status).toBe(200);
    expect(res.json.data.map((r: { name: string }) => r.name)).toEqual([
      "Passed: team",
      "Passed: market size",
      "Lost to another investor",
      "Outside our thesis",
    ]);
    for (const r of res.json.data) {
      expect(Object.keys(r)).toEqual(["id", "name"]);
      expect(r.id).toMatch(/^pr_/);
    }
    const orbit = h.dealNamed("Orbit Freight — Seed");
    expect(orbit.status).toBe("lost");
    expect(orbit.pass_reason_id).toBe(res.json.data[1].id);
    expect(orbit.pass_reason_text).toMatch(/cyclical/);
    expect(h.dealNamed("Northwind Analytics — Series A")).toMatchObject({
      pass_reason_id: null,
      pass_reason_text: null,
    });
  });

  it("happy: moving to a lost stage with a reason is one deal.stage_changed carrying the reason; leaving clears it", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    const reason = [...h.sandbox.fourdegrees.store.passReasons.values()][0]!;
    const lost = await h.call("PATCH", `/deals/${deal.id}`, {
      body: { stage_id: h.stage("Passed"), pass_reason_id: reason.id, pass_reason_text: "Founders split" },
    });
    expect(lost.status).toBe(200);
    expect(lost.json).toMatchObject({
      status: "lost",
      pass_reason_id: reason.id,
      pass_reason_text: "Founders split",
      version: deal.version + 1,
    });
    const reopened = await h.call("PATCH", `/deals/${deal.id}`, { body: { stage_id: h.stage("Sourced") } });
    expect(reopened.json).toMatchObject({ status: "open", pass_reason_id: null, pass_reason_text: null });
    const events = await delivered(h);
    expect(events.map((e) => e.event.type)).toEqual(["deal.stage_changed", "deal.stage_changed"]);
    expect(events[0]!.event.changes).toEqual({
      stage_id: [deal.stage_id, h.stage("Passed")],
      status: ["open", "lost"],
      pass_reason_id: [null, reason.id],
      pass_reason_text: [null, "Founders split"],
    });
    expect(events[1]!.event.changes).toMatchObject({
      pass_reason_id: [reason.id, null],
      pass_reason_text: ["Founders split", null],
    });
    for (const e of events) expect(await verifySignature(SECRET, e.headers, e.body)).toBe(true);
  });

  it("happy: a free-text reason alone, a later reason change on a lost deal (deal.updated), and a lost create", async () => {
    const h = await harness();
    const deal = h.dealNamed("Orbit Freight — Seed");
    const text = await h.call("PATCH", `/deals/${deal.id}`, {
      body: { pass_reason_id: null, pass_reason_text: "Went with a strategic" },
    });
    expect(text.json).toMatchObject({ pass_reason_id: null, pass_reason_text: "Went with a strategic" });
    const events = await delivered(h);
    expect(events.map((e) => e.event.type)).toEqual(["deal.updated"]);
    expect(events[0]!.event.changes.pass_reason_text).toEqual([deal.pass_reason_text, "Went with a strategic"]);
    const created = await h.call("POST", "/deals", {
      body: {
        name: "Lost on arrival",
        pipeline_id: h.pipeline().id,
        stage_id: h.stage("Passed"),
        pass_reason_text: "Too early",
      },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ status: "lost", pass_reason_text: "Too early", team_ids: [] });
  });

  it("error: a reason outside a lost stage, an unknown reason and empty text are 422", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    const reason = [...h.sandbox.fourdegrees.store.passReasons.values()][0]!;
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { pass_reason_id: reason.id } }),
      422,
      "pass_reason_not_allowed",
    );
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { stage_id: h.stage("Closed"), pass_reason_text: "x" } }),
      422,
      "pass_reason_not_allowed",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: h.pipeline().id, pass_reason_id: reason.id } }),
      422,
      "pass_reason_not_allowed",
    );
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { stage_id: h.stage("Passed"), pass_reason_id: "pr_nope" } }),
      422,
      "unknown_pass_reason",
    );
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { stage_id: h.stage("Passed"), pass_reason_text: "  " } }),
      422,
      "validation_failed",
    );
    expect(h.sandbox.fourdegrees.deal(deal.id).version).toBe(deal.version);
  });

  it("happy: the control API adds a pass reason; a duplicate name is 400", async () => {
    const h = await harness();
    const added = await h.control("POST", "/pass-reasons", { name: "Valuation" });
    expect(added.status).toBe(201);
    expect(added.json.id).toMatch(/^pr_/);
    expect((await h.call("GET", "/pass-reasons")).json.data.at(-1)).toEqual(added.json);
    expect((await h.control("POST", "/pass-reasons", { name: "valuation" })).json.code).toBe("duplicate_pass_reason");
  });
});

describe("4Degrees sandbox: deal team", () => {
  it("happy: team_ids is set by PATCH, deduplicated, and carried in deal.updated's changes", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    const [a, b] = [...h.sandbox.fourdegrees.store.users.keys()];
    expect(deal.team_ids).toEqual([]);
    const res = await h.call("PATCH", `/deals/${deal.id}`, { body: { team_ids: [a, b, a] } });
    expect(res.status).toBe(200);
    expect(res.json.team_ids).toEqual([a, b]);
    expect(res.json.version).toBe(deal.version + 1);
    const again = await h.call("PATCH", `/deals/${deal.id}`, { body: { team_ids: [a, b] } });
    expect(again.json.version).toBe(deal.version + 1);
    const events = await delivered(h);
    expect(events).toHaveLength(1);
    expect(events[0]!.event).toMatchObject({ type: "deal.updated", actor: ACTOR, changes: { team_ids: [[], [a, b]] } });
    expect(await verifySignature(SECRET, events[0]!.headers, events[0]!.body)).toBe(true);
    expect(h.dealNamed("Helio Grid — Series B").team_ids).toHaveLength(2);
  });

  it("error: an unknown user or a non-array team is 422 and changes nothing", async () => {
    const h = await harness();
    const deal = h.dealNamed("Bluebird Health — Seed");
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { team_ids: ["usr_ghost"] } }),
      422,
      "unknown_user",
    );
    expectEnvelope(
      await h.call("PATCH", `/deals/${deal.id}`, { body: { team_ids: "usr_x" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/deals", { body: { name: "X", pipeline_id: h.pipeline().id, team_ids: ["usr_ghost"] } }),
      422,
      "unknown_user",
    );
    expect(h.sandbox.fourdegrees.deal(deal.id)).toEqual(deal);
  });
});

describe("4Degrees sandbox: contacts", () => {
  const CONTACT_KEYS = [
    "id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_id",
    "created_at",
    "updated_at",
  ];

  it("happy: every demo deal's contact reads by id with name, email and phone", async () => {
    const h = await harness();
    for (const deal of h.sandbox.fourdegrees.deals()) {
      expect(deal.contact_ids.length).toBeGreaterThan(0);
      for (const id of deal.contact_ids) {
        const res = await h.call("GET", `/contacts/${id}`);
        expect(res.status).toBe(200);
        expect(Object.keys(res.json)).toEqual(CONTACT_KEYS);
        expect(res.json.id).toMatch(/^ct_/);
        expect(res.json.name).toBe(`${res.json.first_name} ${res.json.last_name}`);
        expect(res.json.email).toMatch(/@/);
        expect(res.json.company_id).toBe(deal.company_id);
      }
    }
    const nora = await h.call("GET", "/contacts?email=NORA@northwind.example");
    expect(nora.json.data).toHaveLength(1);
    expect(nora.json.data[0]).toMatchObject({ first_name: "Nora", last_name: "Lindqvist", phone: "+1 415 555 0101" });
    expect((await h.call("GET", "/contacts?email=nobody@nowhere.example")).json).toEqual({
      data: [],
      next_cursor: null,
    });
    expectEnvelope(await h.call("GET", "/contacts/ct_missing"), 404, "contact_not_found");
  });

  it("happy: POST /contacts builds the name from first/last, and an Idempotency-Key replay makes one contact", async () => {
    const h = await harness();
    const before = h.sandbox.fourdegrees.store.contacts.size;
    const body = { first_name: "Ada", last_name: "Okafor", email: "Ada@Orbit.example", phone: "+1 (212) 555-0199" };
    const res = await h.call("POST", "/contacts", { body, headers: { "idempotency-key": "ct-1" } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      name: "Ada Okafor",
      email: "ada@orbit.example",
      phone: "+1 (212) 555-0199",
      company_id: null,
    });
    expect(res.json.updated_at).toBe(res.json.created_at);
    const again = await h.call("POST", "/contacts", { body, headers: { "idempotency-key": "ct-1" } });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(res.json);
    expect(h.sandbox.fourdegrees.store.contacts.size).toBe(before + 1);
    expect((await h.call("POST", "/contacts", { body: { name: "Solo" } })).json).toMatchObject({
      name: "Solo",
      first_name: null,
      email: null,
    });
    const deal = await h.call("PATCH", `/deals/${dealId(h)}`, { body: { contact_ids: [res.json.id] } });
    expect(deal.json.contact_ids).toEqual([res.json.id]);
  });

  it("error: a duplicate email is 409; no name, a bad phone or email, an unknown company are 422", async () => {
    const h = await harness();
    expectEnvelope(
      await h.call("POST", "/contacts", { body: { name: "Nora again", email: "nora@northwind.example" } }),
      409,
      "duplicate_contact",
    );
    expectEnvelope(await h.call("POST", "/contacts", { body: { email: "x@y.example" } }), 422, "validation_failed");
    expectEnvelope(
      await h.call("POST", "/contacts", { body: { name: "P", phone: "call me" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/contacts", { body: { name: "P", email: "not-an-email" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", "/contacts", { body: { name: "P", company_id: "co_missing" } }),
      422,
      "unknown_company",
    );
    expectEnvelope(await h.call("POST", "/contacts", { body: { name: "P", title: "CEO" } }), 422, "unknown_field");
    expectEnvelope(
      await h.call("PATCH", `/deals/${dealId(h)}`, { body: { contact_ids: ["ct_missing"] } }),
      422,
      "unknown_contact",
    );
  });
});

describe("4Degrees sandbox: reminders", () => {
  const REMINDER_KEYS = [
    "id",
    "deal_id",
    "title",
    "body",
    "due_at",
    "assignee_id",
    "created_by",
    "created_at",
    "completed_at",
  ];

  it("happy: POST answers 201 with the reminder (assignee defaults to the owner); the deal lists it; the control API lists every one", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    const res = await h.call("POST", `/deals/${deal.id}/reminders`, {
      body: { title: "Send the term sheet", body: "Partner sign-off first", due_at: "2026-12-10T09:00:00-05:00" },
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.json)).toEqual(REMINDER_KEYS);
    expect(res.json).toMatchObject({
      deal_id: deal.id,
      title: "Send the term sheet",
      body: "Partner sign-off first",
      due_at: "2026-12-10T14:00:00.000Z",
      assignee_id: deal.owner_id,
      created_by: ACTOR,
      completed_at: null,
    });
    expect(res.json.id).toMatch(/^rem_/);
    const other = h.dealNamed("Bluebird Health — Seed");
    const assignee = [...h.sandbox.fourdegrees.store.users.keys()][2]!;
    const second = await h.call("POST", `/deals/${other.id}/reminders`, {
      body: { title: "Call back", due_at: "2026-12-11T10:00:00Z", assignee_id: assignee },
    });
    expect(second.json).toMatchObject({ assignee_id: assignee, body: null });
    const unassigned = await h.call("POST", `/deals/${other.id}/reminders`, {
      body: { title: "Anyone", due_at: "2026-12-11T10:00:00Z", assignee_id: null },
    });
    expect(unassigned.json.assignee_id).toBeNull();

    expect((await h.call("GET", `/deals/${deal.id}/reminders`)).json).toEqual({ data: [res.json], next_cursor: null });
    const all = await h.control("GET", "/reminders");
    expect(all.status).toBe(200);
    expect(all.json.reminders.map((r: { id: string }) => r.id)).toEqual([
      res.json.id,
      second.json.id,
      unassigned.json.id,
    ]);
    expect((await h.control("GET", `/reminders?deal_id=${other.id}`)).json.reminders).toHaveLength(2);
    expect((await h.control("GET", `/reminders?assignee_id=${assignee}`)).json.reminders).toEqual([second.json]);

    const done = await h.control("POST", `/reminders/${res.json.id}/complete`);
    expect(done.json.completed_at).toBe(new Date(h.clock.now()).toISOString());
    expect((await h.call("GET", `/deals/${deal.id}/reminders`)).json.data[0].completed_at).toBe(done.json.completed_at);
    expect((await h.control("POST", "/reminders/rem_missing/complete")).status).toBe(404);
  });

  it("happy: an Idempotency-Key replay answers the first reminder and makes no second one", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    const body = { title: "No activity for 14 days", due_at: "2026-12-15T09:00:00Z" };
    const first = await h.call("POST", `/deals/${deal.id}/reminders`, {
      body,
      headers: { "idempotency-key": "rule-7:occ-1" },
    });
    const again = await h.call("POST", `/deals/${deal.id}/reminders`, {
      body,
      headers: { "idempotency-key": "rule-7:occ-1" },
    });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    expect(h.sandbox.fourdegrees.reminders()).toHaveLength(1);
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/reminders`, {
        body: { ...body, title: "Other" },
        headers: { "idempotency-key": "rule-7:occ-1" },
      }),
      422,
      "idempotency_key_reused",
    );
  });

  it("error: missing title, a bad due_at, an unknown assignee are 422; unknown deal 404; archived deal 409", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/reminders`, { body: { due_at: "2026-12-15T09:00:00Z" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/reminders`, { body: { title: "T", due_at: "next week" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/reminders`, {
        body: { title: "T", due_at: "2026-12-15T09:00:00Z", assignee_id: "usr_ghost" },
      }),
      422,
      "unknown_user",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/reminders`, {
        body: { title: "T", due_at: "2026-12-15T09:00:00Z", priority: 1 },
      }),
      422,
      "unknown_field",
    );
    expectEnvelope(
      await h.call("POST", "/deals/deal_missing/reminders", { body: { title: "T", due_at: "2026-12-15T09:00:00Z" } }),
      404,
      "deal_not_found",
    );
    h.sandbox.fourdegrees.archiveDealAsUser(deal.id);
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/reminders`, { body: { title: "T", due_at: "2026-12-15T09:00:00Z" } }),
      409,
      "deal_archived",
    );
    expect(h.sandbox.fourdegrees.reminders()).toEqual([]);
  });
});

describe("4Degrees sandbox: note authorship", () => {
  it("happy: a note imports its author and original created_at with an import-scoped key, and the webhook carries both", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    const author = [...h.sandbox.fourdegrees.store.users.keys()][1]!;
    const res = await h.call("POST", `/deals/${deal.id}/notes`, {
      body: { body: "Met in 2024", author_id: author, created_at: "2024-03-05T16:00:00+01:00" },
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      author_id: author,
      created_at: "2024-03-05T15:00:00.000Z",
      updated_at: "2024-03-05T15:00:00.000Z",
    });
    const events = await delivered(h);
    expect(events[0]!.event).toMatchObject({
      type: "note.created",
      actor: ACTOR,
      data: { object: { author_id: author, created_at: "2024-03-05T15:00:00.000Z" } },
    });
    // The historical note sorts first in the deal's notes.
    expect((await h.call("GET", `/deals/${deal.id}/notes`)).json.data[0].id).toBe(res.json.id);
  });

  it("happy: without them the author is the acting user (none for a key) and the time is now", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    const res = await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "Fresh" } });
    expect(res.json).toMatchObject({ author_id: null, created_at: new Date(h.clock.now()).toISOString() });
    const user = [...h.sandbox.fourdegrees.store.users.keys()][2]!;
    expect(h.sandbox.fourdegrees.addNoteAsUser(deal.id, "From the UI", user).author_id).toBe(user);
  });

  it("error: a key without the import scope is 403; an unknown author, a bad or future created_at are 422", async () => {
    const h = await harness();
    const deal = h.dealNamed("Helio Grid — Series B");
    await h.control("POST", "/api-keys", { key: "4d_plain_write_key", scopes: ["read", "write"] });
    const author = [...h.sandbox.fourdegrees.store.users.keys()][1]!;
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, {
        key: "4d_plain_write_key",
        body: { body: "x", author_id: author },
      }),
      403,
      "insufficient_scope",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, {
        key: "4d_plain_write_key",
        body: { body: "x", created_at: "2024-01-01T00:00:00Z" },
      }),
      403,
      "insufficient_scope",
    );
    expect(
      (await h.call("POST", `/deals/${deal.id}/notes`, { key: "4d_plain_write_key", body: { body: "x" } })).status,
    ).toBe(201);
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "x", author_id: "usr_ghost" } }),
      422,
      "unknown_user",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, { body: { body: "x", created_at: "2024-01-01" } }),
      422,
      "validation_failed",
    );
    expectEnvelope(
      await h.call("POST", `/deals/${deal.id}/notes`, {
        body: { body: "x", created_at: new Date(h.clock.now() + 1_000).toISOString() },
      }),
      422,
      "invalid_created_at",
    );
    const me = await h.call("GET", "/me");
    expect(me.json.api_key.scopes).toEqual(["read", "write", "import"]);
  });
});
