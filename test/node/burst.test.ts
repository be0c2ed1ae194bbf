/**
 * Burst (issue 7): BURST_EVENTS signed HighLevel webhooks (default 1,000; 10,000 in the heavy
 * setting and in `npm run bench`) sent as fast as autocannon can to the Worker under `wrangler dev`:
 * every one acknowledged (200 "accepted"), every one processed by the queue consumer, none lost or
 * applied twice. Counts only; the p99 acknowledgement latency and the drain time are printed.
 */
import { describe, expect, it } from "vitest";
import { runBurst } from "../../scripts/bench/burst.ts";

const EVENTS = Number(process.env["BURST_EVENTS"] ?? (process.env["CHAOS_HEAVY"] === "1" ? 10_000 : 1_000));

describe(`burst of ${EVENTS} HighLevel webhooks`, () => {
  it("every delivery is acknowledged and processed exactly once", { timeout: 120_000 + EVENTS * 200 }, async () => {
    const r = await runBurst(EVENTS, { drainTimeoutMs: 60_000 + EVENTS * 100 });
    console.log(
      `burst: ${r.events} events, p99 ack ${r.p99AckMs} ms, sent in ${r.sendSeconds.toFixed(1)} s, drained ${r.drainSeconds.toFixed(1)} s after the last answer (${r.totalSeconds.toFixed(1)} s in all); answers ${JSON.stringify(r.byStatus)}`,
    );
    expect(r.byStatus).toEqual({ "200 accepted": EVENTS });
    expect(r.acknowledged).toBe(EVENTS);
    expect(r.processed).toBe(EVENTS);
    expect(r.lost).toBe(0);
    expect(r.appliedTwice).toBe(0);
  });
});
