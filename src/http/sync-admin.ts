/**
 * The sync engine's admin JSON API, mounted under `/api` (behind `adminAuth`, see app.ts):
 *
 * | method + path | body | what |
 * |---|---|---|
 * | GET `/accounts` | – | every account with its settings |
 * | GET `/accounts/{id}` | – | one account + link counts, dirty records, backfill progress |
 * | PUT `/accounts/{id}` | `{name?, locations?, conflictPolicy?, deletePolicy?, testMode?, readOnly?, deleteGuard?: {maxDeletes?, maxPercent?}}` | create or update (idempotent); the 4Degrees workspace is paired by `PUT /api/accounts/{id}/fourdegrees` only |
 * | DELETE `/accounts/{id}` | – | the account and everything synced for it |
 * | GET `/accounts/{id}/mapping` | – | the stored mapping (404 when none) |
 * | GET `/accounts/{id}/mapping/suggested` | – | a default mapping built from the live pipelines |
 * | PUT `/accounts/{id}/mapping` | a mapping | validated with zod, then against the live pipelines/stages |
 * | POST `/accounts/{id}/pause` · `/resume` | – | pause keeps changes dirty; resume re-enqueues them |
 * | PUT `/accounts/{id}/test-mode` | `{enabled}` | compute and log writes, make none |
 * | GET `/accounts/{id}/failures?status=open\|replayed\|all` | – | failures and dead letters |
 * | POST `/accounts/{id}/failures/{failureId}/replay` · `/failures/replay` | – | replay one / all open |
 * | GET `/failures/unassigned?status=` · POST `/failures/unassigned/{failureId}/replay` | – | failures of no known account |
 * | POST `/accounts/{id}/backfill` · GET · POST `/backfill/resume` | – | start, progress, resume |
 * | GET `/accounts/{id}/review` | – | records the engine would not guess about |
 * | GET `/accounts/{id}/held-deletes` | – | deletes the mass-delete guard holds for approval |
 * | POST `/accounts/{id}/held-deletes/approve` · `/held-deletes/{fdDealId}/approve` · `/held-deletes/{fdDealId}/discard` | – | approve all / one, discard one (docs/sync.md "Mass-delete guard") |
 * | DELETE `/accounts/{id}/review/{side}/{recordId}` | – | resolve and re-sync that record |
 * | POST `/accounts/{id}/sync` | `{side, recordId, locationId?}` | re-sync one record now |
 * | GET `/accounts/{id}/events?kind=&limit=&before=` | – | the activity trail, newest first |
 * | POST `/bootstrap` | see src/sync/bootstrap.ts | one-call setup of a demo/first account |
 */
import { Hono } from "hono";
import * as z from "zod";
import { AppError, parseInput } from "../lib/errors.ts";
import {
  ConflictPolicySchema,
  DeleteGuardSchema,
  DeletePolicySchema,
  createAccount,
  DEFAULT_DELETE_GUARD,
  deleteAccount,
  getAccount,
  requireAccount,
  saveMapping,
  updateAccount,
} from "../store/accounts.ts";
import { getBackfill } from "../store/backfill-runs.ts";
import { getFailure, listFailures, UNASSIGNED, type Failure } from "../store/failures.ts";
import { listHeldDeletes } from "../store/held-deletes.ts";
import { countLinks } from "../store/links.ts";
import { listPending } from "../store/pending.ts";
import { listEvents, listReview, resolveReview } from "../store/sync-events.ts";
import { beginBackfill, resumeBackfill } from "../sync/jobs/backfill.ts";
import { bootstrapAccount, BootstrapBody } from "../sync/bootstrap.ts";
import { liveConnectors } from "../sync/connectors.ts";
import { applyDecision } from "../sync/engine/delete-guard.ts";
import { liveJobDeps, markAndEnqueue } from "../sync/jobs/deps.ts";
import { MappingSchema, mappingIssues, validateMappingLive } from "../domain/mapping-config.ts";
import { sendMessage } from "../queue/queues.ts";
import { replayFailure } from "../queue/replay.ts";
import { loadLiveStructure, suggestedMapping } from "../sync/structure.ts";
import type { AppEnv } from "./context.ts";
import { requestScope, visibleAccounts } from "./scope.ts";

const AccountId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "account ids are 1–64 characters of A–Z, a–z, 0–9, _ and -");
const Side = z.enum(["fourdegrees", "highlevel"]);

const FailuresQuery = z.object({ status: z.enum(["open", "replayed", "all"]).default("open") });
const EventsQuery = z.object({
  kind: z.string().min(1).max(100).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  before: z.coerce.number().int().positive().optional(),
});

const AccountBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    locations: z.array(z.string().min(1).max(200)).max(50).optional(),
    conflictPolicy: ConflictPolicySchema.optional(),
    deletePolicy: DeletePolicySchema.optional(),
    testMode: z.boolean().optional(),
    readOnly: z.boolean().optional(),
    // Either threshold alone keeps the other one's stored value (or its default).
    deleteGuard: DeleteGuardSchema.partial().optional(),
  })
  .strict();

async function body<S extends z.ZodType>(raw: Promise<unknown>, schema: S, what: string): Promise<z.output<S>> {
  const parsed = schema.safeParse(await raw.catch(() => undefined));
  if (!parsed.success) throw new AppError("bad_request", `invalid ${what}`, { details: mappingIssues(parsed.error) });
  return parsed.data;
}

/** The keys of a partial object that are set (exactOptionalPropertyTypes keeps `undefined` out of a spread). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function idParam(raw: string): string {
  const parsed = AccountId.safeParse(raw);
  if (!parsed.success) throw new AppError("bad_request", parsed.error.issues[0]?.message ?? "invalid account id");
  return parsed.data;
}

/** Decides held deletes; one forced record job per decided pair applies the decision (delete-guard.ts). */
function decideHeld(env: Env, accountId: string, fdDealId: string | null, decision: "approved" | "discarded") {
  return applyDecision(env.DB, (m) => sendMessage(env, m), accountId, fdDealId, decision);
}

/** Replays a failure (src/queue/replay.ts); 422 when it holds a message this version cannot read. */
async function replay(env: Env, f: Failure): Promise<void> {
  if (!(await replayFailure(env, f)))
    throw new AppError("unprocessable", `failure ${f.id} holds a message this version cannot read`);
}

export const syncAdmin = new Hono<AppEnv>()
  .get("/accounts", async (c) => c.json({ accounts: await visibleAccounts(c.env.DB, requestScope(c)) }))
  .get("/accounts/:id", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const [links, pending, backfill] = await Promise.all([
      countLinks(c.env.DB, account.id),
      listPending(c.env.DB, account.id, 1000),
      getBackfill(c.env.DB, account.id),
    ]);
    return c.json({
      account,
      links,
      dirty: pending.length,
      backfill,
      mode:
        account.readOnly || c.var.config.SYNC_MODE === "read-only" ? "read-only: HighLevel → 4Degrees only" : "two-way",
    });
  })
  .put("/accounts/:id", async (c) => {
    const id = idParam(c.req.param("id"));
    const raw: unknown = await c.req.json().catch(() => undefined);
    // The workspace has one writer (pairFourDegreesAccount, behind PUT /api/accounts/{id}/fourdegrees,
    // which learns it from 4Degrees itself); a typed-in id here could contradict it.
    if (raw !== null && typeof raw === "object" && "workspaceId" in raw)
      throw new AppError(
        "bad_request",
        `workspaceId cannot be set here: pair the account with its 4Degrees workspace through PUT /api/accounts/${id}/fourdegrees (its API key names the workspace)`,
        {
          details: [{ field: "workspaceId", message: `set by PUT /api/accounts/${id}/fourdegrees` }],
        },
      );
    const input = await body(Promise.resolve(raw), AccountBody, "account");
    const existing = await getAccount(c.env.DB, id);
    const { deleteGuard: guardPatch, ...rest } = input;
    const deleteGuard = guardPatch
      ? { ...(existing?.deleteGuard ?? DEFAULT_DELETE_GUARD), ...definedOnly(guardPatch) }
      : undefined;
    const account = existing?.configured
      ? await updateAccount(c.env.DB, id, { ...rest, ...(deleteGuard ? { deleteGuard } : {}) })
      : await createAccount(c.env.DB, {
          id,
          name: input.name ?? existing?.name ?? id,
          locations: input.locations ?? [],
          ...(input.conflictPolicy ? { conflictPolicy: input.conflictPolicy } : {}),
          ...(input.deletePolicy ? { deletePolicy: input.deletePolicy } : {}),
          ...(input.testMode === undefined ? {} : { testMode: input.testMode }),
          ...(input.readOnly === undefined ? {} : { readOnly: input.readOnly }),
          ...(deleteGuard ? { deleteGuard } : {}),
        });
    c.var.log.info({ event: "sync.account_saved", account: id, outcome: "ok", created: !existing?.configured });
    return c.json({ account }, existing?.configured ? 200 : 201);
  })
  .delete("/accounts/:id", async (c) => {
    const id = idParam(c.req.param("id"));
    if (!(await deleteAccount(c.env.DB, id))) throw new AppError("not_found", `no account ${id}`);
    return c.body(null, 204);
  })
  .get("/accounts/:id/mapping", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    if (!account.mapping)
      throw new AppError(
        "not_found",
        `account ${account.id} has no mapping yet (GET /api/accounts/${account.id}/mapping/suggested, then PUT it)`,
      );
    return c.json({ mapping: account.mapping, version: account.mappingVersion });
  })
  .get("/accounts/:id/mapping/suggested", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const live = await loadLiveStructure(await liveConnectors(c.env, c.var.config)(account, "live"), account.locations);
    // A suggestion for an operator to review: it names the file field, if any, for attachments.
    const suggested = suggestedMapping(account, live, { attachments: true });
    const parsed = MappingSchema.safeParse(suggested);
    return c.json({
      mapping: suggested,
      valid: parsed.success,
      ...(parsed.success ? {} : { issues: mappingIssues(parsed.error) }),
    });
  })
  .put("/accounts/:id/mapping", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const mapping = await body(c.req.json(), MappingSchema, "mapping");
    const live = await loadLiveStructure(await liveConnectors(c.env, c.var.config)(account, "live"), account.locations);
    const issues = validateMappingLive(mapping, live, account.locations);
    if (issues.length > 0)
      throw new AppError(
        "unprocessable",
        `mapping does not match the live pipelines: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`,
        { details: issues },
      );
    const saved = await saveMapping(c.env.DB, account.id, mapping);
    return c.json({ mapping: saved.mapping, version: saved.mappingVersion });
  })
  .post("/accounts/:id/pause", async (c) =>
    c.json({ account: await updateAccount(c.env.DB, idParam(c.req.param("id")), { status: "paused" }) }),
  )
  .post("/accounts/:id/resume", async (c) => {
    const account = await updateAccount(c.env.DB, idParam(c.req.param("id")), { status: "active" });
    const deps = liveJobDeps(c.env, liveConnectors(c.env, c.var.config));
    const pending = await listPending(c.env.DB, account.id, 1000);
    for (const p of pending)
      await deps.enqueue({
        v: 1,
        kind: "sync.record",
        accountId: account.id,
        side: p.side,
        record: p.kind,
        recordId: p.recordId,
      });
    const backfill = await resumeBackfill(c.env.DB, deps, account.id);
    return c.json({ account, requeued: pending.length, backfill });
  })
  .put("/accounts/:id/test-mode", async (c) => {
    const input = await body(c.req.json(), z.object({ enabled: z.boolean() }).strict(), "test-mode body");
    return c.json({ account: await updateAccount(c.env.DB, idParam(c.req.param("id")), { testMode: input.enabled }) });
  })
  .get("/accounts/:id/failures", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const { status } = parseInput(FailuresQuery, c.req.query(), "query");
    return c.json({ failures: await listFailures(c.env.DB, account.id, status) });
  })
  .post("/accounts/:id/failures/replay", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const replayed: string[] = [];
    for (const f of await listFailures(c.env.DB, account.id, "open", 500)) {
      await replay(c.env, f);
      replayed.push(f.id);
    }
    return c.json({ replayed });
  })
  .post("/accounts/:id/failures/:failureId/replay", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const failure = await getFailure(c.env.DB, c.req.param("failureId"));
    if (!failure || failure.accountId !== account.id)
      throw new AppError("not_found", `no failure ${c.req.param("failureId")} for account ${account.id}`);
    await replay(c.env, failure);
    return c.json({ replayed: [failure.id] });
  })
  // The operator's bucket: failures whose account could not be known (unknown location or
  // workspace, unreadable body). A replay after the location is attached lands in its account.
  .get(`/failures/${UNASSIGNED}`, async (c) => {
    const status = z.enum(["open", "replayed", "all"]).catch("open").parse(c.req.query("status"));
    return c.json({ failures: await listFailures(c.env.DB, null, status) });
  })
  .post(`/failures/${UNASSIGNED}/:failureId/replay`, async (c) => {
    const failure = await getFailure(c.env.DB, c.req.param("failureId"));
    if (!failure || failure.accountId !== null)
      throw new AppError("not_found", `no failure ${c.req.param("failureId")} in the ${UNASSIGNED} bucket`);
    await replay(c.env, failure);
    return c.json({ replayed: [failure.id] });
  })
  .post("/accounts/:id/backfill", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    if (!account.mapping) throw new AppError("conflict", `account ${account.id} has no mapping yet`);
    const run = await beginBackfill(c.env.DB, liveJobDeps(c.env, liveConnectors(c.env, c.var.config)), account.id);
    return c.json({ backfill: run }, 202);
  })
  .get("/accounts/:id/backfill", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const run = await getBackfill(c.env.DB, account.id);
    if (!run) throw new AppError("not_found", `account ${account.id} has no backfill run`);
    return c.json({
      backfill: run,
      progress: { done: run.done, total: run.total, phase: run.phase, state: run.state },
    });
  })
  .post("/accounts/:id/backfill/resume", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const run = await resumeBackfill(c.env.DB, liveJobDeps(c.env, liveConnectors(c.env, c.var.config)), account.id);
    if (!run) throw new AppError("not_found", `account ${account.id} has no backfill run`);
    return c.json({ backfill: run }, 202);
  })
  .get("/accounts/:id/review", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    return c.json({ review: await listReview(c.env.DB, account.id) });
  })
  .get("/accounts/:id/held-deletes", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    return c.json({ held: await listHeldDeletes(c.env.DB, account.id), guard: account.deleteGuard });
  })
  .post("/accounts/:id/held-deletes/approve", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    return c.json({ decided: await decideHeld(c.env, account.id, null, "approved") });
  })
  .post("/accounts/:id/held-deletes/:fdDealId/:decision{approve|discard}", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const fdDealId = c.req.param("fdDealId");
    const decision = c.req.param("decision") === "approve" ? "approved" : "discarded";
    const decided = await decideHeld(c.env, account.id, fdDealId, decision);
    if (decided.length === 0)
      throw new AppError("not_found", `no delete of 4Degrees deal ${fdDealId} is on hold for account ${account.id}`);
    return c.json({ decided });
  })
  .delete("/accounts/:id/review/:side/:recordId", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const { side } = parseInput(z.object({ side: Side }), { side: c.req.param("side") }, "path");
    const recordId = c.req.param("recordId");
    if (!(await resolveReview(c.env.DB, account.id, side, recordId)))
      throw new AppError("not_found", `${side} record ${recordId} is not on the review list`);
    await markAndEnqueue(c.env.DB, liveJobDeps(c.env, liveConnectors(c.env, c.var.config)), {
      accountId: account.id,
      side,
      kind: "deal",
      recordId,
    });
    return c.body(null, 204);
  })
  .post("/accounts/:id/sync", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const input = await body(
      c.req.json(),
      z.object({ side: Side, recordId: z.string().min(1), locationId: z.string().min(1).optional() }).strict(),
      "sync body",
    );
    // A record is read and written through the location's own token: only the account's locations may be named.
    if (input.locationId !== undefined && !account.locations.includes(input.locationId)) {
      const theirs = `its locations: ${account.locations.join(", ") || "none"}`;
      const message = `location ${input.locationId} does not belong to account ${account.id} (${theirs})`;
      const details = [{ field: "locationId", message: `not one of account ${account.id}'s locations` }];
      throw new AppError("bad_request", message, { details });
    }
    await liveJobDeps(c.env, liveConnectors(c.env, c.var.config)).enqueue({
      v: 1,
      kind: "sync.record",
      accountId: account.id,
      side: input.side,
      record: "deal",
      recordId: input.recordId,
      locationId: input.locationId ?? null,
      force: true,
    });
    return c.json({ enqueued: true }, 202);
  })
  .get("/accounts/:id/events", async (c) => {
    const account = await requireAccount(c.env.DB, idParam(c.req.param("id")));
    const q = parseInput(EventsQuery, c.req.query(), "query");
    return c.json({
      events: await listEvents(c.env.DB, account.id, {
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.limit ? { limit: q.limit } : {}),
        ...(q.before ? { beforeId: q.before } : {}),
      }),
    });
  })
  .post("/bootstrap", async (c) => {
    const input = await body(c.req.json(), BootstrapBody, "bootstrap body");
    const result = await bootstrapAccount(c.env, c.var.config, input, c.var.log);
    return c.json(result, result.created ? 201 : 200);
  });
