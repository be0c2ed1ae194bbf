/**
 * The control API's records (`/_sandbox/highlevel/opportunities|contacts/*`): opportunities,
 * contacts and notes changed as a user in the HighLevel UI would, so each change emits its webhooks.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { ControlError, controlBody as body } from "../core/control.ts";
import type { HighLevelSandbox } from "./index.ts";
import { renderContact, renderNote, renderOpportunity } from "./render.ts";
import { OPPORTUNITY_STATUSES } from "./store.ts";

const customFields = z
  .array(z.object({ id: z.string().optional(), key: z.string().optional(), field_value: z.unknown() }).strict())
  .optional();

const OpportunityCreate = z
  .object({
    locationId: z.string().optional(),
    pipelineId: z.string().optional(),
    pipelineStageId: z.string().optional(),
    name: z.string().min(1),
    status: z.enum(OPPORTUNITY_STATUSES).default("open"),
    contactId: z.string().optional(),
    contact: z
      .object({
        firstName: z.string().optional(),
        lastName: z.string().optional(),
        email: z.email().optional(),
        companyName: z.string().optional(),
        phone: z.string().optional(),
      })
      .strict()
      .optional(),
    monetaryValue: z.number().finite().optional(),
    assignedTo: z.string().optional(),
    source: z.string().optional(),
    customFields,
  })
  .strict();

const OpportunityPatch = z
  .object({
    name: z.string().min(1).optional(),
    pipelineId: z.string().optional(),
    pipelineStageId: z.string().optional(),
    status: z.enum(OPPORTUNITY_STATUSES).optional(),
    lostReasonId: z.string().optional(),
    monetaryValue: z.number().finite().optional(),
    assignedTo: z.string().optional(),
    source: z.string().optional(),
    customFields,
  })
  .strict();

const NoteCreate = z
  .object({ body: z.string().min(1), userId: z.string().optional(), title: z.string().optional() })
  .strict();
const NotePatch = z
  .object({ body: z.string().min(1).optional(), userId: z.string().optional(), title: z.string().optional() })
  .strict();

const ContactCreate = z
  .object({
    locationId: z.string().optional(),
    firstName: z.string().optional(),
    lastName: z.string().optional(),
    email: z.email().optional(),
    phone: z.string().optional(),
    companyName: z.string().optional(),
    tags: z.array(z.string()).optional(),
  })
  .strict();

/**
 * Registers the record routes on the control app. `demoLocation` resolves an optional `locationId`
 * (the demo location when absent; 400 / 404 otherwise).
 */
export function registerRecordControls(
  app: Hono,
  get: () => HighLevelSandbox,
  demoLocation: (locationId: string | undefined) => string,
): void {
  app.get("/opportunities", (c) => {
    const sb = get();
    const locationId = c.req.query("locationId");
    const list = locationId ? sb.store.opportunitiesOf(locationId) : [...sb.store.opportunities.values()];
    return c.json({ opportunities: list.map((o) => renderOpportunity(sb.store, o)) });
  });

  app.get("/opportunities/:id", (c) => {
    const o = get().opportunity(c.req.param("id"));
    if (!o) throw new ControlError(404, `no opportunity ${c.req.param("id")}`);
    return c.json({ opportunity: o });
  });

  app.post("/opportunities", async (c) => {
    const sb = get();
    const input = await body(c, OpportunityCreate);
    const locationId = demoLocation(input.locationId);
    const pipelineId = input.pipelineId ?? sb.store.pipelinesOf(locationId)[0]?.id;
    if (!pipelineId) throw new ControlError(400, "the location has no pipeline");
    let contactId = input.contactId;
    if (!contactId) {
      const existing = input.contact?.email
        ? sb.service.findDuplicateContact(locationId, input.contact.email)?.contact
        : undefined;
      contactId =
        existing?.id ??
        sb.service.createContact({ locationId, ...input.contact, firstName: input.contact?.firstName ?? input.name })
          .id;
    }
    const { contact: _contact, ...rest } = input;
    const o = sb.service.createOpportunity({
      ...rest,
      locationId,
      pipelineId,
      contactId,
      source: input.source ?? "sandbox UI",
    });
    return c.json({ opportunity: renderOpportunity(sb.store, o) }, 201);
  });

  app.patch("/opportunities/:id", async (c) => {
    const sb = get();
    const patch = await body(c, OpportunityPatch);
    return c.json({ opportunity: renderOpportunity(sb.store, sb.service.updateOpportunity(c.req.param("id"), patch)) });
  });

  app.post("/opportunities/:id/stage", async (c) => {
    const sb = get();
    const input = await body(
      c,
      z
        .object({ pipelineStageId: z.string().optional(), stageName: z.string().optional() })
        .strict()
        .refine((v) => v.pipelineStageId || v.stageName, "give pipelineStageId or stageName"),
    );
    const o = sb.service.opportunity(c.req.param("id"));
    const stage =
      input.pipelineStageId ??
      sb.store.pipelines.get(o.pipelineId)?.stages.find((s) => s.name.toLowerCase() === input.stageName!.toLowerCase())
        ?.id;
    if (!stage) throw new ControlError(400, `no stage named ${input.stageName} in the opportunity's pipeline`);
    return c.json({
      opportunity: renderOpportunity(sb.store, sb.service.updateOpportunity(o.id, { pipelineStageId: stage })),
    });
  });

  app.post("/opportunities/:id/status", async (c) => {
    const sb = get();
    const input = await body(
      c,
      z.object({ status: z.enum(OPPORTUNITY_STATUSES), lostReasonId: z.string().optional() }).strict(),
    );
    return c.json({
      opportunity: renderOpportunity(
        sb.store,
        sb.service.setStatus(c.req.param("id"), input.status, input.lostReasonId),
      ),
    });
  });

  app.delete("/opportunities/:id", (c) => {
    get().service.deleteOpportunity(c.req.param("id"));
    return c.json({ ok: true });
  });

  app.get("/contacts", (c) => {
    const sb = get();
    const locationId = c.req.query("locationId");
    const list = locationId ? sb.store.contactsOf(locationId) : [...sb.store.contacts.values()];
    return c.json({ contacts: list.map((x) => renderContact(sb.store, x)) });
  });

  app.post("/contacts", async (c) => {
    const sb = get();
    const input = await body(c, ContactCreate);
    const contact = sb.service.createContact({ ...input, locationId: demoLocation(input.locationId) });
    return c.json({ contact: renderContact(sb.store, contact) }, 201);
  });

  app.get("/contacts/:contactId/notes", (c) => {
    const sb = get();
    sb.service.contact(c.req.param("contactId"));
    return c.json({ notes: sb.store.notesOf(c.req.param("contactId")).map(renderNote) });
  });

  app.post("/contacts/:contactId/notes", async (c) => {
    const input = await body(c, NoteCreate);
    return c.json({ note: renderNote(get().service.createNote(c.req.param("contactId"), input)) }, 201);
  });

  app.patch("/contacts/:contactId/notes/:id", async (c) => {
    const input = await body(c, NotePatch);
    return c.json({ note: renderNote(get().service.updateNote(c.req.param("contactId"), c.req.param("id"), input)) });
  });

  app.delete("/contacts/:contactId/notes/:id", (c) => {
    get().service.deleteNote(c.req.param("contactId"), c.req.param("id"));
    return c.json({ ok: true });
  });
}
