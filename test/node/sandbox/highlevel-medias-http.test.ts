/**
 * The HighLevel sandbox's media library over real HTTP: driven by the official SDK
 * (`ghl.medias.uploadMediaContent` / `fetchMediaContent` / `deleteMediaContent`), answers validated
 * with ajv against the response schemas of the official Media Library API file, and the documented
 * 25 MB limit enforced at its default on a real multipart upload.
 *
 * The reference folder has no medias.json; the two schemas below are those of
 * GoHighLevel/highlevel-api-docs apps/medias.json (commit 030b7decdc7f3e0f961f3139ce0308ec173ce6c3),
 * with its one generator artefact patched: `files.items` is `{type: string}` while its example is an
 * object — the list holds file objects.
 */
import { HighLevel } from "@gohighlevel/api-client";
import { Ajv } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSandbox, type RunningSandbox } from "./helpers.ts";

/** `UploadFileResponseDTO` (official), plus `url`: the SDK's model and HighLevel's guide both carry it. */
const UploadFileResponseDTO = {
  type: "object",
  properties: { fileId: { type: "string" }, url: { type: "string" } },
  required: ["fileId"],
};
/**
 * `GetFilesResponseDTO` (official), items patched to the example's object
 * (altId, altType, name, parentId, url, path).
 */
const GetFilesResponseDTO = {
  type: "object",
  properties: {
    files: {
      type: "array",
      items: {
        type: "object",
        required: ["altId", "altType", "name", "url"],
        properties: {
          altId: { type: "string" },
          altType: { type: "string" },
          name: { type: "string" },
          parentId: { type: "string" },
          url: { type: "string" },
          path: { type: "string" },
        },
      },
    },
  },
  required: ["files"],
};
/** `UnauthorizedDTO` / `UnprocessableDTO` shape of ghl/common/common-schemas.json. */
const ErrorDTO = {
  type: "object",
  properties: { statusCode: { type: "number" }, message: {}, error: { type: "string" } },
  required: ["statusCode", "message"],
};

let sb: RunningSandbox;
const ajv = new Ajv({ strict: false, allErrors: true });
const validUpload = ajv.compile(UploadFileResponseDTO);
const validList = ajv.compile(GetFilesResponseDTO);
const validError = ajv.compile(ErrorDTO);

beforeAll(async () => {
  sb = await startTestSandbox();
});

afterAll(async () => {
  await sb?.close();
});

function sdk(pit: string): HighLevel {
  const ghl = new HighLevel({ privateIntegrationToken: pit, logLevel: "none", apiVersion: "2021-07-28" });
  ghl.getHttpClient().defaults.baseURL = sb.highlevel;
  return ghl;
}

describe("HighLevel sandbox media library over HTTP", () => {
  it("happy: the SDK uploads, lists and deletes; the answers match the official schemas; the URL streams the bytes", async () => {
    const ghl = sdk(sb.demo.pit);
    const content = new TextEncoder().encode("%PDF-1.7 term sheet ".repeat(5000));
    const form = new FormData();
    form.append("file", new Blob([content], { type: "application/pdf" }), "term-sheet.pdf");
    // The SDK's default Content-Type is application/json (axios would then send the form as JSON):
    // a multipart upload must say so, as a consumer of the real API must too.
    await expect(ghl.medias.uploadMediaContent(form)).rejects.toMatchObject({
      statusCode: 400,
      message: "Content-Type must be multipart/form-data",
    });
    const uploaded = await ghl.medias.uploadMediaContent(form, { headers: { "Content-Type": "multipart/form-data" } });
    expect(validUpload(uploaded), ajv.errorsText(validUpload.errors)).toBe(true);
    expect(uploaded.url).toContain(`${sb.highlevel}/media-storage/`);

    const listed = await ghl.medias.fetchMediaContent({
      sortBy: "createdAt",
      sortOrder: "desc",
      type: "file",
      altType: "location",
      altId: sb.demo.locationId,
    });
    expect(validList(listed), ajv.errorsText(validList.errors)).toBe(true);
    expect(listed.files).toEqual([expect.objectContaining({ _id: uploaded.fileId, name: "term-sheet.pdf" })]);

    const res = await fetch(uploaded.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/pdf");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(content);

    expect(
      await ghl.medias.deleteMediaContent({ id: uploaded.fileId, altType: "location", altId: sb.demo.locationId }),
    ).toMatchObject({ success: true });
    expect((await fetch(uploaded.url)).status).toBe(404);
  });

  it("error: 25 MB + 1 byte is refused with 413 at the documented default; a read-only token is 401; a bad form 422", async () => {
    const big = new Uint8Array(25 * 1024 * 1024 + 1);
    const form = new FormData();
    form.append("file", new Blob([big], { type: "application/pdf" }), "huge.pdf");
    const post = (body: FormData, token = sb.demo.pit) =>
      fetch(`${sb.highlevel}/medias/upload-file`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, Version: "2021-07-28" },
        body,
      });
    const tooLarge = await post(form);
    const tooLargeBody = await tooLarge.json();
    expect(tooLarge.status).toBe(413);
    expect(validError(tooLargeBody)).toBe(true);
    expect(tooLargeBody).toMatchObject({ statusCode: 413, message: "File too large" });

    const { token: readOnly } = await sb.control<{ token: string }>("POST", "/pit", { scopes: ["medias.readonly"] });
    const small = new FormData();
    small.append("file", new Blob(["hi"], { type: "text/plain" }), "hi.txt");
    const denied = await post(small, readOnly);
    const deniedBody = await denied.json();
    expect(denied.status).toBe(401);
    expect(validError(deniedBody)).toBe(true);

    const empty = new FormData();
    empty.append("hosted", "true");
    const invalid = await post(empty);
    const invalidBody = await invalid.json();
    expect(invalid.status).toBe(422);
    expect(validError(invalidBody)).toBe(true);
    expect(invalidBody.message).toEqual(["fileUrl should not be empty"]);
  });

  it("happy: the SDK's uploadFileCustomFields stores files for a FILE_UPLOAD field; the value then round-trips on the opportunity", async () => {
    const ghl = sdk(sb.demo.pit);
    const form = new FormData();
    form.append("id", sb.demo.opportunityIds[1]!);
    form.append("memo.pdf", new Blob(["investment memo"], { type: "application/pdf" }), "memo.pdf");
    const multipart = { headers: { "Content-Type": "multipart/form-data" } };
    // The SDK types `meta` as string[]; HighLevel's example (and the sandbox) answer objects.
    const up = (await ghl.locations.uploadFileCustomFields(
      { locationId: sb.demo.locationId },
      form,
      multipart,
    )) as unknown as {
      uploadedFiles: Record<string, string>;
      meta: Array<Record<string, unknown>>;
    };
    const url = up.uploadedFiles["memo.pdf"]!;
    expect(await (await fetch(url)).text()).toBe("investment memo");
    const value = { "0b7a0f0e-1c1d-4c55-9a50-3c2b9f3f2a11": { meta: up.meta[0], url } };
    const updated = await ghl.opportunities.updateOpportunity({ id: sb.demo.opportunityIds[1]! }, {
      customFields: [{ id: sb.demo.documentsFieldId, field_value: value }],
    } as object);
    expect(updated.opportunity!.customFields).toEqual(
      expect.arrayContaining([{ id: sb.demo.documentsFieldId, fieldValue: value }]),
    );
  });
});
