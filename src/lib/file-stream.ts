/**
 * Streaming helpers for copying a file between providers without holding it in memory: a metered
 * pass-through (counts bytes, hashes them with workerd's `crypto.DigestStream` on the way, aborts
 * past the expected length or the limit) and a `multipart/form-data` body built as a stream with a
 * known boundary and a known total length (so it can be sent with `Content-Length`).
 * Why `DigestStream`: `crypto.subtle.digest` needs the whole buffer; the digest stream takes chunks.
 */

/** Why a metered stream stopped. */
export class FileStreamError extends Error {
  readonly reason: "length_mismatch" | "over_limit";
  constructor(reason: "length_mismatch" | "over_limit", message: string) {
    super(message);
    this.name = "FileStreamError";
    this.reason = reason;
  }
}

/** What a metered stream saw once it ended. */
export interface MeterResult {
  bytes: number;
  /** Hex SHA-256 of every byte that went through. */
  sha256: string;
}

/**
 * A pass-through that counts and hashes. With `expected`, it errors as soon as more bytes than that
 * arrive, and at the end when fewer did (a truncated download); `limit` caps the total either way.
 * `result` resolves after the last chunk, or rejects with the `FileStreamError`.
 */
export function meteredStream(options: { expected: number | null; limit: number }): {
  stream: TransformStream<Uint8Array, Uint8Array>;
  result: Promise<MeterResult>;
} {
  const digest = new crypto.DigestStream("SHA-256");
  const writer = digest.getWriter();
  // An aborted digest rejects `digest.digest`; `result` carries the reason instead.
  void digest.digest.catch(() => undefined);
  let seen = 0;
  let settle!: { ok: (r: MeterResult) => void; fail: (e: unknown) => void };
  const result = new Promise<MeterResult>((ok, fail) => (settle = { ok, fail }));
  // The caller awaits `result` only after the upload; a rejection must not go unhandled before that.
  result.catch(() => undefined);
  const abort = (err: FileStreamError) => {
    void writer.abort(err).catch(() => undefined);
    settle.fail(err);
    return err;
  };
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      seen += chunk.byteLength;
      if (options.expected !== null && seen > options.expected)
        throw abort(new FileStreamError("length_mismatch", `more than the ${options.expected} bytes announced`));
      if (seen > options.limit) throw abort(new FileStreamError("over_limit", `over the ${options.limit}-byte limit`));
      await writer.write(chunk);
      controller.enqueue(chunk);
    },
    async flush() {
      if (options.expected !== null && seen !== options.expected)
        throw abort(
          new FileStreamError("length_mismatch", `${seen} bytes arrived, ${options.expected} were announced`),
        );
      await writer.close();
      const hash = new Uint8Array(await digest.digest);
      settle.ok({ bytes: seen, sha256: [...hash].map((b) => b.toString(16).padStart(2, "0")).join("") });
    },
    cancel(reason) {
      settle.fail(reason);
    },
  });
  return { stream, result };
}

/** One part of a multipart body: a text field or a streamed file of known size. */
export type MultipartPart =
  | { name: string; value: string }
  | { name: string; fileName: string; contentType: string; size: number; body: ReadableStream<Uint8Array> };

const quote = (s: string) => s.replace(/[\r\n"\\]/g, (c) => (c === '"' ? "%22" : c === "\\" ? "\\\\" : ""));

/**
 * A `multipart/form-data` body as a stream: part headers around each field, each file's stream
 * piped through as it arrives. `length` is exact when every file's `size` is (the caller meters it).
 */
export function multipartBody(parts: readonly MultipartPart[]): {
  body: ReadableStream<Uint8Array>;
  contentType: string;
  length: number;
} {
  const boundary = `----fdghl${crypto.randomUUID().replace(/-/g, "")}`;
  const enc = new TextEncoder();
  const chunks: Array<Uint8Array | ReadableStream<Uint8Array>> = [];
  let length = 0;
  const text = (s: string) => {
    const b = enc.encode(s);
    length += b.byteLength;
    chunks.push(b);
  };
  for (const p of parts) {
    if ("value" in p) {
      text(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(p.name)}"\r\n\r\n${p.value}\r\n`);
      continue;
    }
    const fileName = quote(p.fileName);
    text(
      `--${boundary}\r\nContent-Disposition: form-data; name="${quote(p.name)}"; filename="${fileName}"\r\n` +
        `Content-Type: ${p.contentType}\r\n\r\n`,
    );
    chunks.push(p.body);
    length += p.size;
    text("\r\n");
  }
  text(`--${boundary}--\r\n`);
  let at = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (reader) {
          const { done, value } = await reader.read();
          if (!done) {
            controller.enqueue(value);
            return;
          }
          reader = null;
          at++;
          continue;
        }
        const next = chunks[at];
        if (next === undefined) {
          controller.close();
          return;
        }
        if (next instanceof Uint8Array) {
          at++;
          controller.enqueue(next);
          return;
        }
        reader = next.getReader();
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason);
      for (const c of chunks.slice(at + 1)) if (!(c instanceof Uint8Array)) await c.cancel(reason);
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, length };
}

/** A response body as a typed byte stream (workerd's `Response.body` is untyped): each chunk checked. */
export function byteStream(body: ReadableStream): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<unknown, Uint8Array>({
      transform(chunk, controller) {
        if (chunk instanceof Uint8Array) controller.enqueue(chunk);
        else if (chunk instanceof ArrayBuffer) controller.enqueue(new Uint8Array(chunk));
        else throw new TypeError("a response body chunk is not bytes");
      },
    }),
  );
}
