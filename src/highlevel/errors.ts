/**
 * HighLevel error classification. Every failed call becomes a `HighLevelError` with a category,
 * a retryable flag and HighLevel's `traceId`, so queue consumers can decide ack / retry / record
 * without looking at status codes. Error bodies are NestJS-style `{statusCode, message, error?,
 * traceId?}`, with `message` an array of strings on 422 (highlevel-api.md "Common").
 */
import * as z from "zod";
import { AppError, type ErrorCode, type RetryAdvice } from "../lib/errors.ts";

/** What went wrong, from the caller's point of view. */
export type HighLevelErrorCategory =
  | "auth" // token rejected even after one refresh
  | "reconnect" // refresh token rejected ("Invalid grant"): the user must reinstall
  | "scope" // token lacks a scope
  | "validation" // 400/422: our request is wrong
  | "not_found"
  | "rate_limited"
  | "server" // 5xx, or a 400 HighLevel says is temporary ("Location is not active")
  | "network"; // no response

const RETRYABLE: Record<HighLevelErrorCategory, boolean> = {
  auth: false,
  reconnect: false,
  scope: false,
  validation: false,
  not_found: false,
  rate_limited: true,
  server: true,
  network: true,
};

const CODE: Record<HighLevelErrorCategory, ErrorCode> = {
  auth: "upstream_unavailable",
  reconnect: "upstream_unavailable",
  scope: "forbidden",
  validation: "unprocessable",
  not_found: "not_found",
  rate_limited: "rate_limited",
  server: "upstream_unavailable",
  network: "upstream_unavailable",
};

/** A failed HighLevel call. Never carries a token. */
export class HighLevelError extends AppError {
  readonly category: HighLevelErrorCategory;
  readonly retryable: boolean;
  /** HTTP status from HighLevel; 0 when there was no response. */
  readonly upstreamStatus: number;
  readonly traceId: string | null;
  /** HighLevel's message(s), joined. */
  readonly upstreamMessage: string;
  /** When HighLevel (or the gate) said how long to wait. */
  readonly retryAfterMs: number | null;

  constructor(
    category: HighLevelErrorCategory,
    message: string,
    options: {
      upstreamStatus?: number;
      traceId?: string | null;
      upstreamMessage?: string;
      retryAfterMs?: number | null;
      cause?: unknown;
    } = {},
  ) {
    super(CODE[category], message, {
      cause: options.cause,
      details: { category, upstreamStatus: options.upstreamStatus ?? 0, traceId: options.traceId ?? null },
      ...(options.retryAfterMs ? { headers: { "Retry-After": String(Math.ceil(options.retryAfterMs / 1000)) } } : {}),
    });
    this.name = "HighLevelError";
    this.category = category;
    this.retryable = RETRYABLE[category];
    this.upstreamStatus = options.upstreamStatus ?? 0;
    this.traceId = options.traceId ?? null;
    this.upstreamMessage = options.upstreamMessage ?? "";
    this.retryAfterMs = options.retryAfterMs ?? null;
  }

  /** Rate limits wait what HighLevel asked (10 s when it did not say); else its category decides. */
  override get retryAdvice(): RetryAdvice {
    if (this.category === "rate_limited")
      return { retryable: true, delaySeconds: Math.max(1, Math.ceil((this.retryAfterMs ?? 10_000) / 1000)) };
    return { retryable: this.retryable };
  }
}

/** HighLevel's error body, tolerant: any field may be missing. */
export const ErrorBodySchema = z
  .object({
    statusCode: z.number().optional(),
    message: z.union([z.string(), z.array(z.string())]).optional(),
    error: z.string().optional(),
    error_description: z.string().optional(),
    traceId: z.string().optional(),
  })
  .loose();

/** Parses an error body (JSON or text) into a message and a trace id. */
export function parseErrorBody(text: string): { message: string; traceId: string | null } {
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) {
      const m = parsed.data.message;
      const message = Array.isArray(m) ? m.join("; ") : (m ?? parsed.data.error_description ?? parsed.data.error ?? "");
      return { message, traceId: parsed.data.traceId ?? null };
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return { message: text.slice(0, 300), traceId: null };
}

/** The refresh failures HighLevel documents by message (highlevel-api.md "OAuth 2.0"). */
export const isInvalidGrant = (message: string) => /invalid[ _]grant/i.test(message);
export const isLocationInactive = (message: string) => /location is not active/i.test(message);
/** The token endpoint refusing the app's own credentials (wrong or rotated client secret), not the user's grant. */
export const isInvalidClient = (message: string) => /invalid[ _]client/i.test(message);
const isScopeMessage = (message: string) => /not authorized for this scope|scope/i.test(message);

/** Classifies a non-2xx HighLevel answer. */
export function classifyResponse(
  status: number,
  bodyText: string,
  traceHeader: string | null,
  retryAfterMs: number | null = null,
): HighLevelError {
  const { message, traceId } = parseErrorBody(bodyText);
  const trace = traceId ?? traceHeader;
  const detail = `HighLevel answered ${status}${message ? `: ${message}` : ""}`;
  const base = { upstreamStatus: status, traceId: trace, upstreamMessage: message, retryAfterMs };
  if (status === 429) return new HighLevelError("rate_limited", detail, base);
  if (status === 401 || status === 403)
    return new HighLevelError(isScopeMessage(message) ? "scope" : "auth", detail, base);
  if (status === 404) return new HighLevelError("not_found", detail, base);
  if (status === 400 && isInvalidGrant(message)) return new HighLevelError("reconnect", detail, base);
  if (status === 400 && isLocationInactive(message)) return new HighLevelError("server", detail, base);
  if (status === 400 || status === 422 || status === 409) return new HighLevelError("validation", detail, base);
  if (status >= 500 || status === 408) return new HighLevelError("server", detail, base);
  return new HighLevelError("validation", detail, base);
}
