import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, EXAMPLE_ADMIN_TOKEN, isLocalPublicUrl, loadConfig } from "../../src/config.ts";
import devVarsExample from "../../.dev.vars.example?raw";

describe("loadConfig", () => {
  it("happy: parses the test bindings once into a typed Config", () => {
    const config = loadConfig(env);
    expect(config.SYNC_MODE).toBe("two-way");
    expect(config.TOKEN_ENCRYPTION_KEY[0]?.id).toBe("k1");
    expect(config.HIGHLEVEL_API_BASE).toBe("http://sandbox.test/highlevel");
    expect(loadConfig(env)).toBe(config);
  });

  it("error: a missing secret is named in the error", () => {
    const broken = { ...env, HIGHLEVEL_CLIENT_SECRET: undefined } as unknown as Env;
    expect(() => loadConfig(broken)).toThrow(ConfigError);
    expect(() => loadConfig(broken)).toThrow(/HIGHLEVEL_CLIENT_SECRET/);
  });

  it("security: HIGHLEVEL_APP_ID is required (missing, empty or malformed is a ConfigError naming it)", () => {
    for (const value of [undefined, "", "not an id!"]) {
      const broken = { ...env, HIGHLEVEL_APP_ID: value } as unknown as Env;
      expect(() => loadConfig(broken), String(value)).toThrow(ConfigError);
      expect(() => loadConfig(broken), String(value)).toThrow(/HIGHLEVEL_APP_ID/);
    }
    expect(loadConfig(env).HIGHLEVEL_APP_ID).toBe("6650f1e2a3b4c5d6e7f80912");
  });

  it("happy: HIGHLEVEL_SSO_KEY is optional (empty = off); HIGHLEVEL_FRAME_ANCESTORS takes origins only", () => {
    expect(loadConfig({ ...env, HIGHLEVEL_SSO_KEY: "" } as Env).HIGHLEVEL_SSO_KEY).toBeUndefined();
    expect(() => loadConfig({ ...env, HIGHLEVEL_SSO_KEY: "short" } as Env)).toThrow(/HIGHLEVEL_SSO_KEY/);
    const wl = loadConfig({ ...env, HIGHLEVEL_FRAME_ANCESTORS: "https://a.example, https://*.b.example" } as Env);
    expect(wl.HIGHLEVEL_FRAME_ANCESTORS).toEqual(["https://a.example", "https://*.b.example"]);
    for (const bad of ["*", "https://a.example/path", "'self'", "javascript:alert(1)"])
      expect(() => loadConfig({ ...env, HIGHLEVEL_FRAME_ANCESTORS: bad } as Env), bad).toThrow(
        /HIGHLEVEL_FRAME_ANCESTORS/,
      );
  });

  it("error: ATTACHMENT_MAX_BYTES defaults to 25 MiB and refuses what is not a byte count within 50 MiB", () => {
    expect(loadConfig({ ...env, ATTACHMENT_MAX_BYTES: undefined } as unknown as Env).ATTACHMENT_MAX_BYTES).toBe(
      25 * 1024 * 1024,
    );
    expect(loadConfig({ ...env, ATTACHMENT_MAX_BYTES: "1000" } as unknown as Env).ATTACHMENT_MAX_BYTES).toBe(1000);
    for (const value of ["lots", "0", "1.5", String(60 * 1024 * 1024)]) {
      const broken = { ...env, ATTACHMENT_MAX_BYTES: value } as unknown as Env;
      expect(() => loadConfig(broken), value).toThrow(/ATTACHMENT_MAX_BYTES/);
    }
  });

  it('security: the legacy RSA signature is off unless HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE is "true"', () => {
    expect(
      loadConfig({ ...env, HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE: undefined } as unknown as Env)
        .HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE,
    ).toBe(false);
    expect(
      loadConfig({ ...env, HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE: "true" } as unknown as Env)
        .HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE,
    ).toBe(true);
    expect(() => loadConfig({ ...env, HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE: "yes" } as unknown as Env)).toThrow(
      /HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE/,
    );
  });

  it("happy: HIGHLEVEL_API_VERSION defaults to 2021-07-28, takes v3, and anything else is a ConfigError naming it", () => {
    const with_ = (v: string | undefined) => ({ ...env, HIGHLEVEL_API_VERSION: v }) as unknown as Env;
    expect(loadConfig(with_(undefined)).HIGHLEVEL_API_VERSION).toBe("2021-07-28");
    expect(loadConfig(with_("v3")).HIGHLEVEL_API_VERSION).toBe("v3");
    for (const bad of ["V3", "2023-02-21", ""]) {
      expect(() => loadConfig(with_(bad)), bad).toThrow(ConfigError);
      expect(() => loadConfig(with_(bad)), bad).toThrow(/HIGHLEVEL_API_VERSION must be "2021-07-28" or "v3"/);
    }
  });

  it("error: a malformed encryption key says what shape it wants", () => {
    const broken = { ...env, TOKEN_ENCRYPTION_KEY: "not-a-key" } as unknown as Env;
    expect(() => loadConfig(broken)).toThrow(/kid:<base64/);
  });
});

describe("loadConfig: webhook keys", () => {
  it("happy: PEM with \\n escapes becomes a real PEM", () => {
    const config = loadConfig(env);
    expect(config.HIGHLEVEL_WEBHOOK_PUBLIC_KEY).toMatch(/^-----BEGIN PUBLIC KEY-----\nMCow/);
  });
  it("error: a non-PEM key is named", () => {
    const broken = { ...env, HIGHLEVEL_WEBHOOK_PUBLIC_KEY: "abc" } as unknown as Env;
    expect(() => loadConfig(broken)).toThrow(/HIGHLEVEL_WEBHOOK_PUBLIC_KEY/);
  });
});

describe("loadConfig: the example admin token", () => {
  const example = { ...env, ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN };

  it("security: the token of .dev.vars.example is refused for a deployed PUBLIC_URL, naming ADMIN_TOKEN", () => {
    const deployed = { ...example, PUBLIC_URL: "https://sync.example.com" };
    expect(() => loadConfig(deployed)).toThrow(ConfigError);
    try {
      loadConfig(deployed);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      if (err instanceof ConfigError) {
        expect(err.settings).toEqual(["ADMIN_TOKEN"]);
        expect(err.message).toContain(".dev.vars.example");
      }
    }
  });

  it("happy: it is accepted for local dev (PUBLIC_URL on localhost or 127.0.0.1)", () => {
    for (const url of ["http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:8787"])
      expect(loadConfig({ ...example, PUBLIC_URL: url }).ADMIN_TOKEN, url).toBe(EXAMPLE_ADMIN_TOKEN);
    expect(isLocalPublicUrl("https://127.0.0.1.example.com")).toBe(false);
    expect(isLocalPublicUrl("https://localhost.example.com")).toBe(false);
  });

  it("happy: EXAMPLE_ADMIN_TOKEN is the value .dev.vars.example ships", () => {
    expect(devVarsExample).toContain(`\nADMIN_TOKEN=${EXAMPLE_ADMIN_TOKEN}\n`);
  });
});
