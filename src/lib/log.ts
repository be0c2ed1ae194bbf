/**
 * Structured logging: one JSON object per event, the same field names everywhere, so that
 * `wrangler tail --format json | jq` can answer operator questions. Secrets never reach a line:
 * keys that look like credentials are replaced by "[redacted]" at any depth, and bearer tokens
 * inside strings are masked.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Common fields; any other field is allowed but these names are the shared vocabulary.
 * `string & {}` admits any string while editors still offer the named values.
 */
export interface LogFields {
  event: string;
  account?: string | null;
  location?: string | null;
  direction?: "to_highlevel" | "to_fourdegrees" | "inbound" | "outbound" | (string & {});
  record?: string | null;
  highlevel_id?: string | null;
  fourdegrees_id?: string | null;
  outcome?: "ok" | "skipped" | "retry" | "failed" | "rejected" | "echo" | "conflict" | (string & {});
  duration_ms?: number;
  calls?: number;
  request_id?: string;
  [key: string]: unknown;
}

const SECRET_KEY =
  /(token|secret|password|authorization|api[_-]?key|refresh|access|signature|cookie|client_secret|code_verifier)/i;
const BEARER = /(bearer\s+)[A-Za-z0-9._~+/=-]+/gi;
const PIT = /\bpit-[A-Za-z0-9-]+/g;

/** Deep-copies `value` with credential-looking keys and bearer strings redacted. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[depth]";
  if (typeof value === "string") return value.replace(BEARER, "$1[redacted]").replace(PIT, "pit-[redacted]");
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  // The stack's first line repeats the message (and a cause may carry the request that failed).
  if (value instanceof Error)
    return {
      name: value.name,
      message: redact(value.message, depth + 1),
      ...(value.stack === undefined ? {} : { stack: redact(value.stack, depth + 1) }),
      ...(value.cause === undefined ? {} : { cause: redact(value.cause, depth + 1) }),
    };
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // `calls`, `outcome` etc. pass; anything naming a credential is dropped to a marker.
      out[k] =
        SECRET_KEY.test(k) && !/_(ms|at|count|id|status|expires_at)$/i.test(k) ? "[redacted]" : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}

export interface Logger {
  debug(fields: LogFields): void;
  info(fields: LogFields): void;
  warn(fields: LogFields): void;
  error(fields: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Partial<LogFields>): Logger;
}

/** Creates a logger writing one JSON line per call to the console (what `wrangler tail` shows). */
export function createLogger(minLevel: LogLevel = "info", base: Partial<LogFields> = {}): Logger {
  const write = (level: LogLevel, fields: LogFields) => {
    if (LEVELS[level] < LEVELS[minLevel]) return;
    const line = JSON.stringify(redact({ level, time: new Date().toISOString(), ...base, ...fields }));
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    debug: (f) => write("debug", f),
    info: (f) => write("info", f),
    warn: (f) => write("warn", f),
    error: (f) => write("error", f),
    child: (fields) => createLogger(minLevel, { ...base, ...fields }),
  };
}
