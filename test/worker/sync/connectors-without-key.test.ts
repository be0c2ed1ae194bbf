/**
 * An account with no 4Degrees API key (the CSV bridge needs none): the live connector factory
 * still hands out HighLevel ports, and its 4Degrees side answers every call with the reason.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { createAccount } from "../../../src/store/accounts.ts";
import { liveConnectors } from "../../../src/sync/connectors.ts";

describe("liveConnectors without a 4Degrees key", () => {
  it("happy: HighLevel ports are available, 4Degrees calls fail with how to add a key", async () => {
    const account = await createAccount(env.DB, { id: "csv-only", name: "CSV only", locations: ["loc-csv-only"] });
    const config = { ...loadConfig(env), FOURDEGREES_API_KEY: undefined };
    const connectors = await liveConnectors(env, config)(account, "backfill");
    expect(typeof connectors.highlevel("loc-csv-only").getOpportunity).toBe("function");
    expect(connectors.ourActor).toBeNull();
    await expect(connectors.fourdegrees.listPipelines()).rejects.toThrow(
      /has no 4Degrees API key .*PUT \/api\/accounts\/csv-only\/fourdegrees/,
    );
    await expect(connectors.fourdegrees.getDeal("deal_1")).rejects.toMatchObject({ code: "not_found" });
    expect(() => connectors.fourdegrees.parseWebhook({})).toThrow(/no 4Degrees API key/);
  });

  it("happy: with the single-account secret the 4Degrees side is the real connector", async () => {
    const account = await createAccount(env.DB, { id: "with-secret", name: "Secret", locations: ["loc-with-secret"] });
    const connectors = await liveConnectors(env, loadConfig(env))(account, "live");
    // The real connector validates webhook bodies instead of refusing every call.
    expect(() => connectors.fourdegrees.parseWebhook({ nonsense: true })).toThrow();
    expect(() => connectors.fourdegrees.parseWebhook({ nonsense: true })).not.toThrow(/no 4Degrees API key/);
  });
});
