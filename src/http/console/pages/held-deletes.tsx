/**
 * The Problems page's "Alerts" and "Deletes on hold" parts, and the hold's actions. Approve (one, or
 * all) lets the engine apply the account's delete policy to the pair; discard unlinks the pair and
 * leaves the surviving record alone (docs/sync.md "Mass-delete guard"). Either way the decision is
 * carried out by a forced record job, so it goes through the engine's ledger exactly once.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../../context.ts";
import type { Account } from "../../../store/accounts.ts";
import type { SyncEvent } from "../../../store/sync-events.ts";
import type { HeldDelete } from "../../../store/held-deletes.ts";
import { sendMessage } from "../../../queue/queues.ts";
import { applyDecision } from "../../../sync/engine/delete-guard.ts";
import { formAccount, redirectWith } from "../context.ts";
import { Empty, fmtTime, href } from "../ui.tsx";

const side = (s: "fourdegrees" | "highlevel") => (s === "fourdegrees" ? "4Degrees" : "HighLevel");

const text = (v: unknown, fallback: string) => (typeof v === "string" ? v : fallback);

/** The account's recent alerts (the cron's unusual-activity scan, src/notify/activity.ts). */
export const AlertsList = ({ alerts }: { alerts: SyncEvent[] }) => (
  <>
    <h2>Alerts ({alerts.length} in the last 7 days)</h2>
    {alerts.length === 0 ? (
      <Empty>No unusual activity: failures, 429s, deletes and changes are within this account's usual range.</Empty>
    ) : (
      <ul id="alerts" class="alerts">
        {alerts.map((a) => (
          <li data-alert={text(a.detail["key"], "")}>
            {fmtTime(a.at)}: {text(a.detail["summary"], "alert")}
          </li>
        ))}
      </ul>
    )}
  </>
);

/** Deletes the mass-delete guard holds, with approve all / approve one / discard. */
export const HeldDeletes = ({ account, held }: { account: Account; held: HeldDelete[] }) => (
  <>
    <h2>Deletes on hold ({held.length})</h2>
    <p class="hint">
      The guard holds further deletes once more than {account.deleteGuard.maxDeletes} deletes, or more than{" "}
      {account.deleteGuard.maxPercent} % of the pairs, came from one side within an hour. Nothing is deleted on the
      other side while held. Approve applies the delete policy ({account.deletePolicy}); discard unlinks the pair and
      leaves the other record as it is.
    </p>
    {held.length === 0 ? (
      <Empty>No delete is waiting for approval.</Empty>
    ) : (
      <>
        <form method="post" action="/console/problems/held/approve" id="approve-all-held">
          <input type="hidden" name="account" value={account.id} />
          <button type="submit">Approve all {held.length}</button>
        </form>
        <table id="held-deletes">
          <thead>
            <tr>
              <th>Held since</th>
              <th>Deleted in</th>
              <th>Pair</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {held.map((h) => (
              <tr data-held={h.fdDealId}>
                <td>{fmtTime(h.heldAt)}</td>
                <td>{side(h.goneSide)}</td>
                <td>
                  <a href={href("activity/record", account.id, { fd: h.fdDealId })}>
                    4D {h.fdDealId} ↔ HL {h.hlOpportunityId}
                  </a>
                </td>
                <td>
                  <form method="post" action="/console/problems/held/approve" class="inline">
                    <input type="hidden" name="account" value={account.id} />
                    <input type="hidden" name="id" value={h.fdDealId} />
                    <button type="submit">Approve</button>
                  </form>{" "}
                  <form method="post" action="/console/problems/held/discard" class="inline">
                    <input type="hidden" name="account" value={account.id} />
                    <input type="hidden" name="id" value={h.fdDealId} />
                    <button type="submit" class="secondary">
                      Discard
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </>
    )}
  </>
);

/**
 * Decides the form's `id` (or, for approve without an id, every held delete of the account), then
 * enqueues one forced record job per decided pair: the engine applies the decision.
 */
async function decide(c: Context<AppEnv>, decision: "approved" | "discarded"): Promise<Response> {
  const form = await c.req.parseBody();
  const account = await formAccount(c, form);
  if (!account) return redirectWith(c, "problems", null, { error: "account: choose an existing account" });
  const id = typeof form["id"] === "string" ? form["id"].trim() : "";
  const all = decision === "approved" && id === "";
  if (!all && !id) return redirectWith(c, "problems", account.id, { error: "id: name the held delete" });
  const decided = await applyDecision(c.env.DB, (m) => sendMessage(c.env, m), account.id, all ? null : id, decision);
  if (decided.length === 0)
    return redirectWith(c, "problems", account.id, {
      error: all ? "No delete is on hold." : `id: no delete of ${id} is on hold (already decided?)`,
    });
  c.var.log.info({
    event: "console.held_deletes",
    account: account.id,
    decision,
    count: decided.length,
    outcome: "ok",
  });
  const what = decision === "approved" ? "Approved" : "Discarded";
  return redirectWith(c, "problems", account.id, {
    ok: `${what} ${decided.length} held delete(s); the outcome appears in Activity.`,
  });
}

export const heldDeletesRoutes = new Hono<AppEnv>()
  .post("/problems/held/approve", (c) => decide(c, "approved"))
  .post("/problems/held/discard", (c) => decide(c, "discarded"));
