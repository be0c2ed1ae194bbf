/**
 * Malformed query and path parameters: every route family answers 400 naming the field, never a
 * 500 from an unguarded parse. One case per family of src/http, the notifications API and the console.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createAccount, getAccount } from "../../../src/store/accounts.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };
const ACCOUNT = "qp-acc";
const API = `http://worker.test/api/accounts/${ACCOUNT}`;

type ErrorBody = { error: { code: string; message: string } };

async function bad(path: string, method: string, field: string): Promise<void> {
  const res = await exports.default.fetch(`http://worker.test${path}`, { method, headers: ADMIN });
  expect(res.status, `${method} ${path}`).toBe(400);
  const body = await res.json<ErrorBody>();
  expect(body.error.code).toBe("bad_request");
  expect(body.error.message, `${method} ${path}`).toContain(field);
}

describe("malformed query and path parameters → 400 naming the field", () => {
  useNetwork({});

  beforeAll(async () => {
    if (!(await getAccount(env.DB, ACCOUNT)))
      await createAccount(env.DB, { id: ACCOUNT, name: "Query params", workspaceId: null, locations: [] });
  });

  it("security: sync admin — failures ?status, events ?limit / ?before, review :side", async () => {
    await bad(`/api/accounts/${ACCOUNT}/failures?status=everything`, "GET", "status");
    await bad(`/api/accounts/${ACCOUNT}/events?limit=lots`, "GET", "limit");
    await bad(`/api/accounts/${ACCOUNT}/events?limit=100000`, "GET", "limit");
    await bad(`/api/accounts/${ACCOUNT}/events?before=-3`, "GET", "before");
    await bad(`/api/accounts/${ACCOUNT}/review/neither/rec-1`, "DELETE", "side");
    const ok = await exports.default.fetch(`${API}/events?limit=5`, { headers: ADMIN });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ events: [] });
    expect((await exports.default.fetch(`${API}/failures`, { headers: ADMIN })).status).toBe(200);
  });

  it("security: accounts, usage, CSV export and notifications name the field", async () => {
    await bad("/api/accounts/bad%20id!/fourdegrees", "GET", "account ids");
    await bad("/api/usage/highlevel/bad%20id!", "GET", "locationId");
    await bad("/api/export/highlevel.csv?location=loc-1&currency=dollars", "GET", "currency");
    await bad("/api/notifications?account=bad%20id!", "GET", "account");
  });

  it("security: console pages ignore a malformed ?before instead of failing", async () => {
    const login = await exports.default.fetch("https://worker.test/console/login", {
      method: "POST",
      redirect: "manual",
      headers: { origin: "https://worker.test", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN }),
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const url = `https://worker.test/console/activity?account=${ACCOUNT}&before=abc&limit=-1`;
    const res = await exports.default.fetch(url, { headers: { cookie } });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });
});
