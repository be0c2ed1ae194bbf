/**
 * The 4Degrees sandbox's control API, mounted at `/_sandbox/4degrees` (docs/sandbox.md): reset,
 * demo data, changes made "as a user in the 4Degrees UI" (they emit webhooks whose actor is that
 * user, or an automation), webhook subscribers/mode/flush/delivery log, seeded and scripted faults,
 * rate-limit settings, API keys, secret rotation and request counters. No auth: local use only.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { FaultSettingsSchema, ScriptedFaultSchema } from "../core/faults.ts";
import { FourDegreesError, errorBody } from "./errors.ts";
import { ContactCreateSchema, DealCreateSchema, DealPatchSchema, EVENT_TYPES, NoteCreateSchema, NotePatchSchema, type Actor } from "./model.ts";
import { secretKeyBytes } from "./signing.ts";
import type { FourDegreesSandbox } from "./sandbox.ts";

const UrlBody = z.object({ url: z.url({ protocol: /^https?$/ }) }).strict();

const WebhookSettings = z
  .object({
    mode: z.enum(["auto", "manual"]).optional(),
    /** Delay before each retry (sandbox ms); `[]` = never retry. */
    retry_schedule_ms: z.array(z.number().int().min(0).max(7 * 86_400_000)).max(20).optional(),
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
    scopes: z.array(z.enum(["read", "write"])).min(1).optional(),
  })
  .strict();

const UserBody = z.object({ name: z.string().trim().min(1).max(200), email: z.email(), role: z.enum(["admin", "member"]).optional() }).strict();

const PipelineBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    stages: z.array(z.object({ name: z.string().trim().min(1).max(200), kind: z.enum(["open", "won", "lost"]) }).strict()).min(1).max(50),
  })
  .strict();

const FieldBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    type: z.enum(["text", "number", "currency", "percentage", "date", "single_select", "multi_select", "contact", "formula", "linked_deals"]),
    required: z.boolean().optional(),
    options: z.array(z.string().min(1).max(200)).max(200).optional(),
  })
  .strict();

const DeliveryQuery = z.object({
  state: z.enum(["pending", "delivered", "retrying", "failed", "dropped"]).optional(),
  type: z.enum(EVENT_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(20_000).default(200),
});

/** Builds the control app over one 4Degrees sandbox. */
export function createControl(sb: FourDegreesSandbox): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof FourDegreesError) return respondError(c, err.status, err.type, err.code, err.message);
    console.error("4degrees sandbox control: unexpected error", err);
    return respondError(c, 500, "api_error", "internal_error", "The sandbox hit an unexpected error (a sandbox bug)");
  });

  app.get("/", (c) =>
    c.json({
      name: sb.name,
      api_base: "/4degrees/v1",
      workspace: sb.store.workspace,
      counts: { users: sb.store.users.size, pipelines: sb.store.pipelines.size, deals: sb.store.deals.size, notes: sb.store.notes.size, contacts: sb.store.contacts.size },
      api_keys: [...sb.apiKeys.values()],
      webhooks: { mode: sb.webhooks.mode, subscribers: [...sb.webhooks.subscribers], pending: sb.webhooks.pending().length },
      rate_limit: sb.limiter.settings,
    }),
  );
  app.post("/reset", (c) => {
    sb.reset();
    return c.json({ ok: true });
  });
  app.post("/seed", async (c) => c.json(await sb.seedDemo()));
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
    }),
  );

  // ── Reference data ─────────────────────────────────────────────────────────────────────────────
  app.post("/users", async (c) => c.json(sb.store.addUser(await body(c, UserBody)), 201));
  app.post("/pipelines", async (c) => c.json(sb.store.addPipeline(await body(c, PipelineBody)), 201));
  app.post("/pipelines/:id/fields", async (c) => {
    const input = await body(c, FieldBody);
    return c.json(sb.store.addField({ pipelineId: c.req.param("id"), name: input.name, type: input.type, ...(input.required !== undefined ? { required: input.required } : {}), ...(input.options ? { options: input.options } : {}) }), 201);
  });
  app.post("/contacts", async (c) => c.json(sb.store.addContact(await body(c, ContactCreateSchema)), 201));

  // ── Records "as a user in the 4Degrees UI" (?as=usr_… | automation[:id]) ───────────────────────
  app.get("/deals", (c) => c.json({ data: sb.deals() }));
  app.get("/deals/:id", (c) => c.json(sb.deal(c.req.param("id"))));
  app.post("/deals", async (c) => c.json(sb.store.createDeal(await body(c, DealCreateSchema), actorOf(sb, c), { allowUiOnlyFields: true }), 201));
  app.patch("/deals/:id", async (c) => c.json(sb.store.updateDeal(c.req.param("id"), await body(c, DealPatchSchema), actorOf(sb, c), { allowUiOnlyFields: true })));
  app.delete("/deals/:id", (c) => c.json(sb.store.archiveDeal(c.req.param("id"), actorOf(sb, c))));
  app.get("/deals/:id/notes", (c) => c.json({ data: sb.notes(c.req.param("id")) }));
  app.post("/deals/:id/notes", async (c) => c.json(sb.store.createNote(c.req.param("id"), await body(c, NoteCreateSchema), actorOf(sb, c)), 201));
  app.patch("/notes/:id", async (c) => c.json(sb.store.updateNote(c.req.param("id"), await body(c, NotePatchSchema), actorOf(sb, c))));
  app.delete("/notes/:id", (c) => c.json(sb.store.deleteNote(c.req.param("id"), actorOf(sb, c))));

  // ── Webhooks ───────────────────────────────────────────────────────────────────────────────────
  app.get("/subscribers", (c) => c.json({ subscribers: [...sb.webhooks.subscribers] }));
  app.post("/subscribers", async (c) => {
    const { url } = await body(c, UrlBody);
    sb.subscribe(url);
    return c.json({ subscribers: [...sb.webhooks.subscribers] }, 201);
  });
  app.delete("/subscribers", async (c) => {
    const raw = c.req.query("url") ?? (await body(c, UrlBody)).url;
    const url = UrlBody.shape.url.safeParse(raw);
    if (!url.success) throw new FourDegreesError(400, "invalid_request", "url must be an http(s) URL");
    sb.webhooks.subscribers.delete(new URL(url.data).toString());
    return c.json({ subscribers: [...sb.webhooks.subscribers] });
  });
  app.get("/webhooks", (c) => c.json(webhookSettings(sb)));
  app.put("/webhooks", async (c) => {
    const input = await body(c, WebhookSettings);
    if (input.mode) sb.webhooks.mode = input.mode;
    if (input.retry_schedule_ms) sb.retrySchedule = input.retry_schedule_ms;
    if (input.secrets) sb.webhookSecrets = input.secrets;
    return c.json(webhookSettings(sb));
  });
  app.post("/webhooks/flush", async (c) => c.json({ attempted: await sb.flush(), pending: sb.webhooks.pending().length }));
  app.get("/webhooks/deliveries", (c) => {
    const q = query(c, DeliveryQuery);
    const log = sb.deliveries().filter((d) => (!q.state || d.state === q.state) && (!q.type || d.eventType === q.type));
    return c.json({ data: log.slice(-q.limit), total: log.length });
  });
  app.get("/events", (c) => {
    const q = query(c, DeliveryQuery);
    const events = sb.events.filter((e) => !q.type || e.type === q.type);
    return c.json({ data: events.slice(-q.limit), total: events.length });
  });

  // ── Faults, rate limits, keys, counters ────────────────────────────────────────────────────────
  app.get("/faults", (c) => c.json({ settings: sb.faults.settings, counts: sb.faults.counts }));
  app.put("/faults", async (c) => {
    const input = await body(c, FaultSettingsSchema.partial());
    return c.json({ settings: sb.faults.configure(input), counts: sb.faults.counts });
  });
  app.post("/faults/script", async (c) => {
    const rule = await body(c, ScriptedFaultSchema);
    if (rule.path !== undefined) {
      try {
        new RegExp(rule.path);
      } catch {
        throw new FourDegreesError(400, "invalid_request", "path must be a regular expression");
      }
    }
    sb.faults.script(rule);
    return c.json({ ok: true }, 201);
  });
  app.delete("/faults", (c) => {
    sb.faults.reset();
    return c.json({ settings: sb.faults.settings, counts: sb.faults.counts });
  });
  app.get("/rate-limit", (c) => c.json(sb.limiter.settings));
  app.put("/rate-limit", async (c) => {
    const input = await body(c, RateLimitBody);
    sb.limiter.settings = { ...sb.limiter.settings, ...input };
    sb.limiter.reset();
    return c.json(sb.limiter.settings);
  });
  app.get("/api-keys", (c) => c.json({ data: [...sb.apiKeys.values()] }));
  app.post("/api-keys", async (c) => {
    const input = await body(c, ApiKeyBody);
    return c.json(sb.addApiKey(input.key, { ...(input.name ? { name: input.name } : {}), ...(input.scopes ? { scopes: input.scopes } : {}) }), 201);
  });
  app.get("/requests", (c) => {
    const limit = query(c, z.object({ limit: z.coerce.number().int().min(1).max(1_000).default(100) })).limit;
    return c.json({ total: sb.requests.total, by_route: sb.requests.byRoute, by_status: sb.requests.byStatus, log: sb.requests.log.slice(-limit) });
  });
  app.delete("/requests", (c) => {
    sb.resetRequests();
    return c.json({ ok: true });
  });

  app.all("*", (c) => respondError(c, 404, "not_found_error", "route_not_found", `No control route ${c.req.method} ${new URL(c.req.url).pathname} (docs/sandbox.md)`));

  return app;
}

function webhookSettings(sb: FourDegreesSandbox) {
  return {
    mode: sb.webhooks.mode,
    subscribers: [...sb.webhooks.subscribers],
    pending: sb.webhooks.pending().length,
    retry_schedule_ms: sb.retrySchedule,
    secrets: sb.webhookSecrets.length,
  };
}

function respondError(c: Context, status: number, type: string, code: string, message: string): Response {
  return new Response(JSON.stringify(errorBody({ type, code, message }, "ctl")), { status, headers: { "content-type": "application/json" } });
}

/** `?as=usr_…` (a user; default the first), `?as=automation` or `?as=automation:<id>`. */
function actorOf(sb: FourDegreesSandbox, c: Context): Actor {
  const as = c.req.query("as");
  if (as !== undefined && as.startsWith("automation")) return { type: "automation", id: as.slice("automation:".length) || "automation_sandbox" };
  try {
    return sb.userActor(as);
  } catch (err) {
    throw new FourDegreesError(422, "unknown_user", err instanceof Error ? err.message : String(err));
  }
}

async function body<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  let json: unknown;
  try {
    json = JSON.parse(await c.req.text());
  } catch {
    throw new FourDegreesError(400, "invalid_json", "The body is not valid JSON");
  }
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new FourDegreesError(422, "validation_failed", `${issue.path.map(String).join(".") || "body"}: ${issue.message}`);
}

function query<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  const result = schema.safeParse(c.req.query());
  if (result.success) return result.data;
  throw new FourDegreesError(400, "invalid_parameter", result.error.issues[0]!.message);
}
