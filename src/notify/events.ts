/**
 * What the engine (and the cron scan) tell the notifier: one `NotifyEvent` per change. The
 * `changeKey` of an event identifies the change, so the same change reported twice (a queue retry,
 * a replay) is delivered once per rule (src/store/notifications.ts `claimDelivery`).
 */
import * as z from "zod";
import { DealStatusSchema } from "../domain/port.ts";
import { MoneySchema } from "../domain/money.ts";

/** A deal's state as far as notifications care (either side's view, already mapped). */
export const DealStateSchema = z.object({
  stageId: z.string().nullable(),
  stageName: z.string().nullable(),
  status: DealStatusSchema.nullable(),
  value: MoneySchema.nullable(),
});
export type DealState = z.infer<typeof DealStateSchema>;

export const NotifyEventSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("deal_changed"),
    accountId: z.string().min(1),
    /**
     * Identifies this change of this record: stable across retries of the same change (e.g. the
     * source record's version or updatedAt), different for the next change.
     */
    changeId: z.string().min(1),
    dealName: z.string(),
    fourdegreesId: z.string().nullable(),
    highlevelId: z.string().nullable(),
    /** Which side the change came from. */
    source: z.enum(["fourdegrees", "highlevel"]),
    /** The state before this change (the last-synced snapshot); null for a new deal. */
    before: DealStateSchema.nullable(),
    after: DealStateSchema,
  }),
  z.object({
    kind: z.literal("sync_failure"),
    accountId: z.string().min(1),
    failureId: z.string().min(1),
    reason: z.string(),
    fourdegreesId: z.string().nullable().default(null),
    highlevelId: z.string().nullable().default(null),
  }),
  z.object({
    kind: z.literal("needs_reconnect"),
    accountId: z.string().min(1),
    locationId: z.string().min(1),
    /** When the connection entered `needs_reconnect` (epoch ms): one notification per episode. */
    since: z.number().int(),
    reason: z.string().nullable(),
  }),
  z.object({
    kind: z.literal("quota_low"),
    accountId: z.string().min(1),
    locationId: z.string().min(1),
    /** The HighLevel day (UTC date) the quota belongs to: one notification per location per day. */
    day: z.string().min(1),
    remaining: z.number().int(),
    limit: z.number().int(),
  }),
  z.object({
    kind: z.literal("unusual_activity"),
    accountId: z.string().min(1),
    /** What spiked, or `webhook_silence` (a location's webhooks stopped while reconcile finds changes). */
    metric: z.enum(["failures", "rate_limited", "deletes", "changes", "webhook_silence"]),
    /** Identifies the episode (its first hour, or the silence's last webhook): one notification each. */
    episode: z.string().min(1),
    /** The count that tripped the alert, and the threshold it passed. */
    count: z.number().int(),
    threshold: z.number().int(),
    locationId: z.string().nullable().default(null),
  }),
  z.object({
    kind: z.literal("deletes_held"),
    accountId: z.string().min(1),
    /** When the hold began (the oldest held delete, epoch ms): one notification per hold episode. */
    since: z.number().int(),
    count: z.number().int(),
  }),
]);
export type NotifyEvent = z.infer<typeof NotifyEventSchema>;
export type NotifyEventInput = z.input<typeof NotifyEventSchema>;

/** The dedupe key of an event (per rule, a change fires once). */
export function changeKeyOf(e: NotifyEvent): string {
  switch (e.kind) {
    case "deal_changed":
      return `deal:${e.fourdegreesId ?? "-"}:${e.highlevelId ?? "-"}:${e.changeId}`;
    case "sync_failure":
      return `failure:${e.failureId}`;
    case "needs_reconnect":
      return `reconnect:${e.locationId}:${e.since}`;
    case "quota_low":
      return `quota:${e.locationId}:${e.day}`;
    case "unusual_activity":
      return `activity:${e.metric}:${e.locationId ?? "-"}:${e.episode}`;
    case "deletes_held":
      return `held:${e.since}`;
  }
}
