/**
 * Guided setup of a new account: name it → connect HighLevel → enter the 4Degrees key → pick
 * pipelines → review stages, owners and fields → test (one read each side and a dry-run of real
 * records, writing nothing) → backfill in test mode → go live. Every step's state comes from
 * src/http/console/setup-steps.ts, so the wizard can be left at any step and resumed. Each action
 * reuses the operation the rest of the app uses (createAccount, pairFourDegreesAccount,
 * defaultMapping + validateMappingLive, beginBackfill, the account settings).
 */
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../../context.ts";
import { AccountIdSchema } from "../../accounts.ts";
import { requestScope, type SessionScope } from "../../scope.ts";
import { pairFourDegreesAccount } from "../../../fourdegrees/wiring.ts";
import { AppError } from "../../../lib/errors.ts";
import {
  defaultMapping,
  MappingSchema,
  validateMappingLive,
  type MappingInput,
} from "../../../domain/mapping-config.ts";
import { createAccount, saveMapping, updateAccount, type Account } from "../../../store/accounts.ts";
import { listPending } from "../../../store/pending.ts";
import { updateSetupProgress } from "../../../store/setup-progress.ts";
import { sendMessage } from "../../../queue/queues.ts";
import { beginBackfill } from "../../../sync/jobs/backfill.ts";
import { liveConnectors } from "../../../sync/connectors.ts";
import { explainError, runSetupTest, type SetupTestResult } from "../../../sync/setup-check.ts";
import { loadLiveStructure, suggestedMapping } from "../../../sync/structure.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { activeLocations, setupState, STEP_KEYS, STEP_TITLES, type SetupState, type StepKey } from "../setup-steps.ts";
import { SetupPanel } from "./setup-panels.tsx";
import { Layout } from "../ui.tsx";
import { locationNames } from "../names.tsx";

const STATE_LABEL = { done: "done", next: "next", todo: "to do", running: "running", failed: "failed" } as const;

interface RenderOptions {
  account: Account | null;
  step?: StepKey | null;
  flash?: { kind: "ok" | "error"; text: string } | null;
  status?: ContentfulStatusCode;
  test?: SetupTestResult | null;
}

async function render(c: Context<AppEnv>, o: RenderOptions): Promise<Response> {
  const ctx = await pageContext(c);
  const account = o.account;
  const state: SetupState = await setupState(c.env.DB, account);
  const shown: StepKey = o.step ?? state.next ?? "live";
  const scope = requestScope(c);
  return c.html(
    <Layout
      title="Guided setup"
      page="setup"
      accounts={ctx.accounts}
      account={account}
      flash={o.flash === undefined ? ctx.flash : o.flash}
    >
      <p>
        Each step shows where it stands; leave at any step and come back later, the wizard picks up where the account
        is.{" "}
        {account && (
          <a href="/console/setup?new=1" id="setup-new">
            Set up another account
          </a>
        )}
      </p>
      <ol class="steps" id="setup-steps">
        {state.steps.map((s) => (
          <li data-step={s.key} data-state={s.state} class={s.key === shown ? "current" : ""}>
            <a href={stepHref(account, s.key)}>{s.title}</a>{" "}
            <strong class={`status-${s.state === "done" ? "ok" : s.state === "failed" ? "failed" : s.state}`}>
              {STATE_LABEL[s.state]}
            </strong>{" "}
            <span class="muted">{s.summary}</span>
          </li>
        ))}
      </ol>
      <section class="card" id={`step-${shown}`}>
        <h2>{STEP_TITLES[shown]}</h2>
        <SetupPanel c={c} step={shown} state={state} scope={scope} test={o.test ?? null} />
      </section>
    </Layout>,
    o.status ?? 200,
  );
}

function stepHref(account: Account | null, step: StepKey): string {
  const q = new URLSearchParams();
  if (account) q.set("account", account.id);
  q.set("step", step);
  return `/console/setup?${q.toString()}`;
}

const str = (form: Record<string, unknown>, key: string): string => {
  const v = form[key];
  return typeof v === "string" ? v.trim() : "";
};

/** The form's account, or a 400 page naming what is missing. */
async function accountOf(c: Context<AppEnv>, form: Record<string, unknown>): Promise<Account | Response> {
  const account = await formAccount(c, form);
  if (!account)
    return render(c, {
      account: null,
      status: 400,
      flash: { kind: "error", text: "account: choose an existing account" },
    });
  return account;
}

const fail = (c: Context<AppEnv>, account: Account | null, step: StepKey, status: ContentfulStatusCode, text: string) =>
  render(c, { account, step, status, flash: { kind: "error", text } });

const done = (c: Context<AppEnv>, account: Account, ok: string) => redirectWith(c, "setup", account.id, { ok });

/** The location a scoped session brings with it (an embedded location user's own location). */
const scopedLocation = (scope: SessionScope): string | null => (scope.kind === "location" ? scope.locationId : null);

/** The steps that must be done before `step` may act (the server checks; the page only shows). */
function requireBefore(state: SetupState, step: StepKey): string | null {
  for (const k of STEP_KEYS) {
    if (k === step) return null;
    if (state.steps.find((s) => s.key === k)?.state !== "done") return `Finish “${STEP_TITLES[k]}” first.`;
  }
  return null;
}

export const setupPage = new Hono<AppEnv>()
  .get("/setup", async (c) => {
    const ctx = await pageContext(c);
    const step = c.req.query("step");
    const wanted = STEP_KEYS.find((k) => k === step) ?? null;
    if (step && !wanted)
      return fail(c, ctx.account, "account", 400, `step: ${step.slice(0, 40)} is not a step of the setup`);
    // `?new=1` starts over with a new account; otherwise the chosen (or only) account resumes.
    const account = c.req.query("new") === "1" ? null : ctx.account;
    return render(c, { account, step: wanted });
  })
  .post("/setup/account", async (c) => {
    const form = await c.req.parseBody();
    const scope = requestScope(c);
    const id = AccountIdSchema.safeParse(str(form, "id"));
    const name = str(form, "name");
    if (!id.success) return fail(c, null, "account", 400, `account id: ${id.error.issues[0]?.message ?? "invalid"}`);
    if (name.length < 1 || name.length > 200) return fail(c, null, "account", 400, "name: 1–200 characters");
    if (scope.kind === "agency")
      return fail(c, null, "account", 403, "An agency admin sets up an account from inside the location it is for.");
    const location = scopedLocation(scope);
    try {
      // New accounts start in test mode: nothing is written until the last step.
      const account = await createAccount(c.env.DB, {
        id: id.data,
        name,
        locations: location ? [location] : [],
        testMode: true,
      });
      c.var.log.info({ event: "setup.account_created", account: account.id, outcome: "ok" });
      return done(c, account, `Account ${account.name} created (in test mode).`);
    } catch (err) {
      if (err instanceof AppError && err.code === "conflict") return fail(c, null, "account", 409, err.message);
      throw err;
    }
  })
  .post("/setup/attach", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const scope = requestScope(c);
    const location = scopedLocation(scope) ?? str(form, "location");
    const state = await setupState(c.env.DB, account);
    const connected = state.connections.some(
      (conn) => conn.kind === "location" && conn.locationId === location && conn.status === "active",
    );
    if (!location || !connected)
      return fail(
        c,
        account,
        "highlevel",
        400,
        `location: ${location || "(none)"} is not a connected HighLevel location`,
      );
    try {
      const saved = await updateAccount(c.env.DB, account.id, {
        locations: [...new Set([...account.locations, location])],
      });
      c.var.log.info({ event: "setup.location_attached", account: saved.id, location, outcome: "ok" });
      const name = (await locationNames(c, [location])).get(location) ?? "The HighLevel location";
      return done(c, saved, `${name} now syncs with ${saved.name}.`);
    } catch (err) {
      if (err instanceof AppError && err.code === "conflict") return fail(c, account, "highlevel", 409, err.message);
      throw err;
    }
  })
  .post("/setup/key", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const apiKey = str(form, "apiKey");
    if (apiKey.length < 8 || apiKey.length > 512)
      return fail(c, account, "key", 400, "API key: paste the whole key (8–512 characters)");
    try {
      const saved = await pairFourDegreesAccount(c.env, c.var.config, {
        accountId: account.id,
        accountName: account.name,
        apiKey,
      });
      c.var.log.info({ event: "setup.key_set", account: account.id, workspace: saved.workspaceId, outcome: "ok" });
      return done(c, account, `The key reaches 4Degrees workspace ${saved.workspaceId}.`);
    } catch (err) {
      if (err instanceof AppError && err.code === "bad_request")
        return fail(c, account, "key", 400, "4Degrees refused the key: check it and paste it again.");
      if (err instanceof AppError && err.code === "conflict") return fail(c, account, "key", 409, err.message);
      return fail(c, account, "key", 502, explainError(err));
    }
  })
  .post("/setup/pipelines", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const state = await setupState(c.env.DB, account);
    const blocked = requireBefore(state, "pipelines");
    if (blocked) return fail(c, account, "pipelines", 409, blocked);
    let live;
    try {
      live = await loadLiveStructure(await liveConnectors(c.env, c.var.config)(account, "live"), account.locations);
    } catch (err) {
      return fail(c, account, "pipelines", 502, explainError(err));
    }
    const base = account.mapping ?? suggestedMapping(account, live);
    const pairs: MappingInput["pipelines"] = [];
    const problems: string[] = [];
    for (const fd of live.fourdegrees) {
      const choice = str(form, `pair.${fd.id}`);
      if (!choice) continue;
      const [loc = "", hlId = ""] = choice.split("::");
      const hl = (live.highlevel[loc] ?? []).find((p) => p.id === hlId);
      if (!hl) {
        problems.push(`${fd.name}: the chosen HighLevel pipeline is not in location ${loc}`);
        continue;
      }
      // Pair just these two, stages by name: defaultMapping over a structure holding only them.
      const one = defaultMapping({ fourdegrees: [fd], highlevel: { [loc]: [{ ...hl, name: fd.name }] } }, loc)
        .pipelines[0];
      if (!one) problems.push(`${fd.name} ↔ ${hl.name}: no open stage has the same name on both sides`);
      else
        pairs.push(
          account.mapping?.pipelines.find(
            (p) => p.fourdegreesPipelineId === fd.id && p.highlevelPipelineId === hl.id,
          ) ?? one,
        );
    }
    if (problems.length > 0) return fail(c, account, "pipelines", 400, problems.join("; "));
    if (pairs.length === 0)
      return fail(
        c,
        account,
        "pipelines",
        400,
        "pipelines: choose a HighLevel pipeline for at least one 4Degrees pipeline",
      );
    const parsed = MappingSchema.safeParse({ ...base, pipelines: pairs });
    if (!parsed.success)
      return fail(
        c,
        account,
        "pipelines",
        400,
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      );
    const issues = validateMappingLive(parsed.data, live, account.locations);
    if (issues.length > 0)
      return fail(c, account, "pipelines", 400, issues.map((i) => `${i.field}: ${i.message}`).join("; "));
    const saved = await saveMapping(c.env.DB, account.id, parsed.data);
    c.var.log.info({ event: "setup.pipelines_saved", account: account.id, pairs: pairs.length, outcome: "ok" });
    return done(c, saved, `${pairs.length} pipeline pair(s) saved.`);
  })
  .post("/setup/review", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const state = await setupState(c.env.DB, account);
    const blocked = requireBefore(state, "review");
    if (blocked) return fail(c, account, "review", 409, blocked);
    if (str(form, "version") !== String(account.mappingVersion))
      return fail(c, account, "review", 409, "The mapping changed since this page was shown: review it again.");
    await updateSetupProgress(c.env.DB, account.id, { reviewedVersion: account.mappingVersion });
    return done(c, account, "Stages, owners and fields reviewed.");
  })
  .post("/setup/test", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const state = await setupState(c.env.DB, account);
    const blocked = requireBefore(state, "test");
    if (blocked) return fail(c, account, "test", 409, blocked);
    const result = await runSetupTest(await liveConnectors(c.env, c.var.config)(account, "live"), account);
    await updateSetupProgress(c.env.DB, account.id, {
      test: { version: account.mappingVersion, ok: result.ok, at: Date.now() },
    });
    c.var.log.info({ event: "setup.tested", account: account.id, outcome: result.ok ? "ok" : "failed" });
    const text = result.ok
      ? "Test passed: nothing was written to either side."
      : "Test failed: see the reasons below (nothing was written).";
    return render(c, { account, step: "test", test: result, flash: { kind: result.ok ? "ok" : "error", text } });
  })
  .post("/setup/backfill", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const state = await setupState(c.env.DB, account);
    const blocked = requireBefore(state, "backfill");
    if (blocked) return fail(c, account, "backfill", 409, blocked);
    if (state.backfill?.state === "running")
      return fail(c, account, "backfill", 409, "A backfill is already running: wait for it to finish.");
    // Test mode first, so the backfill computes and logs every write and makes none.
    if (!account.testMode) await updateAccount(c.env.DB, account.id, { testMode: true });
    const run = await beginBackfill(
      c.env.DB,
      { enqueue: (m, delaySeconds) => sendMessage(c.env, m, delaySeconds), now: () => Date.now() },
      account.id,
    );
    await updateSetupProgress(c.env.DB, account.id, { testBackfillRun: run.runId });
    c.var.log.info({ event: "setup.test_backfill_started", account: account.id, run: run.runId, outcome: "ok" });
    return done(c, account, "Backfill started in test mode: it writes nothing.");
  })
  .post("/setup/live", async (c) => {
    const form = await c.req.parseBody();
    const account = await accountOf(c, form);
    if (account instanceof Response) return account;
    const state = await setupState(c.env.DB, account);
    const blocked = requireBefore(state, "live");
    if (blocked) return fail(c, account, "live", 409, blocked);
    if (activeLocations(account, state.connections).length === 0)
      return fail(c, account, "live", 409, "No HighLevel location of this account is connected.");
    const live = await updateAccount(c.env.DB, account.id, { testMode: false, status: "active" });
    // Resume: changes kept dirty while paused sync now; a live backfill links and writes what exists.
    const enqueue = (m: Parameters<typeof sendMessage>[1], delaySeconds?: number) =>
      sendMessage(c.env, m, delaySeconds);
    for (const p of await listPending(c.env.DB, account.id, 1000))
      await enqueue({
        v: 1,
        kind: "sync.record",
        accountId: account.id,
        side: p.side,
        record: p.kind,
        recordId: p.recordId,
      });
    await beginBackfill(c.env.DB, { enqueue, now: () => Date.now() }, account.id);
    c.var.log.info({ event: "setup.live", account: account.id, outcome: "ok" });
    return done(c, live, `${live.name} is live: a backfill now links and writes the existing records.`);
  });
