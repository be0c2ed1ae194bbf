/**
 * The queue handlers of the sync engine, by message kind (the registry only; each job is its own
 * module in this folder):
 * - `highlevel.webhook` / `fourdegrees.webhook`: triage (webhooks.ts) — mark the record dirty and,
 *   only when it was clean, enqueue one delayed `sync.record` job;
 * - `sync.record`: run the engine for one record (record.ts);
 * - `sync.attachments`: copy/link/delete the attachments of one pair (attachments.ts);
 * - `sync.backfill`: one page of a backfill run (backfill.ts);
 * - `fourdegrees.import_row`: one row of a 4Degrees CSV import written to HighLevel (import-rows.ts);
 * - `automation.run`: one claimed run of an automation rule (automation.ts).
 *
 * Failure discipline (per message, never a blanket ack): rate limits retry after the gate's /
 * provider's delay; other transient errors retry with the consumer's capped exponential backoff;
 * permanent errors (validation, 4xx, contract drift) are recorded in `sync_failures` with the
 * message to replay and acked. One account's failure only ever touches its own messages.
 */
import { claimingItsDelivery, type Handler, type Handlers, type HandlerContext } from "../../queue/consumer.ts";
import { runAttachmentsJob } from "./attachments.ts";
import { runBackfillJob } from "./backfill.ts";
import type { JobDeps } from "./deps.ts";
import { runImportRow } from "./import-rows.ts";
import { runAutomationJob } from "./automation.ts";
import { runRecordJob } from "./record.ts";
import { handleFourDegreesWebhook, handleHighLevelWebhook } from "./webhooks.ts";

/** The queue handlers of the engine, bound to `makeDeps` (called once per message). */
export function syncHandlers(makeDeps: (ctx: HandlerContext) => JobDeps): Handlers {
  // Webhooks claim their delivery only when triage finds work for it (no receipt row for an echo).
  const hlWebhook: Handler<"highlevel.webhook"> = claimingItsDelivery((msg, ctx) =>
    handleHighLevelWebhook(msg, ctx, makeDeps),
  );
  const fdWebhook: Handler<"fourdegrees.webhook"> = claimingItsDelivery((msg, ctx) =>
    handleFourDegreesWebhook(msg, ctx, makeDeps),
  );

  const record: Handler<"sync.record"> = (msg, ctx) => runRecordJob(msg, ctx, makeDeps(ctx));

  const backfill: Handler<"sync.backfill"> = (msg, ctx) => runBackfillJob(msg, ctx, makeDeps(ctx));

  const attachments: Handler<"sync.attachments"> = (msg, ctx) => runAttachmentsJob(msg, ctx, makeDeps(ctx));

  const importRow: Handler<"fourdegrees.import_row"> = (msg, ctx) => runImportRow(msg, ctx, makeDeps(ctx));

  const automation: Handler<"automation.run"> = (msg, ctx) => runAutomationJob(msg, ctx, makeDeps(ctx));

  return {
    "automation.run": automation,
    "highlevel.webhook": hlWebhook,
    "fourdegrees.webhook": fdWebhook,
    "sync.record": record,
    "sync.backfill": backfill,
    "sync.attachments": attachments,
    "fourdegrees.import_row": importRow,
  };
}
