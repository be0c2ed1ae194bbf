/**
 * The accounts bench part's arithmetic (scripts/bench/accounts.ts): nearest-rank quantiles, and the
 * rows it prints — a window with an unsynced change or a ceiling under the location target is a
 * missed target, the ceiling is 1000 / busy ms per change and the locations follow the profile.
 */
import { describe, expect, it } from "vitest";
import { quantile, recordAccounts, type AccountsReport, type WindowReport } from "../../scripts/bench/accounts.ts";

function window(over: Partial<WindowReport> = {}): WindowReport {
  return {
    changes: 10,
    synced: 10,
    perSecond: 5,
    p50Ms: 1_000,
    p95Ms: 2_000,
    maxMs: 2_500,
    seconds: 2,
    drainSeconds: 1,
    d1: { queries: 300, rowsRead: 330, rowsWritten: 220, busyMs: 10, writeQueries: 95, writeBusyMs: 4 },
    perChange: { statements: 30, writeStatements: 9.5, rowsRead: 33, rowsWritten: 22, busyMs: 1, writeBusyMs: 0.4 },
    ...over,
  };
}

function report(steady: WindowReport[], busyMsPerChange: number): AccountsReport {
  const profile = { changesPerBusinessHour: 30, peakFactor: 4, targetUtilisation: 0.5 };
  const perSecond = 1000 / busyMsPerChange;
  return {
    accounts: 10,
    setup: { bootstrapSeconds: 1, createSeconds: 2, creates: 10, linked: 10 },
    steady: { offeredPerSecond: 5, rounds: steady, median: steady[0] ?? window() },
    burst: { changesPerRound: 10, rounds: [window()], median: window() },
    ceiling: {
      busyMsPerChange,
      statementsPerChange: 30,
      changesPerSecond: perSecond,
      locationsAtSaturation: Math.floor(perSecond / (120 / 3600)),
      locationsPlanned: Math.floor((perSecond * 0.5) / (120 / 3600)),
      atDocumentedQueryMs: { msPerStatement: 1, changesPerSecond: 1000 / 30, locationsPlanned: 500 },
      profile,
    },
  };
}

function rows(r: AccountsReport) {
  const out: Array<{ figure: string; measured: string; ok: boolean | null }> = [];
  recordAccounts(r, (figure, measured, _target, ok) => out.push({ figure, measured, ok }));
  return out;
}

describe("accounts bench arithmetic", () => {
  it("quantile is the nearest rank, 0 for no values", () => {
    expect(quantile([], 0.95)).toBe(0);
    expect(quantile([5], 0.95)).toBe(5);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(quantile(hundred, 0.95)).toBe(95);
    expect(quantile(hundred, 0.5)).toBe(50);
    expect(quantile([3, 1, 2], 1)).toBe(3);
  });

  it("every target met: all synced and a ceiling above 1,000 locations", () => {
    const r = rows(report([window(), window(), window()], 1));
    expect(r.filter((x) => x.ok === false)).toEqual([]);
    const ceiling = r.find((x) => x.figure.includes("ceiling"));
    expect(ceiling?.measured).toContain("1000 changes/s");
    expect(ceiling?.measured).toContain("15,000 at 50% busy");
  });

  it("an unsynced change in any steady window, or a low ceiling, is a missed target", () => {
    const unsynced = rows(report([window(), window({ synced: 9 }), window()], 1));
    expect(unsynced.filter((x) => x.ok === false).map((x) => x.figure)).toEqual([
      "accounts steady (median of 3): synced/s, drain, p50/p95",
    ]);
    const slow = rows(report([window()], 40));
    expect(slow.filter((x) => x.ok === false).map((x) => x.figure)).toEqual(["accounts: one D1 database's ceiling"]);
  });
});
