/**
 * Team notifications from real syncs: the record job tells the notifier about each recorded change
 * of a pair (`deal_changed`, before = the last-synced snapshot, after = the new state) and each
 * permanent failure (`sync_failure`). A "deal won" rule fires exactly once for one won change,
 * however often its webhook and job are delivered, and again for the next won change.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { NewRuleSchema } from "../../../src/notify/rules.ts";
import { createRule } from "../../../src/http/notifications.ts";
import { listDeliveries } from "../../../src/store/notifications.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld } from "./world.ts";

const routes: Record<string, RouteHandler> = { "hooks.notify.test": () => new Response(null, { status: 204 }) };
useNetwork(routes);

describe("notifications from real syncs", () => {
  it("a HighLevel won change fires the deal-won rule exactly once across redeliveries, and again for the next won change", async () => {
    const w = await createWorld(routes);
    const { rule } = await createRule(
      env.DB,
      loadConfig(env),
      NewRuleSchema.parse({
        accountId: ACCOUNT,
        name: "Won deals",
        trigger: "deal_won",
        params: {},
        target: { kind: "webhook", url: "https://hooks.notify.test/won" },
      }),
    );
    const deal = newDeal(w, { name: "Notify Me", stage: "Term Sheet", amountMinor: 10_00 });
    await w.settle();
    expect(await listDeliveries(env.DB, { ruleId: rule.id })).toHaveLength(0);

    const hlId = (await w.linkOf("fourdegrees", deal.id))?.hlOpportunityId ?? "";
    w.sb.highlevel.service.setStatus(hlId, "won");
    // Every webhook of the change delivered twice, and the record job forced once more afterwards.
    const deliveries = w.sb.highlevel.deliveries().filter((d) => d.state === "pending").length;
    expect(deliveries).toBeGreaterThan(0);
    w.sb.highlevel.faults.configure({ webhookDuplicateRate: 1 });
    await w.settle();
    w.sb.highlevel.faults.configure({ webhookDuplicateRate: 0 });
    expect(w.sb.fourdegrees.deal(deal.id).stage_id).toBe(w.fdStage("Closed"));
    w.queue.push({
      body: {
        v: 1,
        kind: "sync.record",
        accountId: ACCOUNT,
        side: "highlevel",
        record: "deal",
        recordId: hlId,
        locationId: w.locationId,
        force: true,
      },
      attempts: 1,
    });
    await w.settle();
    const once = await listDeliveries(env.DB, { ruleId: rule.id });
    expect(once).toHaveLength(1);

    // Reopened (no rule), then won again: a new change, a second notification.
    w.sb.highlevel.service.setStatus(hlId, "open");
    await w.settle();
    w.sb.highlevel.service.setStatus(hlId, "won");
    await w.settle();
    expect(await listDeliveries(env.DB, { ruleId: rule.id })).toHaveLength(2);
  });
});
