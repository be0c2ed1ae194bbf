/** The webhook event bodies the HighLevel sandbox's changes emit (the emitter adds the envelope). */
import type { Note, Opportunity } from "./store.ts";

/** Receives one webhook event (type + flat body without envelope). */
export type EventSink = (type: string, body: Record<string, unknown>) => void;

/** The flat opportunity event body (ghl/webhook-events/Opportunity*.md). */
export function opportunityEventBody(type: string, o: Opportunity): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type,
    locationId: o.locationId,
    id: o.id,
    ...(o.assignedTo ? { assignedTo: o.assignedTo } : {}),
    contactId: o.contactId,
    monetaryValue: o.monetaryValue,
    name: o.name,
    pipelineId: o.pipelineId,
    pipelineStageId: o.pipelineStageId,
    source: o.source,
    status: o.status,
    dateAdded: o.createdAt,
  };
  return body;
}

/** The note event body (ghl/webhook-events/Note*.md). */
export function noteEventBody(type: string, n: Note): Record<string, unknown> {
  return { type, locationId: n.locationId, id: n.id, body: n.body, contactId: n.contactId, dateAdded: n.dateAdded };
}
