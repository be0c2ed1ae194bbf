/**
 * Report (unified reporting): per mapped pipeline and stage, the count and value of deals in each
 * system, won and lost, a weighted forecast from a win probability per stage (editable here) — or,
 * for a HighLevel opportunity that carries one (API v3), its own `forecastProbability` — and
 * how many records are out of sync — read live from both providers (capped, and said so), with a
 * chart.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context.ts";
import { fourDegreesConnectorFor } from "../../../fourdegrees/wiring.ts";
import { listLinks } from "../../../store/links.ts";
import { saveStageProbabilities, stageProbabilities } from "../../../store/console-views.ts";
import { highLevelPort } from "../../../highlevel/adapter.ts";
import { fromMinor, toMinor } from "../../../domain/money.ts";
import type { Mapping, PipelinePair } from "../../../domain/mapping-config.ts";
import type { Deal } from "../../../domain/port.ts";
import type { Opportunity } from "../../../highlevel/port.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { BarChart, Empty, fmtInt, fmtMoney, Layout, NoAccount, SERIES } from "../ui.tsx";

/** Records read per system and pipeline at most (100 per page, 10 pages). */
export const REPORT_CAP = 1000;

interface Cell {
  count: number;
  value: number;
  /** Σ value × win probability / 100 over the open records whose probability is known (minor units). */
  weighted: number;
  /** Records weighted by their own probability (HighLevel's `forecastProbability`), not the stage's. */
  own: number;
}
interface StageRow {
  key: string;
  name: string;
  kind: "open" | "won" | "lost";
  fd: Cell;
  hl: Cell;
  probability: number | null;
}
interface PipelineReport {
  pair: PipelinePair;
  name: string;
  rows: StageRow[];
  outOfSync: number;
  capped: boolean;
  error: string | null;
}

const zero = (): Cell => ({ count: 0, value: 0, weighted: 0, own: 0 });

/** Adds a record of `value` to `cell`, weighted by `own` (its probability) else the row's. */
function add(cell: Cell, row: StageRow, value: number, own: number | null): void {
  cell.count++;
  cell.value += value;
  const p = row.kind === "open" ? (own ?? row.probability) : null;
  if (p !== null) cell.weighted += (value * p) / 100;
  if (row.kind === "open" && own !== null) cell.own++;
}

/** Builds one pipeline's report rows from both systems' records (pure; exported for tests). */
export function buildRows(
  pair: PipelinePair,
  mapping: Mapping,
  hlStages: Array<{ id: string; name: string }>,
  deals: Deal[],
  opps: Opportunity[],
  probabilities: Map<string, number>,
): StageRow[] {
  const rows = new Map<string, StageRow>();
  for (const s of hlStages)
    rows.set(s.id, {
      key: s.id,
      name: s.name,
      kind: "open",
      fd: zero(),
      hl: zero(),
      probability: probabilities.get(s.id) ?? null,
    });
  rows.set("won", { key: "won", name: "Won", kind: "won", fd: zero(), hl: zero(), probability: 100 });
  rows.set("lost", { key: "lost", name: "Lost", kind: "lost", fd: zero(), hl: zero(), probability: 0 });
  const unmapped = (): StageRow => {
    let r = rows.get("unmapped");
    if (!r)
      rows.set(
        "unmapped",
        (r = {
          key: "unmapped",
          name: "Not in a mapped stage",
          kind: "open",
          fd: zero(),
          hl: zero(),
          probability: null,
        }),
      );
    return r;
  };
  const fdToHl = new Map(pair.stages.map((s) => [s.fourdegrees, s.highlevel]));
  for (const d of deals) {
    const status = d.status === "abandoned" ? mapping.abandonedAs : d.status;
    const row =
      status === "won" || status === "lost"
        ? rows.get(status)
        : (rows.get(fdToHl.get(d.stage.id ?? "") ?? "") ?? unmapped());
    if (!row) continue;
    add(row.fd, row, d.value?.amountMinor ?? 0, null);
  }
  for (const o of opps) {
    const status = o.status === "abandoned" ? mapping.abandonedAs : o.status;
    const row =
      status === "won" || status === "lost" ? rows.get(status) : (rows.get(o.pipelineStageId ?? "") ?? unmapped());
    if (!row) continue;
    // HighLevel's own win probability (API v3) when the opportunity has one, else the stage's.
    add(row.hl, row, o.monetaryValue ? toMinor(o.monetaryValue, mapping.currency) : 0, o.forecastProbability);
  }
  return [...rows.values()];
}

async function collect<T>(
  page: (cursor: string | null) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<{ items: T[]; capped: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < REPORT_CAP / 100; i++) {
    const res = await page(cursor);
    items.push(...res.items);
    cursor = res.nextCursor;
    if (!cursor) return { items, capped: false };
  }
  return { items, capped: true };
}

export const reportPage = new Hono<AppEnv>()
  .get("/report", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    const title = "Report";
    if (!account)
      return c.html(
        <Layout title={title} page="report" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    const mapping = account.mapping;
    if (!mapping)
      return c.html(
        <Layout title={title} page="report" accounts={ctx.accounts} account={account} flash={ctx.flash}>
          <Empty>Save a mapping first: the report is per mapped pipeline and stage.</Empty>
        </Layout>,
      );
    const probabilities = await stageProbabilities(c.env.DB, account.id);
    const links = await listLinks(c.env.DB, account.id, { state: "active", limit: 5000 });
    const reports: PipelineReport[] = [];
    let fdNames = new Map<string, string>();
    let fd: Awaited<ReturnType<typeof fourDegreesConnectorFor>>["connector"] | null = null;
    let fdError: string | null = null;
    try {
      fd = (await fourDegreesConnectorFor(c.env, c.var.config, account.id, "reconcile")).connector;
      fdNames = new Map((await fd.listPipelines()).map((p) => [p.id, p.name]));
    } catch (err) {
      fdError = err instanceof Error ? err.message : String(err);
    }
    for (const pair of mapping.pipelines) {
      try {
        if (!fd) throw new Error(`4Degrees: ${fdError ?? "unavailable"}`);
        const hl = highLevelPort(c.env, c.var.config, pair.highlevelLocationId, "reconcile");
        const hlPipeline = (await hl.listPipelines()).find((p) => p.id === pair.highlevelPipelineId);
        const connector = fd;
        const deals = await collect((cursor) =>
          connector.pageDeals({ pipelineId: pair.fourdegreesPipelineId, cursor, limit: 100 }),
        );
        const opps = await collect((cursor) =>
          hl.searchOpportunities({ pipelineId: pair.highlevelPipelineId, cursor, limit: 100 }),
        );
        const rows = buildRows(pair, mapping, hlPipeline?.stages ?? [], deals.items, opps.items, probabilities);
        // Out of sync: a record with no partner, or a linked pair whose stage/status/value differ.
        const fdById = new Map(deals.items.map((d) => [d.id ?? "", d]));
        const oppById = new Map(opps.items.map((o) => [o.id, o]));
        const fdToHl = new Map(pair.stages.map((s) => [s.fourdegrees, s.highlevel]));
        let outOfSync = 0;
        const pairLinks = links.filter((l) => fdById.has(l.fdDealId) || oppById.has(l.hlOpportunityId));
        const linkedFd = new Set(pairLinks.map((l) => l.fdDealId));
        const linkedHl = new Set(pairLinks.map((l) => l.hlOpportunityId));
        outOfSync += deals.items.filter((d) => d.id && !linkedFd.has(d.id)).length;
        outOfSync += opps.items.filter((o) => !linkedHl.has(o.id)).length;
        for (const l of pairLinks) {
          const d = fdById.get(l.fdDealId);
          const o = oppById.get(l.hlOpportunityId);
          if (!d || !o) {
            outOfSync++;
            continue;
          }
          const dStatus = d.status === "abandoned" ? mapping.abandonedAs : (d.status ?? "open");
          const oStatus = o.status === "abandoned" ? mapping.abandonedAs : o.status;
          const stageDiffers =
            dStatus === "open" && oStatus === "open" && fdToHl.get(d.stage.id ?? "") !== o.pipelineStageId;
          const valueDiffers =
            (d.value?.amountMinor ?? 0) !== (o.monetaryValue ? toMinor(o.monetaryValue, mapping.currency) : 0);
          if (dStatus !== oStatus || stageDiffers || valueDiffers) outOfSync++;
        }
        reports.push({
          pair,
          name: `${fdNames.get(pair.fourdegreesPipelineId) ?? pair.fourdegreesPipelineId} ↔ ${hlPipeline?.name ?? pair.highlevelPipelineId}`,
          rows,
          outOfSync,
          capped: deals.capped || opps.capped,
          error: null,
        });
      } catch (err) {
        reports.push({
          pair,
          name: `${fdNames.get(pair.fourdegreesPipelineId) ?? pair.fourdegreesPipelineId} ↔ ${pair.highlevelPipelineId}`,
          rows: [],
          outOfSync: 0,
          capped: false,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    const cur = mapping.currency;
    const weighted = (rows: StageRow[], side: "fd" | "hl") => rows.reduce((sum, r) => sum + r[side].weighted, 0);
    const ownProbabilities = (rows: StageRow[]) => rows.reduce((sum, r) => sum + r.hl.own, 0);
    return c.html(
      <Layout title={title} page="report" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        <p>
          Read live from both systems (at most {fmtInt(REPORT_CAP)} records per system and pipeline). The weighted
          forecast sums open deals' value × the stage's win probability; a HighLevel opportunity with its own forecast
          probability (API v3) is weighted by that instead.
        </p>
        {reports.map((r) => (
          <section class="card pipeline-report">
            <h2>{r.name}</h2>
            {r.error ? (
              <p class="flash error">Could not read this pipeline: {r.error}</p>
            ) : (
              <>
                <p>
                  Out of sync:{" "}
                  <strong
                    id={`out-of-sync-${r.pair.highlevelPipelineId}`}
                    class={r.outOfSync ? "status-failed" : "status-ok"}
                  >
                    {fmtInt(r.outOfSync)}
                  </strong>{" "}
                  record(s)
                  {r.capped && " (capped read: figures cover the first records only)"} · weighted forecast:{" "}
                  {r.rows.some((x) => x.kind === "open" && x.key !== "unmapped" && x.probability !== null) ||
                  ownProbabilities(r.rows) > 0 ? (
                    <span id={`forecast-${r.pair.highlevelPipelineId}`}>
                      4Degrees {fmtMoney(Math.round(weighted(r.rows, "fd")), cur)}, HighLevel{" "}
                      {fmtMoney(Math.round(weighted(r.rows, "hl")), cur)}
                      {ownProbabilities(r.rows) > 0 &&
                        ` (${fmtInt(ownProbabilities(r.rows))} HighLevel opportunit${ownProbabilities(r.rows) === 1 ? "y" : "ies"} by their own forecast probability)`}
                    </span>
                  ) : (
                    "set a win probability per stage below to see it"
                  )}
                </p>
                {r.rows.every((x) => x.fd.count === 0 && x.hl.count === 0) ? (
                  <Empty>Neither system has a deal in this pipeline yet.</Empty>
                ) : (
                  <BarChart
                    label={`Value per stage (${cur}, whole units)`}
                    groups={2}
                    legend={["4Degrees", "HighLevel"]}
                    bars={r.rows.flatMap((x) => [
                      {
                        label: x.name,
                        value: Math.round(fromMinor(x.fd.value, cur)),
                        color: SERIES[0],
                        title: `${x.name} — 4Degrees: ${fmtInt(x.fd.count)} deal(s), ${fmtMoney(x.fd.value, cur)}`,
                      },
                      {
                        label: x.name,
                        value: Math.round(fromMinor(x.hl.value, cur)),
                        color: SERIES[1],
                        title: `${x.name} — HighLevel: ${fmtInt(x.hl.count)} opportunit${x.hl.count === 1 ? "y" : "ies"}, ${fmtMoney(x.hl.value, cur)}`,
                      },
                    ])}
                  />
                )}
                <form method="post" action="/console/report/probabilities">
                  <input type="hidden" name="account" value={account.id} />
                  <table>
                    <thead>
                      <tr>
                        <th>Stage</th>
                        <th class="num">4Degrees deals</th>
                        <th class="num">4Degrees value</th>
                        <th class="num">HighLevel opps</th>
                        <th class="num">HighLevel value</th>
                        <th class="num">Win probability %</th>
                      </tr>
                    </thead>
                    <tbody>
                      {r.rows.map((x) => (
                        <tr data-stage={x.key}>
                          <td>{x.name}</td>
                          <td class="num">{fmtInt(x.fd.count)}</td>
                          <td class="num">{fmtMoney(x.fd.value, cur)}</td>
                          <td class="num">{fmtInt(x.hl.count)}</td>
                          <td class="num">{fmtMoney(x.hl.value, cur)}</td>
                          <td class="num">
                            {x.kind === "open" && x.key !== "unmapped" ? (
                              <input
                                type="number"
                                name={`p:${x.key}`}
                                min={0}
                                max={100}
                                step={1}
                                value={x.probability === null ? "" : String(x.probability)}
                              />
                            ) : x.kind === "won" ? (
                              "100 (won)"
                            ) : x.kind === "lost" ? (
                              "0 (lost)"
                            ) : (
                              "—"
                            )}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                  <button type="submit">Save probabilities</button>
                </form>
              </>
            )}
          </section>
        ))}
      </Layout>,
    );
  })
  .post("/report/probabilities", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "report", null, { error: "account: choose an existing account" });
    const values = new Map<string, number>();
    for (const [k, v] of Object.entries(form)) {
      if (!k.startsWith("p:") || typeof v !== "string" || v.trim() === "") continue;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 100)
        return redirectWith(c, "report", account.id, {
          error: `${k.slice(2)}: the probability must be a whole number from 0 to 100`,
        });
      values.set(k.slice(2), n);
    }
    await saveStageProbabilities(c.env.DB, account.id, values);
    return redirectWith(c, "report", account.id, {
      ok: `Saved ${values.size} stage probabilit${values.size === 1 ? "y" : "ies"}.`,
    });
  });
