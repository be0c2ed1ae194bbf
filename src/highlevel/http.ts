/**
 * The transport under every HighLevel API module: bearer token from the location's gate, the
 * `Version` header, a rate permit per call, one token refresh on a 401, error classification and
 * zod parsing of the answer. Callers (the surface modules) only describe the call.
 */
import type { z } from "zod";
import type { Config } from "../config.ts";
import {
  gatedFetch,
  gateFor,
  HIGHLEVEL_LIMITS,
  RateLimitedError,
  timeScaledLimits,
  tokenGate,
  type Gate,
  type GateLimits,
  type Lane,
} from "../gate/client.ts";
import { parseRetryAfter } from "../gate/budget.ts";
import { locationConnectionId } from "../store/connections.ts";
import { classifyResponse, HighLevelError, parseErrorBody } from "./errors.ts";
import { BASE_API_VERSION, type HighLevelApiVersion } from "./version.ts";

/** Options of a client bound to one location. */
export interface HighLevelClientOptions {
  /** Priority lane of every call (default `live`). */
  lane?: Lane;
  /** Longest in-process wait for a rate permit before `rate_limited` is thrown (default 2000 ms). */
  maxWaitMs?: number;
  /** Budget override (tests); defaults to HighLevel's published limits. */
  limits?: GateLimits;
}

/** One call, as a surface module describes it. */
export interface CallSpec<S extends z.ZodType> {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined | null>;
  body?: unknown;
  /** The `Version` header (default `2021-07-28`; opportunity and pipeline calls pass the configured one). */
  version?: HighLevelApiVersion;
  /** Schema of a 2xx answer. */
  schema: S;
  /** A streamed body (multipart uploads) instead of JSON; sent once, never re-sent after a 401. */
  stream?: { body: ReadableStream<Uint8Array>; contentType: string; length: number };
}

/** A transport bound to one HighLevel location. */
export class HighLevelTransport {
  readonly locationId: string;
  /** The configured version of opportunity and pipeline calls (`HIGHLEVEL_API_VERSION`). */
  readonly apiVersion: HighLevelApiVersion;
  private readonly env: Env;
  private readonly config: Config;
  private readonly gate: Gate;
  private readonly lane: Lane;
  private readonly maxWaitMs: number;
  private readonly limits: GateLimits;

  constructor(env: Env, config: Config, locationId: string, options: HighLevelClientOptions = {}) {
    this.env = env;
    this.config = config;
    this.locationId = locationId;
    this.apiVersion = config.HIGHLEVEL_API_VERSION;
    this.gate = gateFor(env, "hl", locationId);
    this.lane = options.lane ?? "live";
    this.maxWaitMs = options.maxWaitMs ?? 2_000;
    this.limits = options.limits ?? timeScaledLimits(HIGHLEVEL_LIMITS, config.HIGHLEVEL_RATE_SCALE);
  }

  private async token(rejected?: string): Promise<string> {
    const connectionId = locationConnectionId(this.locationId);
    const result = await tokenGate(this.env, connectionId).accessToken(
      connectionId,
      rejected === undefined ? {} : { rejected },
    );
    if (!result.ok) throw new HighLevelError(result.category, result.message, { retryAfterMs: result.retryAfterMs });
    return result.accessToken;
  }

  /** The full URL of a call (query values that are undefined/null are left out). */
  url(path: string, query: CallSpec<z.ZodType>["query"] = {}): string {
    const url = new URL(`${this.config.HIGHLEVEL_API_BASE}${path}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    return url.toString();
  }

  private async send(spec: CallSpec<z.ZodType>, token: string): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${token}`,
      Version: spec.version ?? BASE_API_VERSION,
      Accept: "application/json",
    };
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    if (spec.stream) {
      headers["Content-Type"] = spec.stream.contentType;
      headers["Content-Length"] = String(spec.stream.length);
    }
    const body = spec.stream
      ? spec.stream.body.pipeThrough(new FixedLengthStream(spec.stream.length))
      : spec.body === undefined
        ? undefined
        : JSON.stringify(spec.body);
    try {
      return await gatedFetch(
        this.gate,
        this.lane,
        this.limits,
        () =>
          fetch(this.url(spec.path, spec.query), {
            method: spec.method,
            headers,
            ...(body === undefined ? {} : { body }),
          }),
        { maxWaitMs: this.maxWaitMs },
      );
    } catch (err) {
      if (err instanceof RateLimitedError)
        throw new HighLevelError("rate_limited", err.message, { retryAfterMs: err.retryAfterMs, cause: err });
      if (err instanceof HighLevelError) throw err;
      throw new HighLevelError(
        "network",
        `HighLevel unreachable: ${spec.method} ${spec.path}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  /** Makes the call and returns the parsed answer, or throws a classified `HighLevelError`. */
  async call<S extends z.ZodType>(spec: CallSpec<S>): Promise<z.output<S>> {
    let token = await this.token();
    let res = await this.send(spec, token);
    if (res.status === 401) {
      const text = await res.text();
      const first = classifyResponse(401, text, res.headers.get("x-trace-id"));
      if (first.category === "scope") throw first;
      if (spec.stream) {
        // The stream is spent: refresh now, and let the job retry the whole upload.
        await this.token(token);
        throw new HighLevelError("server", `HighLevel refused the token on ${spec.method} ${spec.path}; refreshed`);
      }
      // Reactive refresh, once: the gate refreshes only if `token` is still its current one.
      token = await this.token(token);
      res = await this.send(spec, token);
    }
    const text = await res.text();
    if (!res.ok)
      throw classifyResponse(
        res.status,
        text,
        res.headers.get("x-trace-id"),
        parseRetryAfter(res.headers.get("retry-after") ?? undefined, Date.now()) ?? null,
      );
    let json: unknown;
    try {
      json = text === "" ? {} : JSON.parse(text);
    } catch {
      throw new HighLevelError(
        "server",
        `HighLevel answered ${res.status} with a body that is not JSON (${spec.method} ${spec.path})`,
        { upstreamStatus: res.status },
      );
    }
    const parsed = spec.schema.safeParse(json);
    if (!parsed.success) {
      const { traceId } = parseErrorBody(text);
      throw new HighLevelError(
        "server",
        `HighLevel answer to ${spec.method} ${spec.path} did not match the expected shape: ${parsed.error.message.slice(0, 400)}`,
        { upstreamStatus: res.status, traceId },
      );
    }
    return parsed.data;
  }
}
