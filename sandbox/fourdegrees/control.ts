/**
 * The 4Degrees sandbox's control API, mounted at `/_sandbox/4degrees` (docs/sandbox.md), shaped
 * like the HighLevel sandbox's: reset, demo data, time, changes made "as a user in the 4Degrees UI"
 * (they emit webhooks whose actor is that user, or an automation), webhook subscribers/mode/flush/
 * delivery log, seeded and scripted faults, rate limits, API keys, secret rotation and request
 * counters; attachments, pass reasons and every reminder (what automations made). Bad input answers 400 `{error, issues?}` (or `{error, code}` with the 4Degrees code), an
 * unknown record 404, a change refused by state 409 (`deal_archived`) — never a crash. No auth:
 * local use only.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { ControlError, controlBody as body, controlQuery as query } from "../core/control.ts";
import { FaultSettingsSchema, ScriptedFaultSchema } from "../core/faults.ts";
import { readUpload, signedDownloadUrl, withDownloadUrl } from "./attachments.ts";
import { FourDegreesError } from "./errors.ts";
import {
  ContactCreateSchema,
  DealCreateSchema,
  DealPatchSchema,
  EVENT_TYPES,
  NoteCreateSchema,
  NotePatchSchema,
  ReminderCreateSchema,
  type Actor,
} from "./model.ts";
import { secretKeyBytes } from "./signing.ts";
import type { FourDegreesSandbox } from "./sandbox.ts";

const UrlBody = z.object({ url: z.url({ protocol: /^https?$/ }) }).strict();

const WebhookSettings = z
  .object({
    mode: z.enum(["auto", "manual"]).optional(),
    /** Delay before each retry (sandbox ms); `[]` = never retry. */
    retrySchedule: z
      .array(
        z
          .number()
          .int()
          .min(0)
          .max(7 * 86_400_000),
      )
      .max(20)
      .optional(),
    /** Signing secrets (`whsec_…`); more than one = rotation, every delivery carries one signature per secret. */
    secrets: z
      .array(
        z.string().refine((s) => {
          try {
            secretKeyBytes(s);
            return s.startsWith("whsec_");
          } catch {
            return false;
          }
        }, "must be whsec_ followed by base64"),
      )
      .min(1)
      .max(5)
      .optional(),
  })
  .strict();

const RateLimitBody = z
  .object({
    max: z.number().int().min(1).max(1_000_000).optional(),
    intervalMs: z.number().int().min(1).max(86_400_000).optional(),
    daily: z.number().int().min(1).nullable().optional(),
  })
  .strict();

const ApiKeyBody = z
  .object({
    key: z.string().min(8).max(200),
    name: z.string().min(1).max(100).optional(),
    scopes: z
      .array(z.enum(["read", "write", "import"]))
      .min(1)
      .optional(),
  })
  .strict();

const UserBody = z
  .object({ name: z.string().trim().min(1).max(200), email: z.email(), role: z.enum(["admin", "member"]).optional() })
  .strict();

const PipelineBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    stages: z
      .array(z.object({ name: z.string().trim().min(1).max(200), kind: z.enum(["open", "won", "lost"]) }).strict())
      .min(1)
      .max(50),
  })
  .strict();

const FieldBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    type: z.enum([
      "text",
      "number",
      "currency",
      "percentage",
      "date",
      "single_select",
      "multi_select",
      "contact",
      "formula",
      "linked_deals",
    ]),
    required: z.boolean().optional(),
    options: z.array(z.string().min(1).max(200)).max(200).optional(),
  })
  .strict();

const AttachmentSettingsBody = z
  .object({
    maxBytes: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024 * 1024)
      .optional(),
    downloadUrlTtlSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 86_400)
      .optional(),
  })
  .strict();

const ReminderQuery = z.object({ deal_id: z.string().min(1).optional(), assignee_id: z.string().min(1).optional() });

const DeliveryQuery = z.object({
  state: z.enum(["pending", "delivered", "retrying", "failed", "dropped"]).optional(),
  type: z.enum(EVENT_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(20_000).default(200),
});

/** Builds the control app over one 4Degrees sandbox. */
export function createControl(sb: FourDegreesSandbox): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof ControlError)
      return respond({ error: err.message, ...(err.issues ? { issues: err.issues } : {}) }, err.status);
    // Bad input is 400 here (the common control-API convention), with the 4Degrees `code` kept.
    if (err instanceof FourDegreesError)
      return respond({ error: err.message, code: err.code }, err.status === 422 ? 400 : err.status);
    console.error("4degrees sandbox control: unexpected error", err);
    return respond({ error: "The sandbox hit an unexpected error (a sandbox bug)" }, 500);
  });

  // ---------- state ----------

  app.get("/", (c) =>
    c.json({
      demo: sb.demo,
      workspace: sb.store.workspace,
      counts: {
        users: sb.store.users.size,
        pipelines: sb.store.pipelines.size,
        deals: sb.store.deals.size,
        notes: sb.store.notes.size,
        contacts: sb.store.contacts.size,
        attachments: sb.store.attachments.size,
        passReasons: sb.store.passReasons.size,
        reminders: sb.store.reminders.size,
      },
      attachments: sb.attachmentSettings,
      apiKeys: [...sb.apiKeys.values()],
      webhooks: webhookSettings(sb),
      rateLimit: sb.limiter.settings,
      faults: { settings: sb.faults.settings, counts: sb.faults.counts },
      now: new Date(sb.clock.now()).toISOString(),
    }),
  );
  app.post("/reset", (c) => {
    sb.reset();
    return c.json({ ok: true });
  });
  app.post("/seed", async (c) => c.json({ ok: true, demo: await sb.seedDemo() }));
  app.post("/time/advance", async (c) => {
    const { ms } = await body(c, z.object({ ms: z.number().finite().nonnegative() }).strict());
    sb.clock.advance(ms);
    return c.json({ now: sb.clock.now(), iso: new Date(sb.clock.now()).toISOString() });
  });
  app.get("/state", (c) =>
    c.json({
      workspace: sb.store.workspace,
      users: [...sb.store.users.values()],
      pipelines: [...sb.store.pipelines.values()],
      fields: [...sb.store.fields.values()],
      companies: [...sb.store.companies.values()],
      contacts: [...sb.store.contacts.values()],
      deals: sb.deals(),
      notes: [...sb.store.notes.values()],
      passReasons: [...sb.store.passReasons.values()],
      attachments: [...sb.store.attachments.values()].map((a) => a.record),
      reminders: sb.reminders(),
    }),
  );

  // ---------- reference data ----------

  app.post("/users", async (c) => c.json(sb.store.addUser(await body(c, UserBody)), 201));
  app.post("/pipelines", async (c) => c.json(sb.store.addPipeline(await body(c, PipelineBody)), 201));
  app.post("/pipelines/:id/fields", async (c) => {
    const input = await body(c, FieldBody);
    return c.json(
      sb.store.addField({
        pipelineId: c.req.param("id"),
        name: input.name,
        type: input.type,
        ...(input.required !== undefined ? { required: input.required } : {}),
        ...(input.options ? { options: input.options } : {}),
      }),
      201,
    );
  });
  app.get("/contacts", (c) => c.json({ contacts: [...sb.store.contacts.values()] }));
  app.post("/contacts", async (c) => c.json(sb.store.addContact(await body(c, ContactCreateSchema)), 201));
  app.get("/pass-reasons", (c) => c.json({ passReasons: [...sb.store.passReasons.values()] }));
  app.post("/pass-reasons", async (c) =>
    c.json(sb.store.addPassReason(await body(c, z.object({ name: z.string().trim().min(1).max(200) }).strict())), 201),
  );

  // ---------- records, "as a user in the 4Degrees UI" (?as=usr_… | automation[:id]) ----------

  app.get("/deals", (c) => c.json({ deals: sb.deals() }));
  app.get("/deals/:id", (c) => c.json(sb.deal(c.req.param("id"))));
  app.post("/deals", async (c) =>
    c.json(sb.store.createDeal(await body(c, DealCreateSchema), actorOf(sb, c), { allowUiOnlyFields: true }), 201),
  );
  app.patch("/deals/:id", async (c) =>
    c.json(
      sb.store.updateDeal(c.req.param("id"), await body(c, DealPatchSchema), actorOf(sb, c), {
        allowUiOnlyFields: true,
      }),
    ),
  );
  app.delete("/deals/:id", (c) => c.json(sb.store.archiveDeal(c.req.param("id"), actorOf(sb, c))));
  app.get("/deals/:id/notes", (c) => c.json({ notes: sb.notes(c.req.param("id")) }));
  app.post("/deals/:id/notes", async (c) =>
    c.json(sb.store.createNote(c.req.param("id"), await body(c, NoteCreateSchema), actorOf(sb, c)), 201),
  );
  app.patch("/notes/:id", async (c) =>
    c.json(sb.store.updateNote(c.req.param("id"), await body(c, NotePatchSchema), actorOf(sb, c))),
  );
  app.delete("/notes/:id", (c) => c.json(sb.store.deleteNote(c.req.param("id"), actorOf(sb, c))));
  app.get("/deals/:id/attachments", async (c) => {
    const page = sb.store.listAttachments(c.req.param("id"), undefined, Number.MAX_SAFE_INTEGER);
    const origin = new URL(c.req.url).origin;
    return c.json({ attachments: await Promise.all(page.data.map((a) => withDownloadUrl(sb, origin, a))) });
  });
  app.post("/deals/:id/attachments", async (c) => {
    const dealId = c.req.param("id");
    sb.store.getDeal(dealId);
    const actor = actorOf(sb, c);
    const { input } = await readUpload(c, sb.attachmentSettings.maxBytes);
    const id = sb.store.newId("att");
    return c.json(
      sb.store.createAttachment(dealId, id, input, actor, await signedDownloadUrl(sb, new URL(c.req.url).origin, id)),
      201,
    );
  });
  app.delete("/attachments/:id", (c) => c.json(sb.store.deleteAttachment(c.req.param("id"), actorOf(sb, c))));
  app.get("/attachments/settings", (c) => c.json(sb.attachmentSettings));
  app.put("/attachments/settings", async (c) => {
    const input = await body(c, AttachmentSettingsBody);
    sb.attachmentSettings = {
      ...sb.attachmentSettings,
      ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
    };
    return c.json(sb.attachmentSettings);
  });
  app.post("/deals/:id/reminders", async (c) =>
    c.json(sb.store.createReminder(c.req.param("id"), await body(c, ReminderCreateSchema), actorOf(sb, c)), 201),
  );
  app.get("/reminders", (c) => {
    const q = query(c, ReminderQuery);
    return c.json({
      reminders: sb
        .reminders()
        .filter((r) => (!q.deal_id || r.deal_id === q.deal_id) && (!q.assignee_id || r.assignee_id === q.assignee_id)),
    });
  });
  app.post("/reminders/:id/complete", (c) => c.json(sb.store.completeReminder(c.req.param("id"))));

  // ---------- webhooks ----------

  const subscribe = async (c: Context) => {
    const { url } = await body(c, UrlBody);
    sb.subscribe(url);
    return c.json({ subscribers: [...sb.webhooks.subscribers] }, 201);
  };
  const unsubscribe = async (c: Context) => {
    const url = c.req.query("url") ?? (await body(c, UrlBody)).url;
    sb.unsubscribe(url);
    return c.json({ subscribers: [...sb.webhooks.subscribers] });
  };
  app.get("/webhooks", (c) => c.json(webhookSettings(sb)));
  app.put("/webhooks", async (c) => {
    const input = await body(c, WebhookSettings);
    if (input.mode) sb.webhooks.mode = input.mode;
    if (input.retrySchedule) sb.retrySchedule = input.retrySchedule;
    if (input.secrets) sb.webhookSecrets = input.secrets;
    return c.json(webhookSettings(sb));
  });
  app.post("/webhooks/subscribers", subscribe);
  app.delete("/webhooks/subscribers", unsubscribe);
  // Short aliases (scripts/lib/demo.ts subscribes the Worker through these).
  app.get("/subscribers", (c) => c.json({ subscribers: [...sb.webhooks.subscribers] }));
  app.post("/subscribers", subscribe);
  app.delete("/subscribers", unsubscribe);
  app.put("/webhooks/mode", async (c) => {
    const { mode } = await body(c, z.object({ mode: z.enum(["auto", "manual"]) }).strict());
    sb.webhooks.mode = mode;
    return c.json({ mode });
  });
  app.post("/webhooks/flush", async (c) => {
    const attempted = await sb.flush();
    await sb.webhooks.idle();
    return c.json({ attempted, pending: sb.webhooks.pending().length });
  });
  app.get("/webhooks/deliveries", (c) => {
    const q = query(c, DeliveryQuery);
    const list = sb
      .deliveries(q.type)
      .filter((d) => !q.state || d.state === q.state)
      .slice(-q.limit)
      .map(({ body: _raw, ...d }) => d);
    return c.json({ deliveries: list });
  });
  app.get("/events", (c) => {
    const q = query(c, DeliveryQuery);
    return c.json({ events: sb.events.filter((e) => !q.type || e.type === q.type).slice(-q.limit) });
  });

  // ---------- faults ----------

  app.get("/faults", (c) => c.json({ settings: sb.faults.settings, counts: sb.faults.counts }));
  app.put("/faults", async (c) =>
    c.json({ settings: sb.faults.configure(await body(c, FaultSettingsSchema.partial())) }),
  );
  app.post("/faults/script", async (c) => {
    const rule = await body(c, ScriptedFaultSchema);
    sb.faults.script(rule);
    return c.json({ ok: true, rule }, 201);
  });
  app.delete("/faults", (c) => {
    const seed = sb.faults.settings.seed;
    sb.faults.reset();
    sb.faults.configure({ seed });
    return c.json({ settings: sb.faults.settings });
  });

  // ---------- rate limits, API keys, counters ----------

  app.get("/ratelimit", (c) => c.json(sb.limiter.settings));
  app.put("/ratelimit", async (c) => {
    const input = await body(c, RateLimitBody);
    sb.limiter.settings = {
      ...sb.limiter.settings,
      ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
    };
    sb.limiter.reset();
    return c.json(sb.limiter.settings);
  });
  app.post("/ratelimit/reset", (c) => {
    sb.limiter.reset();
    return c.json({ ok: true });
  });
  app.get("/api-keys", (c) => c.json({ apiKeys: [...sb.apiKeys.values()] }));
  app.post("/api-keys", async (c) => {
    const input = await body(c, ApiKeyBody);
    return c.json(
      sb.addApiKey(input.key, {
        ...(input.name ? { name: input.name } : {}),
        ...(input.scopes ? { scopes: input.scopes } : {}),
      }),
      201,
    );
  });
  app.get("/requests", (c) => {
    const { limit } = query(c, z.object({ limit: z.coerce.number().int().min(1).max(1_000).default(100) }));
    return c.json({
      total: sb.requests.total,
      byRoute: sb.requests.byRoute,
      byStatus: sb.requests.byStatus,
      log: sb.requests.log.slice(-limit),
    });
  });
  app.post("/requests/reset", (c) => {
    sb.resetRequests();
    return c.json({ ok: true });
  });

  app.all("*", (c) =>
    respond({ error: `no control route ${c.req.method} ${new URL(c.req.url).pathname} (docs/sandbox.md)` }, 404),
  );

  return app;
}

function webhookSettings(sb: FourDegreesSandbox) {
  return {
    mode: sb.webhooks.mode,
    subscribers: [...sb.webhooks.subscribers],
    pending: sb.webhooks.pending().length,
    retrySchedule: sb.retrySchedule,
    secrets: sb.webhookSecrets.length,
  };
}

function respond(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** `?as=usr_…` (a user; default the first), `?as=automation` or `?as=automation:<id>`. */
function actorOf(sb: FourDegreesSandbox, c: Context): Actor {
  const as = c.req.query("as");
  if (as !== undefined && as.startsWith("automation"))
    return { type: "automation", id: as.slice("automation:".length) || "automation_sandbox" };
  if (as !== undefined && !sb.store.users.has(as))
    throw new ControlError(400, `?as=${as} is not a user id (or automation[:id])`);
  if (as === undefined && sb.store.users.size === 0)
    throw new ControlError(400, "no users yet: seed the demo (POST /seed) or add one (POST /users)");
  return sb.userActor(as);
}
