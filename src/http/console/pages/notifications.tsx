/**
 * Notifications: the account's rules (trigger, target host, on/off), their recent deliveries, a
 * form to add one (validated by the same schema as `POST /api/notifications`) and delete.
 *
 * A new webhook rule's signing secret is shown once on the page after the redirect, from a
 * server-side flash (src/store/console-flashes.ts): the browser carries only a random id in an
 * HttpOnly cookie, the flash is bound to the session that created the rule and deleted on first
 * read. Never in the URL, where it would stay in history and logs, and where any link could put
 * an attacker's text in the "secret" box.
 */
import { Hono, type Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import * as z from "zod";
import { ACCESS_JWT_HEADER } from "../../access.ts";
import type { AppEnv } from "../../context.ts";
import { bytesToBase64, decryptSecret, encryptSecret } from "../../../lib/crypto.ts";
import { AppError } from "../../../lib/errors.ts";
import { sha256Hex } from "../../../lib/hash.ts";
import { createRule, parseNewRule } from "../../notifications.ts";
import { TRIGGER_LABELS } from "../../../notify/rules.ts";
import { NotifyEventSchema } from "../../../notify/events.ts";
import { CONSOLE_FLASH_TTL_MS, putConsoleFlash, takeConsoleFlash } from "../../../store/console-flashes.ts";
import { deleteRule, getRule, listDeliveries, listRules, TriggerSchema } from "../../../store/notifications.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { isLocalPlainHttp, readSession } from "../session.ts";
import { Empty, fmtTime, Layout, NoAccount } from "../ui.tsx";

/** Cookie holding the id of a pending signing-secret flash (over https: `__Host-notify_secret`). */
const SECRET_COOKIE = "notify_secret";
const SecretFlashSchema = z.object({ ruleName: z.string(), secret: z.string().startsWith("whsec_") });
type SecretFlash = z.infer<typeof SecretFlashSchema>;

/** Hash of what authenticated this console request: the session cookie, else the Access JWT. */
function sessionHash(c: Context<AppEnv>): Promise<string> {
  return sha256Hex(`console-flash.v1:${readSession(c) ?? c.req.header(ACCESS_JWT_HEADER) ?? ""}`);
}

const cookieOptions = (c: Context<AppEnv>) => {
  const secure = !isLocalPlainHttp(c.req.url);
  const prefix = secure ? { prefix: "host" as const } : {};
  return { path: "/", httpOnly: true, secure, sameSite: "Strict" as const, ...prefix };
};

/** Stores `flash` for this session's next view of the page and gives the browser its id. */
async function flashSecret(c: Context<AppEnv>, flash: SecretFlash): Promise<void> {
  const random = bytesToBase64(crypto.getRandomValues(new Uint8Array(32)));
  const id = random.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const idHash = await sha256Hex(id);
  const keys = c.var.config.TOKEN_ENCRYPTION_KEY;
  const bodyEnc = await encryptSecret(keys, JSON.stringify(flash), `console_flash:${idHash}`);
  await putConsoleFlash(c.env.DB, { idHash, sessionHash: await sessionHash(c), bodyEnc });
  setCookie(c, SECRET_COOKIE, id, { ...cookieOptions(c), maxAge: CONSOLE_FLASH_TTL_MS / 1000 });
}

/** The pending flash of this session, read once (the row and the cookie are gone afterwards). */
async function takeSecret(c: Context<AppEnv>): Promise<SecretFlash | null> {
  const options = cookieOptions(c);
  const id = options.secure ? getCookie(c, SECRET_COOKIE, "host") : getCookie(c, SECRET_COOKIE);
  if (id === undefined) return null;
  deleteCookie(c, SECRET_COOKIE, options);
  if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
  const idHash = await sha256Hex(id);
  const bodyEnc = await takeConsoleFlash(c.env.DB, idHash, await sessionHash(c));
  if (bodyEnc === null) return null;
  const body = await decryptSecret(c.var.config.TOKEN_ENCRYPTION_KEY, bodyEnc, `console_flash:${idHash}`);
  const parsed = SecretFlashSchema.safeParse(JSON.parse(body));
  return parsed.success ? parsed.data : null;
}

/** What a delivery is about, by name (its change key, full of ids, is on hover). */
function changeLabel(event: unknown): string {
  const e = NotifyEventSchema.safeParse(event);
  if (!e.success) return "a change";
  switch (e.data.kind) {
    case "deal_changed":
      return `${e.data.dealName || "unnamed deal"} (${e.data.source === "fourdegrees" ? "4Degrees" : "HighLevel"} change)`;
    case "sync_failure":
      return `sync failure: ${e.data.reason}`;
    case "needs_reconnect":
      return "a HighLevel location needs reconnecting";
    case "quota_low":
      return `HighLevel quota low on ${e.data.day}`;
    case "unusual_activity":
      return e.data.metric === "webhook_silence"
        ? "HighLevel webhooks went silent while reconcile found changes"
        : `unusual activity: ${e.data.count} ${e.data.metric.replace("_", " ")} in an hour (threshold ${e.data.threshold})`;
    case "deletes_held":
      return `${e.data.count} deletes on hold for approval`;
  }
}

export const notificationsPage = new Hono<AppEnv>()
  .get("/notifications", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Notifications" page="notifications" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    const [rules, deliveries] = await Promise.all([
      listRules(c.env.DB, { accountId: account.id }),
      listDeliveries(c.env.DB, { accountId: account.id }, 50),
    ]);
    const secret = await takeSecret(c);
    // A page showing a secret is kept out of every cache (back/forward included).
    if (secret) c.header("cache-control", "no-store");
    return c.html(
      <Layout title="Notifications" page="notifications" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        {secret && (
          <p class="flash ok" id="signing-secret">
            Signing secret of “{secret.ruleName}” (shown once — copy it now): <code>{secret.secret}</code>
          </p>
        )}
        <h2>Rules</h2>
        {rules.length === 0 ? (
          <Empty>No notification rules for this account yet.</Empty>
        ) : (
          <table id="rules">
            <thead>
              <tr>
                <th>Name</th>
                <th>When</th>
                <th>Delivers to</th>
                <th>On</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <tr>
                  <td>{r.name}</td>
                  <td>
                    {TRIGGER_LABELS[r.trigger]}
                    {r.params.stage ? `: ${r.params.stage}` : ""}
                    {r.params.threshold !== undefined ? ` > ${r.params.threshold}` : ""}
                    {r.params.remaining !== undefined ? ` < ${r.params.remaining}` : ""}
                  </td>
                  <td>
                    {r.targetKind === "slack" ? "Slack" : "signed webhook"} · {r.targetHint}
                  </td>
                  <td>{r.enabled ? "yes" : "no"}</td>
                  <td>
                    <form method="post" action="/console/notifications/delete" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="id" value={r.id} />
                      <button type="submit" class="secondary">
                        Delete
                      </button>
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
          <label class="block">
            Name <input name="name" required maxlength={120} />
          </label>
          <label class="block">
            When{" "}
            <select name="trigger">
              {TriggerSchema.options.map((t) => (
                <option value={t}>{TRIGGER_LABELS[t]}</option>
              ))}
            </select>
          </label>
          <label class="block">
            Stage (for “entered a stage”) <input name="stage" />
          </label>
          <label class="block">
            Threshold in {account.mapping?.currency ?? "USD"} (for “value changed”){" "}
            <input name="threshold" type="number" min={0} step="any" />
          </label>
          <label class="block">
            Calls left below (for “quota”) <input name="remaining" type="number" min={1} max={200000} />
          </label>
          <label class="block">
            Deliver to{" "}
            <select name="kind">
              <option value="slack">Slack incoming webhook</option>
              <option value="webhook">any URL (signed JSON)</option>
            </select>{" "}
            <input name="url" type="url" placeholder="https://hooks.slack.com/services/…" size={60} required />
          </label>
          <button type="submit">Add rule</button>
        </form>
        <h2>Recent deliveries</h2>
        {deliveries.length === 0 ? (
          <Empty>No notification has been sent for this account yet.</Empty>
        ) : (
          <table id="deliveries">
            <thead>
              <tr>
                <th>When</th>
                <th>Rule</th>
                <th>Change</th>
                <th>State</th>
                <th>Attempts</th>
                <th>Last answer</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.map((d) => (
                <tr>
                  <td>{fmtTime(d.createdAt)}</td>
                  <td>{rules.find((r) => r.id === d.ruleId)?.name ?? d.ruleId}</td>
                  <td title={d.changeKey}>{changeLabel(d.event)}</td>
                  <td class={`status-${d.state}`}>{d.state}</td>
                  <td>{d.attempts}</td>
                  <td>
                    {d.lastStatus ?? "—"}
                    {d.lastError ? ` · ${d.lastError}` : ""}
                  </td>
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
      const input = parseNewRule({
        accountId: account.id,
        name: s("name"),
        trigger,
        params,
        target: { kind: s("kind"), url: s("url") },
      });
      const { rule, signingSecret } = await createRule(c.env.DB, c.var.config, input);
      c.var.log.info({
        event: "notify.rule_created",
        account: account.id,
        rule: rule.id,
        trigger: rule.trigger,
        outcome: "ok",
      });
      if (signingSecret) await flashSecret(c, { ruleName: rule.name, secret: signingSecret });
      return redirectWith(c, "notifications", account.id, { ok: `Rule “${rule.name}” added.` });
    } catch (err) {
      if (err instanceof AppError && err.code === "bad_request")
        return redirectWith(c, "notifications", account.id, { error: err.message });
      throw err;
    }
  })
  .post("/notifications/delete", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const id = typeof form["id"] === "string" ? form["id"] : "";
    const rule = id ? await getRule(c.env.DB, id) : null;
    if (!account || !rule || rule.accountId !== account.id)
      return redirectWith(c, "notifications", account?.id ?? null, { error: "id: no such rule in this account" });
    await deleteRule(c.env.DB, rule.id);
    return redirectWith(c, "notifications", account.id, { ok: `Rule “${rule.name}” deleted.` });
  });
