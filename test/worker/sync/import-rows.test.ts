/**
 * End-to-end: a 4Degrees deal-list CSV imported through `POST /api/import/4degrees` reaches the
 * HighLevel sandbox through the `fourdegrees.import_row` handler — stage, value, owner, contact,
 * close date and notes by name through the mapping; re-imports and redeliveries write nothing; a
 * crash between create and ledger is found by the retry; unknown stages go to review; an update
 * row changes the opportunity; HighLevel's refusals are replayable failures.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/http/app.ts";
import { listFailures } from "../../../src/store/failures.ts";
import { ledgerCounts } from "../../../src/store/ledger.ts";
import { listEvents, listReview } from "../../../src/store/sync-events.ts";
import type { Outcome } from "../../../src/queue/consumer.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { QueueMessageSchema, type QueueMessage } from "../../../src/queue/messages.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { ACCOUNT, createWorld, type World } from "./world.ts";
import { ascending } from "../../support.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);
const app = createApp();

type Report = {
  created: number;
  updated: number;
  linked: number;
  unchanged: number;
  queued: number;
  skipped: Array<{ line: number; reason: string }>;
};
type ImportRow = Extract<QueueMessage, { kind: "fourdegrees.import_row" }>;

/** Posts a CSV to the import endpoint (admin bearer); its messages land on the world's queue. */
async function importCsv(w: World, csv: string): Promise<Report> {
  const queue = {
    async send(body: unknown) {
      w.queue.push({ body: QueueMessageSchema.parse(body), attempts: 0 });
    },
    async sendBatch(messages: Iterable<{ body: unknown }>) {
      for (const m of messages) w.queue.push({ body: QueueMessageSchema.parse(m.body), attempts: 0 });
    },
  };
  const res = await app.fetch(
    new Request(`http://worker.test/api/import/4degrees?account=${ACCOUNT}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}`, "content-type": "text/csv" },
      body: csv,
    }),
    { ...env, BULK_QUEUE: queue },
  );
  expect(res.status).toBe(200);
  return res.json();
}

/**
 * Runs the queued import rows through the engine's real handler (retries requeued, as the queue
 * would) and returns them; other messages stay for `settle`.
 */
async function drainImports(w: World): Promise<{ rows: ImportRow[]; outcomes: Outcome[] }> {
  const handler = syncHandlers(() => w.deps)["fourdegrees.import_row"];
  if (!handler) throw new Error("no fourdegrees.import_row handler");
  const rows: ImportRow[] = [];
  const outcomes: Outcome[] = [];
  for (let i = 0; i < w.queue.length;) {
    const item = w.queue[i];
    const msg = item ? QueueMessageSchema.parse(item.body) : null;
    if (!item || msg?.kind !== "fourdegrees.import_row") {
      i++;
      continue;
    }
    w.queue.splice(i, 1);
    let outcome: Outcome;
    try {
      outcome = await handler(msg, { ...w.ctx, attempts: item.attempts + 1 });
    } catch (err) {
      outcome = { kind: "retry", reason: String(err) };
    }
    outcomes.push(outcome);
    if (outcome.kind === "retry") {
      expect(item.attempts, `retried too often: ${outcome.reason}`).toBeLessThan(5);
      w.queue.push({ body: item.body, attempts: item.attempts + 1 });
    } else rows.push(msg);
  }
  return { rows, outcomes };
}

const opps = (w: World, name: string) =>
  [...w.sb.highlevel.store.opportunities.values()].filter((o) => o.name === name);

const CSV = [
  "Deal Name,Pipeline,Stage,Owner,Value,Expected Close Date,Contact Email,Contact Name,Notes",
  'Acme Robotics,Deal Flow,Due Diligence,priya.shah@acmecapital.example,"$250,000",2026-12-31,jane@acme-robotics.example,Jane Roe,"Met at SaaStr; strong team"',
  "Beta Bio,Deal Flow,First Meeting,Jordan Lee,1000,,,,",
  "Gamma Grid,Deal Flow,Closed,,,,,,",
].join("\n");

describe("CSV import rows → HighLevel (happy)", () => {
  it("creates each row's opportunity with stage, value, owner, contact, close date and note; a re-import and a redelivery write nothing", async () => {
    const w = await createWorld(routes);
    const report = await importCsv(w, CSV);
    expect(report).toMatchObject({ created: 3, updated: 0, linked: 0, unchanged: 0, skipped: [] });
    const { rows } = await drainImports(w);
    expect(rows).toHaveLength(3);

    const [acme] = opps(w, "Acme Robotics");
    expect(opps(w, "Acme Robotics")).toHaveLength(1);
    expect(acme?.pipelineId).toBe(w.hlPipelineId);
    expect(acme?.pipelineStageId).toBe(w.hlStage("Due Diligence"));
    expect(acme?.status).toBe("open");
    expect(acme?.monetaryValue).toBe(250_000);
    expect(w.sb.highlevel.store.users.get(acme?.assignedTo ?? "")?.email).toBe("priya.shah@acmecapital.example");
    expect(w.sb.highlevel.store.contacts.get(acme?.contactId ?? "")?.email).toBe("jane@acme-robotics.example");
    expect(acme?.customFields.find((f) => f.id === w.mapping.closeDateFieldId)?.value).toMatch(/^2026-12-31/);
    const notes = w.sb.highlevel.store.notesOf(acme?.contactId ?? "");
    expect(notes.filter((n) => n.body.startsWith("Met at SaaStr; strong team"))).toHaveLength(1);
    // Owner by name; a row without an email still gets a contact (HighLevel requires one).
    const [beta] = opps(w, "Beta Bio");
    expect(w.sb.highlevel.store.users.get(beta?.assignedTo ?? "")?.email).toBe("jordan.lee@acmecapital.example");
    expect(beta?.pipelineStageId).toBe(w.hlStage("First Meeting"));
    expect(beta?.contactId).toBeTruthy();
    // A won stage of the list: status won in the mapped won stage.
    const [gamma] = opps(w, "Gamma Grid");
    expect(gamma?.status).toBe("won");
    expect(gamma?.pipelineStageId).toBe(w.hlStage("Closed"));
    // One activity event per row.
    const events = (await listEvents(env.DB, ACCOUNT, { kind: "import" })).filter((e) => e.outcome === "ok");
    expect(events.map((e) => e.detail["line"]).sort(ascending)).toEqual([2, 3, 4]);

    // The engine takes the opportunities from here (its webhooks); then nothing more moves.
    await w.settle();
    w.resetCounts();
    const again = await importCsv(w, CSV);
    expect(again).toMatchObject({ created: 0, updated: 0, unchanged: 3, queued: 0 });
    await drainImports(w);
    await w.settle();
    expect(w.writes().highlevel).toBe(0);

    // Redelivering the rows (at-least-once queue) duplicates nothing: not the opportunity, not the note.
    for (const row of rows) w.queue.push({ body: row, attempts: 0 });
    await drainImports(w);
    await w.settle();
    expect(w.writes().highlevel).toBe(0);
    expect(opps(w, "Acme Robotics")).toHaveLength(1);
    expect(
      w.sb.highlevel.store.notesOf(acme?.contactId ?? "").filter((n) => n.body.startsWith("Met at SaaStr")),
    ).toHaveLength(1);
  });

  it("an update row changes the opportunity's stage and value, once", async () => {
    const w = await createWorld(routes);
    await importCsv(w, CSV);
    await drainImports(w);
    const changed = CSV.replace(
      'Due Diligence,priya.shah@acmecapital.example,"$250,000"',
      'Term Sheet,priya.shah@acmecapital.example,"$300,000"',
    );
    const report = await importCsv(w, changed);
    expect(report).toMatchObject({ created: 0, updated: 1, unchanged: 2 });
    w.resetCounts();
    const { rows } = await drainImports(w);
    const [acme] = opps(w, "Acme Robotics");
    expect(opps(w, "Acme Robotics")).toHaveLength(1);
    expect(acme?.pipelineStageId).toBe(w.hlStage("Term Sheet"));
    expect(acme?.monetaryValue).toBe(300_000);
    expect(w.writes().highlevel).toBe(1);
    // Redelivered: the re-read already shows the change.
    w.resetCounts();
    for (const row of rows) w.queue.push({ body: row, attempts: 0 });
    await drainImports(w);
    expect(w.writes().highlevel).toBe(0);
  });
});

describe("CSV import rows (error)", () => {
  it("a crash after the HighLevel create, before the ledger records it, is found by the retry: one opportunity", async () => {
    let crashes = 1;
    const w = await createWorld(routes, {
      hooks: {
        afterCreate: (side) => {
          if (side === "highlevel" && crashes-- > 0) throw new Error("simulated crash after create, before the link");
        },
      },
    });
    await importCsv(w, CSV);
    const { outcomes } = await drainImports(w);
    expect(outcomes.some((o) => o.kind === "retry")).toBe(true);
    for (const name of ["Acme Robotics", "Beta Bio", "Gamma Grid"]) expect(opps(w, name), name).toHaveLength(1);
    expect((await ledgerCounts(env.DB, ACCOUNT)).pending).toBe(0);
    const [acme] = opps(w, "Acme Robotics");
    expect(
      w.sb.highlevel.store.notesOf(acme?.contactId ?? "").filter((n) => n.body.startsWith("Met at SaaStr")),
    ).toHaveLength(1);
  });

  it("an unknown stage or deal list goes to review with the line and a reason, writes nothing, and is queued again by a re-import", async () => {
    const w = await createWorld(routes);
    const csv = [
      "Deal Name,Pipeline,Stage",
      "Delta Dynamics,Deal Flow,Sourced",
      "Omega Labs,Deal Flow,Due Diligense",
      "Sigma Soft,Angel List,Sourced",
    ].join("\n");
    await importCsv(w, csv);
    w.resetCounts();
    await drainImports(w);
    expect(opps(w, "Omega Labs")).toHaveLength(0);
    expect(opps(w, "Sigma Soft")).toHaveLength(0);
    expect(opps(w, "Delta Dynamics")).toHaveLength(1);
    const review = await listReview(env.DB, ACCOUNT);
    expect(review.find((r) => r.detail["line"] === 3)?.reason).toMatch(
      /line 3: stage "Due Diligense" is not a stage of deal list "Deal Flow"/,
    );
    expect(review.find((r) => r.detail["line"] === 4)?.reason).toMatch(/line 4: deal list "Angel List" is not mapped/);
    // Only the mapped row was written (its contact and opportunity).
    expect(w.writes().highlevel).toBe(2);
    // Fixed in the file, the rows import again (they never reached HighLevel).
    const report = await importCsv(w, csv.replace("Due Diligense", "Due Diligence"));
    expect(report).toMatchObject({ unchanged: 1, created: 2, updated: 0 });
    await drainImports(w);
    expect(opps(w, "Omega Labs")).toHaveLength(1);
    expect((await listReview(env.DB, ACCOUNT)).some((r) => r.detail["line"] === 3)).toBe(false);
  });

  it("HighLevel refusing a create is a replayable failure naming the line", async () => {
    const w = await createWorld(routes);
    // One contact, two opportunities in one pipeline: HighLevel refuses the second by default.
    const csv = [
      "Deal Name,Stage,Contact Email",
      "Kappa One,Sourced,kim@kappa.example",
      "Kappa Two,Sourced,kim@kappa.example",
    ].join("\n");
    await importCsv(w, csv);
    const { outcomes } = await drainImports(w);
    expect(outcomes.map((o) => o.kind)).toEqual(["ack", "permanent"]);
    const failures = await listFailures(env.DB, ACCOUNT);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.reason).toMatch(/^line 3: .*duplicate opportunity/);
    expect(QueueMessageSchema.parse(failures[0]?.message)).toMatchObject({ kind: "fourdegrees.import_row", line: 3 });
  });
});

describe("CSV import rows: modes", () => {
  it("test mode logs the planned writes and writes nothing; a paused account queues the row as a replayable failure", async () => {
    const w = await createWorld(routes);
    await w.patchAccount({ testMode: true });
    await importCsv(w, CSV);
    w.resetCounts();
    await drainImports(w);
    expect(w.writes().highlevel).toBe(0);
    const planned = await listEvents(env.DB, ACCOUNT, { kind: "import" });
    expect(planned.filter((e) => e.outcome === "test_mode")).toHaveLength(3);

    await w.patchAccount({ testMode: false, status: "paused" });
    // The test-mode rows were not recorded as imported: the same file queues them again.
    expect(await importCsv(w, CSV)).toMatchObject({ created: 3, unchanged: 0 });
    await drainImports(w);
    expect(w.writes().highlevel).toBe(0);
    expect((await listFailures(env.DB, ACCOUNT)).map((f) => f.reason)).toEqual(
      Array(3).fill(expect.stringMatching(/paused/)),
    );
  });
});
