/**
 * `/_sandbox/highlevel/*`: the control API (documented with curl examples in docs/sandbox.md).
 * Reset and seed, change records as a user in the HighLevel UI would (which emits webhooks; control-records.ts),
 * subscribers and delivery, faults, rate limits, OAuth settings, PITs, connections, counters.
 * Bad input answers 400 `{error, issues?}`; an unknown record answers 404 — never a crash.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import type { SandboxClock } from "../core/clock.ts";
import { ControlError, controlBody as body } from "../core/control.ts";
import { FaultSettingsSchema, ScriptedFaultSchema } from "../core/faults.ts";
import { registerAppShell } from "./app-shell.ts";
import { registerRecordControls } from "./control-records.ts";
import { GhlError } from "./errors.ts";
import type { HighLevelSandbox } from "./index.ts";

/** Creates the control app for a HighLevel sandbox handle (read lazily: the handle is built around it). */
export function createControlApi(get: () => HighLevelSandbox, clock: SandboxClock): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof ControlError)
      return c.json({ error: err.message, ...(err.issues ? { issues: err.issues } : {}) }, err.status);
    if (err instanceof GhlError) {
      const status = /not found/i.test(err.message) ? 404 : 400;
      return c.json({ error: err.message, ...(Array.isArray(err.messages) ? { issues: err.messages } : {}) }, status);
    }
    if (err instanceof z.ZodError)
      return c.json(
        { error: "invalid input", issues: err.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`) },
        400,
      );
    if (err instanceof RangeError || err instanceof SyntaxError) return c.json({ error: err.message }, 400);
    console.error("highlevel sandbox control: unexpected error", err);
    return c.json({ error: `sandbox bug: ${err instanceof Error ? err.message : String(err)}` }, 500);
  });

  const demoLocation = (locationId: string | undefined): string => {
    const id = locationId ?? get().demo?.locationId;
    if (!id) throw new ControlError(400, "no locationId given and no demo data seeded");
    if (!get().store.locations.has(id)) throw new ControlError(404, `no location ${id}`);
    return id;
  };

  // ---------- state ----------

  app.get("/", (c) => {
    const sb = get();
    return c.json({
      demo: sb.demo,
      counts: {
        locations: sb.store.locations.size,
        contacts: sb.store.contacts.size,
        opportunities: sb.store.opportunities.size,
        notes: sb.store.notes.size,
        tasks: sb.store.tasks.size,
        medias: sb.store.medias.size,
        pipelines: sb.store.pipelines.size,
      },
      webhooks: {
        mode: sb.webhooks.mode,
        subscribers: [...sb.webhooks.subscribers],
        subscriptions: sb.subscriptions(),
        pending: sb.webhooks.pending().length,
      },
      rateLimit: { ...sb.limiter.settings, retryAfter: sb.retryAfter },
      oauth: {
        clientId: sb.oauth.app.clientId,
        appId: sb.oauth.app.appId,
        settings: sb.oauth.settings,
        counters: sb.oauth.counters,
      },
      faults: { settings: sb.faults.settings, counts: sb.faults.counts },
      now: new Date(clock.now()).toISOString(),
    });
  });

  app.post("/reset", (c) => {
    get().reset();
    return c.json({ ok: true });
  });

  app.post("/seed", async (c) => c.json({ ok: true, demo: await get().seedDemo() }));

  app.post("/time/advance", async (c) => {
    const { ms } = await body(c, z.object({ ms: z.number().finite().nonnegative() }).strict());
    clock.advance(ms);
    return c.json({ now: clock.now(), iso: new Date(clock.now()).toISOString() });
  });

  // ---------- locations ----------

  app.get("/locations", (c) =>
    c.json({
      locations: [...get().store.locations.values()].map((l) => ({
        ...l,
        installed: get().oauth.installations.has(l.id),
        settings: get().service.settingsOf(l.id),
      })),
    }),
  );

  app.post("/locations/:id/deactivate", (c) => {
    get().setLocationActive(demoLocation(c.req.param("id")), false);
    return c.json({ ok: true, active: false });
  });

  app.post("/locations/:id/activate", (c) => {
    get().setLocationActive(demoLocation(c.req.param("id")), true);
    return c.json({ ok: true, active: true });
  });

  app.post("/locations/:id/uninstall", (c) => {
    const installation = get().uninstall(demoLocation(c.req.param("id")));
    if (!installation) throw new ControlError(400, "the app is not installed on this location");
    return c.json({ ok: true, uninstalled: installation });
  });

  app.put("/locations/:id/settings", async (c) => {
    const patch = await body(
      c,
      z
        .object({ allowDuplicateOpportunities: z.boolean().optional(), allowDuplicateContacts: z.boolean().optional() })
        .strict(),
    );
    const settings = get().service.settingsOf(demoLocation(c.req.param("id")));
    Object.assign(settings, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
    return c.json({ settings });
  });

  // ---------- media library ----------

  app.get("/medias", (c) => {
    const sb = get();
    const locationId = c.req.query("locationId");
    const list = [...sb.store.medias.values()].filter((m) => !locationId || m.locationId === locationId);
    return c.json({ settings: sb.service.medias.settings, files: list.map(({ bytes: _b, ...m }) => m) });
  });

  app.put("/medias/settings", async (c) => {
    const patch = await body(
      c,
      z
        .object({
          maxBytes: z.number().int().min(1).optional(),
          videoMaxBytes: z.number().int().min(1).optional(),
          customFieldMaxBytes: z.number().int().min(1).optional(),
          urlLifetimeSec: z.number().int().min(1).optional(),
        })
        .strict(),
    );
    const settings = get().service.medias.settings;
    Object.assign(settings, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
    return c.json({ settings });
  });

  // ---------- records, as a UI user ----------

  registerRecordControls(app, get, demoLocation);
  registerAppShell(app, get);

  // ---------- webhooks ----------

  const url = z.url({ protocol: /^https?$/ });
  const UrlBody = z.object({ url }).strict();
  /** A subscriber, optionally scoped to a location, an agency, and/or the app's installed locations. */
  const SubscriberBody = z
    .object({
      url,
      locationId: z.string().min(1).optional(),
      companyId: z.string().min(1).optional(),
      installed: z.boolean().optional(),
    })
    .strict();

  const subscribersAnswer = () => ({
    subscribers: [...get().webhooks.subscribers],
    subscriptions: get().subscriptions(),
  });

  app.get("/webhooks", (c) => {
    const sb = get();
    return c.json({ mode: sb.webhooks.mode, ...subscribersAnswer(), pending: sb.webhooks.pending().length });
  });

  app.post("/webhooks/subscribers", async (c) => {
    const { url: target, ...scope } = await body(c, SubscriberBody);
    const sb = get();
    if (scope.locationId !== undefined && !sb.store.locations.has(scope.locationId))
      throw new ControlError(404, `no location ${scope.locationId}`);
    if (scope.companyId !== undefined && !sb.store.companies.has(scope.companyId))
      throw new ControlError(404, `no agency (company) ${scope.companyId}`);
    sb.subscribe(target, scope);
    return c.json(subscribersAnswer(), 201);
  });

  app.delete("/webhooks/subscribers", async (c) => {
    const target = c.req.query("url") ?? (await body(c, UrlBody)).url;
    get().unsubscribe(target);
    return c.json(subscribersAnswer());
  });

  app.put("/webhooks/mode", async (c) => {
    const { mode } = await body(c, z.object({ mode: z.enum(["auto", "manual"]) }).strict());
    get().webhooks.mode = mode;
    return c.json({ mode });
  });

  app.post("/webhooks/flush", async (c) => {
    const sb = get();
    const attempted = await sb.flush();
    await sb.webhooks.idle();
    return c.json({ attempted, pending: sb.webhooks.pending().length });
  });

  app.get("/webhooks/deliveries", (c) => {
    const q = c.req.query();
    const limit = q.limit === undefined ? 200 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new ControlError(400, "limit must be a positive integer");
    const list = get()
      .deliveries(q.type)
      .filter((d) => !q.state || d.state === q.state)
      .slice(-limit)
      .map(({ body: _raw, ...d }) => d);
    return c.json({ deliveries: list });
  });

  // ---------- faults ----------

  app.get("/faults", (c) => c.json({ settings: get().faults.settings, counts: get().faults.counts }));

  app.put("/faults", async (c) => {
    const patch = await body(c, FaultSettingsSchema.partial());
    return c.json({ settings: get().faults.configure(patch) });
  });

  app.post("/faults/script", async (c) => {
    const rule = await body(c, ScriptedFaultSchema);
    get().faults.script(rule);
    return c.json({ ok: true, rule }, 201);
  });

  app.delete("/faults", (c) => {
    const sb = get();
    const seed = sb.faults.settings.seed;
    sb.faults.reset();
    sb.faults.configure({ seed });
    return c.json({ settings: sb.faults.settings });
  });

  // ---------- rate limits ----------

  app.get("/ratelimit", (c) => c.json({ ...get().limiter.settings, retryAfter: get().retryAfter }));

  app.put("/ratelimit", async (c) => {
    const input = await body(
      c,
      z
        .object({
          max: z.number().int().min(1).optional(),
          intervalMs: z.number().int().min(1).optional(),
          daily: z.number().int().min(1).nullable().optional(),
          retryAfter: z.boolean().optional(),
        })
        .strict(),
    );
    const sb = get();
    const { retryAfter, ...limits } = input;
    if (retryAfter !== undefined) sb.retryAfter = retryAfter;
    const settings = sb.setRateLimit(Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)));
    return c.json({ ...settings, retryAfter: sb.retryAfter });
  });

  app.post("/ratelimit/reset", (c) => {
    get().limiter.reset();
    return c.json({ ok: true });
  });

  // ---------- OAuth, tokens, PITs ----------

  app.get("/oauth", (c) => {
    const sb = get();
    return c.json({
      app: { clientId: sb.oauth.app.clientId, appId: sb.oauth.app.appId, redirectUris: sb.oauth.app.redirectUris },
      settings: sb.oauth.settings,
      counters: sb.oauth.counters,
      installations: [...sb.oauth.installations.values()],
    });
  });

  app.put("/oauth/settings", async (c) => {
    const input = await body(
      c,
      z
        .object({
          accessTokenLifetimeSec: z.number().int().min(1).optional(),
          refreshTokenLifetimeSec: z.number().int().min(1).optional(),
          codeLifetimeSec: z.number().int().min(1).optional(),
          errorStyle: z.enum(["nest", "oauth2"]).optional(),
          redirectUris: z.array(z.url()).nullable().optional(),
        })
        .strict(),
    );
    const sb = get();
    const { redirectUris, ...rest } = input;
    Object.assign(sb.oauth.settings, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)));
    if (redirectUris !== undefined) sb.oauth.app.redirectUris = redirectUris;
    return c.json({ settings: sb.oauth.settings, redirectUris: sb.oauth.app.redirectUris });
  });

  app.get("/oauth/counters", (c) => c.json(get().tokenCalls()));

  app.post("/oauth/counters/reset", (c) => {
    get().oauth.resetCounters();
    return c.json(get().tokenCalls());
  });

  app.post("/oauth/authorize", async (c) => {
    const input = await body(
      c,
      z
        .object({
          locationId: z.string().optional(),
          companyId: z.string().optional(),
          scope: z.string().optional(),
          redirectUri: z.url().optional(),
          state: z.string().optional(),
        })
        .strict(),
    );
    const sb = get();
    const location =
      input.companyId && !input.locationId ? undefined : sb.store.locations.get(demoLocation(input.locationId));
    const companyId = location?.companyId ?? input.companyId;
    if (!companyId) throw new ControlError(400, "give locationId or companyId");
    if (input.redirectUri && !sb.oauth.redirectAllowed(input.redirectUri))
      throw new ControlError(400, "redirectUri is not a registered redirect URI");
    const scopes = input.scope ? input.scope.split(/\s+/).filter(Boolean) : undefined;
    const code = sb.oauth.authorize({
      companyId,
      locationId: location?.id ?? null,
      scopes: scopes ?? [
        "opportunities.readonly",
        "opportunities.write",
        "contacts.readonly",
        "contacts.write",
        "users.readonly",
        "locations.readonly",
        "locations/customFields.readonly",
      ],
      redirectUri: input.redirectUri ?? null,
    });
    let redirect: string | undefined;
    if (input.redirectUri) {
      const u = new URL(input.redirectUri);
      u.searchParams.set("code", code);
      if (input.state !== undefined) u.searchParams.set("state", input.state);
      redirect = u.toString();
    }
    return c.json({ code, ...(redirect ? { redirect } : {}) });
  });

  app.post("/oauth/connect", async (c) => {
    const input = await body(
      c,
      z
        .object({
          locationId: z.string().optional(),
          companyId: z.string().optional(),
          userType: z.enum(["Location", "Company"]).optional(),
          scope: z.string().optional(),
        })
        .strict(),
    );
    const { scope, ...rest } = input;
    return c.json(get().connect({ ...rest, ...(scope ? { scopes: scope.split(/\s+/).filter(Boolean) } : {}) }));
  });

  app.post("/oauth/expire", async (c) => {
    const { locationId } = await body(c, z.object({ locationId: z.string().optional() }).strict());
    return c.json({ expired: get().oauth.expireAccessTokens(locationId) });
  });

  app.post("/oauth/revoke", async (c) => {
    const { token } = await body(c, z.object({ token: z.string().min(1) }).strict());
    if (!get().oauth.revoke(token)) throw new ControlError(404, "no such token");
    return c.json({ ok: true });
  });

  app.post("/pit", async (c) => {
    const input = await body(
      c,
      z
        .object({
          locationId: z.string().optional(),
          scopes: z.array(z.string().min(1)).optional(),
          name: z.string().optional(),
        })
        .strict(),
    );
    const locationId = demoLocation(input.locationId);
    const pit = get().oauth.createPit({
      locationId,
      ...(input.scopes ? { scopes: input.scopes } : {}),
      ...(input.name ? { name: input.name } : {}),
    });
    return c.json({ token: pit.token, locationId, scopes: pit.scopes }, 201);
  });

  app.notFound((c) => c.json({ error: `no control endpoint ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  return app;
}
