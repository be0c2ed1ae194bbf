/**
 * The logger's redaction: credential-looking keys, bearer tokens and private-integration tokens
 * never reach a log line — in plain fields, in an Error's message, its stack or its cause.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger, redact } from "../../../src/lib/log.ts";

const BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-value";
const PIT = "pit-0a1b2c3d-4e5f-6789-abcd-ef0123456789";

afterEach(() => vi.restoreAllMocks());

describe("log redaction", () => {
  it("happy: ordinary fields pass unchanged; credential keys become a marker", () => {
    const fields = { event: "x", calls: 2, duration_ms: 5, token_expires_at: 9, apiKey: "k", nested: { refresh: "r" } };
    expect(redact(fields)).toEqual({
      event: "x",
      calls: 2,
      duration_ms: 5,
      token_expires_at: 9,
      apiKey: "[redacted]",
      nested: { refresh: "[redacted]" },
    });
  });

  it("security: an Error's stack is redacted like its message (the stack repeats the message)", () => {
    const err = new Error(`HighLevel refused ${BEARER} for ${PIT}`);
    expect(err.stack).toContain(PIT); // the platform copies the message into the stack
    const out = redact(err);
    const text = JSON.stringify(out);
    expect(text).not.toContain("c2VjcmV0LXBheWxvYWQ");
    expect(text).not.toContain(PIT);
    expect(out).toMatchObject({
      name: "Error",
      message: "HighLevel refused Bearer [redacted] for pit-[redacted]",
      stack: expect.stringContaining("Bearer [redacted]"),
    });
  });

  it("security: an Error's cause is redacted too", () => {
    const err = new Error("refresh failed", { cause: new Error(`token endpoint said no to ${PIT}`) });
    const text = JSON.stringify(redact(err));
    expect(text).toContain("refresh failed");
    expect(text).not.toContain(PIT);
  });

  it("security: a logged error line carries no token anywhere", () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
    createLogger("info").error({ event: "http.unhandled", error: new TypeError(`bad header ${BEARER}`) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain("c2VjcmV0LXBheWxvYWQ");
    expect(lines[0]).toContain("TypeError");
  });
});
