/**
 * Routes outbound fetches made inside the test isolate (the Worker, its Durable Objects and its
 * queue consumer run in the same isolate as the tests) to in-process handlers by host, e.g.
 * `{ "sandbox.test": sandbox.fetch, "worker.test": (r) => exports.default.fetch(r) }`.
 * Anything else fails closed: the call throws and is recorded, and `assertNoUnexpectedCalls`
 * (run by `useNetwork` after each test) fails the test.
 */
import { afterEach, beforeEach, expect } from "vitest";

export type RouteHandler = (request: Request) => Response | Promise<Response>;

export interface NetworkLog {
  /** Every routed call, in order. */
  calls: Array<{ method: string; url: string; status: number }>;
  /** Calls nothing routed (each one also threw inside the caller). */
  unexpected: string[];
  /** Calls whose URL matches `pattern` (and method, when given). */
  count(pattern: RegExp, method?: string): number;
  clear(): void;
}

/** Replaces `globalThis.fetch` with a host router until `restore()` is called. */
export function installNetwork(routes: Record<string, RouteHandler>): NetworkLog & { restore(): void } {
  const original = globalThis.fetch;
  const log: NetworkLog & { restore(): void } = {
    calls: [],
    unexpected: [],
    count: (pattern, method) => log.calls.filter((c) => pattern.test(c.url) && (!method || c.method === method)).length,
    clear() {
      log.calls.length = 0;
      log.unexpected.length = 0;
    },
    restore() {
      globalThis.fetch = original;
    },
  };
  globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const host = new URL(request.url).host;
    const handler = routes[host];
    if (!handler) {
      log.unexpected.push(`${request.method} ${request.url}`);
      throw new Error(`unexpected outbound call in a test: ${request.method} ${request.url}`);
    }
    const response = await handler(request);
    log.calls.push({ method: request.method, url: request.url, status: response.status });
    return response;
  };
  return log;
}

/** `installNetwork` for every test of the calling file, failing any test that made an unrouted call. */
export function useNetwork(routes: Record<string, RouteHandler> | (() => Record<string, RouteHandler>)): NetworkLog {
  let current: (NetworkLog & { restore(): void }) | null = null;
  const proxy: NetworkLog = {
    get calls() {
      return current?.calls ?? [];
    },
    get unexpected() {
      return current?.unexpected ?? [];
    },
    count: (pattern, method) => current?.count(pattern, method) ?? 0,
    clear: () => current?.clear(),
  };
  beforeEach(() => {
    current = installNetwork(typeof routes === "function" ? routes() : routes);
  });
  afterEach(() => {
    const unexpected = current?.unexpected ?? [];
    current?.restore();
    current = null;
    expect(unexpected, "outbound calls nothing routed").toEqual([]);
  });
  return proxy;
}
