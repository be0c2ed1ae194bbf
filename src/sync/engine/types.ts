/**
 * What the engine needs for one job (`EngineDeps`) and what one job did (`JobResult`), with the
 * small helpers every engine module builds results with.
 */
import type { Actor, DealCrm, Flat } from "../../domain/port.ts";
import type { OpportunityCrm } from "../../highlevel/port.ts";
import type { Logger } from "../../lib/log.ts";
import type { SideName } from "../../store/links.ts";
import type { Conflict } from "./merge.ts";

/** The connectors and helpers one job uses. Built per batch by src/highlevel/adapter.ts (or a test). */
export interface EngineDeps {
  db: D1Database;
  fourdegrees: DealCrm;
  /** The HighLevel side of one of the account's locations. */
  highlevel(locationId: string): OpportunityCrm;
  /** The actor our 4Degrees writes carry (`whoAmI`), for echo recognition; null when unknown. */
  ourActor: Actor | null;
  log: Logger;
  now(): number;
  /** Test hooks (crash simulation). */
  hooks?: {
    afterCreate?(target: SideName, id: string): void | Promise<void>;
    /** After an attachment upload answered, before the ledger/link record it (src/sync/engine/attachments.ts). */
    afterUpload?(target: SideName, id: string): void | Promise<void>;
    /** After a write of an opportunity's file field, before it is read back (src/sync/engine/attachments.ts). */
    afterFieldWrite?(opportunityId: string): void | Promise<void>;
  };
}

/** What one job did. */
export interface JobResult {
  outcome: "ok" | "noop" | "echo" | "skipped" | "review" | "retry" | "test_mode" | "deleted";
  direction: "to_highlevel" | "to_fourdegrees" | "both" | "none";
  fdId: string | null;
  hlId: string | null;
  /**
   * Write calls made (and, in test mode, that would have been made); `from` names the source record
   * of a copy (a note's `side:id`), for the automations' note trigger.
   */
  writes: Array<{ side: SideName; op: string; id: string | null; fields?: string[]; from?: string }>;
  conflicts: Conflict[];
  reason?: string;
  /** Delay for `retry`. */
  retryAfterSeconds?: number;
  detail?: Record<string, unknown>;
  /**
   * The pair's synced state moved (base → merged, or a new pair): what team notifications are told.
   * `changeId` is the base snapshot's time plus a hash of the new state — the same for every retry
   * of one change (the base only moves once the change is recorded), different for the next one.
   */
  change?: PairChange;
}

/** One recorded change of a pair's canonical state (see `JobResult.change`). */
export interface PairChange {
  source: SideName;
  changeId: string;
  name: string;
  fdId: string | null;
  hlId: string | null;
  /** The last-synced snapshot; null for a pair created by this job. */
  before: Flat | null;
  after: Flat;
}

/** An empty result for a pair (the outcome and writes are filled in by the step that decides). */
export const blank = (fdId: string | null, hlId: string | null): JobResult => ({
  outcome: "noop",
  direction: "none",
  fdId,
  hlId,
  writes: [],
  conflicts: [],
});

/** The direction a set of writes went. */
export function directionOfWrites(writes: JobResult["writes"]): JobResult["direction"] {
  const hl = writes.some((w) => w.side === "highlevel");
  const fd = writes.some((w) => w.side === "fourdegrees");
  return hl && fd ? "both" : hl ? "to_highlevel" : fd ? "to_fourdegrees" : "none";
}
