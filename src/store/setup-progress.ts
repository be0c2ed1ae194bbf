/**
 * D1 `setup_progress`: the guided setup's confirmations that no other table records (the stages
 * reviewed, the last test, the backfill it ran in test mode). Everything else a step needs is read
 * from the account's real state, so the wizard cannot disagree with it.
 */
import * as z from "zod";

/** The stored part of an account's guided setup. */
export interface SetupProgress {
  accountId: string;
  reviewedVersion: number | null;
  testedVersion: number | null;
  testedAt: number | null;
  testOk: boolean;
  testBackfillRun: string | null;
}

const Row = z.object({
  account_id: z.string(),
  reviewed_version: z.number().nullable(),
  tested_version: z.number().nullable(),
  tested_at: z.number().nullable(),
  test_ok: z.number().nullable(),
  test_backfill_run: z.string().nullable(),
});

/** The account's stored progress (all empty when it never started the wizard). */
export async function getSetupProgress(db: D1Database, accountId: string): Promise<SetupProgress> {
  const raw = await db.prepare("SELECT * FROM setup_progress WHERE account_id = ?").bind(accountId).first();
  if (raw === null)
    return {
      accountId,
      reviewedVersion: null,
      testedVersion: null,
      testedAt: null,
      testOk: false,
      testBackfillRun: null,
    };
  const r = Row.parse(raw);
  return {
    accountId: r.account_id,
    reviewedVersion: r.reviewed_version,
    testedVersion: r.tested_version,
    testedAt: r.tested_at,
    testOk: r.test_ok === 1,
    testBackfillRun: r.test_backfill_run,
  };
}

/** A change to the stored progress; fields left out keep their value. */
export interface SetupPatch {
  reviewedVersion?: number | null;
  test?: { version: number; ok: boolean; at: number };
  testBackfillRun?: string | null;
}

/** Upserts the given fields of the account's progress. */
export async function updateSetupProgress(
  db: D1Database,
  accountId: string,
  patch: SetupPatch,
  now = Date.now(),
): Promise<SetupProgress> {
  const current = await getSetupProgress(db, accountId);
  const next = {
    reviewed: patch.reviewedVersion !== undefined ? patch.reviewedVersion : current.reviewedVersion,
    testedVersion: patch.test ? patch.test.version : current.testedVersion,
    testedAt: patch.test ? patch.test.at : current.testedAt,
    testOk: patch.test ? patch.test.ok : current.testOk,
    run: patch.testBackfillRun !== undefined ? patch.testBackfillRun : current.testBackfillRun,
  };
  await db
    .prepare(
      `INSERT INTO setup_progress (account_id, reviewed_version, tested_version, tested_at, test_ok, test_backfill_run, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET reviewed_version = excluded.reviewed_version,
         tested_version = excluded.tested_version, tested_at = excluded.tested_at, test_ok = excluded.test_ok,
         test_backfill_run = excluded.test_backfill_run, updated_at = excluded.updated_at`,
    )
    .bind(accountId, next.reviewed, next.testedVersion, next.testedAt, next.testOk ? 1 : 0, next.run, now)
    .run();
  return getSetupProgress(db, accountId);
}
