/**
 * The HighLevel sandbox's app shell (sandbox/highlevel/app-shell.ts): the page that frames a Custom
 * Page and answers its REQUEST_USER_DATA with the user context encrypted the HighLevel way. What the
 * page would post is taken out of the served HTML and decrypted with the Worker's own code
 * (src/highlevel/sso.ts), so the sandbox's encryption and the Worker's decryption check each other.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../../sandbox/index.ts";
import { SANDBOX_DEFAULT_SSO_KEY } from "../../../sandbox/highlevel/index.ts";
import { encryptUserContext } from "../../../sandbox/highlevel/sso.ts";
import { SsoError, decryptUserContext } from "../../../src/highlevel/sso.ts";

const APP = "https://worker.test/highlevel/app";

async function setup(settings: Record<string, string> = {}) {
  const sb: Sandbox = createSandbox({ webhookMode: "manual", seed: 7, settings });
  await sb.seedDemo();
  const d = sb.highlevel.demo!;
  const shell = async (query: Record<string, string>) => {
    const url = `http://sandbox.test/_sandbox/highlevel/app-shell?${new URLSearchParams(query)}`;
    const res = await sb.fetch(new Request(url));
    return { status: res.status, type: res.headers.get("content-type"), html: await res.text() };
  };
  return { sb, d, shell };
}

/** What the shell page would post back: the JSON it embeds for its script. */
function embedded(html: string): { payload: string; targetOrigin: string | null } {
  const m = /<script type="application\/json" id="sso-data">([^<]*)<\/script>/.exec(html);
  if (!m) throw new Error("the shell page embeds no sso-data");
  return JSON.parse(m[1]!) as { payload: string; targetOrigin: string | null };
}

describe("HighLevel sandbox app shell: happy", () => {
  it("frames the Custom Page for a location user, with their context encrypted by HIGHLEVEL_SSO_KEY", async () => {
    const { sb, d, shell } = await setup();
    const priya = sb.highlevel.store.users.get(d.userIds[1]!)!;
    const app = `${APP}?location={{location.id}}&email={{user.email}}`;
    const res = await shell({ app, locationId: d.locationId, userId: priya.id });
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/html/);
    // HighLevel's URL placeholders are filled in (URL-encoded) before framing.
    const framed = `${APP}?location=${d.locationId}&amp;email=priya.shah%40acmecapital.example`;
    expect(res.html).toContain(`<iframe id="custom-page" title="Custom Page" src="${framed}"`);
    const { payload, targetOrigin } = embedded(res.html);
    expect(targetOrigin).toBe("https://worker.test");
    expect(payload).toMatch(/^U2FsdGVkX1/); // base64 of "Salted__": CryptoJS / OpenSSL passphrase format
    expect(await decryptUserContext(payload, SANDBOX_DEFAULT_SSO_KEY)).toEqual({
      userId: priya.id,
      companyId: d.companyId,
      role: "user",
      type: "location",
      activeLocation: d.locationId,
      userName: "Priya Shah",
      email: "priya.shah@acmecapital.example",
      isAgencyOwner: false,
    });
  });

  it("opens the other sub-account for a user who has access to it", async () => {
    const { d, shell } = await setup();
    const res = await shell({ app: APP, locationId: d.otherLocationId, userId: d.userIds[0]! });
    expect(res.status).toBe(200);
    const ctx = await decryptUserContext(embedded(res.html).payload, SANDBOX_DEFAULT_SSO_KEY);
    expect(ctx).toMatchObject({ userId: d.userIds[0], role: "admin", activeLocation: d.otherLocationId });
  });

  it("gives an agency user's context at agency level (no activeLocation) and inside a sub-account", async () => {
    const { d, shell } = await setup();
    const contextOf = async (query: Record<string, string>) =>
      decryptUserContext(embedded((await shell({ app: APP, ...query })).html).payload, SANDBOX_DEFAULT_SSO_KEY);
    expect(await contextOf({ userId: d.userIds[0]! })).toEqual({
      userId: d.userIds[0],
      companyId: d.companyId,
      role: "admin",
      type: "agency",
      userName: "Alex Morgan",
      email: "alex.morgan@acmecapital.example",
      isAgencyOwner: true,
    });
    const inside = await contextOf({ locationId: d.locationId, userType: "agency" });
    expect(inside).toMatchObject({ type: "agency", userId: d.userIds[0], activeLocation: d.locationId });
  });

  it("defaults the user to the location's first user, and renders the pickers without a Custom Page URL", async () => {
    const { d, shell } = await setup();
    const res = await shell({ locationId: d.locationId });
    expect(res.status).toBe(200);
    expect(res.html).not.toContain("<iframe");
    expect(res.html).toContain(`<option value="${d.otherLocationId}" >Acme Capital Europe</option>`);
    expect(res.html).toContain(`<option value="${d.userIds[0]}" selected>Alex Morgan (admin)</option>`);
    expect(embedded(res.html).targetOrigin).toBeNull();
  });

  it("salts every payload afresh, as CryptoJS does, and the JSON twin answers the same context", async () => {
    const { sb, d } = await setup();
    const get = async () => {
      const query = `locationId=${d.locationId}&userId=${d.userIds[2]}`;
      const res = await sb.fetch(new Request(`http://sandbox.test/_sandbox/highlevel/app-shell/context?${query}`));
      expect(res.status).toBe(200);
      return (await res.json()) as { context: Record<string, unknown>; payload: string };
    };
    const [a, b] = [await get(), await get()];
    expect(a.payload).not.toBe(b.payload);
    expect(a.context).toMatchObject({ userId: d.userIds[2], type: "location", activeLocation: d.locationId });
    expect(await decryptUserContext(a.payload, SANDBOX_DEFAULT_SSO_KEY)).toEqual(a.context);
    expect(await decryptUserContext(b.payload, SANDBOX_DEFAULT_SSO_KEY)).toEqual(a.context);
  });
});

describe("HighLevel sandbox app shell: the shared secret", () => {
  it("encrypts with the configured HIGHLEVEL_SSO_KEY, which another secret cannot decrypt", async () => {
    const { d, shell } = await setup({ HIGHLEVEL_SSO_KEY: "configured-shared-secret" });
    const { payload } = embedded((await shell({ app: APP, locationId: d.locationId })).html);
    const ctx = await decryptUserContext(payload, "configured-shared-secret");
    expect(ctx).toMatchObject({ activeLocation: d.locationId });
    await expect(decryptUserContext(payload, SANDBOX_DEFAULT_SSO_KEY)).rejects.toBeInstanceOf(SsoError);
  });

  it("follows a secret changed at run time (rotation)", async () => {
    const { sb, d, shell } = await setup();
    sb.highlevel.ssoKey = "rotated-secret";
    const { payload } = embedded((await shell({ app: APP, locationId: d.locationId })).html);
    await expect(decryptUserContext(payload, "rotated-secret")).resolves.toMatchObject({ type: "location" });
    await expect(decryptUserContext(payload, SANDBOX_DEFAULT_SSO_KEY)).rejects.toBeInstanceOf(SsoError);
  });
});

describe("HighLevel sandbox encryption against the Worker's decryption", () => {
  it("round-trips any context under any secret (lengths cross the MD5 and AES block edges)", async () => {
    const id = fc.string({ minLength: 1, maxLength: 30 });
    const text = fc.string({ maxLength: 80, unit: "binary" });
    const location = fc.record({ type: fc.constant("location" as const), activeLocation: id });
    const agency = fc.record({ type: fc.constant("agency" as const) });
    await fc.assert(
      fc.asyncProperty(
        fc.record({ userId: id, companyId: id, role: id, userName: text, email: text, isAgencyOwner: fc.boolean() }),
        fc.oneof(location, agency),
        fc.string({ minLength: 1, maxLength: 100, unit: "binary" }),
        async (common, where, secret) => {
          const context = { ...common, ...where };
          expect(await decryptUserContext(await encryptUserContext(context, secret), secret)).toEqual(context);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("HighLevel sandbox app shell: bad input", () => {
  type Demo = NonNullable<Sandbox["highlevel"]["demo"]>;
  const cases: Array<[string, (d: Demo) => Record<string, string>, number, string]> = [
    ["a user without access", (d) => ({ locationId: d.otherLocationId, userId: d.userIds[1]! }), 400, "no access"],
    ["an unknown location", () => ({ locationId: "nope" }), 404, "no location nope"],
    ["an unknown user", (d) => ({ locationId: d.locationId, userId: "nobody" }), 404, "no user nobody"],
    ["a non-admin as an agency user", (d) => ({ userType: "agency", userId: d.userIds[1]! }), 400, "is not an admin"],
    ["a location user without a location", () => ({ userType: "location" }), 400, "needs a locationId"],
    ["a javascript: URL", (d) => ({ locationId: d.locationId, app: "javascript:alert(1)" }), 400, "http(s) URL"],
    ["a relative URL", (d) => ({ locationId: d.locationId, app: "/console" }), 400, "absolute URL"],
    ["an unknown parameter", (d) => ({ locationId: d.locationId, location_id: d.locationId }), 400, "invalid query"],
  ];
  it.each(cases)("refuses %s with an error page, framing nothing", async (_what, query, status, text) => {
    const { d, shell } = await setup();
    const res = await shell(query(d));
    expect(res.status).toBe(status);
    expect(res.html).toContain(text);
    expect(res.html).not.toContain("<iframe");
    expect(res.html).not.toContain("sso-data");
  });

  it("answers the JSON twin's bad input as the control API does", async () => {
    const { sb } = await setup();
    const res = await sb.fetch(new Request("http://sandbox.test/_sandbox/highlevel/app-shell/context?locationId=nope"));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "no location nope" });
  });

  it("refuses before seeding", async () => {
    const sb = createSandbox({ webhookMode: "manual", seed: 7 });
    const res = await sb.fetch(new Request("http://sandbox.test/_sandbox/highlevel/app-shell"));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("seed it");
  });

  it("escapes what it echoes: a hostile app URL cannot break out of the attribute", async () => {
    const { d, shell } = await setup();
    const res = await shell({ locationId: d.locationId, app: `${APP}?x="><script>alert(1)</script>` });
    expect(res.status).toBe(200);
    expect(res.html).not.toContain("<script>alert(1)");
    expect(res.html).not.toContain('"><script');
  });
});
