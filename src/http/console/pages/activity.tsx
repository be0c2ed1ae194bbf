/**
 * Activity: the sync trail filtered by record, direction and outcome, a chart of events per hour,
 * and one record's whole history (what changed, which side won, which calls were made).
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context.ts";
import {
  activityFacets,
  eventsPerHour,
  listActivity,
  recordHistory,
  recordNames,
  type RecordNames,
} from "../../../store/console-views.ts";
import { baseValue, fourDegreesStructure, recordLabel } from "../names.tsx";
import { findLink } from "../../../store/links.ts";
import type { SyncEvent } from "../../../store/sync-events.ts";
import { pageContext } from "../context.ts";
import { BarChart, Empty, fmtTime, href, Layout, NoAccount } from "../ui.tsx";

const SIDE: Record<string, string> = {
  highlevel: "HighLevel",
  fourdegrees: "4Degrees",
  to_highlevel: "→ HighLevel",
  to_fourdegrees: "→ 4Degrees",
};
/** How a direction reads in the table and the filter. */
export const directionLabel = (d: string | null): string =>
  d === null ? "—" : d === "none" ? "no write" : (SIDE[d] ?? d);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

/** The parts of an event's detail people look for first; the rest is shown as JSON. */
export function summary(e: SyncEvent): string {
  const d = e.detail;
  const parts: string[] = [];
  const changed = d["changed"] ?? d["fields"] ?? d["keys"];
  if (Array.isArray(changed) && changed.length) parts.push(`changed: ${changed.map(String).join(", ")}`);
  else if (changed && typeof changed === "object") {
    // The engine's form: the fields that changed per direction.
    for (const [dir, keys] of Object.entries(changed))
      if (strings(keys).length) parts.push(`changed ${SIDE[dir] ?? dir}: ${strings(keys).join(", ")}`);
  }
  const writes: unknown[] = Array.isArray(d["writes"]) ? d["writes"] : [];
  const wrote = writes.flatMap((w) =>
    w && typeof w === "object" && "op" in w
      ? [
          `${SIDE[String("side" in w ? w.side : "")] ?? ""} ${String(w.op)}${"fields" in w && strings(w.fields).length ? ` (${strings(w.fields).join(", ")})` : ""}`.trim(),
        ]
      : [],
  );
  if (wrote.length) parts.push(`wrote: ${wrote.join("; ")}`);
  // What a write could not carry (an unmapped picklist option, an owner with no match) is shown, not buried.
  const skipped: unknown[] = Array.isArray(d["skipped"]) ? (d["skipped"] as unknown[]) : [];
  const notCarried = skipped.flatMap((x: unknown) =>
    x && typeof x === "object" && "reason" in x && typeof x.reason === "string" ? [x.reason] : [],
  );
  if (notCarried.length) parts.push(`skipped: ${notCarried.join("; ")}`);
  for (const k of ["reason", "winner", "policy", "operation", "error"])
    if (typeof d[k] === "string") parts.push(`${k}: ${String(d[k])}`);
  if (typeof d["conflicts"] === "number" && d["conflicts"] > 0) parts.push(`conflicts: ${d["conflicts"]}`);
  if (typeof d["calls"] === "number") parts.push(`calls: ${d["calls"]}`);
  return parts.join(" · ");
}

/** A fixed 24-hour axis (hours without events are zero), oldest first. */
function last24Hours(hourly: Array<{ hour: number; total: number; failed: number }>, now: number = Date.now()) {
  const thisHour = Math.floor(now / 3600_000) * 3600_000;
  const byHour = new Map(hourly.map((h) => [h.hour, h]));
  return Array.from({ length: 24 }, (_, i) => {
    const hour = thisHour - (23 - i) * 3600_000;
    return { hour, total: byHour.get(hour)?.total ?? 0, failed: byHour.get(hour)?.failed ?? 0 };
  });
}

/** The names of the records these events concern. */
const namesOf = (db: D1Database, account: string, events: SyncEvent[]) =>
  recordNames(db, account, {
    fourdegrees: events.flatMap((e) => (e.fdId ? [e.fdId] : [])),
    highlevel: events.flatMap((e) => (e.hlId ? [e.hlId] : [])),
  });

const EventsTable = ({
  events,
  account,
  withRecord,
  names,
}: {
  events: SyncEvent[];
  account: string;
  withRecord: boolean;
  names: RecordNames;
}) => (
  <table class="events">
    <thead>
      <tr>
        <th>When</th>
        <th>Kind</th>
        <th>Direction</th>
        <th>Outcome</th>
        {withRecord && <th>Record</th>}
        <th>What happened</th>
      </tr>
    </thead>
    <tbody>
      {events.map((e) => (
        <tr data-event={e.id}>
          <td>{fmtTime(e.at)}</td>
          <td>{e.kind}</td>
          <td data-direction={e.direction ?? ""}>{directionLabel(e.direction)}</td>
          <td class={`status-${e.outcome}`}>{e.outcome}</td>
          {withRecord && (
            <td>
              {e.fdId || e.hlId ? (
                <a
                  href={href("activity/record", account, { fd: e.fdId, hl: e.hlId })}
                  title={recordLabel(names, e.fdId, e.hlId).title}
                >
                  {recordLabel(names, e.fdId, e.hlId).text}
                </a>
              ) : (
                "—"
              )}
            </td>
          )}
          <td>
            {summary(e)}
            {Object.keys(e.detail).length > 0 && (
              <details>
                <summary>detail</summary>
                <pre>{JSON.stringify(e.detail, null, 2)}</pre>
              </details>
            )}
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);

export const activityPage = new Hono<AppEnv>()
  .get("/activity", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Activity" page="activity" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    const q = c.req.query();
    const filter = {
      record: q["record"]?.trim() || undefined,
      direction: q["direction"] || undefined,
      outcome: q["outcome"] || undefined,
    };
    const beforeId = Number(q["before"]);
    const [events, facets, hourly] = await Promise.all([
      listActivity(c.env.DB, account.id, {
        ...filter,
        ...(Number.isInteger(beforeId) && beforeId > 0 ? { beforeId } : {}),
        limit: 100,
      }),
      activityFacets(c.env.DB, account.id),
      eventsPerHour(c.env.DB, account.id, Date.now() - 24 * 3600_000),
    ]);
    const names = await namesOf(c.env.DB, account.id, events);
    const filtered = Boolean(filter.record || filter.direction || filter.outcome);
    return c.html(
      <Layout title="Activity" page="activity" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        {hourly.length > 0 && (
          <BarChart
            label="Sync events per hour (UTC), last 24 hours; red: failed"
            bars={last24Hours(hourly).map((h) => ({
              label: new Date(h.hour).toISOString().slice(11, 13) + "h",
              value: h.total,
              alert: h.failed,
              title: `${new Date(h.hour).toISOString().slice(0, 13)}:00 UTC: ${h.total} event(s), ${h.failed} failed`,
            }))}
          />
        )}
        <form method="get" action="/console/activity" id="activity-filter">
          <input type="hidden" name="account" value={account.id} />
          <label>
            Search{" "}
            <input
              type="search"
              name="record"
              value={filter.record ?? ""}
              placeholder="record name or 4Degrees / HighLevel id"
            />
          </label>{" "}
          <label>
            Direction{" "}
            <select name="direction">
              <option value="">any</option>
              {facets.directions.map((d) => (
                <option value={d} selected={d === filter.direction}>
                  {directionLabel(d)}
                </option>
              ))}
            </select>
          </label>{" "}
          <label>
            Outcome{" "}
            <select name="outcome">
              <option value="">any</option>
              {facets.outcomes.map((o) => (
                <option value={o} selected={o === filter.outcome}>
                  {o}
                </option>
              ))}
            </select>
          </label>{" "}
          <button type="submit">Filter</button>
        </form>
        {events.length === 0 ? (
          <Empty>
            {filtered
              ? "No sync events match these filters."
              : "No sync activity yet for this account. Changes appear here as soon as a webhook or a backfill syncs a record."}
          </Empty>
        ) : (
          <>
            <EventsTable events={events} account={account.id} withRecord={true} names={names} />
            {events.length === 100 && (
              <a href={href("activity", account.id, { ...filter, before: events.at(-1)?.id })}>Older events →</a>
            )}
          </>
        )}
      </Layout>,
    );
  })
  .get("/activity/record", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Record history" page="activity" accounts={ctx.accounts} account={null}>
          <NoAccount />
        </Layout>,
      );
    const fd = c.req.query("fd")?.trim() || null;
    const hl = c.req.query("hl")?.trim() || null;
    const link =
      (fd ? await findLink(c.env.DB, account.id, "fourdegrees", fd) : null) ??
      (hl ? await findLink(c.env.DB, account.id, "highlevel", hl) : null);
    const ids = [fd, hl, link?.fdDealId, link?.hlOpportunityId].filter((x): x is string => Boolean(x));
    const events = await recordHistory(c.env.DB, account.id, ids);
    const names = await namesOf(c.env.DB, account.id, events);
    const label = recordLabel(names, link?.fdDealId ?? fd, link?.hlOpportunityId ?? hl);
    const name = typeof link?.base["name"] === "string" && link.base["name"] ? link.base["name"] : label.text;
    // Names for the snapshot's pipeline, stage and owner (only a linked pair has one).
    const structure = link ? await fourDegreesStructure(c, account.id) : { pipelines: [], users: [] };
    return c.html(
      <Layout title={`History of ${name}`} page="activity" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        <p>
          <strong title={label.title}>{name}</strong>
          {link
            ? ` · linked, last synced ${fmtTime(link.syncedAt)}${link.state === "deleted" ? ` · deleted on ${link.deletedSide ?? "one side"}` : ""}`
            : " · not linked"}
        </p>
        <details id="record-ids">
          <summary>ids</summary>
          4Degrees deal <code>{link?.fdDealId ?? fd ?? "—"}</code> ↔ HighLevel opportunity{" "}
          <code>{link?.hlOpportunityId ?? hl ?? "—"}</code>
        </details>
        {link && (
          <>
            <h2>Last synced state (the merge base)</h2>
            <table id="snapshot">
              <tbody>
                {Object.entries(link.base).map(([k, v]) => (
                  <tr>
                    <th>{k}</th>
                    <td title={typeof v === "string" ? v : undefined}>{baseValue(k, v, structure)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
        <h2>Every event, oldest first</h2>
        {events.length === 0 ? (
          <Empty>No sync event mentions this record.</Empty>
        ) : (
          <EventsTable events={events} account={account.id} withRecord={true} names={names} />
        )}
      </Layout>,
    );
  });
