/**
 * A tiny in-test HighLevel for unit tests of the connector (the full sandbox lives in sandbox/):
 * rotating single-use refresh tokens, bearer checks, a few opportunity routes, and hooks to make
 * any route misbehave. Routed with test/worker/helpers/network.ts.
 */
export interface FakeHighLevel {
  fetch(request: Request): Promise<Response>;
  /** Calls per "METHOD /path". */
  calls: Map<string, number>;
  /** Query strings seen per path, in order. */
  queries: Array<{ path: string; query: URLSearchParams }>;
  /** Issues a token pair as the code exchange would. */
  issue(): { access: string; refresh: string };
  /** Marks an access token expired (API calls with it answer 401). */
  expire(access: string): void;
  /** Answers the next refresh with this status/body instead of a token pair. */
  failNextRefresh(status: number, body: unknown): void;
  /** Overrides a route ("GET /opportunities/search"); return null to fall through. */
  override(route: string, handler: (req: Request, url: URL) => Response | null | Promise<Response | null>): void;
  /** Live access tokens. */
  liveAccess: Set<string>;
  /** Delay (ms) of each /oauth/token answer, to widen race windows. */
  tokenDelayMs: number;
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

export function createFakeHighLevel(base = "/highlevel"): FakeHighLevel {
  let n = 0;
  const liveAccess = new Set<string>();
  const liveRefresh = new Set<string>();
  const overrides = new Map<string, (req: Request, url: URL) => Response | null | Promise<Response | null>>();
  let nextRefreshFailure: { status: number; body: unknown } | null = null;
  const fake: FakeHighLevel = {
    calls: new Map(),
    queries: [],
    liveAccess,
    tokenDelayMs: 20,
    issue() {
      n++;
      const pair = { access: `at-${n}-${crypto.randomUUID()}`, refresh: `rt-${n}-${crypto.randomUUID()}` };
      liveAccess.add(pair.access);
      liveRefresh.add(pair.refresh);
      return pair;
    },
    expire(access) {
      liveAccess.delete(access);
    },
    failNextRefresh(status, body) {
      nextRefreshFailure = { status, body };
    },
    override(route, handler) {
      overrides.set(route, handler);
    },
    async fetch(request) {
      const url = new URL(request.url);
      const path = url.pathname.slice(base.length) || "/";
      const route = `${request.method} ${path}`;
      fake.calls.set(route, (fake.calls.get(route) ?? 0) + 1);
      fake.queries.push({ path, query: url.searchParams });
      const override = overrides.get(route);
      if (override) {
        const res = await override(request, url);
        if (res) return res;
      }
      const rl = {
        "X-RateLimit-Max": "100",
        "X-RateLimit-Remaining": "99",
        "X-RateLimit-Interval-Milliseconds": "10000",
        "X-RateLimit-Daily-Remaining": "199000",
        "X-RateLimit-Limit-Daily": "200000",
      };
      if (route === "POST /oauth/token") {
        await new Promise((r) => setTimeout(r, fake.tokenDelayMs));
        const form = new URLSearchParams(await request.text());
        if (request.headers.get("content-type") !== "application/x-www-form-urlencoded")
          return json({ statusCode: 415, message: "form expected" }, 415);
        if (nextRefreshFailure) {
          const f = nextRefreshFailure;
          nextRefreshFailure = null;
          return json(f.body, f.status);
        }
        if (form.get("grant_type") === "refresh_token") {
          const rt = form.get("refresh_token") ?? "";
          if (!liveRefresh.delete(rt))
            return json(
              { statusCode: 400, error: "invalid_grant", message: "Invalid grant: refresh token is invalid" },
              400,
            );
        } else if (form.get("code") !== "good-code") {
          return json(
            { statusCode: 400, error: "invalid_grant", message: "Invalid grant: authorization code is invalid" },
            400,
          );
        }
        const pair = fake.issue();
        return json({
          access_token: pair.access,
          token_type: "Bearer",
          expires_in: 86399,
          refresh_token: pair.refresh,
          scope: "opportunities.readonly opportunities.write",
          userType: "Location",
          locationId: "loc-fake",
          companyId: "co-fake",
          userId: "u-1",
        });
      }
      const auth = request.headers.get("authorization") ?? "";
      if (!auth.startsWith("Bearer ") || !liveAccess.has(auth.slice(7)))
        return json({ statusCode: 401, message: "Invalid token: access token is invalid", traceId: "trace-401" }, 401);
      if (request.headers.get("version") !== "2021-07-28")
        return json({ statusCode: 400, message: "version header missing" }, 400);
      const opp = (id: string) => ({
        id,
        name: `Deal ${id}`,
        monetaryValue: 10,
        pipelineId: "p1",
        pipelineStageId: "s1",
        status: "open",
        locationId: url.searchParams.get("location_id") ?? "loc",
        customFields: [{ id: "cf1", type: "string", fieldValueString: "2026-12-01" }],
      });
      if (
        request.method === "GET" &&
        path.startsWith("/opportunities/") &&
        !path.includes("search") &&
        !path.includes("pipelines")
      )
        return json({ opportunity: opp(path.split("/")[2] ?? "") }, 200, rl);
      if (route === "GET /opportunities/pipelines")
        return json(
          { pipelines: [{ id: "p1", name: "Sales", stages: [{ id: "s1", name: "New", position: 0 }] }] },
          200,
          rl,
        );
      return json({ statusCode: 404, message: `Cannot ${route}` }, 404);
    },
  };
  return fake;
}
