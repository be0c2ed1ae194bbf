/**
 * Usage: per HighLevel location of the account, calls per hour against the burst and daily limits,
 * 429s received (there should be none: the gate paces calls), and the quota left today — read live
 * from each location's gate (src/gate/), the same `usage()` that `GET /api/usage/highlevel/:id`
 * (src/http/highlevel-usage.ts) answers as JSON, so the page and the API always agree.
 *
 * Limits shown are the ones the gate enforces (its last-used limits and HighLevel's own
 * `X-RateLimit-*` headers), falling back to the configured HighLevel limits before any call.
 */
import { Hono } from "hono";
import type { AppEnv } from "../../context.ts";
import { gateFor, HIGHLEVEL_LIMITS, timeScaledLimits, type GateUsage } from "../../../gate/client.ts";
import { getConnection, locationConnectionId, type Connection } from "../../../store/connections.ts";
import { pageContext } from "../context.ts";
import { BarChart, Empty, fmtInt, fmtTime, Layout, Meter, NoAccount } from "../ui.tsx";
import { LocationLabel, locationNames } from "../names.tsx";

const HOUR = 3600_000;

/** The figures one location's card shows (pure; exported so tests compare them with the API's JSON). */
export function usageFigures(
  usage: GateUsage,
  fallback: { burstMax: number; intervalMs: number; daily: number },
  now: number = Date.now(),
) {
  const burstMax = usage.burst.max ?? fallback.burstMax;
  const intervalMs = usage.burst.intervalMs ?? fallback.intervalMs;
  const dailyLimit = usage.daily.limit ?? fallback.daily;
  const dailyRemaining = usage.daily.remaining ?? Math.max(0, dailyLimit - usage.daily.used);
  // A fixed 24-hour axis (hours without calls are zero), oldest first.
  const thisHour = Math.floor(now / HOUR) * HOUR;
  const byHour = new Map(usage.hourly.map((h) => [h.hour, h]));
  const hours = Array.from({ length: 24 }, (_, i) => {
    const hour = thisHour - (23 - i) * HOUR;
    const h = byHour.get(hour);
    return { hour, calls: h?.calls ?? 0, rateLimited: h?.rateLimited ?? 0 };
  });
  return {
    burstMax,
    intervalMs,
    dailyLimit,
    dailyUsed: usage.daily.used,
    dailyRemaining,
    day: usage.daily.day,
    calls24h: hours.reduce((n, h) => n + h.calls, 0),
    rateLimited24h: usage.rateLimited24h,
    burstUsed: usage.burst.used,
    inflight: usage.inflight,
    hours,
    /** Even pacing of the daily budget, per hour. */
    dailyPacePerHour: Math.ceil(dailyLimit / 24),
    /** The most the burst limit allows in an hour. */
    burstPerHour: Math.floor((burstMax * HOUR) / intervalMs),
  };
}

const CONNECTION_LABEL: Record<Connection["status"], string> = {
  active: "connected",
  needs_reconnect: "needs reconnect",
  backoff: "retrying token refresh",
  uninstalled: "uninstalled",
};

export const usagePage = new Hono<AppEnv>().get("/usage", async (c) => {
  const ctx = await pageContext(c);
  const account = ctx.account;
  if (!account)
    return c.html(
      <Layout title="Usage" page="usage" accounts={ctx.accounts} account={null} flash={ctx.flash}>
        <NoAccount />
      </Layout>,
    );
  const configured = timeScaledLimits(HIGHLEVEL_LIMITS, c.var.config.HIGHLEVEL_RATE_SCALE);
  const fallback = {
    burstMax: configured.burst.max,
    intervalMs: configured.burst.intervalMs,
    daily: configured.daily ?? 200_000,
  };
  const now = Date.now();
  const cards: Array<{ location: string; connection: Connection | null; usage: GateUsage | null }> = [];
  for (const location of account.locations) {
    const connection = await getConnection(c.env.DB, locationConnectionId(location));
    // Like the API: only a connected location's gate is asked (asking creates its Durable Object).
    cards.push({ location, connection, usage: connection ? await gateFor(c.env, "hl", location).usage() : null });
  }
  const locNames = await locationNames(c, account.locations);
  return c.html(
    <Layout title="Usage" page="usage" accounts={ctx.accounts} account={account} flash={ctx.flash}>
      <p>
        HighLevel allows {fmtInt(fallback.burstMax)} requests per {fallback.intervalMs / 1000} s and{" "}
        {fmtInt(fallback.daily)} per day for each location. Every call this Worker makes goes through the location's
        gate, which paces calls to stay under both — so “429s received” should stay at 0.
      </p>
      {cards.length === 0 && (
        <Empty>
          This account has no HighLevel location yet, so no calls were made. Connect one on the Connections page.
        </Empty>
      )}
      {cards.map(({ location, connection, usage }) => {
        const head = (
          <h2>
            <LocationLabel id={location} names={locNames} />{" "}
            <small class={`status-${connection?.status ?? "failed"}`}>
              {connection ? CONNECTION_LABEL[connection.status] : "not connected"}
            </small>
          </h2>
        );
        if (!usage)
          return (
            <section class="card usage" data-location={location}>
              {head}
              <Empty>
                This location has no HighLevel connection, so the Worker makes no calls to it. Connect it on the
                Connections page.
              </Empty>
            </section>
          );
        const f = usageFigures(usage, fallback, now);
        const peak = Math.max(...f.hours.map((h) => h.calls));
        // The daily-pace line only when the calls come near it; otherwise it would flatten every bar.
        const paceLine =
          peak * 4 >= f.dailyPacePerHour
            ? { limit: { value: f.dailyPacePerHour, label: `${fmtInt(f.dailyPacePerHour)}/h = daily budget pace` } }
            : {};
        return (
          <section class="card usage" data-location={location}>
            {head}
            <div class="stats">
              <div class="stat">
                <span>Calls, last 24 h</span>
                <strong data-figure="calls24h">{fmtInt(f.calls24h)}</strong>
              </div>
              <div class="stat">
                <span>429s received, last 24 h</span>
                <strong data-figure="rateLimited24h" class={f.rateLimited24h > 0 ? "status-failed" : "status-ok"}>
                  {fmtInt(f.rateLimited24h)}
                </strong>
              </div>
              <div class="stat">
                <span>Quota left today ({f.day || "UTC"})</span>
                <strong data-figure="dailyRemaining">{fmtInt(f.dailyRemaining)}</strong>{" "}
                <small>of {fmtInt(f.dailyLimit)}</small>
              </div>
              <div class="stat">
                <span>Last {f.intervalMs / 1000} s</span>
                <strong data-figure="burstUsed">{fmtInt(f.burstUsed)}</strong>{" "}
                <small>
                  of {fmtInt(f.burstMax)} · {fmtInt(f.inflight)} in flight
                </small>
              </div>
            </div>
            {Object.entries(usage.pausedUntil).map(([lane, until]) =>
              until && until > now ? (
                <p class="flash error">
                  Lane {lane} paused until {fmtTime(until)} (HighLevel asked to slow down).
                </p>
              ) : null,
            )}
            <Meter
              value={f.dailyUsed}
              max={f.dailyLimit}
              label={`Daily quota: ${fmtInt(f.dailyUsed)} used of ${fmtInt(f.dailyLimit)} (${((f.dailyUsed / Math.max(1, f.dailyLimit)) * 100).toFixed(f.dailyUsed > 0 && f.dailyUsed * 1000 < f.dailyLimit ? 3 : 1)} %)`}
            />
            <Meter
              value={f.burstUsed}
              max={f.burstMax}
              label={`Burst window: ${fmtInt(f.burstUsed)} of ${fmtInt(f.burstMax)} requests in the last ${f.intervalMs / 1000} s`}
            />
            <BarChart
              label={`Calls per hour (UTC), last 24 h; red: 429s. Limits: ${fmtInt(f.burstPerHour)}/h at most (burst), ${fmtInt(f.dailyPacePerHour)}/h on average to last the day.`}
              bars={f.hours.map((h) => ({
                label: `${new Date(h.hour).toISOString().slice(11, 13)}h`,
                value: h.calls,
                alert: h.rateLimited,
                title: `${new Date(h.hour).toISOString().slice(0, 13)}:00 UTC: ${fmtInt(h.calls)} call(s), ${fmtInt(h.rateLimited)} answered 429`,
              }))}
              {...paceLine}
            />
            <details class="hint">
              <summary>The same figures as JSON</summary>
              <code>GET /api/usage/highlevel/{location}</code> (admin token).
            </details>
          </section>
        );
      })}
    </Layout>,
  );
});
