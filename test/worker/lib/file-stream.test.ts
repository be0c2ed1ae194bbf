/** The streaming helpers under attachment copies: the metered hash/length check and the multipart body. */
import { describe, expect, it } from "vitest";
import { FileStreamError, meteredStream, multipartBody } from "../../../src/lib/file-stream.ts";

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const s of chunks) c.enqueue(enc.encode(s));
      c.close();
    },
  });
}

async function hex(s: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("meteredStream", () => {
  it("happy: passes the bytes through and hashes them chunk by chunk", async () => {
    const m = meteredStream({ expected: 11, limit: 100 });
    const out = await new Response(streamOf("hello", " ", "world").pipeThrough(m.stream)).text();
    expect(out).toBe("hello world");
    expect(await m.result).toEqual({ bytes: 11, sha256: await hex("hello world") });
  });

  it("error: more bytes than announced abort mid-stream", async () => {
    const m = meteredStream({ expected: 4, limit: 100 });
    await expect(new Response(streamOf("abc", "def").pipeThrough(m.stream)).text()).rejects.toThrow(/more than/);
    await expect(m.result).rejects.toBeInstanceOf(FileStreamError);
  });

  it("error: fewer bytes than announced (a truncated download) fail at the end", async () => {
    const m = meteredStream({ expected: 10, limit: 100 });
    await expect(new Response(streamOf("abc").pipeThrough(m.stream)).text()).rejects.toThrow(/3 bytes arrived/);
    await expect(m.result).rejects.toMatchObject({ reason: "length_mismatch" });
  });

  it("error: an unannounced length is still capped by the limit", async () => {
    const m = meteredStream({ expected: null, limit: 5 });
    await expect(new Response(streamOf("abcdef").pipeThrough(m.stream)).text()).rejects.toThrow(/limit/);
    await expect(m.result).rejects.toMatchObject({ reason: "over_limit" });
  });
});

describe("multipartBody", () => {
  it("happy: a streamed file part parses as form data, and the announced length is exact", async () => {
    const form = multipartBody([
      { name: "id", value: "opp_1" },
      { name: "file", fileName: 'a "quoted".txt', contentType: "text/plain", size: 5, body: streamOf("he", "llo") },
    ]);
    const bytes = new Uint8Array(await new Response(form.body).arrayBuffer());
    expect(bytes.byteLength).toBe(form.length);
    const parsed = await new Response(bytes, { headers: { "content-type": form.contentType } }).formData();
    expect(parsed.get("id")).toBe("opp_1");
    const file = parsed.get("file");
    expect(file).toBeInstanceOf(File);
    expect(await (file as File).text()).toBe("hello");
    expect((file as File).type).toBe("text/plain");
  });
});
