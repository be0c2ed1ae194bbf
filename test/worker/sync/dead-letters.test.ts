/** The dead-letter consumer: exhausted messages become replayable failures; a dead record job frees its dirty mark. */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { loadConfig } from "../../../src/config.ts";
import { consumeDeadLetters } from "../../../src/sync/jobs/dead-letters.ts";
import { describe, expect, it } from "vitest";
import { createAccount, deleteAccount } from "../../../src/store/accounts.ts";
import { listFailures } from "../../../src/store/failures.ts";
import { getPending, markDirty } from "../../../src/store/pending.ts";

describe("dead letters (error)", () => {
  it("records each exhausted message as an open failure with its body, acks it, and drops the record's dirty mark", async () => {
    await deleteAccount(env.DB, "dlq-acct");
    await createAccount(env.DB, { id: "dlq-acct", name: "DLQ", workspaceId: null, locations: ["loc-dlq"] });
    await markDirty(env.DB, "dlq-acct", "highlevel", "deal", "opp-dead");
    const body = {
      v: 1,
      kind: "sync.record",
      accountId: "dlq-acct",
      side: "highlevel",
      record: "deal",
      recordId: "opp-dead",
      locationId: "loc-dlq",
      lane: "live",
      force: false,
    };
    const batch = createMessageBatch<unknown>("sync-events-dlq", [
      { id: "m-1", timestamp: new Date(), attempts: 1, body },
      { id: "m-2", timestamp: new Date(), attempts: 1, body: { not: "a message" } },
    ]);
    const ctx = createExecutionContext();
    await consumeDeadLetters(batch, env, loadConfig(env));
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m-1", "m-2"]);
    expect(result.retryMessages).toEqual([]);
    const failures = await listFailures(env.DB, "dlq-acct");
    expect(failures.map((f) => [f.id, f.source, f.message])).toEqual([["dlq:m-1", "dead_letter", body]]);
    expect(await getPending(env.DB, "dlq-acct", "highlevel", "deal", "opp-dead")).toBeNull();
  });
});
