/**
 * The write ledger carries a write's first request across queue redeliveries, so a retry re-sends
 * exactly that request with the same Idempotency-Key (4Degrees replays a key only for an identical
 * request; a changed body would answer 422 and a new key would write twice).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  beginWrite,
  completeWrite,
  getWrite,
  ledgerIdempotencyKey,
  type LedgerKey,
} from "../../../src/store/ledger.ts";

describe("write ledger", () => {
  it("keeps the first attempt's request and key across retries, whatever a later attempt would send", async () => {
    const key: LedgerKey = {
      accountId: "acct-ledger",
      targetSide: "fourdegrees",
      sourceRecord: "highlevel:opp-1",
      changeHash: "create",
    };
    const first = await beginWrite(env.DB, key, "create", 1_000, {
      name: "As first sent",
      value: { amountMinor: 287_000_00, currency: "USD" },
    });
    expect(first.fresh).toBe(true);
    const retry = await beginWrite(env.DB, key, "create", 2_000, {
      name: "Edited since",
      value: { amountMinor: 151_000_00, currency: "USD" },
    });
    expect(retry.fresh).toBe(false);
    expect(retry.entry.request).toEqual({ name: "As first sent", value: { amountMinor: 287_000_00, currency: "USD" } });
    expect(ledgerIdempotencyKey(retry.entry)).toBe(ledgerIdempotencyKey(key));
    await completeWrite(env.DB, key, "deal_1", 3_000);
    const done = await getWrite(env.DB, key);
    expect(done?.state).toBe("done");
    expect(done?.targetId).toBe("deal_1");
    expect(done?.request).toEqual({ name: "As first sent", value: { amountMinor: 287_000_00, currency: "USD" } });
  });

  it("a write begun without a request records none", async () => {
    const key: LedgerKey = {
      accountId: "acct-ledger",
      targetSide: "highlevel",
      sourceRecord: "fourdegrees:deal_2",
      changeHash: "delete:delete",
    };
    expect((await beginWrite(env.DB, key, "delete", 1_000)).entry.request).toBeNull();
    expect((await getWrite(env.DB, key))?.request).toBeNull();
  });
});
