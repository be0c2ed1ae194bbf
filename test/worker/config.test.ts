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
