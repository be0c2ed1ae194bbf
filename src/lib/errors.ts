/**
 * One error taxonomy for the whole Worker. Only `AppError`s become structured 4xx/5xx answers;
 * anything else is logged with its stack and answered with a generic 500 (see `src/http/app.ts`).
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";

export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  config_invalid: 500,
  internal: 500,
  upstream_unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * How a provider's error asks to be treated by a queue job: retry or not, and after how long when
 * the provider named a wait (rate limits). Each connector's error class answers for its own API.
 */
export interface RetryAdvice {
  retryable: boolean;
  delaySeconds?: number;
}

/** An expected failure with a stable `code`, a human `message` and optional structured `details`. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Extra response headers (e.g. `Retry-After` on 429). */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  get status(): ContentfulStatusCode {
    return ERROR_STATUS[this.code];
  }

  /** A provider error's retry advice (connector error classes override it); `null` = not a provider's. */
  get retryAdvice(): RetryAdvice | null {
    return null;
  }
}

/** Turns a zod error into the list of `{path, message}` pairs that 400 answers carry. */
export function zodIssues(error: {
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>;
}): Array<{ path: string; message: string }> {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join(".") || "(root)", message: issue.message }));
}

/**
 * Parses request input (query, path params) with `schema`; a mismatch is a 400 naming each field
 * (`what` says where it came from, e.g. "query"), never the ZodError's generic 500.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = zodIssues(parsed.error);
  const named = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  throw new AppError("bad_request", `invalid ${what}: ${named}`, { details: issues });
}
