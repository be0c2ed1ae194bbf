/**
 * The cron-driven triggers, decided from a pair's last-synced state (no provider read): the close
 * date passed or within N days, no activity for N days, N days in a stage. Each finding has an
 * occurrence id that stays the same while the situation does (the close date, the last activity,
 * the stage entry), so a rule fires once per situation however many ticks see it.
 */
import type { Trigger } from "../domain/automation-rule.ts";
import type { Flat } from "../domain/port.ts";
import { stageIdOf, stageNamesOf, type Structure } from "./context.ts";

const DAY_MS = 86_400_000;

/** What the scan knows about one pair. */
export interface PairFacts {
  fdId: string;
  base: Flat;
  /** The last change either side made (epoch ms). */
  lastActivityAt: number;
  /** When it entered its current stage, if recorded. */
  stageEntry: { stageId: string; enteredAt: number } | null;
}

/** The occurrence id of a cron trigger for a pair now, or null when it does not fire. */
export function cronOccurrence(trigger: Trigger, pair: PairFacts, s: Structure, now: number): string | null {
  const open = pair.base["status"] !== "won" && pair.base["status"] !== "lost";
  switch (trigger.kind) {
    case "close_date": {
      const close = typeof pair.base["closeDate"] === "string" ? pair.base["closeDate"] : null;
      if (!open || !close) return null;
      const due = Date.parse(`${close}T00:00:00Z`);
      if (!Number.isFinite(due) || due - now > trigger.withinDays * DAY_MS) return null;
      return `cron:close_date:${pair.fdId}:${close}`;
    }
    case "no_activity": {
      if (!open || now - pair.lastActivityAt < trigger.days * DAY_MS) return null;
      return `cron:no_activity:${pair.fdId}:${pair.lastActivityAt}`;
    }
    case "days_in_stage": {
      const entry = pair.stageEntry;
      if (!open || !entry || entry.stageId !== stageIdOf(pair.base, s)) return null;
      if (trigger.stage !== null && !stageNamesOf(pair.base, s).includes(trigger.stage.trim().toLowerCase()))
        return null;
      if (now - entry.enteredAt < trigger.days * DAY_MS) return null;
      return `cron:days_in_stage:${pair.fdId}:${entry.stageId}:${entry.enteredAt}`;
    }
    default:
      return null;
  }
}
