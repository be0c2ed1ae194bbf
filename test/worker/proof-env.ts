/**
 * The proof tests' knobs (chaos seed and size, fuzz runs). workerd does not see the host's
 * environment, so vitest.config.ts hands them over with `provide` and tests read them here.
 */
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    proofEnv: { CHAOS_SEED: string; CHAOS_HEAVY: string; FUZZ_RUNS: string };
  }
}

/** The host environment values the proof tests read (empty string when unset). */
export function proofEnv(): { CHAOS_SEED: string; CHAOS_HEAVY: string; FUZZ_RUNS: string } {
  return inject("proofEnv");
}
