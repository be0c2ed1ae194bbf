/**
 * Queue message envelope (versioned). Every producer (webhook ingress, CSV import, backfill,
 * replay, notifications) sends one of these; the consumer parses each with zod before acting.
 */
import { z } from "zod";

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
    kind: z.literal("notify.deliver"),
    /** One team notification to deliver (src/notify/deliver.ts); the event itself is in D1. */
    ruleId: z.string().min(1),
    changeKey: z.string().min(1),
  }),
]);

export type QueueMessage = z.infer<typeof QueueMessageSchema>;
export type QueueMessageKind = QueueMessage["kind"];
