/**
 * "HighLevel is dropping webhooks", end to end: the HighLevel sandbox drops every delivery, users
 * keep editing opportunities, reconcile finds them changed (its `reconcile` events say how many, per
 * location) and the cron's notification scan raises the webhook-silence alert, once.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.ts";
import { createRule } from "../../../src/http/notifications.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { scanNotifications } from "../../../src/notify/scan.ts";
import { listAlerts } from "../../../src/store/alerts.ts";
import { listDeliveries } from "../../../src/store/notifications.ts";
import { recordReceipt } from "../../../src/store/webhook-receipts.ts";
import { runReconcile } from "../../../src/sync/jobs/reconcile.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "./checks.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);
const HOUR = 60 * 60 * 1000;

/** The test env with NOTIFY_QUEUE swallowing messages (deliveries are read from D1). */
function quietEnv(): Env {
  const queue: Queue = {
    metrics: () => env.NOTIFY_QUEUE.metrics(),
    send: async () => ({ metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } }),
    sendBatch: (messages, options) => env.NOTIFY_QUEUE.sendBatch(messages, options),
  };
  return { ...env, NOTIFY_QUEUE: queue };
}
const none = async () => [];
const scan = () =>
  scanNotifications(quietEnv(), loadConfig(env), createLogger("error"), Date.now(), { rateLimited: none });

async function reconcileTicks(w: World, ticks: number): Promise<void> {
  for (let i = 0; i < ticks; i++) {
    await runReconcile(env, w.deps, w.ctx.log, { pageSize: 100 });
    await w.settle();
  }
}

describe("webhook silence", () => {
  it("reconcile finding a location's changes while its webhooks are dropped raises one 'HighLevel is dropping webhooks' alert", async () => {
    const w = await createWorld(routes);
    const rule = (
      await createRule(env.DB, loadConfig(env), {
        accountId: ACCOUNT,
        name: "unusual",
        trigger: "unusual_activity",
        params: {},
        enabled: true,
        target: { kind: "slack", url: "https://hooks.slack.com/services/T/B/silence" },
      })
    ).rule;
    const deals = [1, 2, 3].map((i) => newDeal(w, { name: `Quiet ${i}`, stage: "Sourced" }));
    await w.settle();
    // Let reconcile link the demo data first; its findings so far are not what this test is about.
    await reconcileTicks(w, 4);
    await env.DB.prepare("DELETE FROM sync_events WHERE account_id = ? AND kind = 'reconcile'").bind(ACCOUNT).run();
    // The location's last webhook (as the ingress records it) was three hours ago.
    const lastWebhookAt = Date.now() - 3 * HOUR;
    await recordReceipt(env.DB, {
      provider: "highlevel",
      webhookId: "last-before-silence",
      eventType: "OpportunityUpdate",
      scopeId: w.locationId,
      receivedAt: lastWebhookAt,
    });
    await scan();
    expect(await listDeliveries(env.DB, { ruleId: rule.id }), "no findings yet").toEqual([]);

    w.sb.highlevel.faults.configure({ webhookDropRate: 1 });
    for (const d of deals) {
      const link = await w.linkOf("fourdegrees", d.id);
      w.sb.highlevel.service.updateOpportunity(link?.hlOpportunityId ?? "", { monetaryValue: 777 });
    }
    await w.settle();
    await reconcileTicks(w, 3);
    await scan();
    await scan();

    const deliveries = await listDeliveries(env.DB, { ruleId: rule.id });
    expect(deliveries.map((d) => d.changeKey)).toEqual([`activity:webhook_silence:${w.locationId}:${lastWebhookAt}`]);
    expect(deliveries[0]?.event).toMatchObject({ kind: "unusual_activity", metric: "webhook_silence", count: 3 });
    const alerts = await listAlerts(env.DB, ACCOUNT, 0);
    expect(alerts.map((a) => String(a.detail["summary"]))).toEqual([
      expect.stringContaining(`HighLevel is dropping webhooks: location ${w.locationId}`),
    ]);
  });
});
