/**
 * Duplicates: the match keys (how unlinked records pair with existing ones), the matcher's unsure
 * cases side by side by name — link two by hand (the engine links and syncs them) or tell them
 * apart (remembered) — and the linked pairs, each of which can be unlinked (nothing is deleted).
 * The work is in src/sync/jobs/duplicates.ts.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../../context.ts";
import { MatchKeysSchema, type MatchKeys } from "../../../domain/mapping-config.ts";
import { listLinks } from "../../../store/links.ts";
import {
  linkByHand,
  listPossibleMatches,
  tellApart,
  unlinkPair,
  type MatchSide,
  type PossibleMatch,
} from "../../../sync/jobs/duplicates.ts";
import { saveMatchKeys } from "../../../sync/jobs/filter-preview.ts";
import { matchingDeps } from "../../matching.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { Empty, fmtTime, Layout, NoAccount } from "../ui.tsx";

const KEYS: Array<[MatchKeys, string]> = [
  ["name_email", "External id, then exact name + contact email (name alone when the deal has no contact email)"],
  ["name", "External id, then exact name"],
  ["external_id", "External id only (the HighLevel field holding the 4Degrees deal id)"],
  ["none", "None: never pair with an existing record; create what is missing"],
];

const Side = ({ s, system }: { s: MatchSide; system: string }) => (
  <div title={`${system} id ${s.id}`}>
    <strong>{s.found ? (s.name ?? "(no name)") : "(no longer exists)"}</strong>
    <div class="hint">
      {system}
      {s.value !== null ? ` · ${s.value.toLocaleString("en-US")}` : ""}
      {s.email ? ` · ${s.email}` : ""}
    </div>
  </div>
);

const MatchRows = ({ m, account }: { m: PossibleMatch; account: string }) => (
  <>
    {m.candidates.map((cand, i) => (
      <tr class="possible-match">
        {i === 0 && (
          <td rowspan={m.candidates.length}>
            <Side s={m.deal} system="4Degrees" />
            <div class="hint">{fmtTime(m.updatedAt)}</div>
          </td>
        )}
        <td>
          <Side s={cand} system="HighLevel" />
        </td>
        <td>
          <form method="post" action="/console/duplicates/link" class="inline">
            <input type="hidden" name="account" value={account} />
            <input type="hidden" name="fd" value={m.deal.id} />
            <input type="hidden" name="hl" value={cand.id} />
            <button type="submit" class="link-by-hand" disabled={!cand.found || !m.deal.found}>
              Link these two
            </button>
          </form>{" "}
          <form method="post" action="/console/duplicates/reject" class="inline">
            <input type="hidden" name="account" value={account} />
            <input type="hidden" name="fd" value={m.deal.id} />
            <input type="hidden" name="hl" value={cand.id} />
            <button type="submit" class="secondary tell-apart">
              Not the same
            </button>
          </form>
        </td>
      </tr>
    ))}
  </>
);

const str = (v: unknown): string => (typeof v === "string" ? v.trim() : "");
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function pairInput(c: Context<AppEnv>) {
  const form = await c.req.parseBody();
  return { account: await formAccount(c, form), fd: str(form["fd"]), hl: str(form["hl"]) };
}

export const duplicatesPage = new Hono<AppEnv>()
  .get("/duplicates", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Duplicates" page="duplicates" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    let matches: PossibleMatch[] = [];
    let loadError: string | null = null;
    try {
      matches = await listPossibleMatches(matchingDeps(c), account);
    } catch (err) {
      loadError = message(err);
    }
    const links = await listLinks(c.env.DB, account.id, { limit: 100 });
    const current = account.mapping?.matchKeys ?? "name_email";
    return c.html(
      <Layout title="Duplicates" page="duplicates" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        <h2>Match keys</h2>
        <form method="post" action="/console/duplicates/match-keys" class="card">
          <input type="hidden" name="account" value={account.id} />
          <p class="hint">
            How a record with no link is paired with an existing record on the other side before anything is created.
            The engine's own creates are always found again. Name keys apply in a backfill.
          </p>
          {KEYS.map(([key, label]) => (
            <div>
              <label>
                <input type="radio" name="matchKeys" value={key} checked={current === key} /> {label}
              </label>
            </div>
          ))}
          <button type="submit" id="save-match-keys" disabled={!account.mapping}>
            Save match keys
          </button>
        </form>
        <h2>Possible matches</h2>
        {loadError && <p class="flash error">Could not read the records: {loadError}</p>}
        {matches.length === 0 ? (
          <Empty>No possible matches: the matcher was sure about every record.</Empty>
        ) : (
          <table id="possible-matches">
            <thead>
              <tr>
                <th>4Degrees deal</th>
                <th>HighLevel opportunity that looks like it</th>
                <th>Decide</th>
              </tr>
            </thead>
            <tbody>
              {matches.map((m) => (
                <MatchRows m={m} account={account.id} />
              ))}
            </tbody>
          </table>
        )}
        <h2>Linked pairs</h2>
        {links.length === 0 ? (
          <Empty>No linked pairs yet.</Empty>
        ) : (
          <table id="linked-pairs">
            <thead>
              <tr>
                <th>Pair</th>
                <th>Last synced</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {links.map((l) => (
                <tr>
                  <td title={`4Degrees ${l.fdDealId} ↔ HighLevel ${l.hlOpportunityId}`}>
                    {typeof l.base["name"] === "string" ? l.base["name"] : "(not synced yet)"}
                  </td>
                  <td>{fmtTime(l.syncedAt)}</td>
                  <td>
                    <form method="post" action="/console/duplicates/unlink" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="fd" value={l.fdDealId} />
                      <button type="submit" class="secondary unlink">
                        Unlink
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p class="hint">
          Unlinking keeps both records (nothing is deleted); neither syncs again until the two are linked by hand.
        </p>
      </Layout>,
    );
  })
  .post("/duplicates/match-keys", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "duplicates", null, { error: "account: choose an existing account" });
    const keys = MatchKeysSchema.safeParse(form["matchKeys"]);
    if (!keys.success) return redirectWith(c, "duplicates", account.id, { error: "matchKeys: choose one option" });
    try {
      await saveMatchKeys(matchingDeps(c), account, keys.data);
    } catch (err) {
      return redirectWith(c, "duplicates", account.id, { error: message(err) });
    }
    return redirectWith(c, "duplicates", account.id, { ok: "Match keys saved." });
  })
  .post("/duplicates/link", async (c) => {
    const { account, fd, hl } = await pairInput(c);
    if (!account) return redirectWith(c, "duplicates", null, { error: "account: choose an existing account" });
    if (!fd || !hl) return redirectWith(c, "duplicates", account.id, { error: "fd, hl: both records are needed" });
    try {
      const r = await linkByHand(matchingDeps(c), account, fd, hl);
      const writes = r.writes.length ? ` (${r.writes.length} write${r.writes.length > 1 ? "s" : ""})` : "";
      return redirectWith(c, "duplicates", account.id, { ok: `Linked by hand and synced${writes}.` });
    } catch (err) {
      return redirectWith(c, "duplicates", account.id, { error: message(err) });
    }
  })
  .post("/duplicates/reject", async (c) => {
    const { account, fd, hl } = await pairInput(c);
    if (!account) return redirectWith(c, "duplicates", null, { error: "account: choose an existing account" });
    if (!fd || !hl) return redirectWith(c, "duplicates", account.id, { error: "fd, hl: both records are needed" });
    try {
      await tellApart(matchingDeps(c), account, fd, hl);
    } catch (err) {
      return redirectWith(c, "duplicates", account.id, { error: message(err) });
    }
    return redirectWith(c, "duplicates", account.id, { ok: "Told apart: this pair will not be suggested again." });
  })
  .post("/duplicates/unlink", async (c) => {
    const { account, fd } = await pairInput(c);
    if (!account) return redirectWith(c, "duplicates", null, { error: "account: choose an existing account" });
    try {
      await unlinkPair(matchingDeps(c), account, fd);
    } catch (err) {
      return redirectWith(c, "duplicates", account.id, { error: message(err) });
    }
    return redirectWith(c, "duplicates", account.id, { ok: "Unlinked: both records are kept and no longer sync." });
  });
