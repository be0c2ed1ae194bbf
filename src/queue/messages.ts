/**
 * Queue message envelope (versioned). Every producer (webhook ingress, CSV import, backfill,
 * replay, notifications) sends one of these; the consumer parses each with zod before acting.
 */
import * as z from "zod";
import { DealSchema } from "../domain/port.ts";

export const QueueMessageSchema = z.discriminatedUnion("kind", [
  z.object({
    v: z.literal(1),
    kind: z.literal("highlevel.webhook"),
    /** `webhookId` from the body (dedupe key). */
    webhookId: z.string().min(1),
    locationId: z.string().min(1).nullable(),
    type: z.string().min(1),
    receivedAt: z.number().int(),
    /** The verified, parsed event body. */
    body: z.record(z.string(), z.unknown()),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("fourdegrees.webhook"),
    webhookId: z.string().min(1),
    workspaceId: z.string().min(1),
    type: z.string().min(1),
    receivedAt: z.number().int(),
    body: z.record(z.string(), z.unknown()),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("fourdegrees.import_row"),
    /** One validated row of a 4Degrees deal-list CSV, to create/update/link in HighLevel. */
    accountId: z.string().min(1),
    importId: z.string().min(1),
    /** Stable identity of the row across imports (`4d:<id>`, `hl:<id>` or `name:<list>/<deal name>`). */
    importKey: z.string().min(1),
    /** Hash of the row's content; the engine may use `importKey` + `contentHash` as its write-ledger key. */
    contentHash: z.string().min(1),
    /** Line of the file where the row starts (for failure reports). */
    line: z.number().int().positive(),
    /** What the import saw: a new row (`create`), a new row naming a HighLevel opportunity (`link`), a changed row (`update`). */
    action: z.enum(["create", "update", "link"]),
    /** The row in the engine's Deal shape: pipeline/stage/owner by name, `id` = the 4Degrees deal id when the file has one. */
    deal: DealSchema,
    /** The HighLevel opportunity the row names (its "HighLevel ID" column), if any. */
    highlevelOpportunityId: z.string().min(1).nullable(),
    /** Text of the row's notes column, to add as a note (tagged with the import key) when it changed. */
    note: z.string().nullable(),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("notify.deliver"),
    /** One team notification to deliver (src/notify/deliver.ts); the event itself is in D1. */
    ruleId: z.string().min(1),
    changeKey: z.string().min(1),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("sync.record"),
    /** One dirty record to sync (coalesced: the pending table holds the dirty mark and its sequence). */
    accountId: z.string().min(1),
    side: z.enum(["fourdegrees", "highlevel"]),
    /** `deal` = a deal/opportunity pair; `notes` = the notes of a pair (HighLevel: by contact id). */
    record: z.enum(["deal", "notes"]),
    recordId: z.string().min(1),
    /** The HighLevel location, when the record is HighLevel's and the event named it. */
    locationId: z.string().min(1).nullable().default(null),
    /** Which gate lane its calls use. */
    lane: z.enum(["live", "reconcile", "backfill"]).default("live"),
    /** Run even when the record is not marked dirty (replay, on-demand resync). */
    force: z.boolean().default(false),
    /**
     * The mark's sequence when the webhook that made this job due set it (a live job run at the end
     * of its batch): the job clears the mark only if it is still this one, without reading it first.
     */
    markedSeq: z.number().int().positive().optional(),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("automation.run"),
    /** One claimed (rule, trigger occurrence) of an automation rule to run (src/sync/jobs/automation.ts). */
    accountId: z.string().min(1),
    ruleId: z.string().min(1),
    occurrence: z.string().min(1),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("sync.attachments"),
    /** Sync the attachments of one linked pair (src/sync/jobs/attachments.ts), by either side's id. */
    accountId: z.string().min(1),
    side: z.enum(["fourdegrees", "highlevel"]),
    /** The 4Degrees deal id, or the HighLevel opportunity id. */
    recordId: z.string().min(1),
    locationId: z.string().min(1).nullable().default(null),
    lane: z.enum(["live", "reconcile", "backfill"]).default("live"),
    /** What asked for the job (an event type, `replay`, `demo`), for the log. */
    trigger: z.string().min(1).max(100).default("event"),
  }),
  z.object({
    v: z.literal(1),
    kind: z.literal("sync.backfill"),
    /** Processes one page of the account's backfill run, then enqueues the next (checkpointed in D1). */
    accountId: z.string().min(1),
    runId: z.string().min(1),
  }),
]);

export type QueueMessage = z.infer<typeof QueueMessageSchema>;
export type QueueMessageKind = QueueMessage["kind"];
/** What a producer sends (defaults not yet applied). */
export type QueueMessageInput = z.input<typeof QueueMessageSchema>;
