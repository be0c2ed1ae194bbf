/**
 * The guided setup's step panels (src/http/console/pages/setup.tsx): what each step shows and the
 * one action it offers, in names (ids in hover titles). Pipelines and the review read the live
 * structure through the gate; the other panels read only D1.
 */
import type { Context } from "hono";
import type { AppEnv } from "../../context.ts";
import type { SessionScope } from "../../scope.ts";
import { progressOf } from "./backfill.tsx";
import type { HlPipeline, HlUser } from "../../../highlevel/port.ts";
import type { Pipeline, User } from "../../../domain/port.ts";
import type { Account } from "../../../store/accounts.ts";
import { liveConnectors } from "../../../sync/connectors.ts";
import { explainError, type SetupTestResult } from "../../../sync/setup-check.ts";
import { loadLiveStructure } from "../../../sync/structure.ts";
import { activeLocations, type SetupState, type StepKey } from "../setup-steps.ts";
import { Empty, fmtInt, fmtTime, href } from "../ui.tsx";
import { LocationLabel, locationNames } from "../names.tsx";

interface PanelProps {
  c: Context<AppEnv>;
  step: StepKey;
  state: SetupState;
  scope: SessionScope;
  test: SetupTestResult | null;
}

const Hidden = ({ account }: { account: Account }) => <input type="hidden" name="account" value={account.id} />;
const Name = ({ name, id }: { name: string; id?: string | null | undefined }) =>
  id ? <span title={id}>{name}</span> : <span>{name}</span>;
const hlUserName = (u: HlUser) => u.name ?? ([u.firstName, u.lastName].filter(Boolean).join(" ") || u.email || u.id);

/** The panel of one step (an async component: some panels read the live structure). */
export async function SetupPanel(p: PanelProps) {
  const account = p.state.account;
  if (p.step === "account" || !account) return <AccountPanel {...p} />;
  switch (p.step) {
    case "highlevel":
      return <HighLevelPanel {...p} account={account} />;
    case "key":
      return <KeyPanel {...p} account={account} />;
    case "pipelines":
    case "review":
      return await StructurePanel({ ...p, account });
    case "test":
      return await TestPanel({ ...p, account });
    case "backfill":
      return <BackfillPanel {...p} account={account} />;
    case "live":
      return <LivePanel {...p} account={account} />;
  }
}

async function AccountPanel(p: PanelProps) {
  const names =
    p.scope.kind === "location" ? await locationNames(p.c, [p.scope.locationId]) : new Map<string, string>();
  if (p.state.account)
    return (
      <p>
        This account is <strong>{p.state.account.name}</strong> (<code>{p.state.account.id}</code>).
      </p>
    );
  return (
    <form method="post" action="/console/setup/account" id="setup-account-form">
      <p>
        {p.scope.kind === "location"
          ? [
              "The account will sync this HighLevel location: ",
              <LocationLabel id={p.scope.locationId} names={names} />,
              ".",
            ]
          : "An account pairs one 4Degrees workspace with HighLevel location(s)."}{" "}
        It starts in test mode: nothing is written until you go live.
      </p>
      <label class="block">
        Name <input name="name" required maxlength={200} placeholder="Marlow & Finch" />
      </label>
      <label class="block">
        Short id (letters, digits, _ and -) <input name="id" required pattern="[A-Za-z0-9_-]{1,64}" />
      </label>
      <button type="submit" id="setup-create-account">
        Create the account
      </button>
    </form>
  );
}

async function HighLevelPanel(p: PanelProps & { account: Account }) {
  const active = activeLocations(p.account, p.state.connections);
  const attached = new Set(p.state.attachedLocations);
  const free = p.state.connections.filter(
    (conn) =>
      conn.kind === "location" &&
      conn.status === "active" &&
      conn.locationId &&
      !p.account.locations.includes(conn.locationId) &&
      !attached.has(conn.locationId),
  );
  const names = await locationNames(p.c, [
    ...active,
    ...free.flatMap((conn) => (conn.locationId ? [conn.locationId] : [])),
    ...(p.scope.kind === "location" ? [p.scope.locationId] : []),
  ]);
  return (
    <>
      {active.length > 0 ? (
        <p>
          Connected:{" "}
          {active.map((id, i) => (
            <>
              {i > 0 && ", "}
              <LocationLabel id={id} names={names} />
            </>
          ))}
          .
        </p>
      ) : (
        <p>No connected HighLevel location syncs with this account yet.</p>
      )}
      {p.scope.kind === "location" ? (
        !active.includes(p.scope.locationId) && (
          <form method="post" action="/console/setup/attach">
            <Hidden account={p.account} />
            <button type="submit" id="setup-attach-own">
              Use this location ({names.get(p.scope.locationId) ?? "this HighLevel location"})
            </button>
          </form>
        )
      ) : (
        <>
          {p.scope.kind === "operator" && (
            <p>
              <a
                class="button"
                href={`/oauth/install?next=${encodeURIComponent(`/console/setup?account=${p.account.id}`)}`}
                id="setup-connect-highlevel"
              >
                Connect HighLevel
              </a>{" "}
              opens HighLevel's install page; choose the location and approve, and you come back here.
            </p>
          )}
          {free.length > 0 && (
            <form method="post" action="/console/setup/attach" id="setup-attach-form">
              <Hidden account={p.account} />
              <label>
                Connected location{" "}
                <select name="location">
                  {free.map((conn) => (
                    <option value={conn.locationId ?? ""}>
                      {names.get(conn.locationId ?? "") ?? `HighLevel location ${conn.locationId ?? ""}`}
                    </option>
                  ))}
                </select>
              </label>{" "}
              <button type="submit" id="setup-attach">
                Sync this location
              </button>
            </form>
          )}
        </>
      )}
    </>
  );
}

function KeyPanel(p: PanelProps & { account: Account }) {
  return (
    <form method="post" action="/console/setup/key" id="setup-key-form">
      {p.state.key && (
        <p>
          Stored: workspace {p.state.key.workspaceId}, key …{p.state.key.keyHint}, verified{" "}
          {fmtTime(p.state.key.verifiedAt)}. Paste another key to replace it.
        </p>
      )}
      <Hidden account={p.account} />
      <label class="block">
        4Degrees API key <input type="password" name="apiKey" required minlength={8} autocomplete="off" />
      </label>
      <button type="submit" id="setup-save-key">
        Check and save the key
      </button>{" "}
      4Degrees is asked who the key belongs to (one read); the key is stored encrypted.
    </form>
  );
}

async function StructurePanel(p: PanelProps & { account: Account }) {
  let live;
  let fdUsers: User[] = [];
  const hlUsers = new Map<string, HlUser[]>();
  try {
    const connectors = await liveConnectors(p.c.env, p.c.var.config)(p.account, "live");
    live = await loadLiveStructure(connectors, p.account.locations);
    if (p.step === "review") {
      fdUsers = await connectors.fourdegrees.listUsers();
      for (const loc of p.account.locations) hlUsers.set(loc, await connectors.highlevel(loc).listUsers());
    }
  } catch (err) {
    return <p class="flash error">Could not read the live pipelines: {explainError(err)}</p>;
  }
  const hlAll = Object.entries(live.highlevel).flatMap(([loc, pipes]) => pipes.map((pipe) => ({ loc, pipe })));
  if (p.step === "pipelines")
    return (
      <form method="post" action="/console/setup/pipelines" id="setup-pipelines-form">
        <Hidden account={p.account} />
        <p>For each 4Degrees pipeline, the HighLevel pipeline it syncs with (open stages pair by name).</p>
        <table>
          <thead>
            <tr>
              <th>4Degrees pipeline</th>
              <th>HighLevel pipeline</th>
            </tr>
          </thead>
          <tbody>
            {live.fourdegrees.map((fd) => {
              const current = p.account.mapping?.pipelines.find((x) => x.fourdegreesPipelineId === fd.id);
              const byName = hlAll.find((h) => h.pipe.name.trim().toLowerCase() === fd.name.trim().toLowerCase());
              const chosen = current
                ? `${current.highlevelLocationId}::${current.highlevelPipelineId}`
                : byName
                  ? `${byName.loc}::${byName.pipe.id}`
                  : "";
              return (
                <tr>
                  <td>
                    <Name name={fd.name} id={fd.id} />
                  </td>
                  <td>
                    <select name={`pair.${fd.id}`} aria-label={`HighLevel pipeline for ${fd.name}`}>
                      <option value="">— do not sync —</option>
                      {hlAll.map((h) => (
                        <option value={`${h.loc}::${h.pipe.id}`} selected={chosen === `${h.loc}::${h.pipe.id}`}>
                          {h.pipe.name}
                        </option>
                      ))}
                    </select>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <button type="submit" id="setup-save-pipelines">
          Save the pipelines
        </button>
      </form>
    );
  return (
    <Review
      {...p}
      fdPipes={live.fourdegrees}
      hlPipes={live.highlevel}
      fields={live.highlevelFields}
      fdUsers={fdUsers}
      hlUsers={hlUsers}
    />
  );
}

function Review(
  p: PanelProps & {
    account: Account;
    fdPipes: Pipeline[];
    hlPipes: Record<string, HlPipeline[]>;
    fields: Record<string, Array<{ id: string; name: string }>>;
    fdUsers: User[];
    hlUsers: Map<string, HlUser[]>;
  },
) {
  const mapping = p.account.mapping;
  if (!mapping) return <Empty>Pick the pipelines first.</Empty>;
  const mail = (e: string | null | undefined) => (e ? e.trim().toLowerCase() : "");
  const allHlUsers = [...p.hlUsers.values()].flat();
  const fieldName = (id: string | null) =>
    id
      ? (Object.values(p.fields)
          .flat()
          .find((f) => f.id === id)?.name ?? id)
      : "not synced";
  return (
    <>
      {mapping.pipelines.map((pair) => {
        const fd = p.fdPipes.find((x) => x.id === pair.fourdegreesPipelineId);
        const hl = (p.hlPipes[pair.highlevelLocationId] ?? []).find((x) => x.id === pair.highlevelPipelineId);
        const unmapped = (fd?.stages ?? []).filter(
          (s) => s.kind === "open" && !pair.stages.some((x) => x.fourdegrees === s.id),
        );
        return (
          <div class="review-pair">
            <h3>
              <Name name={fd?.name ?? pair.fourdegreesPipelineId} id={pair.fourdegreesPipelineId} /> ↔{" "}
              <Name name={hl?.name ?? pair.highlevelPipelineId} id={pair.highlevelPipelineId} />
            </h3>
            <table class="review-stages">
              <thead>
                <tr>
                  <th>4Degrees stage</th>
                  <th>HighLevel stage</th>
                </tr>
              </thead>
              <tbody>
                {pair.stages.map((s) => (
                  <tr>
                    <td>
                      <Name
                        name={fd?.stages.find((x) => x.id === s.fourdegrees)?.name ?? s.fourdegrees}
                        id={s.fourdegrees}
                      />
                    </td>
                    <td>
                      <Name name={hl?.stages.find((x) => x.id === s.highlevel)?.name ?? s.highlevel} id={s.highlevel} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p class="review-closed">
              {(["won", "lost"] as const).map((kind) => {
                const fdId = kind === "won" ? pair.wonStageId : pair.lostStageId;
                const hlId = kind === "won" ? pair.highlevelWonStageId : pair.highlevelLostStageId;
                const fdStage = fd?.stages.find((x) => (fdId ? x.id === fdId : x.kind === kind));
                const hlStage = hl?.stages.find((x) => x.id === hlId);
                return (
                  <>
                    {kind === "won" ? "Won" : "Lost"}: 4Degrees stage{" "}
                    {fdStage ? <Name name={fdStage.name} id={fdStage.id} /> : "none"}, HighLevel stage{" "}
                    {hlStage ? <Name name={hlStage.name} id={hlStage.id} /> : "left as it is"}.{" "}
                  </>
                );
              })}
            </p>
            {unmapped.length > 0 && (
              <p class="flash error">
                Not mapped (deals there go to review, never guessed): {unmapped.map((s) => s.name).join(", ")}
              </p>
            )}
          </div>
        );
      })}
      <h3>Owners (matched by email)</h3>
      <table class="review-owners">
        <thead>
          <tr>
            <th>4Degrees user</th>
            <th>HighLevel user</th>
          </tr>
        </thead>
        <tbody>
          {p.fdUsers.map((u) => {
            const match = allHlUsers.find((h) => mail(h.email) !== "" && mail(h.email) === mail(u.email) && !h.deleted);
            return (
              <tr>
                <td>
                  <Name name={u.name ?? u.email ?? u.id} id={u.id} />
                </td>
                <td class={match ? "" : "status-failed"}>
                  {match ? (
                    <Name name={hlUserName(match)} id={match.id} />
                  ) : (
                    "no HighLevel user with this email (owner not synced)"
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Fields</h3>
      <ul class="review-fields">
        <li>Expected close date → HighLevel field: {fieldName(mapping.closeDateFieldId)}</li>
        <li>4Degrees deal id → HighLevel field: {fieldName(mapping.externalIdFieldId)}</li>
        {mapping.fields.map((f) => (
          <li>
            {f.key} → HighLevel field {fieldName(f.highlevelFieldId)} ({f.direction})
          </li>
        ))}
      </ul>
      <p>
        To change any of this, use the <a href={href("mapping", p.account.id)}>Mapping</a> page, then review again here.
      </p>
      <form method="post" action="/console/setup/review" id="setup-review-form">
        <Hidden account={p.account} />
        <input type="hidden" name="version" value={String(p.account.mappingVersion)} />
        <button type="submit" id="setup-reviewed">
          Stages, owners and fields look right
        </button>
      </form>
    </>
  );
}

async function TestPanel(p: PanelProps & { account: Account }) {
  const t = p.test;
  const names = t
    ? await locationNames(
        p.c,
        t.reads.flatMap((r) => (r.location ? [r.location] : [])),
      )
    : new Map<string, string>();
  return (
    <>
      <p>
        Reads once from each side (4Degrees: who the key is; HighLevel: one opportunity search), then translates up to
        five real deals and five real opportunities exactly as the sync would, and shows what it would write. Nothing is
        written.
      </p>
      <form method="post" action="/console/setup/test">
        <Hidden account={p.account} />
        <button type="submit" id="setup-run-test">
          Run the test
        </button>
      </form>
      {t && (
        <>
          <table id="setup-reads">
            <thead>
              <tr>
                <th>Side</th>
                <th>Read</th>
                <th>Result</th>
                <th>Answer</th>
              </tr>
            </thead>
            <tbody>
              {t.reads.map((r) => (
                <tr>
                  <td>{r.side}</td>
                  <td>
                    {r.location && (
                      <>
                        <LocationLabel id={r.location} names={names} />:{" "}
                      </>
                    )}
                    {r.target}
                  </td>
                  <td class={r.ok ? "status-ok" : "status-failed"}>{r.ok ? "ok" : "failed"}</td>
                  <td>{r.answer}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Dry-run: what would be written</h3>
          {t.records.length === 0 ? (
            <Empty>No record to translate (or the reads failed).</Empty>
          ) : (
            <table id="setup-dry-run">
              <thead>
                <tr>
                  <th>Record</th>
                  <th>Would write</th>
                </tr>
              </thead>
              <tbody>
                {t.records.map((r) => (
                  <tr data-direction={r.direction}>
                    <td>
                      <Name name={r.source.name} id={r.source.id} />
                      <br />
                      <span class="muted">
                        {r.direction === "to_highlevel"
                          ? "4Degrees deal → HighLevel opportunity"
                          : "HighLevel opportunity → 4Degrees deal"}
                      </span>
                    </td>
                    <td>
                      {r.ok ? (
                        <>
                          {r.writes.map((w) => (
                            <span class="kv">
                              {w.label}: <Name name={w.value} id={w.id} />;{" "}
                            </span>
                          ))}
                          {r.skipped.map((s) => (
                            <span class="muted">
                              {" "}
                              (not written: {s.field}, {s.reason})
                            </span>
                          ))}
                        </>
                      ) : (
                        <span class="status-failed">nothing: {r.reason}</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </>
  );
}

function BackfillPanel(p: PanelProps & { account: Account }) {
  const run = p.state.backfill;
  const mine = run && run.runId === p.state.progress?.testBackfillRun ? run : null;
  const pr = mine ? progressOf(mine) : null;
  return (
    <>
      <p>
        Runs the first full sync in test mode: every existing deal and opportunity is matched and translated, and every
        write is computed and logged on the <a href={href("activity", p.account.id)}>Activity</a> page, but none is
        made.
      </p>
      {mine && pr && (
        <p id="setup-backfill-progress">
          {mine.state}: {fmtInt(mine.done)} of {fmtInt(mine.total)} records ({pr.pct}%) · would create{" "}
          {fmtInt(mine.created)} · matched {fmtInt(mine.matched)} · to review {fmtInt(mine.reviewed)}
          {mine.error ? ` · stopped: ${mine.error}` : ""} (<a href={href("backfill", p.account.id)}>details</a>)
        </p>
      )}
      <form method="post" action="/console/setup/backfill">
        <Hidden account={p.account} />
        <button type="submit" id="setup-start-backfill" disabled={mine?.state === "running"}>
          {mine ? "Run the test-mode backfill again" : "Start the backfill in test mode"}
        </button>
      </form>
    </>
  );
}

function LivePanel(p: PanelProps & { account: Account }) {
  const a = p.account;
  const live = a.mapping !== null && a.status === "active" && !a.testMode;
  return live ? (
    <p id="setup-live">
      <strong>{a.name}</strong> is live: changes sync both ways. Watch it on the{" "}
      <a href={href("activity", a.id)}>Activity</a> page.
    </p>
  ) : (
    <form method="post" action="/console/setup/live">
      <p>
        Going live turns test mode off and resumes the account; a backfill then links and writes the existing records.
      </p>
      <Hidden account={a} />
      <button type="submit" id="setup-go-live">
        Go live
      </button>
    </form>
  );
}
