/**
 * Connections: "Connect HighLevel" (starts the OAuth install), every HighLevel connection with its
 * status, attaching a new location to an account, each account's 4Degrees key status, and a
 * "test connection" that makes one read call to each side and shows the answer.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../../context.ts";
import { fourDegreesConnectorFor } from "../../../fourdegrees/wiring.ts";
import { updateAccount, type Account } from "../../../store/accounts.ts";
import { getAppCondition, HIGHLEVEL_CLIENT_REJECTED } from "../../../store/app-status.ts";
import { listConnections, type Connection } from "../../../store/connections.ts";
import { getFourDegreesAccount, type FourDegreesAccountSummary } from "../../../store/fourdegrees-accounts.ts";
import { highLevelPort } from "../../../highlevel/adapter.ts";
import { formAccount, pageContext, redirectWith, type PageContext } from "../context.ts";
import { isLive } from "../setup-steps.ts";
import { Empty, fmtTime, href, Layout } from "../ui.tsx";
import { LocationLabel, locationNames, Named } from "../names.tsx";

interface TestResult {
  side: string;
  target: string;
  ok: boolean;
  answer: string;
  ms: number;
}

function statusOf(conn: Connection, accounts: Account[]): string {
  const owner = accounts.find((a) => a.id === conn.accountId || a.locations.includes(conn.locationId ?? ""));
  if (conn.status === "active" && owner?.status === "paused") return "paused";
  return conn.status === "active" ? "connected" : conn.status;
}

const LABEL: Record<string, string> = {
  connected: "connected",
  needs_reconnect: "needs reconnect",
  backoff: "retrying refresh",
  uninstalled: "uninstalled",
  paused: "paused",
};

async function render(c: Context<AppEnv>, ctx: PageContext, tests: TestResult[] | null) {
  const connections = await listConnections(c.env.DB);
  const keys = new Map<string, FourDegreesAccountSummary | null>();
  for (const a of ctx.accounts) keys.set(a.id, await getFourDegreesAccount(c.env.DB, a.id));
  const ownerOf = (conn: Connection) =>
    ctx.accounts.find((a) => a.locations.includes(conn.locationId ?? ""))?.id ?? conn.accountId;
  const unattached = connections.filter(
    (conn) => conn.kind === "location" && conn.status !== "uninstalled" && !ownerOf(conn),
  );
  // An install from the Marketplace listing carries no state: nobody signed in here started it.
  const marketplaceAgencies = new Set(
    connections
      .filter((conn) => conn.kind === "company" && conn.installOrigin === "marketplace")
      .map((conn) => conn.companyId),
  );
  const fromMarketplace = (conn: Connection) =>
    conn.installOrigin === "marketplace" || (conn.installOrigin === null && marketplaceAgencies.has(conn.companyId));
  const unverified = unattached.filter(fromMarketplace);
  const clientRejected = await getAppCondition(c.env.DB, HIGHLEVEL_CLIENT_REJECTED);
  const locNames = await locationNames(
    c,
    connections.flatMap((conn) => (conn.locationId && conn.status !== "uninstalled" ? [conn.locationId] : [])),
  );
  return c.html(
    <Layout title="Connections" page="connections" accounts={ctx.accounts} account={ctx.account} flash={ctx.flash}>
      {clientRejected && (
        <p class="flash error" role="alert" id="client-rejected-banner">
          Since {fmtTime(clientRejected.since)}: {clientRejected.reason}. Token refreshes fail until the secret is
          fixed; the connections keep their refresh tokens and recover on the next refresh.
        </p>
      )}
      {unverified.length > 0 && (
        <p class="flash error" role="alert" id="marketplace-banner">
          {unverified.length} location(s) were connected from the HighLevel Marketplace listing, not from this console:{" "}
          {unverified.map((conn, i) => (
            <>
              {i > 0 && ", "}
              <LocationLabel id={conn.locationId ?? ""} names={locNames} />
            </>
          ))}
          . They stay unattached, so nothing syncs for them, until you check they belong to you and attach them to an
          account below.
        </p>
      )}
      <p>
        <a class="button" href="/oauth/install" id="connect-highlevel">
          Connect HighLevel
        </a>{" "}
        opens HighLevel's install page; choose the location(s) to sync and approve. New here? The{" "}
        <a href="/console/setup?new=1">guided setup</a> walks a new account from nothing to live.
      </p>

      <h2>HighLevel locations</h2>
      {connections.length === 0 ? (
        <Empty>No HighLevel location is connected yet. Use “Connect HighLevel” above.</Empty>
      ) : (
        <table id="highlevel-connections">
          <thead>
            <tr>
              <th>Location</th>
              <th>Agency</th>
              <th>Account</th>
              <th>Status</th>
              <th>Token expires</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {connections.map((conn) => {
              const status = statusOf(conn, ctx.accounts);
              return (
                <tr data-location={conn.locationId ?? ""}>
                  <td>
                    {conn.locationId ? (
                      <LocationLabel id={conn.locationId} names={locNames} />
                    ) : (
                      "(the agency connection)"
                    )}
                  </td>
                  <td>
                    {conn.companyId ? <Named name={null} id={conn.companyId} fallback="HighLevel agency" /> : "—"}
                  </td>
                  <td>
                    {ownerOf(conn) ?? (fromMarketplace(conn) ? "not attached (Marketplace install)" : "not attached")}
                  </td>
                  <td class={`status-${status === "connected" ? "active" : status}`}>
                    {LABEL[status] ?? status}
                    {status === "needs_reconnect" && (
                      <>
                        {" "}
                        — <a href="/oauth/install">reconnect</a>
                      </>
                    )}
                  </td>
                  <td>{fmtTime(conn.expiresAt)}</td>
                  <td>{conn.lastError ?? "—"}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      {unattached.length > 0 && ctx.accounts.length > 0 && (
        <>
          <h2>Attach a location to an account</h2>
          <form method="post" action="/console/connections/attach" id="attach-form">
            <label>
              Location{" "}
              <select name="location">
                {unattached.map((conn) => (
                  <option value={conn.locationId ?? ""} title={conn.locationId ?? ""}>
                    {locNames.get(conn.locationId ?? "") ?? "HighLevel location (name unavailable)"}
                  </option>
                ))}
              </select>
            </label>{" "}
            <label>
              Account{" "}
              <select name="account">
                {ctx.accounts.map((a) => (
                  <option value={a.id} selected={a.id === ctx.account?.id}>
                    {a.name}
                  </option>
                ))}
              </select>
            </label>{" "}
            <button type="submit">Attach</button>
          </form>
        </>
      )}

      <h2>4Degrees</h2>
      {ctx.accounts.length === 0 ? (
        <Empty>No account exists yet: set a 4Degrees API key with PUT /api/accounts/&lt;id&gt;/fourdegrees.</Empty>
      ) : (
        <table id="fourdegrees-keys">
          <thead>
            <tr>
              <th>Account</th>
              <th>Sync</th>
              <th>Workspace</th>
              <th>API key</th>
              <th>Verified</th>
              <th>HighLevel locations</th>
            </tr>
          </thead>
          <tbody>
            {ctx.accounts.map((a) => {
              const k = keys.get(a.id);
              return (
                <tr>
                  <td>
                    {a.name} ({a.id})
                  </td>
                  <td class={`status-${a.status}`}>
                    {a.status}
                    {a.testMode ? " · test mode" : ""}
                    {!isLive(a) && (
                      <>
                        {" "}
                        · <a href={href("setup", a.id)}>finish the guided setup</a>
                      </>
                    )}
                  </td>
                  <td>{k?.workspaceId ?? "—"}</td>
                  <td class={k || c.var.config.FOURDEGREES_API_KEY ? "status-ok" : "status-failed"}>
                    {k
                      ? `set (…${k.keyHint})`
                      : c.var.config.FOURDEGREES_API_KEY
                        ? "from FOURDEGREES_API_KEY secret"
                        : "missing"}
                  </td>
                  <td>{fmtTime(k?.verifiedAt)}</td>
                  <td>
                    {a.locations.length === 0
                      ? "none"
                      : a.locations.map((l, i) => (
                          <>
                            {i > 0 && ", "}
                            <LocationLabel id={l} names={locNames} />
                          </>
                        ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      {ctx.account && (
        <>
          <h2>Test connection</h2>
          <form method="post" action="/console/connections/test">
            <input type="hidden" name="account" value={ctx.account.id} />
            <button type="submit" id="test-connection">
              Test {ctx.account.name}
            </button>{" "}
            makes one read call to each side.
          </form>
          {tests && (
            <table id="test-results">
              <thead>
                <tr>
                  <th>Side</th>
                  <th>Target</th>
                  <th>Result</th>
                  <th>Answer</th>
                  <th class="num">Time</th>
                </tr>
              </thead>
              <tbody>
                {tests.map((t) => (
                  <tr>
                    <td>{t.side}</td>
                    <td>{t.target}</td>
                    <td class={t.ok ? "status-ok" : "status-failed"}>{t.ok ? "ok" : "failed"}</td>
                    <td>{t.answer}</td>
                    <td class="num">{t.ms} ms</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </Layout>,
  );
}

async function timed(side: string, target: string, run: () => Promise<string>): Promise<TestResult> {
  const started = Date.now();
  try {
    return { side, target, ok: true, answer: await run(), ms: Date.now() - started };
  } catch (err) {
    return {
      side,
      target,
      ok: false,
      answer: err instanceof Error ? err.message : String(err),
      ms: Date.now() - started,
    };
  }
}

export const connectionsPage = new Hono<AppEnv>()
  .get("/connections", async (c) => render(c, await pageContext(c), null))
  .post("/connections/test", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "connections", null, { error: "Choose an existing account to test." });
    const tests: TestResult[] = [];
    tests.push(
      await timed("4Degrees", account.workspaceId ?? account.id, async () => {
        // One read: GET /me (https://api.4degrees.ai/v1/me — assumed contract, docs/fourdegrees.md).
        const { connector } = await fourDegreesConnectorFor(c.env, c.var.config, account.id, "live");
        const me = await connector.whoAmI();
        return `workspace ${me.scopeId}, writing as ${me.actor.type}${me.actor.id ? ` ${me.actor.id}` : ""}`;
      }),
    );
    if (account.locations.length === 0)
      tests.push({
        side: "HighLevel",
        target: "—",
        ok: false,
        answer: "this account has no HighLevel location yet",
        ms: 0,
      });
    for (const loc of account.locations) {
      tests.push(
        await timed("HighLevel", loc, async () => {
          // One read: GET /opportunities/pipelines (https://highlevel.stoplight.io/docs/integrations/) — through the location's gate.
          const pipelines = await highLevelPort(c.env, c.var.config, loc, "live").listPipelines();
          return `${pipelines.length} pipeline(s): ${pipelines.map((p) => p.name).join(", ") || "none"}`;
        }),
      );
    }
    c.var.log.info({
      event: "console.test_connection",
      account: account.id,
      outcome: tests.every((t) => t.ok) ? "ok" : "failed",
      calls: tests.length,
    });
    const ctx = await pageContext(c);
    return render(c, { ...ctx, account }, tests);
  })
  .post("/connections/attach", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const location = typeof form["location"] === "string" ? form["location"] : "";
    if (!account) return redirectWith(c, "connections", null, { error: "account: choose an existing account" });
    const connections = await listConnections(c.env.DB);
    if (!connections.some((conn) => conn.locationId === location))
      return redirectWith(c, "connections", account.id, {
        error: `location: ${location || "(none)"} is not a connected HighLevel location`,
      });
    await updateAccount(c.env.DB, account.id, { locations: [...new Set([...account.locations, location])] });
    c.var.log.info({ event: "console.location_attached", account: account.id, location, outcome: "ok" });
    return redirectWith(c, "connections", account.id, { ok: `Location ${location} now syncs with ${account.name}.` });
  });
