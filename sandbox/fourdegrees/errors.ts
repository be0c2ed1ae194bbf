/**
 * The 4Degrees error envelope (ASSUMED contract): `{"error": {type, code, message, request_id}}`.
 * Every expected failure in the 4Degrees sandbox is a `FourDegreesError`; anything else is a bug
 * and is still answered with the envelope (type `api_error`) so a client never sees a bare 500 page.
 */

/** `error.type` values, one per status family (Stripe/Attio style). */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "rate_limit_error"
  | "api_error";

/** The type that goes with a status. */
export function errorTypeFor(status: number): ErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** An expected failure: rendered as the error envelope with its status. */
export class FourDegreesError extends Error {
  readonly status: number;
  readonly code: string;
  readonly type: ErrorType;
  /** Extra response headers (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "FourDegreesError";
    this.status = status;
    this.code = code;
    this.type = errorTypeFor(status);
    this.headers = headers;
  }
}

/** The JSON body of an error answer. */
export function errorBody(
  error: { type: string; code: string; message: string },
  requestId: string,
): { error: { type: string; code: string; message: string; request_id: string } } {
  return { error: { type: error.type, code: error.code, message: error.message, request_id: requestId } };
}

/** Shorthands for the common failures. */
export const fail = {
  notFound: (what: string, id: string) =>
    new FourDegreesError(404, `${what}_not_found`, `No ${what.replace(/_/g, " ")} with id "${id}"`),
  validation: (message: string, code = "validation_failed") => new FourDegreesError(422, code, message),
  badRequest: (message: string, code = "invalid_request") => new FourDegreesError(400, code, message),
};
