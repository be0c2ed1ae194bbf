/**
 * HighLevel's error answers, reproduced: NestJS-style bodies `{statusCode, message, error?, traceId}`
 * where `message` is a string, or an array of class-validator messages on 422 (whitelist
 * validation: unknown properties are rejected with `property foo should not exist`).
 *
 * Reference: ../shared/reference/highlevel-api.md ("Common"), ghl/common/common-schemas.json.
 */
import { z } from "zod";

/** The reason phrase NestJS puts in `error` for each status. */
export const REASON: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** An expected failure the sandbox answers HighLevel-style (thrown by the domain, rendered by the API). */
export class GhlError extends Error {
  readonly status: number;
  readonly messages: string | string[];
  /** Extra top-level body fields (e.g. `meta` of the duplicate-contact error). */
  readonly extra: Record<string, unknown>;
  /** Whether the body carries NestJS's `error` reason phrase. */
  readonly withReason: boolean;

  constructor(
    status: number,
    message: string | string[],
    options: { extra?: Record<string, unknown>; withReason?: boolean } = {},
  ) {
    super(Array.isArray(message) ? message.join("; ") : message);
    this.status = status;
    this.messages = message;
    this.extra = options.extra ?? {};
    this.withReason = options.withReason ?? true;
  }

  /** The JSON body HighLevel sends for this error. */
  body(traceId: string): Record<string, unknown> {
    return {
      statusCode: this.status,
      message: this.messages,
      ...(this.withReason && REASON[this.status] ? { error: REASON[this.status] } : {}),
      ...this.extra,
      traceId,
    };
  }
}

/** 422 with class-validator messages. */
export function unprocessable(messages: string[]): GhlError {
  return new GhlError(422, messages);
}

/** Observed 401 texts (reference page, "Common"). */
export const INVALID_TOKEN = "Invalid token: access token is invalid";
export const SCOPE_NOT_AUTHORIZED = "The token is not authorized for this scope.";
export const AUTH_CLASS_NOT_ALLOWED =
  "This authClass type is not allowed to access this scope. Please reach out to the Platform team to get it added.";
export const NO_LOCATION_ACCESS = "The token does not have access to this location.";

/**
 * Turns zod issues into class-validator-style messages: unknown keys become
 * `property <key> should not exist`; other issues keep the message the schema builders below
 * attach (`<field> must be a string`, `<field> should not be empty`, …).
 */
export function validationMessages(error: z.ZodError): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    const prefix = issue.path.length > 0 ? `${issue.path.join(".")}.` : "";
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push(`property ${prefix}${key} should not exist`);
    } else if (
      issue.message.startsWith("Invalid input") ||
      issue.message.startsWith("Too ") ||
      issue.message.startsWith("Invalid option")
    ) {
      // A default zod message (nested value the builders did not label): name the field.
      out.push(`${issue.path.join(".") || "body"} is invalid`);
    } else {
      out.push(issue.message);
    }
  }
  return [...new Set(out)];
}

/** Parses `input` with `schema` or throws the 422 HighLevel gives. */
export function parseBody<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw unprocessable(validationMessages(result.error));
  return result.data;
}

// --- class-validator-flavoured zod builders (each names its field in its messages) ---

/** A required string (`x should not be empty` when absent or empty, `x must be a string` otherwise). */
export function reqString(name: string) {
  return z
    .string({
      error: (iss) =>
        iss.input === undefined || iss.input === null ? `${name} should not be empty` : `${name} must be a string`,
    })
    .min(1, { error: `${name} should not be empty` });
}

/** An optional string. */
export function optString(name: string) {
  return z.string({ error: `${name} must be a string` }).optional();
}

/** An optional string that may also be null (HighLevel's nullable contact fields). */
export function nullableString(name: string) {
  return z
    .string({ error: `${name} must be a string` })
    .nullable()
    .optional();
}

/** An optional number. */
export function optNumber(name: string) {
  return z
    .number({ error: `${name} must be a number conforming to the specified constraints` })
    .refine(Number.isFinite, { error: `${name} must be a number conforming to the specified constraints` })
    .optional();
}

/** An optional boolean. */
export function optBoolean(name: string) {
  return z.boolean({ error: `${name} must be a boolean value` }).optional();
}

/** A string enum (`x must be one of the following values: a, b`). */
export function enumOf<const T extends readonly [string, ...string[]]>(name: string, values: T) {
  return z.enum(values, { error: `${name} must be one of the following values: ${values.join(", ")}` });
}

/** An array of strings. */
export function stringArray(name: string) {
  return z.array(z.string({ error: `each value in ${name} must be a string` }), { error: `${name} must be an array` });
}
