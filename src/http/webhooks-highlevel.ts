/**
 * `POST /webhooks/highlevel`: verify the raw bytes, check freshness, enqueue, answer fast. No
 * database on the path of a location event: duplicates (HighLevel's redeliveries, a `webhookId`
 * seen before) are dropped by the queue consumer, which claims a whole batch's deliveries in one D1
 * round trip (src/queue/consumer.ts) — Queues deliver at least once, so the consumer had to be
 * idempotent anyway; deliveries for a location no account uses are acked there too. So the ingress
 * keeps taking events while D1 is slow or down, and a burst costs D1 one write per queue batch
 * instead of one per delivery (docs/benchmarks.md, ingress).
 *
 * HighLevel retries a delivery ONLY when answered 429 (any other status, 5xx included, loses the
 * event for good), so every "cannot take it now" path answers 429 and is remembered (a deferral),
 * so the retry ~10 minutes later is not refused as stale. App INSTALL/UNINSTALL events are applied
 * here and now, deduplicated by their receipt, and only when their `appId` is this app's
 * (`HIGHLEVEL_APP_ID`): HighLevel signs every app's webhooks with one key, so another app's
 * UNINSTALL for a shared location is validly signed too. Refusals: README "Security".
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AppError } from "../lib/errors.ts";
import { jsonDepthExceeds, MAX_JSON_DEPTH, QUEUE_MESSAGE_BUDGET_BYTES, queueMessageBytes } from "../lib/json-limits.ts";
import { handleInstallEvent, handleUninstallEvent } from "../highlevel/install.ts";
import {
  AppEventSchema,
  bodyDigest,
  eventTime,
  verifyHighLevelSignature,
  WEBHOOK_MAX_AGE_MS,
  WebhookEnvelopeSchema,
} from "../highlevel/webhooks.ts";
import { deferReceipt, recordReceipt, wasDeferred } from "../store/webhook-receipts.ts";
import type { QueueMessage } from "../queue/messages.ts";
import type { AppEnv } from "./context.ts";

/**
 * How old a delivery we answered 429 may be when its retry comes: HighLevel retries up to 6 times
 * about 10 minutes apart, so a retry is past the 5-minute window by design.
 */
export const DEFERRED_RETRY_MAX_AGE_MS = 2 * 60 * 60 * 1000;

/**
 * Largest accepted delivery; HighLevel's event bodies are a few KB. A body under this can still
 * be refused with 413 when its queue message would pass `QUEUE_MESSAGE_BUDGET_BYTES`.
 */
export const HIGHLEVEL_WEBHOOK_MAX_BYTES = 256 * 1024;

/** What a 401 says for each signature refusal. */
const SIGNATURE_REFUSALS = {
  missing: "Missing x-ghl-signature",
  malformed: "Invalid webhook signature",
  invalid: "Invalid webhook signature",
  legacy_disabled:
    "Legacy x-wh-signature (RSA) is disabled (HIGHLEVEL_ACCEPT_LEGACY_SIGNATURE); sign with x-ghl-signature",
} as const;

const tryAgain = (reason: string) =>
  new AppError("rate_limited", `Cannot take the event right now (${reason}); HighLevel will retry`, {
    headers: { "Retry-After": "60" },
  });

export const highlevelWebhooks = new Hono<AppEnv>().post(
  "/webhooks/highlevel",
  bodyLimit({
    maxSize: HIGHLEVEL_WEBHOOK_MAX_BYTES,
    onError: () => {
      throw new AppError("payload_too_large", `Webhook body over ${HIGHLEVEL_WEBHOOK_MAX_BYTES} bytes`);
    },
  }),
  async (c) => {
    const log = c.var.log.child({ direction: "inbound", provider: "highlevel" });
    /** Whether delivery `id` was answered 429 since `since`; D1 trouble → 429 again. */
    const deferredSince = async (id: string, since: number): Promise<boolean> => {
      try {
        return await wasDeferred(c.env.DB, "highlevel", id, since);
      } catch (err) {
        log.error({ event: "webhook.deferral_lookup_failed", outcome: "retry", error: err, webhook_id: id });
        throw tryAgain("database unavailable");
      }
    };
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const check = await verifyHighLevelSignature(raw, c.req.raw.headers, c.var.config);
    if (!check.ok) {
      log.warn({ event: "webhook.rejected", outcome: "rejected", reason: `signature ${check.reason}` });
      throw new AppError("unauthorized", SIGNATURE_REFUSALS[check.reason]);
    }
    // Before parsing: a deep body costs this scan only, and could not be serialised into a message.
    if (jsonDepthExceeds(raw)) {
      log.warn({ event: "webhook.rejected", outcome: "rejected", reason: "json too deep" });
      throw new AppError("bad_request", `Webhook body nests deeper than ${MAX_JSON_DEPTH} levels`);
    }
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      throw new AppError("bad_request", "Webhook body is not JSON");
    }
    const parsed = WebhookEnvelopeSchema.safeParse(json);
    if (!parsed.success) throw new AppError("bad_request", "Webhook body is not a HighLevel event (no `type`)");
    const event = parsed.data;
    const now = Date.now();
    const at = eventTime(event);
    const webhookId = event.webhookId ?? (await bodyDigest(raw));
    const locationId = event.locationId ?? null;
    const fields = { type: event.type, location: locationId, webhook_id: webhookId, scheme: check.scheme };
    if (at === null) {
      // Nothing signed says when it was sent: without a timestamp a captured delivery replays forever.
      log.warn({ event: "webhook.rejected", outcome: "rejected", reason: "no timestamp", ...fields });
      throw new AppError("unauthorized", "Webhook has no parseable `timestamp`; it is required to refuse replays");
    }
    if (now - at > WEBHOOK_MAX_AGE_MS || at - now > WEBHOOK_MAX_AGE_MS) {
      // The one old delivery that is welcome: the retry of one we answered 429 (see migrations/0007).
      const retryOfDeferred =
        now - at > WEBHOOK_MAX_AGE_MS &&
        now - at <= DEFERRED_RETRY_MAX_AGE_MS &&
        (await deferredSince(webhookId, now - DEFERRED_RETRY_MAX_AGE_MS));
      if (!retryOfDeferred) {
        log.warn({
          event: "webhook.rejected",
          outcome: "rejected",
          reason: "stale timestamp",
          age_ms: now - at,
          ...fields,
        });
        throw new AppError("unauthorized", "Webhook timestamp outside the 5-minute window");
      }
      log.info({ event: "webhook.deferred_retry", outcome: "ok", age_ms: now - at, ...fields });
    }

    const appEvent = event.type === "INSTALL" || event.type === "UNINSTALL";
    if ((appEvent || event.appId != null) && event.appId !== c.var.config.HIGHLEVEL_APP_ID) {
      // Signed by HighLevel, but for another app (or, for an app event, for no named app): not ours
      // to apply. 200, since HighLevel would only drop a refusal anyway.
      const appId = event.appId ?? null;
      log.warn({ event: "webhook.rejected", outcome: "skipped", reason: "foreign app", app_id: appId, ...fields });
      return c.json({ ok: true, status: "ignored", reason: "foreign app" });
    }

    if (appEvent) {
      // App lifecycle events are applied here and now (connections created / retired), not queued.
      const app = AppEventSchema.safeParse(json);
      if (!app.success) throw new AppError("bad_request", `Webhook body is not a valid ${event.type} event`);
      let receipt: "new" | "duplicate";
      try {
        receipt = await recordReceipt(c.env.DB, {
          provider: "highlevel",
          webhookId,
          eventType: event.type,
          scopeId: locationId ?? event.companyId ?? null,
          receivedAt: now,
        });
      } catch (err) {
        log.error({ event: "webhook.receipt_failed", outcome: "retry", error: err, ...fields });
        throw tryAgain("database unavailable");
      }
      if (receipt === "duplicate") {
        log.debug({ event: "webhook.duplicate", outcome: "skipped", ...fields });
        return c.json({ ok: true, status: "duplicate" });
      }
      if (app.data.type === "UNINSTALL") await handleUninstallEvent(c.env, app.data, log);
      else await handleInstallEvent(c.env, c.var.config, app.data, log);
      return c.json({ ok: true, status: "applied" });
    }

    if (!locationId) {
      // Accepted so HighLevel does not retry an event no location can use; visible in the logs.
      log.warn({ event: "webhook.no_location", outcome: "skipped", ...fields });
      return c.json({ ok: true, status: "ignored" });
    }
    const message: QueueMessage = {
      v: 1,
      kind: "highlevel.webhook",
      webhookId,
      locationId,
      type: event.type,
      receivedAt: now,
      body: parsed.data,
    };
    const size = queueMessageBytes(message);
    if (size > QUEUE_MESSAGE_BUDGET_BYTES) {
      // No retry can make it fit: refuse it for good (413), not 429 it into a loop; reconcile re-reads the record.
      log.error({ event: "webhook.too_large", outcome: "rejected", message_bytes: size, ...fields });
      const limit = `over the ${QUEUE_MESSAGE_BUDGET_BYTES}-byte limit`;
      throw new AppError("payload_too_large", `Webhook event is ${size} bytes as a queue message, ${limit}`);
    }
    try {
      await c.env.SYNC_QUEUE.send(message, { contentType: "json" });
    } catch (err) {
      // Nothing was recorded; remember the 429 (the retry will be past the freshness window).
      await deferReceipt(c.env.DB, "highlevel", webhookId, now).catch((e: unknown) =>
        log.error({ event: "webhook.defer_failed", error: e, outcome: "failed", ...fields }),
      );
      log.error({ event: "webhook.enqueue_failed", outcome: "retry", error: err, ...fields });
      throw tryAgain("queue unavailable");
    }
    log.debug({ event: "webhook.accepted", outcome: "ok", ...fields });
    return c.json({ ok: true, status: "accepted" });
  },
);
