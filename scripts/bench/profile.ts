/**
 * `npm run bench:profile`: where the Worker's CPU goes under the ingress load. Starts the bench
 * stack (no backfill), runs the unique-delivery webhook load (`BENCH_PROFILE_VARIANT=unique`, or
 * `enqueued`, `duplicate`, `trivial`) for `BENCH_PROFILE_SECONDS` (8) while the V8 sampling profiler
 * of the Worker's isolate runs (through `wrangler dev`'s DevTools inspector), and prints the
 * functions with the most self time (with their callers), time by bundled module (self and
 * inclusive), and D1 statements per delivery (D1's own meter: the ingress's receipt, the
 * consumer's marks and checks, the coalesced record jobs). The raw profile is written to
 * bench/ingress.cpuprofile (open it in Chrome DevTools → Performance).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { duplicateWebhookFactory, loadTrivial, loadWebhooks, webhookFactory } from "./load.ts";
import { startStack, waitQuiet } from "./stack.ts";
import { ROOT } from "../lib/processes.ts";

const SECONDS = Number(process.env["BENCH_PROFILE_SECONDS"] ?? 8);
const VARIANT = z.enum(["unique", "enqueued", "duplicate", "trivial"]).parse(process.env["BENCH_PROFILE_VARIANT"] ?? "unique");
const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 20);

const Target = z.array(z.object({ webSocketDebuggerUrl: z.string(), title: z.string().optional(), type: z.string().optional() }).loose());
const CallFrame = z.object({ functionName: z.string(), scriptId: z.string(), url: z.string(), lineNumber: z.number(), columnNumber: z.number() });
const Profile = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: CallFrame, children: z.array(z.number()).optional() })),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
  startTime: z.number(),
  endTime: z.number(),
});
type Profile = z.infer<typeof Profile>;

/** A tiny DevTools protocol client over the inspector's WebSocket. */
async function inspector(url: string) {
  const targets = Target.parse(await (await fetch(`${url}/json`)).json());
  const target = targets.find((t) => !/proxy/i.test(t.title ?? "")) ?? targets[0];
  if (!target) throw new Error(`no inspector target at ${url}/json`);
  // wrangler's inspector proxy admits DevTools origins only (DNS-rebinding guard); 127.0.0.1 is one.
  // Node's WebSocket (undici) takes headers as a non-standard init option.
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { origin: "http://127.0.0.1" } } as unknown as string[]);
  await new Promise<void>((ok, fail) => {
    ws.addEventListener("open", () => ok(), { once: true });
    ws.addEventListener("error", () => fail(new Error(`cannot open ${target.webSocketDebuggerUrl}`)), { once: true });
  });
  let id = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.addEventListener("message", (e) => {
    const msg = z.object({ id: z.number().optional(), result: z.unknown().optional(), error: z.unknown().optional() }).loose().parse(JSON.parse(String(e.data)));
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.error ? { error: msg.error } : msg.result);
  });
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((ok) => {
      const n = ++id;
      waiting.set(n, ok);
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  return { send, close: () => ws.close(), title: target.title ?? target.webSocketDebuggerUrl };
}

/**
 * The bundle's module of each line: esbuild marks every module with a `// src/…` or
 * `// node_modules/…` comment line, so a line belongs to the last marker above it.
 */
function moduleIndex(source: string): (line: number) => string {
  const marks: Array<{ line: number; module: string }> = [];
  source.split("\n").forEach((text, line) => {
    const m = /^\/\/ ((?:src|node_modules|\.\.\/)[^\s]*)$/.exec(text);
    if (m?.[1]) marks.push({ line, module: m[1].replace(/^node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*$/, "$1") });
  });
  return (line) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = "(bundle)";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const mark = marks[mid];
      if (!mark) break;
      if (mark.line <= line) {
        found = mark.module;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

function summarise(profile: Profile, moduleOf: (scriptId: string, line: number) => string | null): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((s, i) => self.set(s, (self.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const label = (id: number) => {
    const f = byId.get(id)?.callFrame;
    if (!f) return "?";
    const where = moduleOf(f.scriptId, f.lineNumber) ?? (f.url.split("/").slice(-2).join("/") || "(native)");
    return `${f.functionName || "(anonymous)"} ${where}:${f.lineNumber + 1}`;
  };
  const moduleOfNode = (id: number) => {
    const f = byId.get(id)?.callFrame;
    return f ? (moduleOf(f.scriptId, f.lineNumber) ?? (f.url ? f.url : "(native)")) : "?";
  };
  const selfBy = new Map<string, number>();
  for (const [id, t] of self) selfBy.set(label(id), (selfBy.get(label(id)) ?? 0) + t);
  // Inclusive time per module (each sample counted once per module on its stack).
  const inclusive = new Map<string, number>();
  const selfModule = new Map<string, number>();
  for (const [id, t] of self) {
    selfModule.set(moduleOfNode(id), (selfModule.get(moduleOfNode(id)) ?? 0) + t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const m = moduleOfNode(cur);
      if (seen.has(m)) continue;
      seen.add(m);
      inclusive.set(m, (inclusive.get(m) ?? 0) + t);
    }
  }
  const pct = (t: number) => `${((t / total) * 100).toFixed(1).padStart(5)} %`;
  console.log(`\nsampled ${(total / 1000).toFixed(0)} ms of CPU in the Worker's isolate\n\nself time (top 25):`);
  for (const [l, t] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(t)}  ${l}`);
  // Who calls the hottest JavaScript functions (three frames up, by time).
  const hottest = [...selfBy].filter(([l]) => !l.includes("(native)")).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([l]) => l);
  for (const hot of hottest) {
    const callers = new Map<string, number>();
    for (const [id, t] of self) {
      if (label(id) !== hot) continue;
      const chain: string[] = [];
      for (let cur = parent.get(id); cur !== undefined && chain.length < 3; cur = parent.get(cur)) chain.push(label(cur).replace(/^.*?\/node_modules\//, ""));
      const key = chain.join(" ← ");
      callers.set(key, (callers.get(key) ?? 0) + t);
    }
    console.log(`\ncallers of ${hot}:`);
    for (const [c, t] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 3)) console.log(`  ${pct(t)}  ← ${c}`);
  }
  console.log(`\nself time by module (top 20):`);
  for (const [l, t] of [...selfModule].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(t)}  ${l}`);
  console.log(`\ninclusive time by module (top 30):`);
  for (const [l, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${pct(t)}  ${l}`);
}

const Meter = z.object({ d1: z.object({ queries: z.number(), rowsRead: z.number(), rowsWritten: z.number() }) });
const stack = await startStack({ vars: { HIGHLEVEL_RATE_SCALE: "2", D1_METER: "true" } });
const meter = async () => Meter.parse(await stack.admin("GET", "/api/debug/d1-meter")).d1;
try {
  const url = stack.worker.url;
  await loadTrivial(url, 2, CONNECTIONS);
  const stamp = Date.now();
  const make =
    VARIANT === "unique"
      ? webhookFactory(stack.locationId, Array.from({ length: 5 }, (_, i) => `bench-ingress-${i}`), `profile-${stamp}`)
      : VARIANT === "enqueued"
        ? webhookFactory(stack.locationId, ["x"], `profile-${stamp}`, "AppointmentCreate")
        : duplicateWebhookFactory("bench-unknown-location", "dup", `profile-dup-${stamp}`);
  const dev = await inspector(stack.worker.inspectorUrl);
  console.log(`profiling ${dev.title} during ${SECONDS} s of ${VARIANT} load`);
  await dev.send("Profiler.enable");
  await dev.send("Profiler.setSamplingInterval", { interval: 200 });
  const d1Before = await meter();
  await dev.send("Profiler.start");
  const load = VARIANT === "trivial" ? await loadTrivial(url, SECONDS, CONNECTIONS) : await loadWebhooks(url, SECONDS, CONNECTIONS, make);
  const stopped = z.object({ profile: Profile }).parse(await dev.send("Profiler.stop"));
  // The bundle's source, to name the module of each sampled line.
  await dev.send("Debugger.enable");
  const sources = new Map<string, (line: number) => string>();
  for (const id of new Set(stopped.profile.nodes.map((n) => n.callFrame.scriptId))) {
    const url = stopped.profile.nodes.find((n) => n.callFrame.scriptId === id)?.callFrame.url ?? "";
    if (!url.endsWith("index.js")) continue;
    const got = z.object({ scriptSource: z.string() }).safeParse(await dev.send("Debugger.getScriptSource", { scriptId: id }));
    if (got.success) sources.set(id, moduleIndex(got.data.scriptSource));
  }
  dev.close();
  console.log(`load: ${load.rps.toFixed(0)} req/s, p99 ${load.p99Ms} ms, non-2xx ${load.non2xx}`);
  mkdirSync(resolve(ROOT, "bench"), { recursive: true });
  writeFileSync(resolve(ROOT, "bench/ingress.cpuprofile"), JSON.stringify(stopped.profile));
  summarise(stopped.profile, (scriptId, line) => sources.get(scriptId)?.(line) ?? null);
  await waitQuiet(stack, 3_000, 60_000);
  const d1After = await meter();
  const statements = d1After.queries - d1Before.queries;
  console.log(`\nD1: ${statements} statements for ${load.total} requests = ${(statements / Math.max(1, load.total)).toFixed(2)} per request (${((d1After.rowsRead - d1Before.rowsRead) / Math.max(1, load.total)).toFixed(1)} rows read, ${((d1After.rowsWritten - d1Before.rowsWritten) / Math.max(1, load.total)).toFixed(1)} written), the consumer's and the jobs' included`);
} finally {
  await stack.stop();
}
