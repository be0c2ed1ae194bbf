/**
 * Problems: open failures (permanent errors and dead letters) and review items, each with its
 * reason, a diff preview (the last-synced state against what the engine saw), and replay — one,
 * or all open failures of the account. Replay re-enqueues the failed message (a record job is
 * forced, so it runs even when the record is no longer marked dirty). Every page also lists the
 * unassigned failures (no account could be found for them), which the operator replays from here.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../../context.ts";
import { requestScope } from "../../scope.ts";
import { AppError } from "../../../lib/errors.ts";
import { getFailure, listFailures, UNASSIGNED, type Failure } from "../../../store/failures.ts";
import { findLink, type Link } from "../../../store/links.ts";
import { listReview, type ReviewItem } from "../../../store/sync-events.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../queue/messages.ts";
import { sendMessage } from "../../../queue/queues.ts";
import { replayFailure } from "../../../queue/replay.ts";
import { formAccount, pageContext, redirectWith } from "../context.ts";
import { FailurePreviewer, PREVIEW_LIMIT, type Preview } from "../preview.ts";
import { listAlerts } from "../../../store/alerts.ts";
import { listHeldDeletes } from "../../../store/held-deletes.ts";
import { AlertsList, HeldDeletes, heldDeletesRoutes } from "./held-deletes.tsx";
import { Empty, fmtTime, href, Layout, NoAccount } from "../ui.tsx";
import { recordNames } from "../../../store/console-views.ts";
import {
  baseValue,
  fourDegreesStructure,
  LocationLabel,
  locationNames,
  matchesSearch,
  Named,
  recordLabel,
  type FourDegreesStructure,
} from "../names.tsx";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): v is string | number | boolean =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean";
const show = (v: unknown) =>
  v === undefined ? "—" : v === null ? "null" : isScalar(v) ? String(v) : JSON.stringify(v);

/** Two states to compare, from a detail object (or the link's base and one of them). */
function diffSides(detail: Obj, link: Link | null): { left: [string, Obj]; right: [string, Obj] } | null {
  for (const [a, b] of [
    ["before", "after"],
    ["base", "current"],
    ["fourdegrees", "highlevel"],
    ["ours", "theirs"],
    ["expected", "actual"],
  ] as const) {
    const l = detail[a];
    const r = detail[b];
    if (isObj(l) && isObj(r)) return { left: [a, l], right: [b, r] };
  }
  if (link)
    for (const k of ["current", "incoming", "canonical", "proposed", "record"]) {
      const r = detail[k];
      if (isObj(r)) return { left: ["last synced", link.base], right: [k, r] };
    }
  return null;
}

/** Two states side by side, the differing fields highlighted (only those, when any differ). */
const SideBySide = ({
  sides,
  names,
}: {
  sides: { left: [string, Obj]; right: [string, Obj] };
  names: FourDegreesStructure;
}) => {
  const keys = [...new Set([...Object.keys(sides.left[1]), ...Object.keys(sides.right[1])])].sort();
  const changed = keys.filter((k) => show(sides.left[1][k]) !== show(sides.right[1][k]));
  return (
    <table class="diff">
      <thead>
        <tr>
          <th>field</th>
          <th>{sides.left[0]}</th>
          <th>{sides.right[0]}</th>
        </tr>
      </thead>
      <tbody>
        {(changed.length ? changed : keys).map((k) => (
          <tr>
            <th>{k}</th>
            <td class={changed.includes(k) ? "diff-old" : ""} title={show(sides.left[1][k])}>
              {sides.left[1][k] === undefined ? "—" : baseValue(k, sides.left[1][k], names)}
            </td>
            <td class={changed.includes(k) ? "diff-new" : ""} title={show(sides.right[1][k])}>
              {sides.right[1][k] === undefined ? "—" : baseValue(k, sides.right[1][k], names)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
};

const Diff = ({ detail, link, names }: { detail: Obj; link: Link | null; names: FourDegreesStructure }) => {
  const sides = diffSides(detail, link);
  if (!sides)
    return Object.keys(detail).length ? (
      <details>
        <summary>detail</summary>
        <pre>{JSON.stringify(detail, null, 2)}</pre>
      </details>
    ) : (
      <span>no detail recorded</span>
    );
  return <SideBySide sides={sides} names={names} />;
};

/** A failed record's live preview (src/http/console/preview.ts), or why there is none. */
const FailurePreview = ({ preview, names }: { preview: Preview | null; names: FourDegreesStructure }) => {
  if (!preview)
    return (
      <span class="hint">
        Not previewed (only the newest {PREVIEW_LIMIT} are read live): open the record's history.
      </span>
    );
  if (preview.kind === "note") return <span>{preview.text}</span>;
  const left: [string, Obj] = [preview.left.label, preview.left.state];
  const right: [string, Obj] = [preview.right.label, preview.right.state];
  return <SideBySide sides={{ left, right }} names={names} />;
};

function recordOf(
  msg: unknown,
): { side: "fourdegrees" | "highlevel"; id: string; locationId: string | null; kind: "deal" | "notes" } | null {
  const parsed = QueueMessageSchema.safeParse(msg);
  if (!parsed.success) return null;
  if (parsed.data.kind === "sync.record")
    return {
      side: parsed.data.side,
      id: parsed.data.recordId,
      locationId: parsed.data.locationId,
      kind: parsed.data.record,
    };
  return null;
}

/** Replays one failure (src/queue/replay.ts); false when it holds a message this version cannot read. */
async function replay(c: Context<AppEnv>, failure: Failure): Promise<boolean> {
  const message = await replayFailure(c.env, failure);
  if (!message) return false;
  c.var.log.info({
    event: "console.replay",
    account: failure.accountId ?? UNASSIGNED,
    failure: failure.id,
    kind: message.kind,
    outcome: "ok",
  });
  return true;
}

/** What a failure's message concerns, for the unassigned table (its kind and location / workspace, by name). */
const Concerns = ({ message, locations }: { message: unknown; locations: Map<string, string> }) => {
  const m = isObj(message) ? message : {};
  const loc = typeof m["locationId"] === "string" ? m["locationId"] : null;
  const ws = typeof m["workspaceId"] === "string" ? m["workspaceId"] : null;
  return (
    <>
      {typeof m["kind"] === "string" ? m["kind"] : "unreadable message"}
      {loc && (
        <>
          {" "}
          (<LocationLabel id={loc} names={locations} />)
        </>
      )}
      {ws && (
        <>
          {" "}
          (<Named name={null} id={ws} fallback="a 4Degrees workspace no account has" />)
        </>
      )}
    </>
  );
};

/**
 * Failures no account could be found for (an unknown location or workspace, an unreadable body):
 * the operator's bucket, shown on every Problems page so nothing dead-lettered goes unseen.
 */
const Unassigned = ({
  failures,
  account,
  locations,
}: {
  failures: Failure[];
  account: string | null;
  locations: Map<string, string>;
}) => (
  <>
    <h2>Unassigned failures ({failures.length} open)</h2>
    {failures.length === 0 ? (
      <Empty>No failure is waiting without an account.</Empty>
    ) : (
      <table id="unassigned">
        <thead>
          <tr>
            <th>When</th>
            <th>Source</th>
            <th>Message</th>
            <th>Reason</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {failures.map((f) => (
            <tr data-failure={f.id}>
              <td>{fmtTime(f.createdAt)}</td>
              <td>{f.source === "dead_letter" ? "dead letter" : "permanent error"}</td>
              <td>
                <Concerns message={f.message} locations={locations} />
              </td>
              <td>{f.reason}</td>
              <td>
                <form method="post" action="/console/problems/replay" class="inline">
                  <input type="hidden" name="bucket" value={UNASSIGNED} />
                  {account ? <input type="hidden" name="account" value={account} /> : null}
                  <input type="hidden" name="id" value={f.id} />
                  <button type="submit">Replay</button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </>
);

/** Names of the locations the unassigned failures mention (those still connected). */
const unassignedLocations = (c: Context<AppEnv>, failures: Failure[]) =>
  locationNames(
    c,
    failures.flatMap((f) =>
      isObj(f.message) && typeof f.message["locationId"] === "string" ? [f.message["locationId"]] : [],
    ),
  );

export const problemsPage = new Hono<AppEnv>()
  .route("/", heldDeletesRoutes)
  .get("/problems", async (c) => {
    const ctx = await pageContext(c);
    const account = ctx.account;
    // Unassigned failures may concern any location: the operator's alone.
    const unassigned = ctx.scope.kind === "operator" ? await listFailures(c.env.DB, null, "open") : [];
    if (!account)
      return c.html(
        <Layout title="Problems" page="problems" accounts={ctx.accounts} account={null} flash={ctx.flash}>
          <NoAccount />
          <Unassigned failures={unassigned} account={null} locations={await unassignedLocations(c, unassigned)} />
        </Layout>,
      );
    const q = c.req.query("q")?.trim() ?? "";
    const [allFailures, allReview, held, alerts] = await Promise.all([
      listFailures(c.env.DB, account.id, "open"),
      listReview(c.env.DB, account.id),
      listHeldDeletes(c.env.DB, account.id),
      listAlerts(c.env.DB, account.id, Date.now() - 7 * 24 * 60 * 60 * 1000),
    ]);
    const names = await recordNames(c.env.DB, account.id, {
      fourdegrees: [
        ...allReview.flatMap((r) => (r.side === "fourdegrees" ? [r.recordId] : [])),
        ...allFailures.flatMap((f) =>
          recordOf(f.message)?.side === "fourdegrees" ? [recordOf(f.message)?.id ?? ""] : [],
        ),
      ],
      highlevel: [
        ...allReview.flatMap((r) => (r.side === "highlevel" ? [r.recordId] : [])),
        ...allFailures.flatMap((f) =>
          recordOf(f.message)?.side === "highlevel" ? [recordOf(f.message)?.id ?? ""] : [],
        ),
      ],
    });
    const labelOf = (side: "fourdegrees" | "highlevel", id: string) =>
      side === "fourdegrees" ? recordLabel(names, id, null) : recordLabel(names, null, id);
    const nameOf = (side: "fourdegrees" | "highlevel", id: string) =>
      (side === "fourdegrees" ? names.fourdegrees : names.highlevel).get(id) ?? null;
    const failures = allFailures.filter((f) => {
      const r = recordOf(f.message);
      return !q || (r ? matchesSearch(q, nameOf(r.side, r.id), r.id) : false);
    });
    const review = allReview.filter((r) => matchesSearch(q, nameOf(r.side, r.recordId), r.recordId));
    const linkFor = async (side: "fourdegrees" | "highlevel", id: string) => findLink(c.env.DB, account.id, side, id);
    const failureLinks = await Promise.all(
      failures.map(async (f) => {
        const r = recordOf(f.message);
        return r ? linkFor(r.side, r.id) : null;
      }),
    );
    const previewer = new FailurePreviewer(c.env, c.var.config, account);
    const previews: Array<Preview | null> = [];
    for (const [i, f] of failures.entries()) {
      const r = recordOf(f.message);
      previews.push(
        r && r.kind === "deal" && i < PREVIEW_LIMIT
          ? await previewer.preview(r.side, r.id, r.locationId, failureLinks[i] ?? null)
          : null,
      );
    }
    const reviewLinks = await Promise.all(review.map((r: ReviewItem) => linkFor(r.side, r.recordId)));
    // Pipeline, stage and owner names, read only when a side-by-side diff will show them.
    const diffs =
      previews.some((p) => p !== null && p.kind !== "note") ||
      review.some((r, i) => diffSides(r.detail, reviewLinks[i] ?? null) !== null) ||
      failures.some((f) => isObj(f.message) && diffSides(f.message, null) !== null);
    const structure = diffs ? await fourDegreesStructure(c, account.id) : { pipelines: [], users: [] };
    return c.html(
      <Layout title="Problems" page="problems" accounts={ctx.accounts} account={account} flash={ctx.flash}>
        <AlertsList alerts={alerts} />
        <HeldDeletes account={account} held={held} />
        <form method="get" action="/console/problems" id="problems-search">
          <input type="hidden" name="account" value={account.id} />
          <label>
            Search <input type="search" name="q" value={q} placeholder="record name or 4Degrees / HighLevel id" />
          </label>{" "}
          <button type="submit">Search</button>
          {q && ` · ${failures.length + review.length} of ${allFailures.length + allReview.length} shown`}
        </form>
        <h2>Failures ({failures.length} open)</h2>
        {failures.length === 0 ? (
          <Empty>No open failures: every message was synced or is still being retried.</Empty>
        ) : (
          <>
            <form method="post" action="/console/problems/replay-all" id="replay-all">
              <input type="hidden" name="account" value={account.id} />
              <button type="submit">Replay all {failures.length}</button>
            </form>
            <table id="failures">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Source</th>
                  <th>Record</th>
                  <th>Reason</th>
                  <th>Diff preview (last synced → now: what a replay would write)</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {failures.map((f, i) => {
                  const r = recordOf(f.message);
                  return (
                    <tr data-failure={f.id}>
                      <td>{fmtTime(f.createdAt)}</td>
                      <td>{f.source === "dead_letter" ? "dead letter" : "permanent error"}</td>
                      <td>
                        {r ? (
                          <a
                            href={href(
                              "activity/record",
                              account.id,
                              r.side === "fourdegrees" ? { fd: r.id } : { hl: r.id },
                            )}
                            title={labelOf(r.side, r.id).title}
                          >
                            {labelOf(r.side, r.id).text}
                          </a>
                        ) : (
                          "—"
                        )}
                      </td>
                      <td>{f.reason}</td>
                      <td class="preview">
                        {recordOf(f.message)?.kind === "deal" ? (
                          <FailurePreview preview={previews[i] ?? null} names={structure} />
                        ) : (
                          <Diff detail={isObj(f.message) ? f.message : {}} link={null} names={structure} />
                        )}
                      </td>
                      <td>
                        <form method="post" action="/console/problems/replay" class="inline">
                          <input type="hidden" name="account" value={account.id} />
                          <input type="hidden" name="id" value={f.id} />
                          <button type="submit">Replay</button>
                        </form>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </>
        )}
        <Unassigned failures={unassigned} account={account.id} locations={await unassignedLocations(c, unassigned)} />
        <h2>Review ({review.length})</h2>
        {review.length === 0 ? (
          <Empty>Nothing to review: the engine has not met a record it would have to guess about.</Empty>
        ) : (
          <table id="review">
            <thead>
              <tr>
                <th>Since</th>
                <th>Record</th>
                <th>Reason</th>
                <th>Diff preview</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {review.map((r, i) => (
                <tr>
                  <td>{fmtTime(r.createdAt)}</td>
                  <td>
                    <a
                      href={href(
                        "activity/record",
                        account.id,
                        r.side === "fourdegrees" ? { fd: r.recordId } : { hl: r.recordId },
                      )}
                      title={labelOf(r.side, r.recordId).title}
                    >
                      {labelOf(r.side, r.recordId).text}
                    </a>
                  </td>
                  <td>{r.reason}</td>
                  <td>
                    <Diff detail={r.detail} link={reviewLinks[i] ?? null} names={structure} />
                  </td>
                  <td>
                    <form method="post" action="/console/problems/resync" class="inline">
                      <input type="hidden" name="account" value={account.id} />
                      <input type="hidden" name="side" value={r.side} />
                      <input type="hidden" name="record" value={r.recordId} />
                      <button type="submit">Sync again</button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Layout>,
    );
  })
  .post("/problems/replay", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const id = typeof form["id"] === "string" ? form["id"] : "";
    const failure = id ? await getFailure(c.env.DB, id) : null;
    if (form["bucket"] === UNASSIGNED) {
      if (requestScope(c).kind !== "operator")
        throw new AppError("forbidden", "unassigned failures are for the operator only");
      const back = account?.id ?? null;
      if (!failure || failure.accountId !== null)
        return redirectWith(c, "problems", back, { error: `id: no unassigned failure ${id || "(none)"}` });
      if (failure.status !== "open")
        return redirectWith(c, "problems", back, { error: `Failure ${id} was already replayed.` });
      if (!(await replay(c, failure)))
        return redirectWith(c, "problems", back, {
          error: `Failure ${id} holds a message this version cannot replay.`,
        });
      return redirectWith(c, "problems", back, { ok: `Replayed ${id}.` });
    }
    if (!account || !failure || failure.accountId !== account.id)
      return redirectWith(c, "problems", account?.id ?? null, {
        error: `id: no failure ${id || "(none)"} in this account`,
      });
    if (failure.status !== "open")
      return redirectWith(c, "problems", account.id, { error: `Failure ${id} was already replayed.` });
    if (!(await replay(c, failure)))
      return redirectWith(c, "problems", account.id, {
        error: `Failure ${id} holds a message this version cannot replay.`,
      });
    return redirectWith(c, "problems", account.id, { ok: `Replayed ${id}; its outcome appears in Activity.` });
  })
  .post("/problems/replay-all", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    if (!account) return redirectWith(c, "problems", null, { error: "account: choose an existing account" });
    let done = 0;
    let skipped = 0;
    for (const f of await listFailures(c.env.DB, account.id, "open")) {
      if (await replay(c, f)) done++;
      else skipped++;
    }
    return redirectWith(c, "problems", account.id, {
      ok: `Replayed ${done} failure(s)${skipped ? `; ${skipped} could not be replayed` : ""}.`,
    });
  })
  .post("/problems/resync", async (c) => {
    const form = await c.req.parseBody();
    const account = await formAccount(c, form);
    const side = form["side"] === "fourdegrees" || form["side"] === "highlevel" ? form["side"] : null;
    const recordId = typeof form["record"] === "string" ? form["record"].trim() : "";
    if (!account || !side || !recordId)
      return redirectWith(c, "problems", account?.id ?? null, { error: "side and record are required" });
    const message: QueueMessage = {
      v: 1,
      kind: "sync.record",
      accountId: account.id,
      side,
      record: "deal",
      recordId,
      locationId: null,
      lane: "live",
      force: true,
    };
    await sendMessage(c.env, message);
    c.var.log.info({ event: "console.resync", account: account.id, record: recordId, outcome: "ok" });
    return redirectWith(c, "problems", account.id, { ok: `Queued ${side} ${recordId} to sync again.` });
  });
