/**
 * Chaos convergence (issue 7): random user changes on both sides — creates, field edits, stage and
 * status moves, notes, deletes — while both sandboxes answer 5xx, 429s and timeouts, drop,
 * duplicate and reorder webhooks, and the consumer "crashes" between steps (before a handler runs,
 * after it ran but before the ack — a redelivery of finished work — and right after a create,
 * before the link is saved). Then the faults stop, every held delivery is flushed, reconcile
 * re-scans both sides, and:
 * - both systems agree on every mapped field of every linked record (`expectConverged`);
 * - no record exists twice (one opportunity per 4Degrees id, one deal per HighLevel id, and as
 *   many live "chaos" records on each side as the users left alive);
 * - nothing a user did is lost: every record created and not deleted is linked on both sides,
 *   every deleted one is gone from both, each name / value ends at a value a user last wrote on
 *   one of the two sides (never a stale or invented one), and every note exists on both sides.
 *
 * Seeded and repeatable: the seed is printed, `CHAOS_SEED=<n>` replays a run (`random` explores), `CHAOS_HEAVY=1`
 * makes thousands of changes (the default size keeps `npm test` fast). Assertions are on counts
 * and state only, never on time. A seed replays exactly: the sandboxes' ids come from it and their
 * clock is frozen (moved only by the test), so a run does not depend on how fast the machine is.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../../sandbox/core/random.ts";
import { createLogger } from "../../../src/lib/log.ts";
import { findLink } from "../../../src/store/links.ts";
import type { Outcome } from "../../../src/queue/consumer.ts";
import { syncHandlers } from "../../../src/sync/jobs/handlers.ts";
import { QueueMessageSchema } from "../../../src/queue/messages.ts";
import { runReconcile } from "../../../src/sync/jobs/reconcile.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { proofEnv } from "../proof-env.ts";
import { expectConverged } from "../sync/checks.ts";
import { ACCOUNT, createWorld, type Queued } from "../sync/world.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

const knobs = proofEnv();
const HEAVY = knobs.CHAOS_HEAVY === "1" || knobs.CHAOS_HEAVY === "true";
/** User changes per run: a few hundred by default, thousands with CHAOS_HEAVY=1. */
const CHANGES = HEAVY ? 3_000 : 250;
/**
 * The default seed is fixed so `npm test` is deterministic for everyone committing;
 * `CHAOS_SEED=random` draws a fresh one (printed) to explore, `CHAOS_SEED=<n>` replays one.
 */
const SEED =
  knobs.CHAOS_SEED === "random"
    ? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0
    : knobs.CHAOS_SEED !== ""
      ? Number(knobs.CHAOS_SEED) >>> 0
      : 1;
/** Prefix of every record this test creates (the demo data is left alone by the checks). */
const PREFIX = "chaos-";
/** Open stages of the demo "Deal Flow" pipelines (sandbox/highlevel/seed.ts, sandbox/fourdegrees/demo.ts). */
const OPEN_STAGES = ["Sourced", "First Meeting", "Due Diligence", "Partner Review", "Term Sheet"];

/** What the users did to one record, as the test's own ledger of truth. */
interface Tracked {
  n: number;
  origin: "fourdegrees" | "highlevel";
  fdId: string | null;
  hlId: string | null;
  /** HighLevel contact the opportunity belongs to (notes live there). */
  contactId: string | null;
  deleted: boolean;
  /** Every value a user wrote, per side, in order (the initial value counts as written on `origin`). */
  names: { fourdegrees: string[]; highlevel: string[] };
  values: { fourdegrees: number[]; highlevel: number[] };
  /** Note texts users added (on either side). */
  notes: string[];
}

/** Counters printed with the seed, so a run's shape is visible in the log. */
interface Tally {
  ops: Record<string, number>;
  consumerCrashesBefore: number;
  lostAcks: number;
  createCrashes: number;
  retries: number;
  handled: number;
}

function lastOf<T>(items: readonly T[]): T | undefined {
  return items[items.length - 1];
}

describe(`chaos convergence (seed ${SEED}, ${CHANGES} changes; replay with CHAOS_SEED=${SEED})`, () => {
  it(
    "random changes on both sides under provider faults, webhook loss/duplication/reordering and consumer crashes converge after a reconcile, losing nothing",
    { timeout: HEAVY ? 1_800_000 : 180_000 },
    async () => {
      console.log(
        `chaos: seed ${SEED}, ${CHANGES} user changes (replay: CHAOS_SEED=${SEED}${HEAVY ? " CHAOS_HEAVY=1" : ""} npx vitest run test/worker/chaos)`,
      );
      const rng = new SeededRandom(SEED);
      const tally: Tally = { ops: {}, consumerCrashesBefore: 0, lostAcks: 0, createCrashes: 0, retries: 0, handled: 0 };
      let chaosOn = true;
      const w = await createWorld(routes, {
        // Seeded ids: the order of everything keyed by an id (links, pages, note lists) replays too.
        seed: SEED,
        // Its bursts of deletes would trip the mass-delete guard, which has its own suite (sync/delete-guard.test.ts).
        account: {
          deletePolicy: "propagate",
          conflictPolicy: "newest",
          deleteGuard: { maxDeletes: 100_000, maxPercent: 100 },
        },
        hooks: {
          // A crash right after a create, before the link is saved (exactly-once under test).
          afterCreate: () => {
            if (chaosOn && rng.chance(0.05)) {
              tally.createCrashes++;
              throw new Error("chaos: crash after create, before the link is saved");
            }
          },
        },
      });
      // Sandbox time moves only when the test says so, never with the wall clock: which held-back
      // (reordered) deliveries are due at a flush, and so the whole run, must not depend on how fast
      // the machine is (a run under CPU load used to take other paths than the same seed alone).
      w.sb.clock.freeze();
      const faults = {
        seed: SEED,
        errorRate: 0.05,
        rateLimitRate: 0.02,
        timeoutRate: 0.02,
        timeoutMs: 5,
        webhookDropRate: 0.05,
        webhookDuplicateRate: 0.1,
        webhookReorderRate: 0.1,
        webhookReorderDelayMs: 5_000,
      };
      w.sb.highlevel.faults.configure({ ...faults, seed: SEED });
      // HighLevel's 429s pause the gate lane for Retry-After in real time; keep them rarer there.
      w.sb.highlevel.faults.configure({ rateLimitRate: 0.005 });
      w.sb.fourdegrees.faults.configure({ ...faults, seed: (SEED ^ 0x5bd1e995) >>> 0 });

      const handlers = syncHandlers(() => w.deps);
      const log = createLogger("error");
      const ctx = { ...w.ctx, log };
      // The open stages both demo pipelines share (the world's lookups fail the test on a missing one).
      const fdStages = OPEN_STAGES.filter((name) => w.fdStage(name) !== "" && w.hlStage(name) !== "");

      const tracked: Tracked[] = [];
      let noteSeq = 0;
      let nameSeq = 0;

      /** Handles one queued message, with consumer crashes while the chaos is on. */
      async function handleOne(item: Queued): Promise<void> {
        if (chaosOn && rng.chance(0.03)) {
          // The invocation died before the handler ran: the queue redelivers.
          tally.consumerCrashesBefore++;
          w.queue.push({ body: item.body, attempts: item.attempts + 1 });
          return;
        }
        const msg = QueueMessageSchema.parse(item.body);
        const attempt = { ...ctx, attempts: item.attempts + 1 };
        let outcome: Outcome;
        try {
          switch (msg.kind) {
            case "highlevel.webhook":
              outcome = await handlers["highlevel.webhook"]!(msg, attempt);
              break;
            case "fourdegrees.webhook":
              outcome = await handlers["fourdegrees.webhook"]!(msg, attempt);
              break;
            case "sync.record":
              outcome = await handlers["sync.record"]!(msg, attempt);
              break;
            case "sync.backfill":
              outcome = await handlers["sync.backfill"]!(msg, attempt);
              break;
            default:
              outcome = { kind: "ack" };
          }
        } catch (err) {
          // What the consumer does with an unknown throw: retry.
          outcome = { kind: "retry", reason: err instanceof Error ? err.message : String(err) };
        }
        tally.handled++;
        if (outcome.kind === "retry") {
          tally.retries++;
          // The real queue dead-letters after max_retries; the faults here are rare enough that a
          // message failing this often means the engine is stuck, which is a finding.
          expect(
            item.attempts,
            `message retried too often: ${JSON.stringify(item.body)} (${outcome.reason})`,
          ).toBeLessThan(40);
          w.queue.push({ body: item.body, attempts: item.attempts + 1 });
        } else if (chaosOn && rng.chance(0.03)) {
          // The work was done but the ack was lost: the same message comes again.
          tally.lostAcks++;
          w.queue.push({ body: item.body, attempts: item.attempts + 1 });
        }
      }

      /** Delivers due webhooks (the sandboxes apply their delivery faults) and runs up to `max` messages. */
      async function pump(max: number): Promise<number> {
        await w.sb.highlevel.flush();
        await w.sb.fourdegrees.flush();
        let n = 0;
        while (n < max && w.queue.length > 0) {
          // Take a random queued message: the queue does not promise order either.
          const idx = rng.int(0, Math.min(w.queue.length - 1, 8));
          const [item] = w.queue.splice(idx, 1);
          if (!item) break;
          await handleOne(item);
          n++;
        }
        return n;
      }

      /** Delivers and processes everything until both sandboxes and the queue are quiet. */
      async function settle(): Promise<void> {
        for (let round = 0; round < 500; round++) {
          w.sb.clock.advance(60_000); // held-back (reordered) deliveries and webhook retries fall due
          const delivered = (await w.sb.highlevel.flush()) + (await w.sb.fourdegrees.flush());
          let processed = 0;
          while (w.queue.length > 0 && processed < 100_000) {
            const item = w.queue.shift();
            if (!item) break;
            await handleOne(item);
            processed++;
          }
          if (delivered === 0 && processed === 0) return;
        }
        throw new Error("chaos: the world did not settle");
      }

      const live = () => tracked.filter((t) => !t.deleted);
      const linkedHl = async (t: Tracked): Promise<string | null> => {
        if (t.hlId) return t.hlId;
        const link = t.fdId ? await findLink(env.DB, ACCOUNT, "fourdegrees", t.fdId) : null;
        if (link?.state === "active") {
          t.hlId = link.hlOpportunityId;
          t.contactId = link.hlContactId;
        }
        return t.hlId;
      };
      const linkedFd = async (t: Tracked): Promise<string | null> => {
        if (t.fdId) return t.fdId;
        const link = t.hlId ? await findLink(env.DB, ACCOUNT, "highlevel", t.hlId) : null;
        if (link?.state === "active") t.fdId = link.fdDealId;
        return t.fdId;
      };
      const nextName = (t: Tracked) => `${PREFIX}${t.n}-v${++nameSeq}`;
      const count = (op: string) => (tally.ops[op] = (tally.ops[op] ?? 0) + 1);

      for (let change = 0; change < CHANGES; change++) {
        // Every user change happens a millisecond after everything before it (the frozen clock would
        // otherwise give a user's edit the very `updatedAt` of the Worker's last write).
        w.sb.clock.advance(1);
        const roll = rng.next();
        const candidates = live();
        const t = candidates.length > 0 ? rng.pick(candidates) : null;
        if (roll < 0.12 || !t) {
          const n = tracked.length;
          const value = rng.int(1, 500) * 1_000;
          const stage = rng.pick(fdStages);
          if (rng.chance(0.5)) {
            const name = `${PREFIX}${n}-v${++nameSeq}`;
            const deal = w.sb.fourdegrees.createDealAsUser({
              name,
              pipeline_id: w.fdPipelineId,
              stage_id: w.fdStage(stage),
              value: { amount_minor: value * 100, currency: "USD" },
            });
            tracked.push({
              n,
              origin: "fourdegrees",
              fdId: deal.id,
              hlId: null,
              contactId: null,
              deleted: false,
              names: { fourdegrees: [name], highlevel: [] },
              values: { fourdegrees: [value], highlevel: [] },
              notes: [],
            });
            count("create@4degrees");
          } else {
            const name = `${PREFIX}${n}-v${++nameSeq}`;
            const contact = w.sb.highlevel.service.createContact({
              locationId: w.locationId,
              name: `Chaos Person ${n}`,
              email: `chaos-${SEED}-${n}@example.com`,
            });
            const opp = w.sb.highlevel.service.createOpportunity({
              locationId: w.locationId,
              pipelineId: w.hlPipelineId,
              pipelineStageId: w.hlStage(stage),
              name,
              status: "open",
              contactId: contact.id,
              monetaryValue: value,
            });
            tracked.push({
              n,
              origin: "highlevel",
              fdId: null,
              hlId: opp.id,
              contactId: contact.id,
              deleted: false,
              names: { fourdegrees: [], highlevel: [name] },
              values: { fourdegrees: [], highlevel: [value] },
              notes: [],
            });
            count("create@highlevel");
          }
        } else if (roll < 0.6) {
          // A field edit, stage move or status change, on whichever side knows the record.
          const hlId = await linkedHl(t);
          const fdId = await linkedFd(t);
          const onFd = fdId !== null && (hlId === null || rng.chance(0.5));
          const what = rng.pick(["name", "value", "stage", "stage", "status"] as const);
          if (onFd && fdId) {
            if (what === "name") {
              const name = nextName(t);
              w.sb.fourdegrees.updateDealAsUser(fdId, { name });
              t.names.fourdegrees.push(name);
            } else if (what === "value") {
              const value = rng.int(1, 500) * 1_000;
              w.sb.fourdegrees.updateDealAsUser(fdId, { value: { amount_minor: value * 100, currency: "USD" } });
              t.values.fourdegrees.push(value);
            } else {
              w.sb.fourdegrees.updateDealAsUser(fdId, { stage_id: w.fdStage(rng.pick(fdStages)) });
            }
            count(`${what === "status" ? "stage" : what}@4degrees`);
          } else if (hlId) {
            if (what === "name") {
              const name = nextName(t);
              w.sb.highlevel.service.updateOpportunity(hlId, { name });
              t.names.highlevel.push(name);
            } else if (what === "value") {
              const value = rng.int(1, 500) * 1_000;
              w.sb.highlevel.service.updateOpportunity(hlId, { monetaryValue: value });
              t.values.highlevel.push(value);
            } else if (what === "stage") {
              w.sb.highlevel.service.updateOpportunity(hlId, {
                pipelineStageId: w.hlStage(rng.pick(fdStages)),
                status: "open",
              });
            } else {
              w.sb.highlevel.service.setStatus(hlId, rng.pick(["won", "lost", "open"]));
            }
            count(`${what}@highlevel`);
          }
        } else if (roll < 0.75) {
          const text = `chaos note ${SEED}/${++noteSeq}`;
          const hlId = await linkedHl(t);
          const fdId = await linkedFd(t);
          if (fdId && (t.contactId === null || rng.chance(0.5))) {
            w.sb.fourdegrees.addNoteAsUser(fdId, text);
            t.notes.push(text);
            count("note@4degrees");
          } else if (hlId && t.contactId) {
            w.sb.highlevel.service.createNote(t.contactId, { body: text });
            t.notes.push(text);
            count("note@highlevel");
          }
        } else if (roll < 0.8) {
          const hlId = await linkedHl(t);
          const fdId = await linkedFd(t);
          if (fdId && (hlId === null || rng.chance(0.5))) {
            w.sb.fourdegrees.archiveDealAsUser(fdId);
            count("delete@4degrees");
          } else if (hlId) {
            w.sb.highlevel.service.deleteOpportunity(hlId);
            count("delete@highlevel");
          }
          t.deleted = true;
        } else {
          // Time passes and the Worker works through part of its backlog.
          w.sb.clock.advance(rng.int(0, 3_000));
          await pump(rng.int(1, 30));
        }
      }

      // The storm ends: no more faults or crashes; everything held back is delivered and processed.
      chaosOn = false;
      const calm = {
        errorRate: 0,
        rateLimitRate: 0,
        timeoutRate: 0,
        webhookDropRate: 0,
        webhookDuplicateRate: 0,
        webhookReorderRate: 0,
      };
      w.sb.highlevel.faults.configure(calm);
      w.sb.fourdegrees.faults.configure(calm);
      await settle();

      // Reconcile re-scans both sides (pages of 100) and verifies up to 100 links per tick (deletions
      // whose webhook was lost leave nothing on the pages) until a full pass finds nothing to mark.
      const pages =
        Math.ceil(
          Math.max(w.sb.fourdegrees.deals().length, w.sb.highlevel.store.opportunitiesOf(w.locationId).length) / 100,
        ) + 1;
      let quietPass = false;
      for (let pass = 0; pass < 6 && !quietPass; pass++) {
        let marked = 0;
        for (let tick = 0; tick < pages; tick++) {
          for (const r of await runReconcile(env, w.deps, log, { pageSize: 100, verifyPerTick: 100 })) {
            expect(r.outcome, `reconcile of ${r.accountId}: ${r.reason ?? ""}`).toBe("ok");
            marked += r.marked;
          }
        }
        await settle();
        quietPass = marked === 0;
      }
      console.log(
        `chaos: seed ${SEED} done — ${JSON.stringify({ ops: tally.ops, handled: tally.handled, retries: tally.retries, consumerCrashesBefore: tally.consumerCrashesBefore, lostAcks: tally.lostAcks, createCrashes: tally.createCrashes, highlevelFaults: w.sb.highlevel.faults.counts, fourdegreesFaults: w.sb.fourdegrees.faults.counts })}`,
      );
      expect(quietPass, "a full reconcile pass still found differences").toBe(true);

      // 1. Both systems agree on every mapped field of every linked record; nothing twice.
      await expectConverged(w);

      // 2. Nothing a user did is lost.
      const hlOpps = w.sb.highlevel.store.opportunitiesOf(w.locationId);
      const fdDeals = w.sb.fourdegrees.deals();
      for (const t of tracked) {
        const fdId =
          t.fdId ?? (t.hlId ? ((await findLink(env.DB, ACCOUNT, "highlevel", t.hlId))?.fdDealId ?? null) : null);
        const hlId =
          t.hlId ??
          (t.fdId ? ((await findLink(env.DB, ACCOUNT, "fourdegrees", t.fdId))?.hlOpportunityId ?? null) : null);
        const label = `chaos record ${t.n} (created in ${t.origin}; 4Degrees ${fdId ?? "-"}, HighLevel ${hlId ?? "-"})`;
        if (t.deleted) {
          // Gone or archived. (`archived_at ?? "gone"` passed for a live deal too: null ?? "gone".)
          const deal = fdId ? fdDeals.find((d) => d.id === fdId) : undefined;
          if (fdId)
            expect(deal === undefined || deal.archived_at !== null, `${label}: deleted, so archived in 4Degrees`).toBe(
              true,
            );
          if (hlId)
            expect(
              hlOpps.some((o) => o.id === hlId),
              `${label}: deleted, so gone from HighLevel`,
            ).toBe(false);
          continue;
        }
        expect(fdId, `${label}: linked`).not.toBeNull();
        expect(hlId, `${label}: linked`).not.toBeNull();
        const link = await findLink(env.DB, ACCOUNT, "fourdegrees", fdId ?? "");
        expect(link?.state, `${label}: active link`).toBe("active");
        expect(link?.hlOpportunityId, `${label}: linked to its own opportunity`).toBe(hlId);
        const deal = fdDeals.find((d) => d.id === fdId);
        const opp = hlOpps.find((o) => o.id === hlId);
        expect(deal?.archived_at ?? null, `${label}: live in 4Degrees`).toBeNull();
        expect(opp, `${label}: present in HighLevel`).toBeDefined();
        if (!deal || !opp) continue;
        // Each field ends at a value a user last wrote on one side — never a stale one.
        const names = [lastOf(t.names.fourdegrees), lastOf(t.names.highlevel)].filter((v) => v !== undefined);
        expect(
          names,
          `${label}: name ${JSON.stringify(deal.name)} is the last name a user gave it on one side`,
        ).toContain(deal.name);
        const values = [lastOf(t.values.fourdegrees), lastOf(t.values.highlevel)].filter((v) => v !== undefined);
        expect(values, `${label}: value ${opp.monetaryValue} is the last value a user gave it on one side`).toContain(
          opp.monetaryValue,
        );
        // Every note a user added exists on both sides (synced copies carry an origin footer).
        const fdNotes = w.sb.fourdegrees.notes(deal.id).map((n) => n.body);
        const hlNotes = w.sb.highlevel.store.notesOf(link?.hlContactId ?? opp.contactId).map((n) => n.body);
        for (const text of t.notes) {
          // The note itself, or its synced copy (the text and an origin footer) — not a longer text
          // that merely starts the same ("chaos note 4/1" is a prefix of "chaos note 4/13").
          const isThis = (b: string) => b === text || b.startsWith(`${text}\n\n`);
          expect(
            fdNotes.filter(isThis),
            `${label}: note "${text}" once in 4Degrees (notes there: ${JSON.stringify(fdNotes)})`,
          ).toHaveLength(1);
          expect(
            hlNotes.filter(isThis),
            `${label}: note "${text}" once in HighLevel (notes there: ${JSON.stringify(hlNotes)})`,
          ).toHaveLength(1);
        }
      }

      // 3. No record twice: as many live chaos records on each side as the users left alive.
      const alive = live().length;
      const liveFd = fdDeals.filter((d) => d.name.startsWith(PREFIX) && !d.archived_at);
      const liveHl = hlOpps.filter((o) => o.name.startsWith(PREFIX));
      // Named in the messages: the live records no surviving user record accounts for.
      const keptFd = new Set<string>();
      const keptHl = new Set<string>();
      for (const t of live()) {
        const fdId =
          t.fdId ?? (t.hlId ? ((await findLink(env.DB, ACCOUNT, "highlevel", t.hlId))?.fdDealId ?? null) : null);
        const hlId =
          t.hlId ??
          (t.fdId ? ((await findLink(env.DB, ACCOUNT, "fourdegrees", t.fdId))?.hlOpportunityId ?? null) : null);
        if (fdId) keptFd.add(fdId);
        if (hlId) keptHl.add(hlId);
      }
      const extraFd = await Promise.all(
        liveFd
          .filter((d) => !keptFd.has(d.id))
          .map(async (d) => ({
            id: d.id,
            name: d.name,
            refs: d.external_refs,
            link: await findLink(env.DB, ACCOUNT, "fourdegrees", d.id),
          })),
      );
      const extraHl = await Promise.all(
        liveHl
          .filter((o) => !keptHl.has(o.id))
          .map(async (o) => ({ id: o.id, name: o.name, link: await findLink(env.DB, ACCOUNT, "highlevel", o.id) })),
      );
      expect(liveFd.length, `live chaos deals in 4Degrees (unaccounted: ${JSON.stringify(extraFd)})`).toBe(alive);
      expect(liveHl.length, `chaos opportunities in HighLevel (unaccounted: ${JSON.stringify(extraHl)})`).toBe(alive);
    },
  );
});
