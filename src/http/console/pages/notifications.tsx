/**
 * Notifications: the account's rules (trigger, target host, on/off), their recent deliveries, a
 * form to add one (validated by the same schema as `POST /api/notifications`) and delete.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context.ts";
import { AppError } from "../../../lib/errors.ts";
import { createRule, parseNewRule } from "../../notifications.ts";
import { TRIGGER_LABELS } from "../../../notify/rules.ts";
import { deleteRule, getRule, listDeliveries, listRules, TriggerSchema } from "../../../store/notifications.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { Empty, fmtTime, Layout, NoAccount } from "../ui.tsx";

export const notificationsPage = new Hono<AppEnv>()
  .get("/notifications", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account) return c.html(<Layout title="Notifications" page="notifications" accounts={ctx.accounts} account={null} flash={ctx.flash}><NoAccount /></Layout>);
    const [rules, deliveries] = await Promise.all([listRules(c.env.DB, { accountId: account.id }), listDeliveries(c.env.DB, { accountId: account.id }, 50)]);
    const secret = c.req.query("secret");
    return c.html(
      <Layout title="Notifications" page="notifications" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        {secret && <p class="flash ok">Signing secret of the new webhook rule (shown once): <code>{secret}</code></p>}
        <h2>Rules</h2>
        {rules.length === 0 ? (
          <Empty>No notification rules for this account yet.</Empty>
        ) : (
          <table id="rules">
            <thead><tr><th>Name</th><th>When</th><th>Delivers to</th><th>On</th><th></th></tr></thead>
            <tbody>
              {rules.map((r) => (
                <tr>
                  <td>{r.name}</td>
                  <td>{TRIGGER_LABELS[r.trigger]}{r.params.stage ? `: ${r.params.stage}` : ""}{r.params.threshold !== undefined ? ` > ${r.params.threshold}` : ""}{r.params.remaining !== undefined ? ` < ${r.params.remaining}` : ""}</td>
                  <td>{r.targetKind === "slack" ? "Slack" : "signed webhook"} · {r.targetHint}</td>
                  <td>{r.enabled ? "yes" : "no"}</td>
                  <td>
                    <form method="post" action="/console/notifications/delete" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="id" value={r.id} />
                      <button type="submit" class="secondary">Delete</button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h2>Add a rule</h2>
        <form method="post" action="/console/notifications" id="rule-form">
          <input type="hidden" name="account" value={account.id} />
          <label class="block">Name <input name="name" required maxlength={120} /></label>
          <label class="block">
            When{" "}
            <select name="trigger">{TriggerSchema.options.map((t) => <option value={t}>{TRIGGER_LABELS[t]}</option>)}</select>
          </label>
          <label class="block">Stage (for “entered a stage”) <input name="stage" /></label>
          <label class="block">Threshold in {account.mapping?.currency ?? "USD"} (for “value changed”) <input name="threshold" type="number" min={0} step="any" /></label>
          <label class="block">Calls left below (for “quota”) <input name="remaining" type="number" min={1} max={200000} /></label>
          <label class="block">
            Deliver to{" "}
            <select name="kind"><option value="slack">Slack incoming webhook</option><option value="webhook">any URL (signed JSON)</option></select>{" "}
            <input name="url" type="url" placeholder="https://hooks.slack.com/services/…" size={60} required />
          </label>
          <button type="submit">Add rule</button>
        </form>
        <h2>Recent deliveries</h2>
        {deliveries.length === 0 ? (
          <Empty>No notification has been sent for this account yet.</Empty>
        ) : (
          <table id="deliveries">
            <thead><tr><th>When</th><th>Rule</th><th>Change</th><th>State</th><th>Attempts</th><th>Last answer</th></tr></thead>
            <tbody>
              {deliveries.map((d) => (
                <tr>
                  <td>{fmtTime(d.createdAt)}</td>
                  <td>{rules.find((r) => r.id === d.ruleId)?.name ?? d.ruleId}</td>
                  <td><code>{d.changeKey}</code></td>
                  <td class={`status-${d.state}`}>{d.state}</td>
                  <td>{d.attempts}</td>
                  <td>{d.lastStatus ?? "—"}{d.lastError ? ` · ${d.lastError}` : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Layout>,
    );
  })
  .post("/notifications", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "notifications", null, { error: "account: choose an existing account" });
    const s = (k: string) => (typeof form[k] === "string" ? form[k].trim() : "");
    const trigger = s("trigger");
    const params: Record<string, unknown> = {};
    if (trigger === "stage_entered") params["stage"] = s("stage");
    if (trigger === "value_changed") params["threshold"] = s("threshold") === "" ? undefined : Number(s("threshold"));
    if (trigger === "quota_low") params["remaining"] = s("remaining") === "" ? undefined : Number(s("remaining"));
    try {
      const input = parseNewRule({ accountId: account.id, name: s("name"), trigger, params, target: { kind: s("kind"), url: s("url") } });
      const { rule, signingSecret } = await createRule(c.env.DB, c.var.config, input);
      c.var.log.info({ event: "notify.rule_created", account: account.id, rule: rule.id, trigger: rule.trigger, outcome: "ok" });
      return redirectWith(c, "notifications", account.id, { ok: `Rule “${rule.name}” added.` }, signingSecret ? { secret: signingSecret } : {});
    } catch (err) {
      if (err instanceof AppError && err.code === "bad_request") return redirectWith(c, "notifications", account.id, { error: err.message });
      throw err;
    }
  })
  .post("/notifications/delete", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const id = typeof form["id"] === "string" ? form["id"] : "";
    const rule = id ? await getRule(c.env.DB, id) : null;
    if (!account || !rule || rule.accountId !== account.id) return redirectWith(c, "notifications", account?.id ?? null, { error: "id: no such rule in this account" });
    await deleteRule(c.env.DB, rule.id);
    return redirectWith(c, "notifications", account.id, { ok: `Rule “${rule.name}” deleted.` });
  });
