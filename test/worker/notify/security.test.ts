/**
 * Notifications at the trust boundary: a receiver cannot stall live sync, a target cannot point
 * the Worker at an internal address or at itself, and a webhook rule's signing secret is shown
 * once from a server-side flash, never carried in (or taken from) a URL.
 */
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../entry.ts";
import { loadConfig } from "../../../src/config.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { deliverNotification } from "../../../src/notify/deliver.ts";
import { notifyChange } from "../../../src/notify/notify.ts";
import { targetPolicy, targetProblem } from "../../../src/notify/targets.ts";
import { createAccount, getAccount } from "../../../src/store/accounts.ts";
import { getDelivery } from "../../../src/store/notifications.ts";
import type { QueueMessage } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const ADMIN = { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "application/json" };
const config = () => loadConfig(env);
const log = createLogger("error");

/** Calls to the silent receiver, and how to make every call waiting on it answer at last. */
const silent = {
  calls: 0,
  onCall: () => undefined as void,
  waiting: [] as Array<() => void>,
  release: () => silent.waiting.splice(0).forEach((answer) => answer()),
};

useNetwork({
  // Never answers until the test releases it (a receiver that hangs).
  "silent.example": () => {
    silent.calls++;
    silent.onCall();
    return new Promise<Response>(
      (resolve) => void silent.waiting.push(() => resolve(new Response(null, { status: 204 }))),
    );
  },
});

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  const json = body === undefined ? {} : { body: JSON.stringify(body) };
  return exports.default.fetch(`http://worker.test/api${path}`, { method, headers: ADMIN, ...json });
}

/** `POST /api/notifications` for the test account. */
function postRule(name: string, trigger: string, kind: "slack" | "webhook", url: string): Promise<Response> {
  return api("POST", "/notifications", { accountId: "sec-ntf", name, trigger, target: { kind, url } });
}

/** A `sync_failure` change of the test account. */
const failure = (failureId: string) => ({
  kind: "sync_failure" as const,
  accountId: "sec-ntf",
  failureId,
  reason: "x",
});

async function ensureAccount(id: string): Promise<void> {
  if (!(await getAccount(env.DB, id))) await createAccount(env.DB, { id, name: id, workspaceId: null, locations: [] });
}

/** A queue that only records what is sent to it. */
function capture(): { queue: Queue; sent: unknown[] } {
  const sent: unknown[] = [];
  const queue: Queue = {
    metrics: () => env.NOTIFY_QUEUE.metrics(),
    send: async (message) => {
      sent.push(message);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    sendBatch: async (messages) => {
      for (const m of messages) sent.push(m.body);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
  };
  return { queue, sent };
}

/** A batch whose acks and retries are written to `events` in the order they happen (and told to `onEvent`). */
function batchOf(
  queue: string,
  bodies: Array<{ id: string; body: QueueMessage }>,
  events: string[],
  onEvent: (event: string) => void = () => undefined,
): MessageBatch<unknown> {
  const tell = (event: string) => {
    events.push(event);
    onEvent(event);
  };
  const messages = bodies.map(({ id, body }) => ({
    id,
    timestamp: new Date(),
    body,
    attempts: 1,
    ack: () => tell(`ack:${id}`),
    retry: () => tell(`retry:${id}`),
  }));
  const batch = { queue, messages, ackAll: () => undefined, retryAll: () => undefined, metadata: {} };
  return batch as unknown as MessageBatch<unknown>;
}

beforeAll(async () => {
  await ensureAccount("sec-ntf");
});

describe("notification delivery never stalls live sync", () => {
  it("security: a receiver that never answers does not delay a record job in the same live batch", async () => {
    const created = await postRule("hangs", "sync_failure", "webhook", "https://silent.example/in");
    expect(created.status).toBe(201);
    const ruleId = (await created.json<{ rule: { id: string } }>()).rule.id;
    // Both queues captured: this test is about the consumer, the next one about the routing.
    const notify = capture();
    const testEnv: Env = { ...env, SYNC_QUEUE: notify.queue, NOTIFY_QUEUE: notify.queue };
    expect((await notifyChange(testEnv, config(), failure("f-hang"), log)).enqueued).toBe(1);
    const delivery = notify.sent[0] as QueueMessage;
    expect(delivery).toEqual({ v: 1, kind: "notify.deliver", ruleId, changeKey: "failure:f-hang" });

    // The delivery first in the batch (as it would be ahead of its batch's record jobs), then a
    // record job of the same account (clean, so it completes without a provider call).
    const events: string[] = [];
    const receiverCalled = new Promise<void>((resolve) => (silent.onCall = resolve));
    const record: QueueMessage = {
      v: 1,
      kind: "sync.record",
      accountId: "sec-ntf",
      side: "highlevel",
      record: "deal",
      recordId: "opp-sec",
      locationId: null,
      lane: "live",
      force: false,
    };
    let onRecordAck = () => undefined as void;
    const recordAcked = new Promise<void>((resolve) => (onRecordAck = resolve));
    const bodies = [
      { id: "m-notify", body: delivery },
      { id: "m-record", body: record },
    ];
    const batch = batchOf("sync-events", bodies, events, (e) => e === "ack:m-record" && onRecordAck());
    const done = worker.queue(batch, testEnv);
    const first = await Promise.race([
      recordAcked.then(() => "record job done"),
      receiverCalled.then(() => "receiver called"),
    ]);
    silent.release();
    await done;
    expect(first).toBe("record job done");
    // The live batch never called the receiver: it handed the delivery to the notify queue.
    expect(silent.calls).toBe(0);
    expect(events.sort()).toEqual(["ack:m-notify", "ack:m-record"]);
    expect(notify.sent).toEqual([delivery, delivery]);

    // The notify queue's own consumer is where the receiver is called (and answers here).
    const notifyEvents: string[] = [];
    const answered = worker.queue(batchOf("sync-notify", [{ id: "n-1", body: delivery }], notifyEvents), testEnv);
    await receiverCalled;
    silent.release();
    await answered;
    expect(silent.calls).toBe(1);
    expect(notifyEvents).toEqual(["ack:n-1"]);
    const row = await getDelivery(env.DB, ruleId, "failure:f-hang");
    expect(row).toMatchObject({ state: "delivered", attempts: 1, lastStatus: 204 });
  });

  it("security: two copies of one delivery in flight at once call the receiver once (exactly once per change)", async () => {
    const created = await postRule("twice", "sync_failure", "webhook", "https://silent.example/twice");
    const { rule } = await created.json<{ rule: { id: string } }>();
    await notifyChange({ ...env, NOTIFY_QUEUE: capture().queue }, config(), failure("f-twice"), log);
    const msg = { v: 1 as const, kind: "notify.deliver" as const, ruleId: rule.id, changeKey: "failure:f-twice" };
    const ctx = { env, config: config(), log, attempts: 1 };
    silent.calls = 0;
    const called = new Promise<void>((resolve) => (silent.onCall = resolve));
    const first = deliverNotification(msg, ctx);
    await called;
    // The first copy is waiting on the receiver: the second one does not call it too.
    const calledAgain = new Promise<string>((resolve) => (silent.onCall = () => resolve("receiver called again")));
    const second = await Promise.race([deliverNotification(msg, ctx), calledAgain]);
    silent.release();
    expect(second).toMatchObject({ kind: "retry" });
    expect(await first).toEqual({ kind: "ack" });
    expect(silent.calls).toBe(1);
    // Delivered: the second copy's retry acks without a call.
    expect(await deliverNotification(msg, ctx)).toEqual({ kind: "ack" });
    expect(silent.calls).toBe(1);
  });

  it("security: notifications are sent to their own queue, never to the live sync queue", async () => {
    await postRule("own queue", "needs_reconnect", "slack", "https://hooks.slack.com/services/T/B/own");
    const live = capture();
    const notify = capture();
    const testEnv: Env = { ...env, SYNC_QUEUE: live.queue, NOTIFY_QUEUE: notify.queue };
    const reconnect = {
      kind: "needs_reconnect" as const,
      accountId: "sec-ntf",
      locationId: "loc-own",
      since: 7,
      reason: null,
    };
    await notifyChange(testEnv, config(), reconnect, log);
    expect(live.sent).toEqual([]);
    expect(notify.sent).toHaveLength(1);
  });
});

describe("notification targets refuse internal addresses", () => {
  const refused: Array<[kind: "slack" | "webhook", url: string, reason: RegExp]> = [
    ["webhook", "http://receiver.example/in", /https/],
    ["webhook", "https://127.0.0.1/in", /loopback/],
    ["webhook", "https://2130706433/in", /127\.0\.0\.1 is a loopback/],
    ["webhook", "https://0x7f.0.0.1/in", /127\.0\.0\.1 is a loopback/],
    ["webhook", "https://0x7f000001/in", /127\.0\.0\.1 is a loopback/],
    ["webhook", "https://0177.0.0.1/in", /127\.0\.0\.1 is a loopback/],
    ["webhook", "https://127.1/in", /loopback/],
    ["webhook", "https://0.0.0.0/in", /this network/],
    ["webhook", "https://10.1.2.3/in", /private/],
    ["webhook", "https://172.16.0.1/in", /private/],
    ["webhook", "https://192.168.1.1/in", /private/],
    ["webhook", "https://100.64.0.1/in", /carrier-grade NAT/],
    ["webhook", "https://169.254.169.254/latest/meta-data/", /metadata/],
    ["webhook", "https://169.254.10.1/in", /link-local/],
    ["webhook", "https://[::1]/in", /loopback/],
    ["webhook", "https://[::]/in", /unspecified/],
    ["webhook", "https://[::ffff:127.0.0.1]/in", /IPv4-mapped.*127\.0\.0\.1 is a loopback/],
    ["webhook", "https://[::ffff:169.254.169.254]/in", /IPv4-mapped.*metadata/],
    ["webhook", "https://[64:ff9b::a00:1]/in", /NAT64.*private/],
    ["webhook", "https://[2002:7f00:1::]/in", /6to4.*loopback/],
    ["webhook", "https://[fd00:ec2::254]/in", /unique-local/],
    ["webhook", "https://[fc00::1]/in", /unique-local/],
    ["webhook", "https://[fe80::1]/in", /link-local/],
    ["webhook", "https://[ff02::1]/in", /multicast/],
    ["webhook", "https://localhost/in", /local or internal/],
    ["webhook", "https://localhost./in", /local or internal/],
    ["webhook", "https://api.localhost/in", /local or internal/],
    ["webhook", "https://metadata.google.internal/computeMetadata/v1/", /internal/],
    ["webhook", "https://printer.local/in", /local or internal/],
    ["webhook", "https://printserver/in", /one label/],
    ["webhook", "https://127.0.0.1.nip.io/in", /wildcard-DNS/],
    ["webhook", "https://user:pass@receiver.example/in", /user name or password/],
    // The test Worker's own PUBLIC_URL host.
    ["webhook", "https://worker.test/api/notifications", /own host/],
    ["slack", "https://hooks.slack.com.evil.example/services/T/B/x", /Slack incoming-webhook/],
    ["slack", "http://hooks.slack.com/services/T/B/x", /Slack incoming-webhook/],
    ["slack", "https://receiver.example/services/T/B/x", /Slack incoming-webhook/],
    ["slack", "https://hooks.slack.com:8443/services/T/B/x", /Slack incoming-webhook/],
  ];

  it.each(refused)(
    "security: a %s rule to %s is refused with a reason (400 on target.url)",
    async (kind, url, reason) => {
      const res = await postRule("internal", "deal_won", kind, url);
      expect(res.status).toBe(400);
      const body = await res.json<{ error: { code: string; details: Array<{ path: string; message: string }> } }>();
      expect(body.error.code).toBe("bad_request");
      expect(body.error.details).toEqual([{ path: "target.url", message: expect.stringMatching(reason) }]);
    },
  );

  it("happy: public https targets and Slack incoming webhooks are accepted", async () => {
    const targets = [
      ["webhook", "https://receiver.example/in"],
      ["webhook", "https://8.8.8.8/hook"],
      ["webhook", "https://[2606:4700:4700::1111]/hook"],
      ["slack", "https://hooks.slack.com/services/T/B/ok"],
    ] as const;
    for (const [kind, url] of targets) {
      const res = await postRule("public", "deal_won", kind, url);
      expect(res.status, url).toBe(201);
      const { rule } = await res.json<{ rule: { id: string } }>();
      expect((await api("DELETE", `/notifications/${rule.id}`)).status).toBe(204);
    }
  });

  it("security: changing a rule's target to an internal address is refused", async () => {
    const created = await postRule("move", "deal_lost", "webhook", "https://receiver.example/in");
    const { rule } = await created.json<{ rule: { id: string } }>();
    const target = { kind: "webhook", url: "https://[::ffff:7f00:1]:8787/api" };
    const res = await api("PATCH", `/notifications/${rule.id}`, { target });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("target.url");
    await api("DELETE", `/notifications/${rule.id}`);
  });

  it("security: the target is checked again at delivery — a stored rule now pointing at this Worker is not called", async () => {
    const created = await postRule("recheck", "sync_failure", "webhook", "https://sync.example.com/in");
    const { rule } = await created.json<{ rule: { id: string } }>();
    await notifyChange({ ...env, NOTIFY_QUEUE: capture().queue }, config(), failure("f-recheck"), log);
    // The deployment's PUBLIC_URL is now that host (no route exists for it: a call would fail the test).
    const moved = { ...config(), PUBLIC_URL: "https://sync.example.com" };
    const msg = { v: 1 as const, kind: "notify.deliver" as const, ruleId: rule.id, changeKey: "failure:f-recheck" };
    expect(await deliverNotification(msg, { env, config: moved, log, attempts: 1 })).toEqual({ kind: "ack" });
    const row = await getDelivery(env.DB, rule.id, "failure:f-recheck");
    expect(row).toMatchObject({ state: "failed", lastError: expect.stringContaining("this Worker's own host") });
  });

  it("security: the local-dev allow-list opens only its hosts, and only when the Worker itself runs on loopback", () => {
    const dev = targetPolicy({
      PUBLIC_URL: "http://127.0.0.1:8787",
      NOTIFY_DEV_TARGET_HOSTS: "localhost:9999, 127.0.0.1:9998",
    });
    expect(targetProblem("webhook", "http://localhost:9999/hook", dev)).toBeNull();
    expect(targetProblem("webhook", "http://127.0.0.1:9998/hook", dev)).toBeNull();
    expect(targetProblem("webhook", "http://localhost:9997/hook", dev)).toMatch(/https/);
    expect(targetProblem("slack", "http://localhost:9999/services/x", dev)).toMatch(/Slack/);
    const deployed = targetPolicy({
      PUBLIC_URL: "https://sync.example.com",
      NOTIFY_DEV_TARGET_HOSTS: "localhost:9999",
    });
    expect(deployed.devHosts.size).toBe(0);
    expect(targetProblem("webhook", "https://localhost:9999/hook", deployed)).toMatch(/local or internal/);
  });
});

describe("a webhook rule's signing secret is shown once, from the server", () => {
  const BASE = "https://worker.test";
  const form = { "content-type": "application/x-www-form-urlencoded", origin: BASE };
  const cookieOf = (res: Response, name: string) =>
    res.headers
      .getSetCookie()
      .find((c) => c.startsWith(`${name}=`))
      ?.split(";")[0] ?? "";

  async function login(): Promise<string> {
    const body = new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN });
    const res = await exports.default.fetch(`${BASE}/console/login`, {
      method: "POST",
      redirect: "manual",
      headers: form,
      body,
    });
    expect(res.status).toBe(303);
    return cookieOf(res, "__Host-console_session");
  }

  /** Adds a webhook rule through the console form; the redirect and its flash cookie. */
  async function addWebhookRule(session: string, name: string) {
    const res = await exports.default.fetch(`${BASE}/console/notifications`, {
      method: "POST",
      redirect: "manual",
      headers: { ...form, cookie: session },
      body: new URLSearchParams({
        account: "sec-ntf",
        name,
        trigger: "deal_won",
        kind: "webhook",
        url: "https://receiver.example/c",
      }),
    });
    expect(res.status).toBe(303);
    const location = res.headers.get("location") ?? "";
    return { location, flash: cookieOf(res, "__Host-notify_secret"), setCookies: res.headers.getSetCookie() };
  }

  const page = (location: string, cookies: string[]) =>
    exports.default.fetch(`${BASE}${location}`, {
      redirect: "manual",
      headers: { cookie: cookies.filter(Boolean).join("; ") },
    });

  it("security: the secret never travels in a URL; the next page shows it once, then never again", async () => {
    const session = await login();
    const { location, flash, setCookies } = await addWebhookRule(session, "console hook");
    expect(location).not.toMatch(/secret|whsec_/);
    expect(location).toMatch(/^\/console\/notifications\?/);
    expect(flash).toMatch(/^__Host-notify_secret=[A-Za-z0-9_-]{43}$/);
    const attrs = setCookies.find((c) => c.startsWith("__Host-notify_secret=")) ?? "";
    expect(attrs).toMatch(/HttpOnly/);
    expect(attrs).toMatch(/Secure/);
    expect(attrs).toMatch(/SameSite=Strict/);
    // The cookie holds an id only; the secret is not in any header of the redirect.
    expect(setCookies.join("\n")).not.toContain("whsec_");

    const first = await page(location, [session, flash]);
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("no-store");
    const html = await first.text();
    const shown = /<code>(whsec_[A-Za-z0-9+/=]+)<\/code>/.exec(html)?.[1];
    expect(shown).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(html).toContain("console hook");
    // Read once: the same cookie again (a reload, another tab) shows nothing.
    const again = await (await page(location, [session, flash])).text();
    expect(again).not.toContain("whsec_");
    expect(again).not.toContain('id="signing-secret"');
  });

  it("security: a link cannot make the page show its own text as the secret", async () => {
    const session = await login();
    const link = "/console/notifications?account=sec-ntf&secret=whsec_attacker-chosen-text";
    const html = await (await page(link, [session])).text();
    expect(html).not.toContain("whsec_attacker-chosen-text");
    expect(html).not.toContain('id="signing-secret"');
  });

  it("security: the flash is bound to the session that created the rule (another session gets nothing, and it is spent)", async () => {
    const session = await login();
    const { location, flash } = await addWebhookRule(session, "bound hook");
    const other = await login(); // a second, equally valid session
    expect(other).not.toBe(session);
    const stolen = await (await page(location, [other, flash])).text();
    expect(stolen).not.toContain("whsec_");
    // Presented once, with the wrong session: spent for the right one too.
    expect(await (await page(location, [session, flash])).text()).not.toContain("whsec_");
  });
});
