/**
 * The JSON admin API's request rules (src/http/api-guard.ts): JSON only (415 for text/plain, form
 * and multipart bodies, which a cross-site form can send), a body limit (413 in the error
 * envelope), and the CSV upload route keeping its own media types and larger limit.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_BYTES } from "../../../src/http/api-guard.ts";
import { createAccount, getAccount } from "../../../src/store/accounts.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const BEARER = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` };
const JSON_BEARER = { ...BEARER, "content-type": "application/json" };
const ACCOUNT = "guard-acc";
const rule = {
  accountId: ACCOUNT,
  name: "Wins",
  trigger: "deal_won",
  target: { kind: "slack", url: "https://hooks.slack.com/services/T000/B000/guard" },
};

type ErrorBody = { error: { code: string; message: string; requestId: string } };

const call = (path: string, init: RequestInit) => exports.default.fetch(`http://worker.test/api${path}`, init);
async function rulesOf(): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM notification_rules WHERE account_id = ?")
    .bind(ACCOUNT)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

describe("/api accepts JSON only, within a size limit", () => {
  useNetwork({});

  beforeAll(async () => {
    if (!(await getAccount(env.DB, ACCOUNT)))
      await createAccount(env.DB, { id: ACCOUNT, name: "Guard", workspaceId: null, locations: [] });
  });

  it("happy: an application/json body (with a charset) is accepted", async () => {
    const headers = { ...BEARER, "content-type": "application/json; charset=utf-8" };
    const res = await call("/notifications", { method: "POST", headers, body: JSON.stringify(rule) });
    expect(res.status).toBe(201);
  });

  it("security: a JSON body sent as text/plain, a form or multipart is a 415 and writes nothing", async () => {
    const before = await rulesOf();
    // fetch labels a string body text/plain, as a cross-site form with enctype=text/plain does.
    const text = await call("/notifications", { method: "POST", headers: BEARER, body: JSON.stringify(rule) });
    expect(text.status).toBe(415);
    const body = await text.json<ErrorBody>();
    expect(body.error.code).toBe("unsupported_media_type");
    expect(body.error.message).toContain("application/json");
    expect(body.error.message).toContain("text/plain");
    const formHeaders = { ...BEARER, "content-type": "application/x-www-form-urlencoded" };
    const form = await call(`/accounts/${ACCOUNT}`, { method: "PUT", headers: formHeaders, body: `{"name":"x"}` });
    expect(form.status).toBe(415);
    const fd = new FormData();
    fd.set("enabled", "true");
    const multipart = await call(`/accounts/${ACCOUNT}/test-mode`, { method: "PUT", headers: BEARER, body: fd });
    expect(multipart.status).toBe(415);
    const textHeaders = { ...BEARER, "content-type": "text/plain" };
    const bodyless = await call(`/accounts/${ACCOUNT}/pause`, { method: "POST", headers: textHeaders });
    expect(bodyless.status).toBe(415);
    expect(await rulesOf()).toBe(before);
    expect((await getAccount(env.DB, ACCOUNT))?.status).toBe("active");
  });

  it("happy: a POST without a body or Content-Type (pause) passes", async () => {
    const res = await call(`/accounts/${ACCOUNT}/pause`, { method: "POST", headers: BEARER });
    expect(res.status).toBe(200);
    const resumed = await call(`/accounts/${ACCOUNT}/resume`, { method: "POST", headers: BEARER });
    expect(resumed.status).toBe(200);
  });

  it("security: a JSON body over the limit is a 413 in the error envelope (declared length and streamed)", async () => {
    const big = JSON.stringify({ ...rule, name: "x".repeat(MAX_JSON_BYTES) });
    const declared = await call("/notifications", { method: "POST", headers: JSON_BEARER, body: big });
    expect(declared.status).toBe(413);
    const body = await declared.json<ErrorBody>();
    expect(body.error.code).toBe("payload_too_large");
    expect(body.error.requestId).toBeTruthy();
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
        controller.close();
      },
    });
    const streamed = await call("/notifications", { method: "POST", headers: JSON_BEARER, body: stream });
    expect(streamed.status).toBe(413);
    expect((await streamed.json<ErrorBody>()).error.code).toBe("payload_too_large");
  });

  it("happy: the CSV upload keeps its own media types and its larger limit", async () => {
    const csv = `Deal Name,Stage\n${"Acme Seed,Sourced\n".repeat(Math.ceil((MAX_JSON_BYTES * 1.5) / 18))}`;
    expect(csv.length).toBeGreaterThan(MAX_JSON_BYTES);
    // An unknown account is only checked after the body is read: a 404, not a 413 or a 415.
    const headers = { ...BEARER, "content-type": "text/csv" };
    const res = await call("/import/4degrees?account=no-such-account", { method: "POST", headers, body: csv });
    expect(res.status).toBe(404);
    expect((await res.json<ErrorBody>()).error.message).toContain("no-such-account");
  });
});
