/**
 * Usage: per HighLevel location of the account, calls per hour against the 100 / 10 s burst and
 * 200,000 / day limits, 429s received (there should be none: the gate paces calls), and the quota
 * left today — read live from each location's gate (src/gate/).
 */
import { Hono } from "hono";
import type { AppEnv } from "../../http/context.ts";
import { gateFor, HIGHLEVEL_LIMITS, type GateUsage } from "../../gate/client.ts";
import { pageContext } from "../context.ts";
import { BarChart, Empty, fmtInt, fmtTime, Layout, Meter, NoAccount } from "../ui.tsx";

export const usagePage = new Hono<AppEnv>().get("/usage", async (c) => {
  const ctx = await pageContext(c);
  const account = ctx.account;
  if (!account) return c.html(<Layout title="Usage" page="usage" accounts={ctx.accounts} account={null} flash={ctx.flash}><NoAccount /></Layout>);
  const usages: Array<{ location: string; usage: GateUsage }> = [];
  for (const location of account.locations) usages.push({ location, usage: await gateFor(c.env, "hl", location).usage() });
  const burstMax = HIGHLEVEL_LIMITS.burst.max;
  const daily = HIGHLEVEL_LIMITS.daily ?? 200_000;
  // 100 per 10 s is at most 36,000 an hour; the daily cap spread over a day is ~8,333 an hour.
  const hourlyCeiling = Math.floor((burstMax * 3600_000) / HIGHLEVEL_LIMITS.burst.intervalMs);
  return c.html(
    <Layout title="Usage" page="usage" accounts={ctx.accounts} account={account} flash={ctx.flash}>
      <p>HighLevel allows {burstMax} requests per {HIGHLEVEL_LIMITS.burst.intervalMs / 1000} s and {fmtInt(daily)} per day per location (the app's budget); the gate paces calls to stay under both.</p>
      {usages.length === 0 && <Empty>This account has no HighLevel location yet, so no calls were made.</Empty>}
      {usages.map(({ location, usage }) => {
        const hours = usage.hourly.slice(-24);
        const calls24 = hours.reduce((n, h) => n + h.calls, 0);
        const remaining = usage.daily.remaining ?? Math.max(0, daily - usage.daily.used);
        return (
          <section class="card" data-location={location}>
            <h2>Location {location}</h2>
            <div class="grid">
              <p>Calls in the last 24 h: <strong>{fmtInt(calls24)}</strong></p>
              <p>429s received (24 h): <strong class={usage.rateLimited24h > 0 ? "status-failed" : "status-ok"}>{fmtInt(usage.rateLimited24h)}</strong></p>
              <p>Quota left today ({usage.daily.day}): <strong>{fmtInt(remaining)}</strong> of {fmtInt(usage.daily.limit ?? daily)}</p>
              <p>Burst window now: {fmtInt(usage.burst.used)} / {fmtInt(usage.burst.max ?? burstMax)} · in flight {usage.inflight}</p>
            </div>
            {Object.entries(usage.pausedUntil).map(([lane, until]) => (until && until > Date.now() ? <p class="flash error">Lane {lane} paused until {fmtTime(until)} (HighLevel asked to slow down).</p> : null))}
            <Meter value={usage.daily.used} max={usage.daily.limit ?? daily} label={`Daily quota used: ${fmtInt(usage.daily.used)} of ${fmtInt(usage.daily.limit ?? daily)}`} />
            {hours.length === 0 ? (
              <Empty>No HighLevel calls recorded for this location in the last 48 hours.</Empty>
            ) : (
              <BarChart
                label={`Calls per hour (UTC), last ${hours.length} h — red: 429s; the burst limit allows at most ${fmtInt(hourlyCeiling)} per hour`}
                bars={hours.map((h) => ({ label: `${new Date(h.hour).toISOString().slice(11, 13)}h`, value: h.calls, alert: h.rateLimited }))}
                limit={{ value: Math.ceil(daily / 24), label: `${fmtInt(Math.ceil(daily / 24))}/h = daily cap pace` }}
              />
            )}
          </section>
        );
      })}
    </Layout>,
  );
});
