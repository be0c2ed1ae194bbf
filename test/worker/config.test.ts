import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";

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
