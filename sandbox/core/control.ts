/**
 * Input handling shared by the sandboxes' control APIs (`/_sandbox/<provider>/…`): bad input
 * answers 400 `{error, issues?}` and an unknown record 404, the same way for every provider.
 */
import type { Context } from "hono";
import type { z } from "zod";

/** A control-API failure: 400 (bad input) or 404 (unknown record). */
export class ControlError extends Error {
  readonly status: 400 | 404;
  readonly issues: string[] | undefined;
  constructor(status: 400 | 404, message: string, issues?: string[]) {
    super(message);
    this.status = status;
    this.issues = issues;
  }
}

/** `path: message` lines of a zod error (the path defaults to `body`). */
export function controlIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.map(String).join(".") || "body"}: ${i.message}`);
}

/** The JSON body parsed with `schema` (an empty body is `{}`); 400 with the issues otherwise. */
export async function controlBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  let json: unknown = {};
  if (text.trim() !== "") {
    try {
      json = JSON.parse(text);
    } catch {
      throw new ControlError(400, "body must be JSON");
    }
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new ControlError(400, "invalid body", controlIssues(result.error));
  return result.data;
}

/** The query string parsed with `schema`; 400 with the issues otherwise. */
export function controlQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) throw new ControlError(400, "invalid query", controlIssues(result.error));
  return result.data;
}
