/**
 * Mapping: pipelines ↔ deal lists, the stage map with the live stage names of both systems, the
 * won/lost stages, field directions (status, owner, value, …), extra custom fields, conflict and
 * delete policy, test mode. Validated before it saves — the shape (zod) and against the live
 * pipelines (src/domain/mapping-config.ts) — and every problem is shown next to its field.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../../context.ts";
import {
  ConflictPolicySchema,
  DeleteGuardSchema,
  DeletePolicySchema,
  saveMapping,
  updateAccount,
  type Account,
} from "../../../store/accounts.ts";
import { loadLive } from "../live-structure.ts";
import {
  CORE_FIELDS,
  defaultMapping,
  DirectionSchema,
  mappingIssues,
  keepSyncRules,
  MappingSchema,
  validateMappingLive,
  type LiveStructure,
  type MappingInput,
  type MappingIssue,
} from "../../../domain/mapping-config.ts";
import { formAccount, pageContext, redirectWith, type PageContext } from "../context.ts";
import { Empty, Layout, NoAccount } from "../ui.tsx";
import {
  FieldsSection,
  fieldsErrorKey,
  fieldsFromForm,
  loadFieldLists,
  OwnersSection,
  validateFieldsLive,
  withNames,
  type FieldLists,
} from "./mapping-fields.tsx";

const DIRECTION_LABELS: Record<string, string> = {
  both: "both ways",
  to_highlevel: "4Degrees → HighLevel",
  to_fourdegrees: "HighLevel → 4Degrees",
  off: "off",
};

/** The form's state: what it shows (a stored mapping, a default, or what was just posted). */
interface FormState {
  mapping: MappingInput;
  conflictPolicy: string;
  deletePolicy: string;
  testMode: boolean;
  /** The mass-delete guard's thresholds, as typed. */
  maxDeletes: string;
  maxPercent: string;
}

/** Maps a validation path to the form field it concerns. */
function fieldKey(path: string): string {
  const m = /^pipelines\.(\d+)\.(\w+)(?:\.(\d+))?/.exec(path);
  if (m) {
    const [, i, key] = m;
    if (key === "fourdegreesPipelineId") return `p.${i}.fd`;
    if (key === "highlevelPipelineId") return `p.${i}.hl`;
    if (key === "highlevelLocationId") return `p.${i}.loc`;
    if (key === "wonStageId") return `p.${i}.won`;
    if (key === "lostStageId") return `p.${i}.lost`;
    return `p.${i}.stages`;
  }
  const extra = fieldsErrorKey(path);
  if (extra) return extra;
  if (path.startsWith("directions.")) return `dir.${path.split(".")[1] ?? ""}`;
  return path;
}

/** A HighLevel custom field picked by name (the id on hover). */
const HlFieldSelect = ({ name, lists, chosen }: { name: string; lists: FieldLists; chosen: string }) => (
  <select name={name}>
    <option value="">— none (not synced) —</option>
    {lists.hl.map((f) => (
      <option value={f.id} selected={f.id === chosen} title={f.id}>
        {f.name}
      </option>
    ))}
    {chosen && !lists.hl.some((f) => f.id === chosen) && (
      <option value={chosen} selected>
        a field that no longer exists
      </option>
    )}
  </select>
);

const Err = ({ errors, k }: { errors: Map<string, string[]>; k: string }) => (
  <>
    {(errors.get(k) ?? []).map((m) => (
      <span class="fielderror" data-field={k}>
        {m}
      </span>
    ))}
  </>
);

function render(
  c: Context<AppEnv>,
  ctx: PageContext & { account: Account },
  live: LiveStructure,
  liveError: string | null,
  lists: FieldLists,
  state: FormState,
  issues: MappingIssue[],
  status: 200 | 400,
) {
  const errors = new Map<string, string[]>();
  for (const i of withNames(issues, lists)) {
    const k = fieldKey(i.field);
    errors.set(k, [
      ...(errors.get(k) ?? []),
      i.field.includes(".stages.") ? `${i.field.replace(/^pipelines\.\d+\./, "")}: ${i.message}` : i.message,
    ]);
  }
  const account = ctx.account;
  const pairs = [
    ...state.mapping.pipelines,
    { fourdegreesPipelineId: "", highlevelLocationId: account.locations[0] ?? "", highlevelPipelineId: "", stages: [] },
  ];
  return c.html(
    <Layout
      title="Mapping"
      page="mapping"
      accounts={ctx.accounts}
      account={account}
      flash={
        issues.length
          ? { kind: "error", text: `Not saved: ${issues.length} problem(s), shown next to the fields below.` }
          : ctx.flash
      }
    >
      {liveError && (
        <p class="flash error">
          Could not read the live pipelines ({liveError}); names may be missing and the mapping cannot be checked
          against them.
        </p>
      )}
      {account.locations.length === 0 && (
        <p class="flash error">
          This account has no HighLevel location yet: connect and attach one on the Connections page.
        </p>
      )}
      <p>
        Version {account.mappingVersion}
        {account.mapping ? "" : " · not saved yet (showing a suggestion from the live pipeline names)"}.
      </p>
      <form method="post" action="/console/mapping" id="mapping-form">
        <input type="hidden" name="account" value={account.id} />
        <Err errors={errors} k="pipelines" />
        {pairs.map((pair, i) => {
          const fd = live.fourdegrees.find((p) => p.id === pair.fourdegreesPipelineId);
          const hlPipes = live.highlevel[pair.highlevelLocationId] ?? [];
          const hl = hlPipes.find((p) => p.id === pair.highlevelPipelineId);
          const isNew = i === state.mapping.pipelines.length;
          return (
            <fieldset class="card" data-pair={i}>
              <legend>{isNew ? "Add a pipeline pair" : `Pipeline pair ${i + 1}`}</legend>
              <label class="block">
                4Degrees deal list{" "}
                <select name={`p.${i}.fd`}>
                  <option value="">{isNew ? "— none —" : "— remove this pair —"}</option>
                  {live.fourdegrees.map((p) => (
                    <option value={p.id} selected={p.id === pair.fourdegreesPipelineId}>
                      {p.name}
                    </option>
                  ))}
                  {pair.fourdegreesPipelineId && !fd && (
                    <option value={pair.fourdegreesPipelineId} selected title={pair.fourdegreesPipelineId}>
                      a deal list that no longer exists
                    </option>
                  )}
                </select>
                <Err errors={errors} k={`p.${i}.fd`} />
              </label>
              <label class="block">
                HighLevel location{" "}
                <select name={`p.${i}.loc`}>
                  {account.locations.map((l) => (
                    <option value={l} selected={l === pair.highlevelLocationId} title={l}>
                      {lists.locations.get(l) ?? "HighLevel location (name unavailable)"}
                    </option>
                  ))}
                  {pair.highlevelLocationId && !account.locations.includes(pair.highlevelLocationId) && (
                    <option value={pair.highlevelLocationId} selected title={pair.highlevelLocationId}>
                      a location this account no longer has
                    </option>
                  )}
                </select>
                <Err errors={errors} k={`p.${i}.loc`} />
              </label>
              <label class="block">
                HighLevel pipeline{" "}
                <select name={`p.${i}.hl`}>
                  <option value="">— choose —</option>
                  {Object.entries(live.highlevel)
                    .flatMap(([, pipes]) => pipes)
                    .map((p) => (
                      <option value={p.id} selected={p.id === pair.highlevelPipelineId}>
                        {p.name}
                      </option>
                    ))}
                  {pair.highlevelPipelineId && !hl && (
                    <option value={pair.highlevelPipelineId} selected title={pair.highlevelPipelineId}>
                      a pipeline that no longer exists
                    </option>
                  )}
                </select>
                <Err errors={errors} k={`p.${i}.hl`} />
              </label>
              {fd && (
                <table class="stages">
                  <thead>
                    <tr>
                      <th>4Degrees stage (open)</th>
                      <th>HighLevel stage</th>
                    </tr>
                  </thead>
                  <tbody>
                    {fd.stages
                      .filter((s) => s.kind === "open")
                      .map((s) => {
                        const chosen = pair.stages.find((x) => x.fourdegrees === s.id)?.highlevel ?? "";
                        return (
                          <tr>
                            <td>{s.name}</td>
                            <td>
                              <select name={`p.${i}.stage.${s.id}`}>
                                <option value="">— not mapped (records go to review) —</option>
                                {(hl?.stages ?? []).map((h) => (
                                  <option value={h.id} selected={h.id === chosen}>
                                    {h.name}
                                  </option>
                                ))}
                              </select>
                            </td>
                          </tr>
                        );
                      })}
                  </tbody>
                </table>
              )}
              <Err errors={errors} k={`p.${i}.stages`} />
              {fd && (
                <>
                  {(["won", "lost"] as const).map((kind) => {
                    const value = (kind === "won" ? pair.wonStageId : pair.lostStageId) ?? "";
                    return (
                      <label class="block">
                        HighLevel “{kind}” becomes 4Degrees stage{" "}
                        <select name={`p.${i}.${kind}`}>
                          <option value="">first {kind} stage</option>
                          {fd.stages
                            .filter((s) => s.kind === kind)
                            .map((s) => (
                              <option value={s.id} selected={s.id === value}>
                                {s.name}
                              </option>
                            ))}
                        </select>
                        <Err errors={errors} k={`p.${i}.${kind}`} />
                      </label>
                    );
                  })}
                </>
              )}
            </fieldset>
          );
        })}

        <h2>Fields and directions</h2>
        <table id="directions">
          <thead>
            <tr>
              <th>Field</th>
              <th>Direction</th>
            </tr>
          </thead>
          <tbody>
            {CORE_FIELDS.map((f) => {
              const current = state.mapping.directions?.[f] ?? (f === "contact" ? "to_highlevel" : "both");
              return (
                <tr>
                  <td>{f}</td>
                  <td>
                    <select name={`dir.${f}`}>
                      {DirectionSchema.options.map((d) => (
                        <option value={d} selected={d === current}>
                          {DIRECTION_LABELS[d]}
                        </option>
                      ))}
                    </select>
                    <Err errors={errors} k={`dir.${f}`} />
                  </td>
                </tr>
              );
            })}
            <tr>
              <td>notes</td>
              <td>
                <select name="notes">
                  {DirectionSchema.options.map((d) => (
                    <option value={d} selected={d === (state.mapping.notes ?? "both")}>
                      {DIRECTION_LABELS[d]}
                    </option>
                  ))}
                </select>
              </td>
            </tr>
            <tr>
              <td>attachments</td>
              <td>
                <select name="attachments">
                  {DirectionSchema.options.map((d) => (
                    <option value={d} selected={d === (state.mapping.attachments ?? "both")}>
                      {DIRECTION_LABELS[d]}
                    </option>
                  ))}
                </select>
              </td>
            </tr>
          </tbody>
        </table>
        <label class="block">
          HighLevel “abandoned” counts as{" "}
          <select name="abandonedAs">
            {(["lost", "open"] as const).map((v) => (
              <option value={v} selected={v === (state.mapping.abandonedAs ?? "lost")}>
                {v}
              </option>
            ))}
          </select>
        </label>
        <label class="block">
          Currency <input name="currency" value={state.mapping.currency ?? "USD"} size={4} />
          <Err errors={errors} k="currency" />
        </label>
        <label class="block">
          HighLevel custom field for the 4Degrees close date (optional: empty = HighLevel's native forecast close date
          under API v3, not synced under 2021-07-28){" "}
          <HlFieldSelect name="closeDateFieldId" lists={lists} chosen={state.mapping.closeDateFieldId ?? ""} />
          <Err errors={errors} k="closeDateFieldId" />
        </label>
        <label class="block">
          HighLevel custom field holding the 4Degrees deal id{" "}
          <HlFieldSelect name="externalIdFieldId" lists={lists} chosen={state.mapping.externalIdFieldId ?? ""} />
          <Err errors={errors} k="externalIdFieldId" />
        </label>
        <label class="block">
          HighLevel FILE_UPLOAD field holding the deal's attachments (empty: attachments are not synced){" "}
          <input name="attachmentsFieldId" value={state.mapping.attachmentsFieldId ?? ""} />
          <Err errors={errors} k="attachmentsFieldId" />
        </label>
        <FieldsSection m={state.mapping} lists={lists} errors={errors} />
        <OwnersSection m={state.mapping} lists={lists} errors={errors} />

        <h2>Policies</h2>
        <label class="block">
          When both sides changed the same field{" "}
          <select name="conflictPolicy">
            {ConflictPolicySchema.options.map((v) => (
              <option value={v} selected={v === state.conflictPolicy}>
                {v === "newest" ? "the newest change wins" : `${v === "fourdegrees" ? "4Degrees" : "HighLevel"} wins`}
              </option>
            ))}
          </select>
        </label>
        <label class="block">
          When a record is deleted on one side{" "}
          <select name="deletePolicy">
            {DeletePolicySchema.options.map((v) => (
              <option value={v} selected={v === state.deletePolicy}>
                {v === "propagate"
                  ? "delete it on the other side"
                  : v === "archive"
                    ? "archive it on the other side"
                    : "ignore"}
              </option>
            ))}
          </select>
        </label>
        <label class="block">
          Hold further deletes for approval after{" "}
          <input type="number" name="maxDeletes" min="1" value={state.maxDeletes} required /> deletes, or{" "}
          <input type="number" name="maxPercent" min="1" max="100" value={state.maxPercent} required /> % of the pairs,
          from one side within an hour (held deletes wait on Problems)
          <Err errors={errors} k="deleteGuard.maxDeletes" />
          <Err errors={errors} k="deleteGuard.maxPercent" />
        </label>
        <label class="block">
          <input type="checkbox" name="testMode" value="1" checked={state.testMode} /> Test mode (log what would be
          written; write nothing)
        </label>
        <button type="submit" id="save-mapping">
          Validate and save
        </button>
      </form>
    </Layout>,
    status,
  );
}

/** Reads the posted form into a mapping candidate (and the fields' JSON problem, if any). */
function fromForm(form: Record<string, string | File | (string | File)[]>, lists: FieldLists): FormState {
  const str = (k: string) => (typeof form[k] === "string" ? form[k].trim() : "");
  const pipelines: MappingInput["pipelines"] = [];
  for (let i = 0; i < 50 && str(`p.${i}.fd`) + str(`p.${i}.hl`) + str(`p.${i}.loc`) !== ""; i++) {
    const fdId = str(`p.${i}.fd`);
    if (!fdId) continue; // an empty 4Degrees choice removes (or does not add) the pair
    const stages = Object.keys(form)
      .filter((k) => k.startsWith(`p.${i}.stage.`) && str(k))
      .map((k) => ({ fourdegrees: k.slice(`p.${i}.stage.`.length), highlevel: str(k) }));
    pipelines.push({
      fourdegreesPipelineId: fdId,
      highlevelLocationId: str(`p.${i}.loc`),
      highlevelPipelineId: str(`p.${i}.hl`),
      stages,
      wonStageId: str(`p.${i}.won`) || null,
      lostStageId: str(`p.${i}.lost`) || null,
    });
  }
  const directions: Record<string, string> = {};
  for (const f of CORE_FIELDS) if (str(`dir.${f}`)) directions[f] = str(`dir.${f}`);
  const extra = fieldsFromForm(form, lists);
  const candidate = {
    pipelines,
    directions,
    notes: str("notes") || "both",
    abandonedAs: str("abandonedAs") || "lost",
    currency: str("currency"),
    closeDateFieldId: str("closeDateFieldId") || null,
    externalIdFieldId: str("externalIdFieldId") || null,
    attachmentsFieldId: str("attachmentsFieldId") || null,
    attachments: str("attachments") || "both",
    ...extra,
  };
  // The candidate is shown back as typed; MappingSchema below decides whether it is valid.
  const parsedShape = MappingSchema.safeParse(candidate);
  const mapping: MappingInput = parsedShape.success
    ? parsedShape.data
    : {
        pipelines,
        currency: candidate.currency,
        closeDateFieldId: candidate.closeDateFieldId,
        externalIdFieldId: candidate.externalIdFieldId,
        attachmentsFieldId: candidate.attachmentsFieldId,
        ...extra,
        directions: Object.fromEntries(
          Object.entries(directions).flatMap(([k, v]) => {
            const d = DirectionSchema.safeParse(v);
            return d.success ? [[k, d.data]] : [];
          }),
        ),
      };
  return {
    mapping,
    conflictPolicy: str("conflictPolicy") || "newest",
    deletePolicy: str("deletePolicy") || "archive",
    testMode: str("testMode") === "1",
    maxDeletes: str("maxDeletes"),
    maxPercent: str("maxPercent"),
  };
}

export const mappingPage = new Hono<AppEnv>()
  .get("/mapping", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    if (!account)
      return c.html(
        <Layout title="Mapping" page="mapping" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
        </Layout>,
      );
    const { live, error } = await loadLive(c, account);
    const mapping: MappingInput = account.mapping ?? defaultMapping(live, account.locations[0] ?? "");
    const lists = await loadFieldLists(
      c,
      account,
      live.fourdegrees.map((p) => p.id),
    );
    if (!account.mapping && mapping.pipelines.length === 0 && live.fourdegrees.length === 0)
      return c.html(
        <Layout title="Mapping" page="mapping" accounts={ctx.accounts} account={account} flash={ctx.flash}>
          <Empty>No 4Degrees deal list could be read{error ? ` (${error})` : ""}; check the connections first.</Empty>
        </Layout>,
      );
    return render(
      c,
      { ...ctx, account },
      live,
      error,
      lists,
      {
        mapping,
        conflictPolicy: account.conflictPolicy,
        deletePolicy: account.deletePolicy,
        testMode: account.testMode,
        maxDeletes: String(account.deleteGuard.maxDeletes),
        maxPercent: String(account.deleteGuard.maxPercent),
      },
      [],
      200,
    );
  })
  .post("/mapping", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "mapping", null, { error: "account: choose an existing account" });
    const ctx = { ...(await pageContext(c)), account, flash: null };
    const { live, error } = await loadLive(c, account);
    const lists = await loadFieldLists(
      c,
      account,
      live.fourdegrees.map((p) => p.id),
    );
    const state = fromForm(form, lists);
    const issues: MappingIssue[] = [];
    const shape = MappingSchema.safeParse({
      ...state.mapping,
      // The page does not edit lost-reason pairs (the admin API does): a save keeps them.
      lostReasons: account.mapping?.lostReasons ?? [],
      currency: typeof form["currency"] === "string" ? form["currency"].trim() : "",
    });
    if (!shape.success) issues.push(...mappingIssues(shape.error));
    const conflict = ConflictPolicySchema.safeParse(state.conflictPolicy);
    const del = DeletePolicySchema.safeParse(state.deletePolicy);
    if (!conflict.success) issues.push({ field: "conflictPolicy", message: "unknown policy" });
    if (!del.success) issues.push({ field: "deletePolicy", message: "unknown policy" });
    const guard = DeleteGuardSchema.safeParse({
      // A form without the guard's inputs (an older page, a script) keeps the account's thresholds.
      maxDeletes: "maxDeletes" in form ? Number(state.maxDeletes || NaN) : account.deleteGuard.maxDeletes,
      maxPercent: "maxPercent" in form ? Number(state.maxPercent || NaN) : account.deleteGuard.maxPercent,
    });
    if (!guard.success)
      for (const i of guard.error.issues)
        issues.push({ field: `deleteGuard.${i.path.join(".")}`, message: `${i.message} (a whole number)` });
    if (shape.success && !error)
      issues.push(
        ...validateMappingLive(shape.data, live, account.locations),
        ...validateFieldsLive(shape.data, lists),
      );
    if (issues.length > 0 || !shape.success || !conflict.success || !del.success || !guard.success) {
      c.var.log.info({
        event: "console.mapping_rejected",
        account: account.id,
        outcome: "rejected",
        issues: issues.length,
      });
      return render(c, ctx, live, error, lists, state, issues, 400);
    }
    if (error)
      return render(
        c,
        ctx,
        live,
        error,
        lists,
        state,
        [
          {
            field: "pipelines",
            message: "the live pipelines could not be read, so the mapping cannot be checked; try again",
          },
        ],
        400,
      );
    await saveMapping(c.env.DB, account.id, keepSyncRules(shape.data, account.mapping));
    await updateAccount(c.env.DB, account.id, {
      conflictPolicy: conflict.data,
      deletePolicy: del.data,
      testMode: state.testMode,
      deleteGuard: guard.data,
    });
    c.var.log.info({
      event: "console.mapping_saved",
      account: account.id,
      outcome: "ok",
      pipelines: shape.data.pipelines.length,
    });
    return redirectWith(c, "mapping", account.id, {
      ok: `Mapping saved (${shape.data.pipelines.length} pipeline pair(s)).`,
    });
  });
