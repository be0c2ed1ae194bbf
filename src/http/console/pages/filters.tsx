/**
 * Which deals sync: per pipeline pair, a filter picked from the live lists by name (4Degrees
 * stages and owners, a minimum value, a 4Degrees tag, a HighLevel field value), a "Preview count"
 * that counts what it selects from the providers before anything is saved (src/sync/jobs/
 * filter-preview.ts), and "Save filter". The engine applies it (src/sync/engine/filter.ts).
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../../context.ts";
import type { DealFilter, PipelinePair } from "../../../domain/mapping-config.ts";
import { DealFilterSchema } from "../../../domain/mapping-config.ts";
import type { Pipeline, User } from "../../../domain/port.ts";
import type { HlPipeline } from "../../../highlevel/port.ts";
import type { Account } from "../../../store/accounts.ts";
import { liveConnectors } from "../../../sync/connectors.ts";
import { previewFilter, saveFilter, type FilterPreview } from "../../../sync/jobs/filter-preview.ts";
import { loadLiveStructure } from "../../../sync/structure.ts";
import { matchingDeps } from "../../matching.ts";
import { formAccount, pageContext, redirectWith, type PageContext } from "../context.ts";
import { Empty, fmtInt, Layout, NoAccount } from "../ui.tsx";

/** The live lists the form picks from. */
interface Lists {
  fourdegrees: Pipeline[];
  highlevel: Record<string, HlPipeline[]>;
  fields: Record<string, Array<{ id: string; name: string }>>;
  users: User[];
  error: string | null;
}

async function loadLists(c: Context<AppEnv>, account: Account): Promise<Lists> {
  try {
    const connectors = await liveConnectors(c.env, c.var.config)(account, "live");
    const live = await loadLiveStructure(connectors, account.locations);
    const users = await connectors.fourdegrees.listUsers();
    return {
      fourdegrees: live.fourdegrees,
      highlevel: live.highlevel,
      fields: live.highlevelFields,
      users,
      error: null,
    };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { fourdegrees: [], highlevel: {}, fields: {}, users: [], error };
  }
}

const str = (v: unknown): string => (typeof v === "string" ? v.trim() : "");
const list = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).map(str).filter(Boolean);

/** The form's filter (null: every deal), or the field-named problems. */
export function filterFromForm(form: Record<string, unknown>): { filter: DealFilter | null } | { error: string } {
  const raw: Record<string, unknown> = {};
  const stages = list(form["stage"]);
  const owners = list(form["owner"]);
  if (stages.length) raw["stages"] = stages;
  if (owners.length) raw["ownerIds"] = owners;
  const min = str(form["minValue"]);
  if (min) raw["minValue"] = Number(min);
  const tag = str(form["tag"]);
  if (tag) raw["fourdegreesTag"] = tag;
  const fieldId = str(form["hlField"]);
  if (fieldId) raw["highlevelField"] = { id: fieldId, equals: str(form["hlEquals"]) };
  if (Object.keys(raw).length === 0) return { filter: null };
  const parsed = DealFilterSchema.strict().safeParse(raw);
  if (parsed.success) return { filter: parsed.data };
  return { error: parsed.error.issues.map((i) => `${i.path.join(".") || "filter"}: ${i.message}`).join("; ") };
}

const PairForm = (p: {
  account: Account;
  index: number;
  pair: PipelinePair;
  lists: Lists;
  filter: DealFilter | null;
  preview: FilterPreview | null;
  problem: string | null;
}) => {
  const fd = p.lists.fourdegrees.find((x) => x.id === p.pair.fourdegreesPipelineId);
  const hl = p.lists.highlevel[p.pair.highlevelLocationId]?.find((x) => x.id === p.pair.highlevelPipelineId);
  const fields = p.lists.fields[p.pair.highlevelLocationId] ?? [];
  const f = p.filter;
  return (
    <form method="post" action="/console/filters/save" class="card" id={`filter-${p.index}`}>
      <h2>
        {fd?.name ?? "(4Degrees pipeline not found)"} ↔ {hl?.name ?? "(HighLevel pipeline not found)"}
      </h2>
      <input type="hidden" name="account" value={p.account.id} />
      <input type="hidden" name="pair" value={String(p.index)} />
      <fieldset>
        <legend>Stages (none ticked: every stage)</legend>
        {(fd?.stages ?? [])
          .filter((s) => s.kind === "open")
          .map((s) => (
            <label title={s.id}>
              <input type="checkbox" name="stage" value={s.id} checked={f?.stages?.includes(s.id) ?? false} />{" "}
              {s.name}{" "}
            </label>
          ))}
      </fieldset>
      <fieldset>
        <legend>Owners (none ticked: every owner)</legend>
        {p.lists.users.map((u) => (
          <label title={u.email ?? u.id}>
            <input type="checkbox" name="owner" value={u.id} checked={f?.ownerIds?.includes(u.id) ?? false} />{" "}
            {u.name ?? u.email ?? u.id}{" "}
          </label>
        ))}
      </fieldset>
      <p>
        <label>
          Value at least ({p.account.mapping?.currency ?? "USD"}){" "}
          <input type="number" name="minValue" min="0" step="any" value={f?.minValue?.toString() ?? ""} />
        </label>{" "}
        <label>
          4Degrees tag <input type="text" name="tag" value={f?.fourdegreesTag ?? ""} placeholder="e.g. portfolio" />
        </label>
      </p>
      <p>
        <label>
          HighLevel field{" "}
          <select name="hlField">
            <option value="">(none)</option>
            {fields.map((x) => (
              <option value={x.id} selected={f?.highlevelField?.id === x.id}>
                {x.name}
              </option>
            ))}
          </select>
        </label>{" "}
        <label>
          equals <input type="text" name="hlEquals" value={f?.highlevelField?.equals ?? ""} />
        </label>
      </p>
      {p.problem && <p class="flash error">{p.problem}</p>}
      {p.preview && (
        <div class="stats" id={`preview-${p.index}`}>
          <div class="stat">
            <span>selected (what a backfill syncs)</span>
            <strong data-testid="preview-selected">{fmtInt(p.preview.selected)}</strong>
          </div>
          <div class="stat">
            <span>4Degrees deals</span>
            <strong>
              {fmtInt(p.preview.deals.selected)} of {fmtInt(p.preview.deals.total)}
            </strong>
          </div>
          <div class="stat">
            <span>unlinked HighLevel opportunities</span>
            <strong>
              {fmtInt(p.preview.opportunities.selected)} of {fmtInt(p.preview.opportunities.total)}
            </strong>
          </div>
        </div>
      )}
      {p.preview?.truncated && <p class="hint">Counted over the first pages only (the preview is bounded).</p>}
      {p.preview && p.preview.skippedExamples.length > 0 && (
        <p class="hint">Left out, e.g.: {p.preview.skippedExamples.map((s) => `${s.name} (${s.reason})`).join("; ")}</p>
      )}
      <button type="submit" formaction="/console/filters/preview" class="secondary" id={`preview-button-${p.index}`}>
        Preview count
      </button>{" "}
      <button type="submit" id={`save-filter-${p.index}`}>
        Save filter
      </button>
    </form>
  );
};

async function render(
  c: Context<AppEnv>,
  ctx: PageContext,
  account: Account,
  over?: { index: number; filter: DealFilter | null; preview: FilterPreview | null; problem: string | null },
) {
  const lists = await loadLists(c, account);
  const pairs = account.mapping?.pipelines ?? [];
  return c.html(
    <Layout title="Filters" page="filters" accounts={ctx.accounts} account={account} flash={ctx.flash}>
      <p>
        Which deals sync, per pipeline pair. A record outside the filter is skipped (the reason shows in Activity); a
        pair that leaves it stops syncing and nothing is deleted. "Preview count" counts today's records from 4Degrees
        and HighLevel without saving.
      </p>
      {lists.error && <p class="flash error">Could not load the live lists: {lists.error}</p>}
      {pairs.length === 0 ? (
        <Empty>Save a mapping first: filters belong to its pipeline pairs.</Empty>
      ) : (
        pairs.map((pair, index) => (
          <PairForm
            account={account}
            index={index}
            pair={pair}
            lists={lists}
            filter={over?.index === index ? over.filter : pair.filter}
            preview={over?.index === index ? over.preview : null}
            problem={over?.index === index ? over.problem : null}
          />
        ))
      )}
    </Layout>,
  );
}

async function formInput(c: Context<AppEnv>) {
  const form = await c.req.parseBody({ all: true });
  const account = await formAccount(c, form);
  const index = Number(str(form["pair"]));
  return { account, index: Number.isInteger(index) ? index : -1, parsed: filterFromForm(form) };
}

export const filtersPage = new Hono<AppEnv>()
  .get("/filters", async (c) => {
    const ctx = await pageContext(c);
    if (!ctx.account)
      return c.html(
        <Layout title="Filters" page="filters" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    return render(c, ctx, ctx.account);
  })
  .post("/filters/preview", async (c) => {
    const { account, index, parsed } = await formInput(c);
    if (!account) return redirectWith(c, "filters", null, { error: "account: choose an existing account" });
    const ctx = { ...(await pageContext(c)), account, flash: null };
    const mapping = account.mapping;
    if (!mapping?.pipelines[index])
      return redirectWith(c, "filters", account.id, { error: "pair: no such pipeline pair" });
    if ("error" in parsed)
      return render(c, ctx, account, { index, filter: null, preview: null, problem: parsed.error });
    try {
      const preview = await previewFilter(matchingDeps(c), account, mapping, index, parsed.filter);
      return render(c, ctx, account, { index, filter: parsed.filter, preview, problem: null });
    } catch (err) {
      const problem = `Preview failed: ${err instanceof Error ? err.message : String(err)}`;
      return render(c, ctx, account, { index, filter: parsed.filter, preview: null, problem });
    }
  })
  .post("/filters/save", async (c) => {
    const { account, index, parsed } = await formInput(c);
    if (!account) return redirectWith(c, "filters", null, { error: "account: choose an existing account" });
    if ("error" in parsed) return redirectWith(c, "filters", account.id, { error: parsed.error });
    try {
      await saveFilter(matchingDeps(c), account, index, parsed.filter);
    } catch (err) {
      return redirectWith(c, "filters", account.id, { error: err instanceof Error ? err.message : String(err) });
    }
    c.var.log.info({ event: "console.filter_saved", account: account.id, pair: index, outcome: "ok" });
    const what = parsed.filter ? "Filter saved." : "Filter cleared: every deal of the pair syncs.";
    return redirectWith(c, "filters", account.id, { ok: `${what} It applies from the next change or backfill.` });
  });
