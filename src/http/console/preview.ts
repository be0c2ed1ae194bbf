/**
 * The Problems page's diff preview of a failed record: the record's last-synced state (the link's
 * merge base) against what the source system holds now, both as the engine's canonical fields
 * (src/sync/engine/mapping.ts `fromDeal` / `fromOpportunity` → `flatten`). The differing fields are what
 * a replay would try to write to the other side.
 *
 * It reads the source record live (one read plus the cached pipeline/user lookups, in the gate's
 * `reconcile` lane), so the page previews a few failures only and reuses lookups across them.
 */
import type { Config } from "../../config.ts";
import type { Account } from "../../store/accounts.ts";
import type { Link } from "../../store/links.ts";
import { liveConnectors, type AccountConnectors } from "../../sync/connectors.ts";
import {
  flatten,
  fromDeal,
  fromOpportunity,
  type FourDegreesContext,
  type HighLevelContext,
} from "../../sync/engine/mapping.ts";
import type { Flat } from "../../domain/port.ts";
import { fromMinor } from "../../domain/money.ts";

/** A canonical state as people read it: stage names instead of ids, values as money. */
export function readable(state: Flat, stageNames: Map<string, string>): Flat {
  const out: Flat = { ...state };
  const stage = state["stage"];
  if (typeof stage === "string") out["stage"] = stageNames.get(stage) ?? stage;
  const value = state["value"];
  const currency = typeof state["currency"] === "string" ? state["currency"] : null;
  if (typeof value === "number" && currency)
    out["value"] = new Intl.NumberFormat("en-US", { style: "currency", currency }).format(fromMinor(value, currency));
  return out;
}

/** Failures previewed live per page view; the rest link to their record history. */
export const PREVIEW_LIMIT = 5;

/** What the page shows for one failed record. */
export type Preview =
  | { kind: "diff"; left: { label: string; state: Flat }; right: { label: string; state: Flat } }
  | { kind: "note"; text: string };

/** Previews the failed records of one account; create one per page view (it memoises lookups). */
export class FailurePreviewer {
  readonly #env: Env;
  readonly #config: Config;
  readonly #account: Account;
  #connectors: Promise<AccountConnectors> | null = null;
  #fd: Promise<FourDegreesContext> | null = null;
  readonly #hl = new Map<string, Promise<HighLevelContext>>();

  constructor(env: Env, config: Config, account: Account) {
    this.#env = env;
    this.#config = config;
    this.#account = account;
  }

  #conn(): Promise<AccountConnectors> {
    this.#connectors ??= liveConnectors(this.#env, this.#config)(this.#account, "reconcile");
    return this.#connectors;
  }

  /** 4Degrees stage id → name (canonical stages are 4Degrees stage ids on both sides). */
  async #stageNames(conn: AccountConnectors): Promise<Map<string, string>> {
    this.#fd ??= Promise.all([conn.fourdegrees.listPipelines(), conn.fourdegrees.listUsers()]).then(
      ([pipelines, users]) => ({ pipelines, users }),
    );
    const { pipelines } = await this.#fd;
    return new Map(pipelines.flatMap((p) => p.stages.map((s): [string, string] => [s.id, s.name])));
  }

  /** The diff for `side`/`recordId` (never throws: a read problem becomes a note). */
  async preview(
    side: "fourdegrees" | "highlevel",
    recordId: string,
    locationId: string | null,
    link: Link | null,
  ): Promise<Preview> {
    const mapping = this.#account.mapping;
    if (!mapping) return { kind: "note", text: "No mapping saved: nothing would be written." };
    try {
      const conn = await this.#conn();
      let now: Flat;
      let label: string;
      if (side === "fourdegrees") {
        const deal = await conn.fourdegrees.getDeal(recordId);
        if (!deal) return { kind: "note", text: "The 4Degrees deal no longer exists." };
        this.#fd ??= Promise.all([conn.fourdegrees.listPipelines(), conn.fourdegrees.listUsers()]).then(
          ([pipelines, users]) => ({ pipelines, users }),
        );
        const t = fromDeal(deal, mapping, await this.#fd);
        if (!t.ok) return { kind: "note", text: `Cannot be synced as mapped: ${t.reason}` };
        now = flatten(t.canonical);
        label = "4Degrees now";
      } else {
        const loc = locationId ?? link?.hlLocationId ?? this.#account.locations[0] ?? null;
        if (!loc) return { kind: "note", text: "The account has no HighLevel location." };
        const hl = conn.highlevel(loc);
        const opp = await hl.getOpportunity(recordId);
        if (!opp) return { kind: "note", text: "The HighLevel opportunity no longer exists." };
        let lookups = this.#hl.get(loc);
        if (!lookups)
          this.#hl.set(
            loc,
            (lookups = hl.listUsers().then((users) => ({ users, nativeCloseDate: hl.nativeCloseDate }))),
          );
        const t = fromOpportunity(opp, loc, mapping, await lookups);
        if (!t.ok) return { kind: "note", text: `Cannot be synced as mapped: ${t.reason}` };
        now = flatten(t.canonical);
        label = "HighLevel now";
      }
      const names = await this.#stageNames(conn);
      return {
        kind: "diff",
        left: { label: link ? "last synced" : "last synced (never)", state: readable(link?.base ?? {}, names) },
        right: { label, state: readable(now, names) },
      };
    } catch (err) {
      return {
        kind: "note",
        text: `Could not read the record for a preview: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }
}
