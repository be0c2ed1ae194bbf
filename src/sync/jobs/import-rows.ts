/**
 * The `fourdegrees.import_row` job: one validated row of a 4Degrees deal-list CSV (src/fourdegrees/csv)
 * written to HighLevel through the sync path — the account's mapping, the ledger, the review list,
 * the activity trail and the failure list.
 *
 * A row knows its deal list, stage and owner by NAME. They are resolved against the mapping and
 * the live structure (HighLevel names first, then 4Degrees'); a list or stage that is not mapped
 * sends the row to the review list with its line number, never a guess.
 *
 * Exactly-once effects under at-least-once delivery (the import's "link" is the ledger row
 * `import:<importKey>` / `create`, whose target is the opportunity):
 * 1. before any create the opportunity that may already stand for the row is looked up: the
 *    row's HighLevel id; the pair of its 4Degrees id (`links`); a done ledger create (this
 *    import key's, or the engine's for the 4Degrees id); then a search of the mapped pipeline by
 *    name for the external-id custom field holding the 4Degrees id, else the exact name (+ the
 *    contact email when the row has one) — several candidates → review. A crash between the
 *    create and the ledger's `done` is therefore found by the retry instead of duplicated;
 * 2. an update is keyed by `importKey` + `contentHash` and writes only the fields that differ
 *    from the opportunity as re-read, so a redelivered message writes nothing;
 * 3. the row's notes become one note on the opportunity's contact, tagged as a 4Degrees copy (the
 *    notes sync never copies it back) and looked up by body before a create.
 *
 * A row that does not reach HighLevel (review, test mode, a paused account, a permanent failure)
 * is forgotten by the CSV side's bookkeeping, so importing the file again queues it again.
 */
import { notifyChange } from "../../notify/notify.ts";
import { getAccount, type Account } from "../../store/accounts.ts";
import { recordFailure } from "../../store/failures.ts";
import { forgetImportedRow } from "../../store/imports.ts";
import { beginWrite, completeWrite, getWrite, type LedgerKey } from "../../store/ledger.ts";
import { findLink } from "../../store/links.ts";
import { addReview, recordEvent, resolveReview } from "../../store/sync-events.ts";
import type { HandlerContext, Outcome } from "../../queue/consumer.ts";
import { tagOrigin } from "../engine/notes.ts";
import { sha256 } from "../../lib/hash.ts";
import type { HlPipeline, HlUser, Opportunity, OpportunityCrm } from "../../highlevel/port.ts";
import { countCalls, outcomeForError, type JobDeps } from "./deps.ts";
import {
  closeDateSource,
  externalIdOf,
  flatten,
  fromOpportunity,
  toOpportunityCreate,
  toOpportunityUpdate,
  type Canonical,
} from "../engine/mapping.ts";
import type { Mapping, PipelinePair } from "../../domain/mapping-config.ts";
import { searchPipeline } from "../engine/lookups.ts";
import { same } from "../engine/merge.ts";
import { norm, resolveRow, type ImportRow, type ResolvedRow, type RowStructure } from "./import-resolve.ts";
import type { DealCrm, Pipeline, Flat } from "../../domain/port.ts";

/** One write the job made (or, in test mode, would make). */
interface RowWrite {
  side: "highlevel";
  op: "create" | "update" | "create_note" | "create_contact";
  id: string | null;
  fields?: string[];
}

/** The failure id of a row (one open failure per import key; replay re-sends the row). */
export function importFailureId(msg: Pick<ImportRow, "accountId" | "importKey">): string {
  return `import:${msg.accountId}:${msg.importKey}`;
}

/** The review-list record id of a row (side `fourdegrees`). */
export function importReviewId(importKey: string): string {
  return `import:${importKey}`;
}

/** The ledger key that links an import key to the opportunity standing for it. */
function createKey(accountId: string, importKey: string): LedgerKey {
  return { accountId, targetSide: "highlevel", sourceRecord: `import:${importKey}`, changeHash: "create" };
}

/** What the lookup before a create found. */
type Located =
  | { kind: "found"; opp: Opportunity; via: string }
  | { kind: "ambiguous"; candidates: string[] }
  | { kind: "missing"; reason: string }
  | null;

/** Runs one `fourdegrees.import_row` message. */
export async function runImportRow(msg: ImportRow, ctx: HandlerContext, deps: JobDeps): Promise<Outcome> {
  const db = ctx.env.DB;
  const started = deps.now();
  const log = ctx.log.child({ account: msg.accountId });
  const base = { line: msg.line, importId: msg.importId, importKey: msg.importKey, action: msg.action };
  const account = await getAccount(db, msg.accountId);
  if (!account) {
    log.warn({ event: "sync.import_row", outcome: "skipped", reason: "account no longer exists", ...base });
    return { kind: "ack" };
  }
  const event = (outcome: string, detail: Record<string, unknown>, hlId: string | null = null) =>
    recordEvent(db, {
      accountId: account.id,
      kind: "import",
      direction: "to_highlevel",
      fdId: msg.deal.id,
      hlId,
      outcome,
      detail: { ...base, ...detail },
    });
  if (account.status === "paused") {
    // Nothing is written while paused; the row waits on the failure list (replay after resuming).
    const reason = "the account is paused: replay this row after resuming";
    await recordFailure(db, {
      id: importFailureId(msg),
      accountId: account.id,
      source: "permanent",
      message: msg,
      reason,
    });
    await forgetImportedRow(db, msg);
    await event("skipped", { reason });
    return { kind: "ack" };
  }
  if (!account.mapping) {
    await forgetImportedRow(db, msg);
    await event("skipped", { reason: "the account has no mapping yet (PUT /api/accounts/{id}/mapping)" });
    return { kind: "ack" };
  }

  let calls = 0;
  try {
    const connectors = await deps.connectors(account, "backfill");
    const hl = (loc: string) => countCalls(connectors.highlevel(loc), () => calls++);
    const fourdegrees = countCalls(connectors.fourdegrees, () => calls++);
    const result = await new ImportRowJob(msg, account, account.mapping, db, hl, fourdegrees, deps).run();
    const ms = deps.now() - started;
    log.info({
      event: "sync.import_row",
      direction: "to_highlevel",
      outcome: result.outcome,
      highlevel_id: result.hlId,
      calls,
      writes: result.writes.length,
      duration_ms: ms,
      ...base,
      ...(result.reason ? { reason: result.reason } : {}),
    });
    if (result.outcome !== "ok" && result.outcome !== "noop") await forgetImportedRow(db, msg);
    await event(
      result.outcome,
      { writes: result.writes, calls, ms, ...(result.reason ? { reason: result.reason } : {}), ...result.detail },
      result.hlId,
    );
    return { kind: "ack" };
  } catch (err) {
    const outcome = outcomeForError(err);
    log.warn({
      event: "sync.import_row",
      outcome: outcome.permanent ? "failed" : "retry",
      reason: outcome.reason,
      calls,
      duration_ms: deps.now() - started,
      attempts: ctx.attempts,
      ...base,
    });
    if (!outcome.permanent)
      return {
        kind: "retry",
        reason: outcome.reason,
        ...(outcome.delaySeconds ? { delaySeconds: outcome.delaySeconds } : {}),
      };
    const reason = `line ${msg.line}: ${outcome.reason}`;
    await recordFailure(db, {
      id: importFailureId(msg),
      accountId: account.id,
      source: "permanent",
      message: msg,
      reason,
    });
    await forgetImportedRow(db, msg);
    await recordEvent(db, {
      accountId: account.id,
      kind: "failure",
      direction: "to_highlevel",
      fdId: msg.deal.id,
      hlId: null,
      outcome: "failed",
      detail: { ...base, reason, calls },
    });
    await notifyChange(
      ctx.env,
      ctx.config,
      {
        kind: "sync_failure",
        accountId: account.id,
        failureId: importFailureId(msg),
        reason,
        fourdegreesId: msg.deal.id,
        highlevelId: msg.highlevelOpportunityId,
      },
      log,
    );
    return { kind: "permanent", reason };
  }
}

/** What one row did. */
interface RowResult {
  outcome: "ok" | "noop" | "review" | "test_mode" | "skipped";
  hlId: string | null;
  writes: RowWrite[];
  reason?: string;
  detail: Record<string, unknown>;
}

/** The work of one row, with its per-job memo of structure reads. */
class ImportRowJob {
  readonly #pipelines = new Map<string, Promise<HlPipeline[]>>();
  readonly #users = new Map<string, Promise<HlUser[]>>();
  #fdPipelines: Promise<Pipeline[] | null> | null = null;
  readonly writes: RowWrite[] = [];

  readonly msg: ImportRow;
  readonly account: Account;
  readonly mapping: Mapping;
  readonly db: D1Database;
  readonly highlevel: (locationId: string) => OpportunityCrm;
  readonly fourdegrees: DealCrm;
  readonly deps: JobDeps;

  constructor(
    msg: ImportRow,
    account: Account,
    mapping: Mapping,
    db: D1Database,
    highlevel: (locationId: string) => OpportunityCrm,
    fourdegrees: DealCrm,
    deps: JobDeps,
  ) {
    this.msg = msg;
    this.account = account;
    this.mapping = mapping;
    this.db = db;
    this.highlevel = highlevel;
    this.fourdegrees = fourdegrees;
    this.deps = deps;
  }

  usersOf(loc: string): Promise<HlUser[]> {
    let hit = this.#users.get(loc);
    if (!hit) this.#users.set(loc, (hit = this.highlevel(loc).listUsers()));
    return hit;
  }

  readonly structure: RowStructure = {
    highlevel: (loc) => {
      let hit = this.#pipelines.get(loc);
      if (!hit) this.#pipelines.set(loc, (hit = this.highlevel(loc).listPipelines()));
      return hit;
    },
    // 4Degrees names are a fallback: an account without a usable 4Degrees API resolves by HighLevel names only.
    fourdegrees: () =>
      (this.#fdPipelines ??= this.fourdegrees.listPipelines().catch((err: unknown) => {
        if (outcomeForError(err).permanent) return null;
        throw err;
      })),
    users: (loc) => this.usersOf(loc),
  };

  now(): number {
    return this.deps.now();
  }

  async run(): Promise<RowResult> {
    const msg = this.msg;
    const resolved = await resolveRow(msg, this.mapping, this.structure);
    if (!resolved.ok) return this.#review(resolved.reason, {});
    const { pair, canonical } = resolved;
    const loc = pair.highlevelLocationId;
    const hl = this.highlevel(loc);
    const writable = !this.account.readOnly && (await hl.canWrite());
    // A close date HighLevel cannot hold (no field mapped, no native one) is not a key the row writes.
    if (closeDateSource(this.mapping, hl.nativeCloseDate) === null) resolved.keys.delete("closeDate");

    const located = await this.#locate(hl, pair, canonical);
    if (located?.kind === "ambiguous")
      return this.#review(
        `line ${msg.line}: ambiguous match: ${located.candidates.length} HighLevel opportunities named "${canonical.name}"${canonical.contact ? ` with contact ${canonical.contact}` : ""}; link one by hand (HighLevel ID column)`,
        { candidates: located.candidates },
      );
    if (located?.kind === "missing") return this.#review(`line ${msg.line}: ${located.reason}`, {});
    if (!writable)
      return {
        outcome: "skipped",
        hlId: located?.opp.id ?? null,
        writes: [],
        reason: "HighLevel is read-only for this account: the row is not written there",
        detail: {},
      };

    const result = located ? await this.#update(hl, located.opp, resolved) : await this.#create(hl, resolved);
    if (result.outcome === "test_mode") {
      if (msg.note) this.writes.push({ side: "highlevel", op: "create_note", id: null });
      return {
        outcome: "test_mode",
        hlId: result.hlId,
        writes: this.writes,
        detail: { ...(located ? { found: located.via } : {}), planned: canonical },
      };
    }
    const oppId = result.hlId;
    const contactId = result.contactId;
    if (oppId && contactId && msg.note) await this.#note(hl, contactId, msg.note);
    await resolveReview(this.db, this.account.id, "fourdegrees", importReviewId(msg.importKey));
    const outcome = this.writes.length > 0 ? "ok" : "noop";
    return {
      outcome,
      hlId: oppId,
      writes: this.writes,
      detail: {
        ...(located ? { found: located.via } : {}),
        ...(resolved.skipped.length || result.skipped.length
          ? { skipped: [...resolved.skipped, ...result.skipped] }
          : {}),
      },
    };
  }

  /** Puts the row on the review list (with an alert the first time). */
  async #review(reason: string, detail: Record<string, unknown>): Promise<RowResult> {
    const { line, importId, importKey } = this.msg;
    const isNew = await addReview(
      this.db,
      {
        accountId: this.account.id,
        side: "fourdegrees",
        recordId: importReviewId(importKey),
        reason,
        detail: { line, importId, importKey, name: this.msg.deal.name, ...detail },
      },
      this.now(),
    );
    if (isNew)
      await recordEvent(this.db, {
        accountId: this.account.id,
        kind: "alert",
        direction: null,
        fdId: this.msg.deal.id,
        hlId: null,
        outcome: "review",
        detail: { reason, line, importKey },
      });
    return { outcome: "review", hlId: null, writes: [], reason, detail };
  }

  /**
   * The opportunity that already stands for the row, in order: its HighLevel id; the pair of its
   * 4Degrees id; a done ledger create; the external-id field holding its 4Degrees id; the exact
   * name (+ contact email) in the mapped pipeline. Several name matches → ambiguous.
   */
  async #locate(hl: OpportunityCrm, pair: PipelinePair, canonical: Canonical): Promise<Located> {
    const { msg, db } = this;
    const accountId = this.account.id;
    const fdId = msg.deal.id;
    if (msg.highlevelOpportunityId) {
      const opp = await hl.getOpportunity(msg.highlevelOpportunityId);
      if (opp) return { kind: "found", opp, via: "highlevel_id" };
      return {
        kind: "missing",
        reason: `HighLevel opportunity ${msg.highlevelOpportunityId} (the row's HighLevel ID) does not exist in location ${hl.locationId}`,
      };
    }
    const ids: Array<[string, string | null | undefined]> = [];
    if (fdId) ids.push(["link", (await findLink(db, accountId, "fourdegrees", fdId))?.hlOpportunityId]);
    ids.push(["ledger", (await getWrite(db, createKey(accountId, msg.importKey)))?.targetId]);
    if (fdId)
      ids.push([
        "ledger",
        (
          await getWrite(db, {
            accountId,
            targetSide: "highlevel",
            sourceRecord: `fourdegrees:${fdId}`,
            changeHash: "create",
          })
        )?.targetId,
      ]);
    for (const [via, id] of ids) {
      if (!id) continue;
      const opp = await hl.getOpportunity(id);
      if (opp) return { kind: "found", opp, via };
    }
    const search = await searchPipeline(hl, this.mapping, {
      pipelineId: pair.highlevelPipelineId,
      query: canonical.name,
      fdId: fdId || null,
      sameName: (o) => norm(o.name) === norm(canonical.name),
    });
    if (search.hit) return { kind: "found", opp: search.hit, via: "external_id" };
    const candidates = search.sameName.filter((o) => {
      const claimed = externalIdOf(o, this.mapping);
      if (claimed && fdId && claimed !== fdId) return false; // stands for another 4Degrees deal
      return !canonical.contact || norm(o.contact?.email) === canonical.contact;
    });
    if (candidates.length > 1) return { kind: "ambiguous", candidates: candidates.map((c) => c.id) };
    const only = candidates[0];
    if (only) return { kind: "found", opp: (await hl.getOpportunity(only.id)) ?? only, via: "name" };
    return null;
  }

  /** Creates the opportunity (ledger-guarded; the lookup above found none). */
  async #create(
    hl: OpportunityCrm,
    row: Extract<ResolvedRow, { ok: true }>,
  ): Promise<{
    outcome: "ok" | "test_mode";
    hlId: string | null;
    contactId: string | null;
    skipped: Array<{ field: string; reason: string }>;
  }> {
    const { msg } = this;
    const { canonical } = row;
    if (this.account.testMode) {
      this.writes.push({ side: "highlevel", op: "create", id: null, fields: [...row.keys] });
      return { outcome: "test_mode", hlId: null, contactId: null, skipped: [] };
    }
    const key = createKey(this.account.id, msg.importKey);
    await beginWrite(this.db, key, "create", this.now());
    const contactId = await this.#contact(hl);
    const build = toOpportunityCreate(canonical, this.mapping, {
      users: await this.usersOf(hl.locationId),
      nativeCloseDate: hl.nativeCloseDate,
      contactId,
      fdDealId: msg.deal.id ?? "",
    });
    // A row without a 4Degrees id has none to store in the external-id field.
    if (!msg.deal.id && build.body.customFields)
      build.body.customFields = build.body.customFields.filter((f) => f.id !== this.mapping.externalIdFieldId);
    const opp = await hl.createOpportunity(build.body);
    await this.deps.hooks?.afterCreate?.("highlevel", opp.id);
    await completeWrite(this.db, key, opp.id, this.now());
    this.writes.push({ side: "highlevel", op: "create", id: opp.id, fields: [...row.keys] });
    return { outcome: "ok", hlId: opp.id, contactId: opp.contactId ?? contactId, skipped: build.skipped };
  }

  /**
   * The row's contact: found or created by email; a row without an email gets a contact named
   * after it, created once (ledger), since HighLevel needs one on every opportunity.
   */
  async #contact(hl: OpportunityCrm): Promise<string> {
    const first = this.msg.deal.contacts[0];
    const email = first?.email ?? null;
    const name = first?.name ?? this.msg.deal.name;
    if (email) return (await hl.ensureContact({ email, name })).id;
    const key: LedgerKey = {
      accountId: this.account.id,
      targetSide: "highlevel",
      sourceRecord: `import:${this.msg.importKey}`,
      changeHash: "contact",
    };
    const begun = await beginWrite(this.db, key, "create_contact", this.now());
    if (begun.entry.state === "done" && begun.entry.targetId) return begun.entry.targetId;
    const contact = await hl.ensureContact({ email: null, name });
    await completeWrite(this.db, key, contact.id, this.now());
    this.writes.push({ side: "highlevel", op: "create_contact", id: contact.id });
    return contact.id;
  }

  /** Writes the row's fields that differ from the opportunity as re-read (`importKey` + `contentHash` ledger). */
  async #update(
    hl: OpportunityCrm,
    opp: Opportunity,
    row: Extract<ResolvedRow, { ok: true }>,
  ): Promise<{
    outcome: "ok" | "test_mode";
    hlId: string;
    contactId: string | null;
    skipped: Array<{ field: string; reason: string }>;
  }> {
    const { msg } = this;
    const accountId = this.account.id;
    const current = fromOpportunity(opp, hl.locationId, this.mapping, {
      users: await this.usersOf(hl.locationId),
      nativeCloseDate: hl.nativeCloseDate,
    });
    const now: Flat = current.ok ? flatten(current.canonical) : {};
    const mine = flatten(row.canonical);
    const changed = new Set([...row.keys].filter((k) => !same(mine[k], now[k])));
    // A closed record has no canonical stage: the status decides, HighLevel keeps its stage.
    if (row.canonical.status !== "open") changed.delete("stage");
    const contactId = opp.contactId ?? null;
    if (this.account.testMode) {
      if (changed.size > 0) this.writes.push({ side: "highlevel", op: "update", id: opp.id, fields: [...changed] });
      return { outcome: "test_mode", hlId: opp.id, contactId, skipped: [] };
    }
    // The import key now stands for this opportunity (a crash after a create is healed here).
    const link = createKey(accountId, msg.importKey);
    const linked = await getWrite(this.db, link);
    if (linked?.state !== "done" || linked.targetId !== opp.id) {
      await beginWrite(this.db, link, "link", this.now());
      await completeWrite(this.db, link, opp.id, this.now());
    }
    if (changed.size === 0) return { outcome: "ok", hlId: opp.id, contactId, skipped: [] };
    const build = toOpportunityUpdate(changed, row.canonical, this.mapping, {
      users: await this.usersOf(hl.locationId),
      nativeCloseDate: hl.nativeCloseDate,
      currentStageId: opp.pipelineStageId,
    });
    if (Object.keys(build.body).length === 0) return { outcome: "ok", hlId: opp.id, contactId, skipped: build.skipped };
    const key: LedgerKey = {
      accountId,
      targetSide: "highlevel",
      sourceRecord: `import:${msg.importKey}`,
      changeHash: `update:${msg.contentHash}`,
    };
    const begun = await beginWrite(this.db, key, "update", this.now());
    if (begun.entry.state !== "done") {
      await hl.updateOpportunity(opp.id, build.body);
      await completeWrite(this.db, key, opp.id, this.now());
      this.writes.push({ side: "highlevel", op: "update", id: opp.id, fields: [...changed] });
    }
    return { outcome: "ok", hlId: opp.id, contactId, skipped: build.skipped };
  }

  /**
   * The row's notes as one note on the contact, once per text: tagged as a 4Degrees copy (so the
   * notes sync never copies it back), ledger-guarded, and looked up by body after a crash.
   */
  async #note(hl: OpportunityCrm, contactId: string, text: string): Promise<void> {
    if (this.mapping.notes === "off" || this.mapping.notes === "to_fourdegrees") return;
    const body = tagOrigin(text, "fourdegrees", `csv:${(await sha256(this.msg.importKey)).slice(0, 16)}`);
    const key: LedgerKey = {
      accountId: this.account.id,
      targetSide: "highlevel",
      sourceRecord: `import:${this.msg.importKey}`,
      changeHash: `note:${await sha256(text)}`,
    };
    const begun = await beginWrite(this.db, key, "create_note", this.now());
    if (begun.entry.state === "done") return;
    const existing = begun.fresh ? null : (await hl.listNotes(contactId)).find((n) => n.body === body);
    const noteId = existing?.id ?? (await hl.createNote(contactId, body)).id;
    await completeWrite(this.db, key, noteId, this.now());
    if (!existing) this.writes.push({ side: "highlevel", op: "create_note", id: noteId });
  }
}
