/**
 * Starts the sandbox host (sandbox/server.ts) on a free port for Node tests and gives typed
 * helpers for the HighLevel control API (`/_sandbox/highlevel/*`).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startSandbox, type StartedSandbox } from "../../../sandbox/server.ts";
import type { DemoData } from "../../../sandbox/highlevel/index.ts";

/** The repository root (two levels above test/node/sandbox). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** The official HighLevel reference files, kept beside the clone (CI has `shared/` there too). */
export const ghlReferenceDir = path.resolve(repoRoot, "../shared/reference/ghl");

export interface RunningSandbox extends StartedSandbox {
  /** `<url>/highlevel`: the stand-in for https://services.leadconnectorhq.com. */
  highlevel: string;
  demo: DemoData;
  /** Calls the HighLevel control API with a JSON body; throws on a non-2xx answer. */
  control<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
}

/** Starts the sandbox on a free port (seed fixed for replayable faults) with the demo data loaded. */
export async function startTestSandbox(settings: Record<string, string> = {}): Promise<RunningSandbox> {
  const started = await startSandbox({ port: 0, seedDemo: true, settings: { SANDBOX_SEED: "4242", ...settings } });
  const control = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${started.url}/_sandbox/highlevel${p}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json: unknown = await res.json();
    if (!res.ok) throw new Error(`control ${method} ${p} → ${res.status} ${JSON.stringify(json)}`);
    return json as T;
  };
  const { demo } = await control<{ demo: DemoData }>("POST", "/seed");
  return { ...started, highlevel: `${started.url}/highlevel`, demo, control };
}
