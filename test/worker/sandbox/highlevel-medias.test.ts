/**
 * The HighLevel sandbox's media library in-process inside workerd: multipart upload (a file, or a
 * hosted `fileUrl`), listing, delete, the documented size limits (lowered through the control API so
 * the test stays small), scopes `medias.readonly` / `medias.write`, and the signed, expiring download
 * URL the sandbox serves itself.
 */
import { describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import type { JsonBody } from "../../support.ts";

async function setup() {
  const sb: Sandbox = createSandbox({
    webhookMode: "manual",
    seed: 13,
    fetch: async () => new Response(null, { status: 200 }),
  });
  sb.clock.freeze();
  await sb.seedDemo();
  const d = sb.highlevel.demo!;
  const api = async (
    method: string,
    path: string,
    init: { form?: FormData; body?: string; type?: string; token?: string } = {},
  ) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${init.token ?? d.pit}`, Version: "2021-07-28" };
    if (init.type) headers["Content-Type"] = init.type;
    const res = await sb.fetch(
      new Request(`http://sandbox.test/highlevel${path}`, {
        method,
        headers,
        ...(init.form ? { body: init.form } : init.body ? { body: init.body } : {}),
      }),
    );
    return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
  };
  const control = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = {
      method,
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    };
    const res = await sb.fetch(new Request(`http://sandbox.test/_sandbox/highlevel${path}`, init));
    return { status: res.status, json: (await res.json()) as Record<string, JsonBody> };
  };
  const fileForm = (bytes: Uint8Array, name: string, type: string, extra: Record<string, string> = {}) => {
    const form = new FormData();
    form.append("file", new File([bytes], name, { type }));
    for (const [k, v] of Object.entries(extra)) form.append(k, v);
    return form;
  };
  const list = (query = "") =>
    api("GET", `/medias/files?sortBy=createdAt&sortOrder=asc&type=file&altType=location&altId=${d.locationId}${query}`);
  return { sb, d, api, control, fileForm, list };
}

const bytesOf = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31) % 251);

describe("HighLevel sandbox: media library", () => {
  it("happy: upload a file → list it → download its bytes at the signed URL → delete (the URL then 404s)", async () => {
    const { sb, d, api, fileForm, list } = await setup();
    const content = bytesOf(200_000);
    const up = await api("POST", "/medias/upload-file", {
      form: fileForm(content, "Term Sheet.pdf", "application/pdf"),
    });
    expect(up.status).toBe(200);
    expect(up.json).toEqual({
      fileId: expect.any(String),
      url: expect.stringContaining(`/highlevel/media-storage/${d.locationId}/`),
      traceId: expect.any(String),
    });

    const listed = await list();
    expect(listed.json.files).toEqual([
      expect.objectContaining({
        _id: up.json.fileId,
        altId: d.locationId,
        altType: "location",
        name: "Term Sheet.pdf",
        type: "file",
        size: 200_000,
        contentType: "application/pdf",
        url: expect.any(String),
      }),
    ]);

    const download = await sb.fetch(new Request(up.json.url));
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("application/pdf");
    expect(download.headers.get("content-length")).toBe("200000");
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(content);

    const del = await api("DELETE", `/medias/${up.json.fileId}?altType=location&altId=${d.locationId}`);
    expect(del).toMatchObject({ status: 200, json: { success: true } });
    expect((await sb.fetch(new Request(up.json.url))).status).toBe(404);
    expect((await list()).json.files).toEqual([]);
    expect(
      (await api("DELETE", `/medias/${up.json.fileId}?altType=location&altId=${d.locationId}`)).json,
    ).toMatchObject({ statusCode: 400, message: "File not found" });
  });

  it("security: the download URL expires on the sandbox clock and refuses a tampered signature or another file's", async () => {
    const { sb, api, control, fileForm } = await setup();
    await control("PUT", "/medias/settings", { urlLifetimeSec: 60 });
    const a = (await api("POST", "/medias/upload-file", { form: fileForm(bytesOf(10), "a.txt", "text/plain") })).json;
    const b = (await api("POST", "/medias/upload-file", { form: fileForm(bytesOf(20), "b.txt", "text/plain") })).json;
    const tampered = a.url.replace(
      /signature=([0-9a-f])/,
      (_: string, ch: string) => `signature=${ch === "0" ? "1" : "0"}`,
    );
    expect(await (await sb.fetch(new Request(tampered))).json()).toEqual({
      error: { code: "SignatureDoesNotMatch", message: "SignatureDoesNotMatch" },
    });
    const swapped = a.url.replace(a.fileId, b.fileId);
    expect((await sb.fetch(new Request(swapped))).status).toBe(403);
    expect((await sb.fetch(new Request(a.url.replace(/&signature=.*/, "")))).status).toBe(403);
    sb.clock.advance(61_000);
    const expired = await sb.fetch(new Request(a.url));
    expect(expired.status).toBe(400);
    expect(await expired.json()).toMatchObject({ error: { code: "ExpiredToken" } });
  });

  it("happy: a hosted upload keeps the URL and no bytes", async () => {
    const { api, list, control } = await setup();
    const form = new FormData();
    form.append("hosted", "true");
    form.append("fileUrl", "https://files.example/decks/Q3%20deck.pdf");
    const up = await api("POST", "/medias/upload-file", { form });
    expect(up).toMatchObject({ status: 200, json: { url: "https://files.example/decks/Q3%20deck.pdf" } });
    expect((await list()).json.files[0]).toMatchObject({
      name: "Q3 deck.pdf",
      hosted: true,
      size: 0,
      url: "https://files.example/decks/Q3%20deck.pdf",
    });
    expect((await control("GET", "/medias")).json.files[0]).not.toHaveProperty("bytes");
  });

  it("error: over the limit for its type → 413 File too large (25 MB files, 500 MB videos by default, lowered here)", async () => {
    const { sb, api, control, fileForm, list } = await setup();
    const defaults = {
      maxBytes: 25 * 1024 * 1024,
      videoMaxBytes: 500 * 1024 * 1024,
      customFieldMaxBytes: 50 * 1024 * 1024,
      urlLifetimeSec: 604_800,
    };
    expect((await control("GET", "/medias")).json.settings).toEqual(defaults);
    await control("PUT", "/medias/settings", { maxBytes: 1000, videoMaxBytes: 5000 });
    const big = await api("POST", "/medias/upload-file", {
      form: fileForm(bytesOf(1001), "memo.pdf", "application/pdf"),
    });
    expect(big).toMatchObject({
      status: 413,
      json: { statusCode: 413, message: "File too large", traceId: expect.any(String) },
    });
    expect(
      (await api("POST", "/medias/upload-file", { form: fileForm(bytesOf(1000), "memo.pdf", "application/pdf") }))
        .status,
    ).toBe(200);
    expect(
      (await api("POST", "/medias/upload-file", { form: fileForm(bytesOf(4000), "pitch.mp4", "video/mp4") })).status,
    ).toBe(200);
    expect(
      (await api("POST", "/medias/upload-file", { form: fileForm(bytesOf(5001), "pitch.mp4", "video/mp4") })).status,
    ).toBe(413);
    expect((await list()).json.files).toHaveLength(2);
    sb.highlevel.reset();
    await sb.seedDemo();
    expect((await control("GET", "/medias")).json).toMatchObject({
      settings: { maxBytes: 25 * 1024 * 1024 },
      files: [],
    });
  });

  it("error: bad uploads and listings answer HighLevel's 4xx shapes", async () => {
    const { api, fileForm } = await setup();
    expect(
      await api("POST", "/medias/upload-file", { body: JSON.stringify({ fileUrl: "x" }), type: "application/json" }),
    ).toMatchObject({ status: 400, json: { message: "Content-Type must be multipart/form-data" } });
    const none = new FormData();
    none.append("name", "nothing");
    expect(await api("POST", "/medias/upload-file", { form: none })).toMatchObject({
      status: 422,
      json: { message: ["file should not be empty"] },
    });
    const hosted = new FormData();
    hosted.append("hosted", "yes");
    hosted.append("altId", "x");
    const bad = await api("POST", "/medias/upload-file", { form: hosted });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toEqual(
      expect.arrayContaining([
        "property altId should not exist",
        "hosted must be a boolean value",
        "file should not be empty",
      ]),
    );
    const noUrl = new FormData();
    noUrl.append("hosted", "true");
    noUrl.append("fileUrl", "ftp://files.example/x");
    const malformed = new FormData();
    malformed.append("hosted", "true");
    malformed.append("fileUrl", "https://files.example/%E0%A4%A.pdf");
    expect((await api("POST", "/medias/upload-file", { form: malformed })).json).toMatchObject({
      fileId: expect.any(String),
    });
    const notUrl = new FormData();
    notUrl.append("hosted", "true");
    notUrl.append("fileUrl", "http://[bad");
    expect((await api("POST", "/medias/upload-file", { form: notUrl })).status).toBe(422);
    expect(await api("POST", "/medias/upload-file", { form: noUrl })).toMatchObject({
      status: 422,
      json: { message: ["fileUrl must be a URL address"] },
    });
    expect(
      await api("POST", "/medias/upload-file", {
        form: fileForm(bytesOf(3), "a.txt", "text/plain", { parentId: "nope" }),
      }),
    ).toMatchObject({ status: 400, json: { message: "Parent folder not found" } });
    const missing = await api("GET", "/medias/files?altType=location");
    expect(missing.json.message).toEqual([
      "sortBy should not be empty",
      "sortOrder should not be empty",
      "type should not be empty",
      "altId should not be empty",
    ]);
    expect(
      (await api("GET", "/medias/files?sortBy=size&sortOrder=asc&type=file&altType=location&altId=x")).json.message,
    ).toEqual(["sortBy must be one of the following values: createdAt, updatedAt, name"]);
  });

  it("security: listing needs medias.readonly, uploading and deleting medias.write; another location is 403", async () => {
    const { sb, d, api, fileForm } = await setup();
    const readOnly = sb.highlevel.createPit({ scopes: ["medias.readonly"] });
    const writeOnly = sb.highlevel.createPit({ scopes: ["medias.write"] });
    const denied = await api("POST", "/medias/upload-file", {
      form: fileForm(bytesOf(3), "a.txt", "text/plain"),
      token: readOnly,
    });
    expect(denied).toMatchObject({ status: 401, json: { message: "The token is not authorized for this scope." } });
    const up = await api("POST", "/medias/upload-file", {
      form: fileForm(bytesOf(3), "a.txt", "text/plain"),
      token: writeOnly,
    });
    expect(up.status).toBe(200);
    const query = `sortBy=name&sortOrder=desc&type=file&altType=location&altId=${d.locationId}`;
    expect((await api("GET", `/medias/files?${query}`, { token: writeOnly })).status).toBe(401);
    expect((await api("GET", `/medias/files?${query}`, { token: readOnly })).json.files).toHaveLength(1);
    expect(
      (await api("DELETE", `/medias/${up.json.fileId}?altType=location&altId=${d.locationId}`, { token: readOnly }))
        .status,
    ).toBe(401);
    const other = sb.highlevel.createPit({ locationId: d.otherLocationId });
    expect((await api("GET", `/medias/files?${query}`, { token: other })).status).toBe(403);
    expect(
      (await api("DELETE", `/medias/${up.json.fileId}?altType=location&altId=${d.otherLocationId}`, { token: other }))
        .json,
    ).toMatchObject({ statusCode: 400, message: "File not found" });
  });
});

describe("HighLevel sandbox: custom-field file upload (POST /locations/{locationId}/customFields/upload)", () => {
  it("happy: files for an opportunity → a Documents field value → readable at a lasting URL; not in the media library", async () => {
    const { sb, d, api, list } = await setup();
    const opportunityId = d.opportunityIds[0]!;
    const form = new FormData();
    form.append("id", opportunityId);
    form.append("maxFiles", "2");
    form.append("term-sheet.pdf", new File([bytesOf(3000)], "term-sheet.pdf", { type: "application/pdf" }));
    const up = await api("POST", `/locations/${d.locationId}/customFields/upload`, { form });
    expect(up.status).toBe(200);
    const url = up.json.uploadedFiles["term-sheet.pdf"] as string;
    expect(url).toContain(`/highlevel/media-storage/${d.locationId}/`);
    expect(up.json.meta).toEqual([
      {
        fieldname: "term-sheet.pdf",
        originalname: "term-sheet.pdf",
        encoding: "7bit",
        mimetype: "application/pdf",
        size: 3000,
        url,
      },
    ]);

    const value = { "f31175d4-2b06-4fc6-b7bc-74cd814c68cb": { meta: up.json.meta[0], url } };
    const put = await api("PUT", `/opportunities/${opportunityId}`, {
      body: JSON.stringify({ customFields: [{ id: d.documentsFieldId, field_value: value }] }),
      type: "application/json",
    });
    expect(put.status).toBe(200);
    expect(put.json.opportunity.customFields).toEqual(
      expect.arrayContaining([{ id: d.documentsFieldId, fieldValue: value }]),
    );

    sb.clock.advance(30 * 86_400_000);
    const res = await sb.fetch(new Request(url));
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(3000);
    expect((await list()).json.files).toEqual([]);
  });

  it("error: a text field value for a file field, too many files, no file, a foreign id → 4xx; the scope is locations/customFields.write", async () => {
    const { sb, d, api } = await setup();
    const notFile = await api("PUT", `/opportunities/${d.opportunityIds[0]}`, {
      body: JSON.stringify({ customFields: [{ id: d.documentsFieldId, field_value: "https://files.example/a.pdf" }] }),
      type: "application/json",
    });
    expect(notFile.status).toBe(422);
    const path = `/locations/${d.locationId}/customFields/upload`;
    const two = new FormData();
    two.append("maxFiles", "1");
    two.append("a", new File([bytesOf(3)], "a.txt"));
    two.append("b", new File([bytesOf(3)], "b.txt"));
    two.append("note", "text");
    const bad = await api("POST", path, { form: two });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toEqual(
      expect.arrayContaining(["property note should not exist", "2 files given, maxFiles is 1"]),
    );
    const none = new FormData();
    none.append("id", d.opportunityIds[0]!);
    expect((await api("POST", path, { form: none })).json.message).toEqual(["at least one file should be given"]);
    const foreign = new FormData();
    foreign.append("id", "nope");
    foreign.append("a", new File([bytesOf(3)], "a.txt"));
    expect((await api("POST", path, { form: foreign })).json).toMatchObject({
      statusCode: 400,
      message: "Contact, opportunity or custom field not found",
    });
    const readOnly = sb.highlevel.createPit({ scopes: ["locations/customFields.readonly"] });
    const file = new FormData();
    file.append("a", new File([bytesOf(3)], "a.txt"));
    expect((await api("POST", path, { form: file, token: readOnly })).status).toBe(401);
    const other = sb.highlevel.createPit({ locationId: d.otherLocationId });
    expect((await api("POST", path, { form: file, token: other })).status).toBe(403);
  });
});
