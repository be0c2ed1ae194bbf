/**
 * The import-rule check (scripts/check-imports.ts) on small made-up trees: each rule it enforces
 * fails on a tree that breaks it, and type-only imports never count.
 */
import { describe, expect, it } from "vitest";
import { checkImports, MAX_LINES, runtimeImports } from "../../scripts/check-imports.ts";

const tree = (files: Record<string, string>) => new Map(Object.entries(files));

describe("check-imports", () => {
  it("accepts a tree that keeps the layer rules", () => {
    const ok = tree({
      "lib/log.ts": "export const log = 1;\n",
      "domain/port.ts": 'import { log } from "../lib/log.ts";\nexport const port = log;\n',
      "store/links.ts": 'import { port } from "../domain/port.ts";\nimport type { X } from "../sync/engine.ts";\n',
      "sync/engine.ts": 'import { port } from "../domain/port.ts";\nimport { links } from "../store/links.ts";\n',
    });
    expect(checkImports(ok)).toEqual([]);
  });

  it("reports a runtime import circle and a store → sync import", () => {
    const bad = tree({
      "store/links.ts": 'import { engine } from "../sync/engine.ts";\n',
      "sync/engine.ts": 'import { jobs } from "./jobs.ts";\n',
      "sync/jobs.ts": 'import {\n  engine,\n  type Other,\n} from "./engine.ts";\n',
    });
    const problems = checkImports(bad);
    expect(problems).toContain("store/links.ts: store/ may import only lib/ and domain/, but imports sync/engine.ts");
    expect(problems).toContain("import circle: sync/engine.ts → sync/jobs.ts → sync/engine.ts");
    expect(problems).toHaveLength(2);
  });

  it("does not count type-only imports and re-exports towards circles or layers", () => {
    const typesOnly = tree({
      "store/a.ts": 'import type { B } from "../sync/b.ts";\nexport type { C } from "../sync/b.ts";\n',
      "sync/b.ts": 'import { type A } from "../store/a.ts";\nimport { a } from "../store/a.ts";\n',
    });
    expect(checkImports(typesOnly)).toEqual([]);
    expect(
      runtimeImports('import { type A, b } from "./x.ts";\nexport * from "./y.ts";\n// import "./z.ts";\n'),
    ).toEqual(["./x.ts", "./y.ts"]);
  });

  it("reports lib/ importing ours, domain/ importing above lib/, notify/ importing sync/", () => {
    const problems = checkImports(
      tree({
        "lib/log.ts": 'import { x } from "../domain/port.ts";\n',
        "domain/port.ts": 'import { y } from "../store/links.ts";\n',
        "store/links.ts": "export const y = 1;\n",
        "notify/notify.ts": 'import { z } from "../sync/engine.ts";\n',
        "sync/engine.ts": "export const z = 1;\n",
        "automations/run.ts": 'import { z } from "../sync/engine.ts";\n',
      }),
    );
    expect(problems).toEqual([
      "lib/log.ts: lib/ may import nothing of ours, but imports domain/port.ts",
      "domain/port.ts: domain/ may import only lib/, but imports store/links.ts",
      "notify/notify.ts: notify/ may not import sync/ or queue/ or http/ or automations/, but imports sync/engine.ts",
      "automations/run.ts: automations/ may not import sync/ or queue/ or http/, but imports sync/engine.ts",
    ]);
  });

  it("reports SQL outside store/, the gate binding outside gate/ and an over-long file", () => {
    const problems = checkImports(
      tree({
        "sync/rows.ts": 'await db.prepare("DELETE FROM x").run();\n',
        "http/app.ts": "const gate = env.GATE.get(id);\n",
        "store/ok.ts": 'await db.prepare("SELECT 1").first();\n',
        "gate/client.ts": "const gate = env.GATE.get(id);\n",
        "sync/long.ts": "x;\n".repeat(MAX_LINES + 1),
      }),
    );
    expect(problems).toEqual([
      "sync/rows.ts: runs SQL outside store/",
      "http/app.ts: reads env.GATE outside gate/",
      `sync/long.ts: ${MAX_LINES + 1} lines (at most ${MAX_LINES})`,
    ]);
  });
});
