/**
 * 4Degrees failures mapped onto the Worker's one error taxonomy (src/lib/errors.ts), each marked
 * retryable (try again later: 429, 5xx, network) or permanent (validation, auth, not found,
 * contract drift). The queue consumer turns `retryable` into `retry({delaySeconds})`.
 */
import { AppError, type ErrorCode, type RetryAdvice } from "../lib/errors.ts";
import { RawErrorEnvelope } from "./schemas.ts";

/** A failed 4Degrees call. `upstream*` fields come from the error envelope when it was sent. */
export class FourDegreesError extends AppError {
  readonly retryable: boolean;
  /** HTTP status 4Degrees answered (0 = no answer). */
  readonly upstreamStatus: number;
  readonly upstreamCode: string | null;
  readonly upstreamRequestId: string | null;
  /** For 429: how long 4Degrees asked us to wait. */
  readonly retryAfterMs: number | null;

  constructor(
    code: ErrorCode,
    message: string,
    info: {
      retryable: boolean;
      upstreamStatus: number;
      upstreamCode?: string | null;
      upstreamRequestId?: string | null;
      retryAfterMs?: number | null;
      cause?: unknown;
    },
  ) {
    const retryAfterMs = info.retryAfterMs ?? null;
    super(code, message, {
      details: {
        upstreamStatus: info.upstreamStatus,
        upstreamCode: info.upstreamCode ?? null,
        upstreamRequestId: info.upstreamRequestId ?? null,
        retryable: info.retryable,
        ...(retryAfterMs === null ? {} : { retryAfterMs }),
      },
      ...(retryAfterMs === null
        ? {}
        : { headers: { "Retry-After": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } }),
      cause: info.cause,
    });
    this.name = "FourDegreesError";
    this.retryable = info.retryable;
    this.upstreamStatus = info.upstreamStatus;
    this.upstreamCode = info.upstreamCode ?? null;
    this.upstreamRequestId = info.upstreamRequestId ?? null;
    this.retryAfterMs = retryAfterMs;
  }

  /** A 429 waits what 4Degrees asked (1 s when it did not say); else `retryable` decides. */
  override get retryAdvice(): RetryAdvice {
    if (this.upstreamStatus === 429 || this.code === "rate_limited")
      return { retryable: true, delaySeconds: Math.max(1, Math.ceil((this.retryAfterMs ?? 1_000) / 1000)) };
    return { retryable: this.retryable };
  }

  /** `true` for a 409 `version_conflict` (the connector re-reads and re-applies). */
  get isVersionConflict(): boolean {
    return this.upstreamStatus === 409;
  }
}

/**
 * `Retry-After` in milliseconds: delta-seconds or an HTTP date; `null` when absent or unreadable.
 * (RFC 9110 §10.2.3.)
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Maps a non-2xx answer (status + body text) to a `FourDegreesError`. */
export function errorFromResponse(
  status: number,
  bodyText: string,
  retryAfterMs: number | null,
  what: string,
): FourDegreesError {
  let json: unknown = null;
  try {
    json = JSON.parse(bodyText);
  } catch {
    json = null;
  }
  const envelope = RawErrorEnvelope.safeParse(json);
  const upstreamCode = envelope.success ? (envelope.data.error.code ?? envelope.data.error.type ?? null) : null;
  const upstreamRequestId = envelope.success ? (envelope.data.error.request_id ?? null) : null;
  const upstreamMessage = envelope.success ? (envelope.data.error.message ?? "") : bodyText.slice(0, 200);
  const detail = `4Degrees ${what} answered ${status}${upstreamCode ? ` ${upstreamCode}` : ""}${upstreamMessage ? `: ${upstreamMessage}` : ""}`;
  const info = { upstreamStatus: status, upstreamCode, upstreamRequestId };
  if (status === 429)
    return new FourDegreesError("rate_limited", detail, {
      ...info,
      retryable: true,
      retryAfterMs: retryAfterMs ?? 1_000,
    });
  if (status >= 500 || status === 408)
    return new FourDegreesError("upstream_unavailable", detail, { ...info, retryable: true });
  if (status === 401 || status === 403)
    return new FourDegreesError("forbidden", `${detail} (check the account's 4Degrees API key)`, {
      ...info,
      retryable: false,
    });
  if (status === 404) return new FourDegreesError("not_found", detail, { ...info, retryable: false });
  if (status === 409) return new FourDegreesError("conflict", detail, { ...info, retryable: false });
  if (status === 400 || status === 422)
    return new FourDegreesError("unprocessable", detail, { ...info, retryable: false });
  return new FourDegreesError("unprocessable", detail, { ...info, retryable: false });
}

/** True when `err` is worth retrying later (rate limits, outages, network failures). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof FourDegreesError) return err.retryable;
  if (err instanceof AppError) return err.code === "rate_limited" || err.code === "upstream_unavailable";
  return true;
}
