/**
 * The guided setup's steps and their state. Each state is read from the account's real state
 * where it can be (a connection exists, a key is stored, a mapping is saved, the backfill's row,
 * test mode and pause); only the confirmations nothing else records come from `setup_progress`.
 * So leaving the wizard loses nothing, and a change made elsewhere (the Mapping page, the API)
 * shows here at once.
 */
import { listAccounts, type Account } from "../../store/accounts.ts";
import { getBackfill, type BackfillRun } from "../../store/backfill-runs.ts";
import { listConnections, type Connection } from "../../store/connections.ts";
import { getFourDegreesAccount, type FourDegreesAccountSummary } from "../../store/fourdegrees-accounts.ts";
import { getSetupProgress, type SetupProgress } from "../../store/setup-progress.ts";

export const STEP_KEYS = ["account", "highlevel", "key", "pipelines", "review", "test", "backfill", "live"] as const;
export type StepKey = (typeof STEP_KEYS)[number];

export const STEP_TITLES: Record<StepKey, string> = {
  account: "Name the account",
  highlevel: "Connect HighLevel",
  key: "Enter the 4Degrees API key",
  pipelines: "Pick pipelines",
  review: "Review stages, owners and fields",
  test: "Test",
  backfill: "Backfill in test mode",
  live: "Go live",
};

export type StepState = "done" | "next" | "todo" | "running" | "failed";

export interface Step {
  key: StepKey;
  title: string;
  state: StepState;
  /** One line saying where the step stands, by name. */
  summary: string;
}

/** Everything the wizard read to decide the steps (the page reuses it). */
export interface SetupState {
  account: Account | null;
  connections: Connection[];
  /** Locations already attached to some account (this one's included). */
  attachedLocations: string[];
  key: FourDegreesAccountSummary | null;
  progress: SetupProgress | null;
  backfill: BackfillRun | null;
  steps: Step[];
  /** The first step not done (null when the account is live). */
  next: StepKey | null;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

/** True when the account syncs for real: a mapping, not paused, not in test mode. */
export function isLive(account: Account): boolean {
  return account.mapping !== null && account.status === "active" && !account.testMode;
}

/** The live (active) connections of the account's locations. */
export function activeLocations(account: Account, connections: Connection[]): string[] {
  return account.locations.filter((loc) =>
    connections.some((c) => c.kind === "location" && c.locationId === loc && c.status === "active"),
  );
}

/** Derives every step's state for `account` (null: no account yet, so the first step is next). */
export async function setupState(db: D1Database, account: Account | null): Promise<SetupState> {
  const connections = await listConnections(db);
  const attachedLocations = (await listAccounts(db)).flatMap((a) => a.locations);
  if (!account) {
    const steps = STEP_KEYS.map((key, i) => ({
      key,
      title: STEP_TITLES[key],
      state: (i === 0 ? "next" : "todo") as StepState,
      summary: i === 0 ? "No account yet." : "—",
    }));
    return {
      account,
      connections,
      attachedLocations,
      key: null,
      progress: null,
      backfill: null,
      steps,
      next: "account",
    };
  }
  const [key, progress, backfill] = await Promise.all([
    getFourDegreesAccount(db, account.id),
    getSetupProgress(db, account.id),
    getBackfill(db, account.id),
  ]);
  const active = activeLocations(account, connections);
  const version = account.mappingVersion;
  const testRun = progress.testBackfillRun && backfill?.runId === progress.testBackfillRun ? backfill : null;
  const done: Record<StepKey, boolean> = {
    account: account.configured,
    highlevel: active.length > 0,
    key: key !== null,
    pipelines: account.mapping !== null,
    review: account.mapping !== null && progress.reviewedVersion === version,
    test: account.mapping !== null && progress.testedVersion === version && progress.testOk,
    // A later live backfill replaces the wizard's run; once live, the test run has done its job.
    backfill: testRun?.state === "done" || (isLive(account) && progress.testBackfillRun !== null),
    live: isLive(account),
  };
  const summary: Record<StepKey, string> = {
    account: `${account.name}`,
    highlevel:
      active.length > 0
        ? `${plural(active.length, "HighLevel location")} connected (named in this step)`
        : account.locations.length > 0
          ? `${plural(account.locations.length, "HighLevel location")} attached, but not connected`
          : "No HighLevel location attached yet.",
    key: key ? `4Degrees key …${key.keyHint} stored` : "No key stored yet.",
    pipelines: account.mapping
      ? `${account.mapping.pipelines.length} pipeline pair(s) mapped (mapping version ${version})`
      : "No pipelines picked yet.",
    review:
      progress.reviewedVersion === version && account.mapping
        ? `Reviewed (mapping version ${version})`
        : progress.reviewedVersion !== null
          ? "The mapping changed since it was reviewed."
          : "Not reviewed yet.",
    test:
      progress.testedVersion === null
        ? "Not tested yet."
        : progress.testedVersion !== version
          ? "The mapping changed since the last test."
          : progress.testOk
            ? "Last test passed."
            : "Last test failed: see its reasons and run it again.",
    backfill: testRun
      ? `Test-mode backfill ${testRun.state}: ${testRun.done} of ${testRun.total} records`
      : done.backfill
        ? "The test-mode backfill ran."
        : "Not run yet.",
    live: isLive(account)
      ? "Live: changes sync both ways."
      : account.testMode
        ? "In test mode: writes are computed and logged, none are made."
        : account.status === "paused"
          ? "Paused."
          : "Not live yet.",
  };
  const next = STEP_KEYS.find((k) => !done[k]) ?? null;
  const steps = STEP_KEYS.map((k): Step => {
    let state: StepState = done[k] ? "done" : k === next ? "next" : "todo";
    if (k === "backfill" && !done[k] && testRun?.state === "running") state = "running";
    if (
      (k === "backfill" && !done[k] && testRun?.state === "failed") ||
      (k === "test" && !done[k] && progress.testedVersion === version && !progress.testOk)
    )
      state = "failed";
    return { key: k, title: STEP_TITLES[k], state, summary: summary[k] };
  });
  return { account, connections, attachedLocations, key, progress, backfill, steps, next };
}
