/**
 * The lookups a job makes: the per-job memo of structure (pipelines, users) every translation
 * needs, and the search for the HighLevel opportunity that already stands for a 4Degrees deal.
 */
import type { Deal } from "../../domain/port.ts";
import type { Opportunity } from "../../highlevel/port.ts";
import type { FourDegreesContext, HighLevelContext } from "./mapping.ts";
import type { EngineDeps } from "./types.ts";

/** A connector whose structure lookups are cached (KV) and can be reloaded (src/highlevel/adapter.ts). */
interface Refreshable {
  refreshStructure(): Promise<void>;
}
function refreshable(x: object): x is Refreshable {
  return "refreshStructure" in x && typeof x.refreshStructure === "function";
}

/**
 * Per-job memo of the lookups every translation needs (pipelines, users). Connectors serve them
 * from KV caches; a record naming a stage or user those do not know (added since the cache was
 * filled) reloads them once per job (`ensureFourDegrees` / `ensureHighLevel`).
 */
export class LookupCache {
  #fd: Promise<FourDegreesContext> | null = null;
  #fdRefreshed = false;
  #hl = new Map<string, Promise<HighLevelContext>>();
  readonly #hlRefreshed = new Set<string>();
  readonly #deps: EngineDeps;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
  }

  fourdegrees(): Promise<FourDegreesContext> {
    this.#fd ??= Promise.all([this.#deps.fourdegrees.listPipelines(), this.#deps.fourdegrees.listUsers()]).then(([pipelines, users]) => ({ pipelines, users }));
    return this.#fd;
  }

  /** The 4Degrees lookups, reloaded once when they do not know the deal's stage or owner. */
  async ensureFourDegrees(deal: Deal): Promise<FourDegreesContext> {
    const ctx = await this.fourdegrees();
    const knowsStage = deal.stage.id === null || ctx.pipelines.some((p) => p.stages.some((s) => s.id === deal.stage.id));
    const knowsOwner = !deal.owner?.id || deal.owner.email !== null || ctx.users.some((u) => u.id === deal.owner?.id);
    if ((knowsStage && knowsOwner) || this.#fdRefreshed) return ctx;
    this.#fdRefreshed = true;
    const crm = this.#deps.fourdegrees;
    if (!refreshable(crm)) return ctx;
    await crm.refreshStructure();
    this.#fd = null;
    return this.fourdegrees();
  }

  highlevel(locationId: string): Promise<HighLevelContext> {
    let hit = this.#hl.get(locationId);
    if (!hit) {
      hit = this.#deps.highlevel(locationId).listUsers().then((users) => ({ users }));
      this.#hl.set(locationId, hit);
    }
    return hit;
  }

  /** The HighLevel lookups of a location, reloaded once when they do not know the opportunity's assignee. */
  async ensureHighLevel(opp: Opportunity, locationId: string): Promise<HighLevelContext> {
    const ctx = await this.highlevel(locationId);
    if (!opp.assignedTo || ctx.users.some((u) => u.id === opp.assignedTo) || this.#hlRefreshed.has(locationId)) return ctx;
    this.#hlRefreshed.add(locationId);
    const port = this.#deps.highlevel(locationId);
    if (!refreshable(port)) return ctx;
    await port.refreshStructure();
    this.#hl.delete(locationId);
    return this.highlevel(locationId);
  }
}
