/**
 * Automations: the account's rules (trigger, conditions, actions, on/off, latest runs), a form to
 * add one — trigger kind and its parameters, one condition, one action, stages/pipelines/users
 * offered from the live lists by name — validated by the same schema and checks as
 * `POST /api/accounts/{id}/automations`, pause/resume, delete, a dry run against a record, and
 * the three example rules enabled with one click. Server-rendered, no script (the CSP allows none).
 */
import { Hono, type Context } from "hono";
import type { Action, Condition, Trigger, TriggerKind } from "../../../domain/automation-rule.ts";
import { toMinor } from "../../../domain/money.ts";
import { EXAMPLES, exampleRule, type ExampleKey } from "../../../automations/examples.ts";
import { AppError } from "../../../lib/errors.ts";
import type { Account } from "../../../store/accounts.ts";
import { getAutomation, listAutomations, listRuns, updateAutomation } from "../../../store/automations.ts";
import { listRules as listNotificationRules } from "../../../store/notifications.ts";
import { liveConnectors } from "../../../sync/connectors.ts";
import { structureFor } from "../../../sync/jobs/automation.ts";
import { createAutomation, parseNewAutomation, removeAutomation, testAutomation } from "../../automations.ts";
import type { AppEnv } from "../../context.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { Empty, fmtTime, Layout, NoAccount } from "../ui.tsx";

const TRIGGERS: Record<TriggerKind, string> = {
  deal_created: "A deal is created",
  stage_entered: "Enters the stage…",
  won: "Won",
  lost: "Lost (optionally with a reason containing…)",
  value_changed: "Value changes by more than… / crosses…",
  owner_changed: "Owner changes",
  note_added: "A note is added",
  field_set: "A field is set (to…) / crosses…",
  close_date: "Close date is within … days (0 = passed)",
  no_activity: "No activity for … days",
  days_in_stage: "… days in a stage",
};

const ACTIONS: Record<Action["kind"], string> = {
  hl_task: "Create a HighLevel task for the owner",
  fd_reminder: "Create a 4Degrees reminder for the owner",
  hl_tag: "Add / remove a HighLevel contact tag",
  move_stage: "Move to a stage",
  set_field: "Set a field",
  notify: "Post to a notification target (Slack / webhook)",
};

const CONDITIONS: Record<Condition["kind"], string> = {
  pipeline: "Pipeline is",
  stage: "Stage is",
  owner: "Owner (email) is",
  value: "Value between (min–max)",
  side: "Changed on (fourdegrees / highlevel)",
  field: "Field equals / contains",
};

/** What the form offers by name: stages, pipelines and users of the live lists (empty when unreachable). */
async function liveNames(c: Context<AppEnv>, account: Account) {
  try {
    if (!account.mapping) return { stages: [], pipelines: [], users: [] };
    const built = await liveConnectors(c.env, c.var.config)(account, "live");
    const ports = { fourdegrees: built.fourdegrees, highlevel: (loc: string) => built.highlevel(loc) };
    const s = await structureFor(ports, account.mapping, account.mapping.pipelines[0]?.highlevelLocationId ?? null);
    const users = await built.fourdegrees.listUsers();
    const stages = new Set(
      [...s.fourdegrees.flatMap((p) => p.stages), ...s.highlevel.flatMap((p) => p.stages)].map((x) => x.name),
    );
    const pipelines = new Set([...s.fourdegrees, ...s.highlevel].map((p) => p.name));
    return { stages: [...stages], pipelines: [...pipelines], users: users.flatMap((u) => (u.email ? [u.email] : [])) };
  } catch (err) {
    c.var.log.warn({ event: "console.automations_lists", outcome: "failed", error: err });
    return { stages: [], pipelines: [], users: [] };
  }
}

function describeTrigger(t: Trigger): string {
  switch (t.kind) {
    case "stage_entered":
      return `enters “${t.stage}”`;
    case "lost":
      return t.reason ? `lost (reason contains “${t.reason}”)` : "lost";
    case "value_changed":
      return `value changes${t.by !== null ? ` by more than ${t.by} (minor units)` : ""}${t.threshold !== null ? ` or crosses ${t.threshold}` : ""}`;
    case "field_set":
      return `${t.field} set${t.equals !== null ? ` to “${t.equals}”` : ""}${t.crosses !== null ? ` crossing ${t.crosses}` : ""}`;
    case "close_date":
      return t.withinDays === 0 ? "close date passed" : `close date within ${t.withinDays} days`;
    case "no_activity":
      return `no activity for ${t.days} days`;
    case "days_in_stage":
      return `${t.days} days in ${t.stage ? `“${t.stage}”` : "a stage"}`;
    default:
      return TRIGGERS[t.kind];
  }
}

function describeAction(a: Action): string {
  switch (a.kind) {
    case "hl_task":
      return `HighLevel task “${a.title}” due in ${a.dueInDays} d`;
    case "fd_reminder":
      return `4Degrees reminder “${a.title}” due in ${a.dueInDays} d`;
    case "hl_tag":
      return `${a.op} tag “${a.tag}”`;
    case "move_stage":
      return `move to “${a.stage}” on ${a.side}`;
    case "set_field":
      return `set ${a.field} = ${String(a.value)} on ${a.side}`;
    case "notify":
      return `notify via ${a.notificationRuleId}${a.text ? ` (“${a.text}”)` : ""}`;
  }
}

const describeCondition = (c: Condition): string =>
  c.kind === "value"
    ? `value ${c.min ?? "…"}–${c.max ?? "…"}`
    : c.kind === "field"
      ? `${c.field} ${c.op} “${c.value}”`
      : c.kind === "owner"
        ? `owner ${c.email}`
        : c.kind === "side"
          ? `changed on ${c.side}`
          : `${c.kind} “${c.name}”`;

/** Builds a rule input from the form's flat fields (the schema validates it next). */
export function ruleFromForm(form: Record<string, unknown>, currency: string): unknown {
  const s = (k: string) => (typeof form[k] === "string" ? form[k].trim() : "");
  const n = (k: string) => (s(k) === "" ? null : Number(s(k)));
  const money = (k: string) => {
    const v = n(k);
    return v === null || !Number.isFinite(v) ? v : toMinor(v, currency);
  };
  const kind = s("trigger");
  const trigger: Record<string, unknown> = { kind };
  if (kind === "stage_entered") trigger["stage"] = s("t_stage");
  if (kind === "days_in_stage") {
    trigger["stage"] = s("t_stage") || null;
    trigger["days"] = n("t_days");
  }
  if (kind === "lost") trigger["reason"] = s("t_reason") || null;
  if (kind === "value_changed") Object.assign(trigger, { by: money("t_by"), threshold: money("t_threshold") });
  if (kind === "field_set")
    Object.assign(trigger, { field: s("t_field"), equals: s("t_equals") || null, crosses: n("t_crosses") });
  if (kind === "close_date") trigger["withinDays"] = n("t_days");
  if (kind === "no_activity") trigger["days"] = n("t_days");

  const conditions: unknown[] = [];
  const ck = s("c_kind");
  const cv = s("c_value");
  if (ck === "pipeline" || ck === "stage") conditions.push({ kind: ck, name: cv });
  if (ck === "owner") conditions.push({ kind: ck, email: cv });
  if (ck === "side") conditions.push({ kind: ck, side: cv });
  if (ck === "value") conditions.push({ kind: ck, min: money("c_min"), max: money("c_max") });
  if (ck === "field") conditions.push({ kind: ck, field: s("c_field"), op: s("c_op") || "equals", value: cv });

  const ak = s("a_kind");
  const action: Record<string, unknown> = { kind: ak };
  if (ak === "hl_task" || ak === "fd_reminder")
    Object.assign(action, { title: s("a_title"), body: s("a_body"), dueInDays: n("a_due") ?? 1 });
  if (ak === "hl_tag") Object.assign(action, { op: s("a_op") || "add", tag: s("a_tag") });
  if (ak === "move_stage") Object.assign(action, { side: s("a_side"), stage: s("a_stage") });
  if (ak === "set_field") Object.assign(action, { side: s("a_side"), field: s("a_field"), value: s("a_value") });
  if (ak === "notify")
    Object.assign(action, { notificationRuleId: s("a_target"), ...(s("a_title") ? { text: s("a_title") } : {}) });
  return { name: s("name"), trigger, conditions, actions: [action] };
}

const Datalist = (p: { id: string; values: readonly string[] }) => (
  <datalist id={p.id}>
    {p.values.map((v) => (
      <option value={v} />
    ))}
  </datalist>
);

export const automationsPage = new Hono<AppEnv>()
  .get("/automations", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Automations" page="automations" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    const [rules, runs, targets, names] = await Promise.all([
      listAutomations(c.env.DB, account.id),
      listRuns(c.env.DB, account.id, { limit: 30 }),
      listNotificationRules(c.env.DB, { accountId: account.id }),
      liveNames(c, account),
    ]);
    const fields = account.mapping?.fields.map((f) => f.key) ?? [];
    const currency = account.mapping?.currency ?? "USD";
    return c.html(
      <Layout title="Automations" page="automations" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        <p>
          A rule runs its actions once per trigger occurrence, on either side. Field and stage actions write through the
          sync like a person's change; a rule never fires on its own change, and chains stop after 3 steps. Test mode
          records what a rule would do; pausing the account pauses its rules.
        </p>
        <h2>Rules</h2>
        {rules.length === 0 ? (
          <Empty>No automation rules for this account yet.</Empty>
        ) : (
          <table id="automations">
            <thead>
              <tr>
                <th>Name</th>
                <th>When</th>
                <th>If</th>
                <th>Do</th>
                <th>On</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <tr>
                  <td>{r.name}</td>
                  <td>{describeTrigger(r.trigger)}</td>
                  <td>{r.conditions.length === 0 ? "always" : r.conditions.map(describeCondition).join("; ")}</td>
                  <td>{r.actions.map(describeAction).join("; ")}</td>
                  <td>{r.enabled ? "yes" : "paused"}</td>
                  <td>
                    <form method="post" action="/console/automations/toggle" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="id" value={r.id} />
                      <button type="submit" class="secondary">
                        {r.enabled ? "Pause" : "Resume"}
                      </button>
                    </form>
                    <form method="post" action="/console/automations/delete" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="id" value={r.id} />
                      <button type="submit" class="secondary">
                        Delete
                      </button>
                    </form>
                    <form method="post" action="/console/automations/test" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="id" value={r.id} />
                      <input name="record" placeholder="4Degrees deal or HighLevel opportunity id" size={28} required />
                      <button type="submit" class="secondary">
                        Dry run
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Examples</h2>
        <form method="post" action="/console/automations/example" id="examples">
          <input type="hidden" name="account" value={account.id} />
          {(Object.keys(EXAMPLES) as ExampleKey[]).map((k) => (
            <button type="submit" name="example" value={k} class="secondary">
              Enable “{EXAMPLES[k].label}”
            </button>
          ))}
        </form>
        <h2>Add a rule</h2>
        <Datalist id="stage-names" values={names.stages} />
        <Datalist id="pipeline-names" values={names.pipelines} />
        <Datalist id="user-emails" values={names.users} />
        <Datalist id="field-keys" values={fields} />
        <form method="post" action="/console/automations" id="automation-form">
          <input type="hidden" name="account" value={account.id} />
          <label class="block">
            Name <input name="name" required maxlength={200} />
          </label>
          <fieldset>
            <legend>When</legend>
            <select name="trigger">
              {(Object.keys(TRIGGERS) as TriggerKind[]).map((k) => (
                <option value={k}>{TRIGGERS[k]}</option>
              ))}
            </select>
            <label class="block">
              Stage <input name="t_stage" list="stage-names" />
            </label>
            <label class="block">
              Days <input name="t_days" type="number" min={0} max={3650} />
            </label>
            <label class="block">
              Lost reason contains <input name="t_reason" />
            </label>
            <label class="block">
              Value changes by more than ({currency}) <input name="t_by" type="number" min={0} step="any" /> or crosses{" "}
              <input name="t_threshold" type="number" min={0} step="any" />
            </label>
            <label class="block">
              Field <input name="t_field" list="field-keys" /> set to <input name="t_equals" /> or crossing{" "}
              <input name="t_crosses" type="number" step="any" />
            </label>
          </fieldset>
          <fieldset>
            <legend>Only if (optional)</legend>
            <select name="c_kind">
              <option value="">no condition</option>
              {(Object.keys(CONDITIONS) as Condition["kind"][]).map((k) => (
                <option value={k}>{CONDITIONS[k]}</option>
              ))}
            </select>{" "}
            <input name="c_value" list="stage-names" placeholder="name, email, side or value" />
            <label class="block">
              Value from <input name="c_min" type="number" min={0} step="any" /> to{" "}
              <input name="c_max" type="number" min={0} step="any" /> ({currency})
            </label>
            <label class="block">
              Field <input name="c_field" list="field-keys" />{" "}
              <select name="c_op">
                <option value="equals">equals</option>
                <option value="contains">contains</option>
              </select>
            </label>
            <p class="hint">
              Pipelines: {names.pipelines.join(", ") || "—"} · Users: {names.users.join(", ") || "—"}
            </p>
          </fieldset>
          <fieldset>
            <legend>Do</legend>
            <select name="a_kind">
              {(Object.keys(ACTIONS) as Action["kind"][]).map((k) => (
                <option value={k}>{ACTIONS[k]}</option>
              ))}
            </select>
            <label class="block">
              Title / message <input name="a_title" maxlength={200} />
            </label>
            <label class="block">
              Body <textarea name="a_body" rows={2} cols={60}></textarea>
            </label>
            <label class="block">
              Due in days <input name="a_due" type="number" min={0} max={3650} value="1" />
            </label>
            <label class="block">
              Tag{" "}
              <select name="a_op">
                <option value="add">add</option>
                <option value="remove">remove</option>
              </select>{" "}
              <input name="a_tag" />
            </label>
            <label class="block">
              On{" "}
              <select name="a_side">
                <option value="fourdegrees">4Degrees</option>
                <option value="highlevel">HighLevel</option>
              </select>{" "}
              stage <input name="a_stage" list="stage-names" /> or field <input name="a_field" list="field-keys" /> ={" "}
              <input name="a_value" />
            </label>
            <label class="block">
              Notification target{" "}
              <select name="a_target">
                <option value="">—</option>
                {targets.map((t) => (
                  <option value={t.id}>
                    {t.name} ({t.targetKind === "slack" ? "Slack" : "webhook"} · {t.targetHint})
                  </option>
                ))}
              </select>
            </label>
          </fieldset>
          <button type="submit">Add rule</button>
        </form>
        <h2>Recent runs</h2>
        {runs.length === 0 ? (
          <Empty>No rule has run for this account yet.</Empty>
        ) : (
          <table id="runs">
            <thead>
              <tr>
                <th>When</th>
                <th>Rule</th>
                <th>Occurrence</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr>
                  <td>{fmtTime(r.createdAt)}</td>
                  <td>{rules.find((x) => x.id === r.ruleId)?.name ?? r.ruleId}</td>
                  <td>
                    <code>{r.occurrence}</code>
                  </td>
                  <td class={`status-${r.state}`}>{r.state}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Layout>,
    );
  })
  .post("/automations", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "automations", null, { error: "account: choose an existing account" });
    try {
      const input = parseNewAutomation(ruleFromForm(form, account.mapping?.currency ?? "USD"));
      const rule = await createAutomation(c.env.DB, account.id, input);
      c.var.log.info({ event: "automation.rule_created", account: account.id, rule: rule.id, outcome: "ok" });
      return redirectWith(c, "automations", account.id, { ok: `Rule “${rule.name}” added.` });
    } catch (err) {
      if (err instanceof AppError && (err.code === "bad_request" || err.code === "conflict"))
        return redirectWith(c, "automations", account.id, { error: err.message });
      throw err;
    }
  })
  .post("/automations/example", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "automations", null, { error: "account: choose an existing account" });
    const key = typeof form["example"] === "string" ? form["example"] : "";
    if (!(key in EXAMPLES)) return redirectWith(c, "automations", account.id, { error: "example: no such example" });
    const slack = (await listNotificationRules(c.env.DB, { accountId: account.id })).find(
      (r) => r.targetKind === "slack",
    );
    const input = exampleRule(key as ExampleKey, slack?.id ?? null);
    if (!input)
      return redirectWith(c, "automations", account.id, {
        error: "Add a Slack notification target on the Notifications page first.",
      });
    try {
      const rule = await createAutomation(c.env.DB, account.id, parseNewAutomation(input));
      return redirectWith(c, "automations", account.id, { ok: `Rule “${rule.name}” enabled.` });
    } catch (err) {
      if (err instanceof AppError && (err.code === "bad_request" || err.code === "conflict"))
        return redirectWith(c, "automations", account.id, { error: err.message });
      throw err;
    }
  })
  .post("/automations/toggle", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const id = typeof form["id"] === "string" ? form["id"] : "";
    const rule = account && id ? await getAutomation(c.env.DB, account.id, id) : null;
    if (!account || !rule)
      return redirectWith(c, "automations", account?.id ?? null, { error: "id: no such rule in this account" });
    await updateAutomation(c.env.DB, { ...rule, enabled: !rule.enabled, updatedAt: Date.now() });
    return redirectWith(c, "automations", account.id, {
      ok: `Rule “${rule.name}” ${rule.enabled ? "paused" : "resumed"}.`,
    });
  })
  .post("/automations/delete", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const id = typeof form["id"] === "string" ? form["id"] : "";
    try {
      if (!account) throw new AppError("not_found", "account: choose an existing account");
      await removeAutomation(c.env.DB, account.id, id);
      return redirectWith(c, "automations", account.id, { ok: "Rule deleted." });
    } catch (err) {
      if (err instanceof AppError && err.code === "not_found")
        return redirectWith(c, "automations", account?.id ?? null, { error: err.message });
      throw err;
    }
  })
  .post("/automations/test", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const id = typeof form["id"] === "string" ? form["id"] : "";
    const record = typeof form["record"] === "string" ? form["record"].trim() : "";
    if (!account) return redirectWith(c, "automations", null, { error: "account: choose an existing account" });
    try {
      // A HighLevel id is tried when no 4Degrees deal of that id is paired.
      let result;
      try {
        result = await testAutomation(c.env, c.var.config, account.id, id, { fourdegreesDealId: record });
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== "not_found" || err.message.startsWith("no automation"))
          throw err;
        result = await testAutomation(c.env, c.var.config, account.id, id, { highlevelOpportunityId: record });
      }
      const text = result.wouldFire
        ? `Dry run on ${record}: would ${result.actions.map((a) => a.summary).join("; then ")}.`
        : `Dry run on ${record}: would not fire — ${result.reason ?? "no match"}.`;
      return redirectWith(c, "automations", account.id, { ok: text });
    } catch (err) {
      if (err instanceof AppError && ["bad_request", "not_found", "conflict"].includes(err.code))
        return redirectWith(c, "automations", account.id, { error: err.message });
      throw err;
    }
  });
