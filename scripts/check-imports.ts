/**
 * The import rules of src/ (the layer map in CONTRIBUTING.md), checked by `npm test`.
 *
 * Reads every .ts/.tsx file under src/, takes its runtime imports (`import type` and `export type`
 * are erased at build time, so they cannot make a circle or drag a layer in), and reports every rule
 * broken. Regex parsing is enough because the code base writes one import statement per declaration
 * with a string-literal specifier; the check adds no dependency.
 *
 * Run: `npm run check:imports` (exits 1 and lists the breaches when a rule is broken).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Longest a file in src/ may be, in lines. */
export const MAX_LINES = 600;

/** For a layer (top folder of src/), the layers it may import at runtime; absent = no restriction. */
const ALLOWED_LAYERS: Record<string, readonly string[]> = {
  lib: [],
  domain: ["lib"],
  store: ["lib", "domain"],
};

/** For a layer, the layers it must not import at runtime (it receives what it needs by parameter). */
const FORBIDDEN_LAYERS: Record<string, readonly string[]> = {
  notify: ["sync", "queue", "http", "automations"],
  automations: ["sync", "queue", "http"],
  queue: ["sync", "notify", "http", "highlevel", "fourdegrees", "automations"],
  highlevel: ["sync", "notify", "http", "queue", "automations"],
  fourdegrees: ["sync", "notify", "http", "queue", "automations"],
};

/** Runtime specifiers a file imports: static imports and re-exports that are not type-only, and `import()`. */
export function runtimeImports(source: string): string[] {
  const code = stripComments(source);
  const found: string[] = [];
  const statement = /(^|[;\n])\s*(import|export)\s+(type\s+)?([^;]*?)\s*\bfrom\s*["']([^"']+)["']/g;
  for (const m of code.matchAll(statement)) {
    if (m[3] || !m[5]) continue;
    if (m[2] === "export" && !/^[*{]/.test(m[4]!.trim())) continue;
    if (onlyTypeSpecifiers(m[4]!)) continue;
    found.push(m[5]);
  }
  for (const m of code.matchAll(/(^|[;\n])\s*import\s*["']([^"']+)["']/g)) found.push(m[2]!);
  for (const m of code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]!);
  return found;
}

/** `{ type A, type B }`: every named binding is a type, so the statement is erased (no default/namespace import). */
function onlyTypeSpecifiers(clause: string): boolean {
  const braces = clause.trim().match(/^\{([\s\S]*)\}$/);
  if (!braces) return false;
  const names = braces[1]!
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length > 0 && names.every((n) => n.startsWith("type "));
}

/** Drops block and line comments so a commented-out import or an example in JSDoc does not count. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** The src/-relative path a relative specifier points at, or undefined for a package import. */
function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  return posix.normalize(posix.join(posix.dirname(from), specifier));
}

/** The layer of a src/-relative path: its top folder, or "" for a file at the root of src/. */
function layerOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.indexOf("/")) : "";
}

/**
 * Every breach of the import rules in a tree, as readable lines; empty when the tree keeps them.
 * `files` maps src/-relative paths ("sync/engine/engine.ts") to their source text.
 */
export function checkImports(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const [path, source] of files) {
    const lines = source.split("\n").length - (source.endsWith("\n") ? 1 : 0);
    if (lines > MAX_LINES) problems.push(`${path}: ${lines} lines (at most ${MAX_LINES})`);
    const targets: string[] = [];
    for (const spec of runtimeImports(source)) {
      const target = resolve(path, spec);
      if (target === undefined) continue;
      // Outside src/ (package.json for the version): no layer, no part of a circle.
      if (target.startsWith("..")) continue;
      targets.push(target);
      const from = layerOf(path);
      const allowed = ALLOWED_LAYERS[from];
      const to = layerOf(target);
      if (allowed && to !== from && !allowed.includes(to)) {
        problems.push(`${path}: ${from}/ may import ${describe(allowed)}, but imports ${target}`);
      }
      if (FORBIDDEN_LAYERS[from]?.includes(to)) {
        problems.push(
          `${path}: ${from}/ may not import ${FORBIDDEN_LAYERS[from]!.map((l) => `${l}/`).join(" or ")}, but imports ${target}`,
        );
      }
    }
    graph.set(path, targets);
    problems.push(...bindingBreaches(path, source));
  }
  for (const cycle of findCycles(graph)) problems.push(`import circle: ${cycle.join(" → ")}`);
  return problems;
}

function describe(layers: readonly string[]): string {
  return layers.length === 0 ? "nothing of ours" : `only ${layers.map((l) => `${l}/`).join(" and ")}`;
}

/** SQL belongs to store/ and the rate gate's binding to gate/ (the D1 and KV handles are passed down to store/). */
function bindingBreaches(path: string, source: string): string[] {
  const code = stripComments(source);
  const layer = layerOf(path);
  const out: string[] = [];
  if (layer !== "store" && /\b(DB|db)\s*\.\s*(prepare|exec|batch)\s*\(/.test(code)) {
    out.push(`${path}: runs SQL outside store/`);
  }
  if (layer !== "gate" && /\benv\s*\.\s*GATE\b/.test(code)) out.push(`${path}: reads env.GATE outside gate/`);
  return out;
}

/** Each runtime import circle once, as the path that closes it (a → b → a). */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const done = new Set<string>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (node: string): void => {
    seen.add(node);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!seen.has(next)) visit(next);
      else if (!done.has(next)) {
        const cycle = [...stack.slice(stack.indexOf(next)), next];
        const key = cycle.slice(0, -1).sort().join("|");
        if (!reported.has(key)) {
          reported.add(key);
          cycles.push(cycle);
        }
      }
    }
    stack.pop();
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) if (!seen.has(node)) visit(node);
  return cycles;
}

/** Every .ts/.tsx file under a folder, keyed by its path relative to that folder (with "/"). */
export function readTree(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.tsx?$/.test(name) && !name.endsWith(".d.ts")) {
        files.set(relative(root, full).split("\\").join("/"), readFileSync(full, "utf8"));
      }
    }
  };
  walk(root);
  return files;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const src = join(dirname(fileURLToPath(import.meta.url)), "..", "src");
  const problems = checkImports(readTree(src));
  if (problems.length > 0) {
    console.error(`check-imports: ${problems.length} rule(s) broken in src/:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log("check-imports: src/ keeps the import rules");
}
