/**
 * `npm run demo -- <command>`: make a change in one sandbox as a user would, then look at the
 * other side — the newcomer's first sync, in one line each (README "Your first sync").
 *
 *   list                         deals in both sandboxes, side by side by name
 *   stage "<deal>" "<stage>"     move a 4Degrees deal to a stage (as a 4Degrees user)
 *   value "<deal>" <amount>      set a HighLevel opportunity's value (as a HighLevel user)
 *   won "<deal>"                 mark a HighLevel opportunity won
 *   lost "<deal>" "<reason>"     pass on a 4Degrees deal with a reason (a pass reason by name, else free text)
 *   note "<deal>" "<text>"       add a note to a 4Degrees deal
 *   create "<name>"              create a deal in 4Degrees (first stage, first user)
 *   attach "<deal>" <file>       attach a local file to a 4Degrees deal (it lands in HighLevel's Documents field)
 *
 * Deals are found by (part of) their name, case-insensitively. SANDBOX_PORT picks the sandbox.
 */
import { openAsBlob } from "node:fs";
import { basename, extname } from "node:path";
import { z } from "zod";

const S = `http://127.0.0.1:${process.env["SANDBOX_PORT"] ?? 8788}`;
const FOUR_KEY = process.env["FOURDEGREES_API_KEY"] ?? "4d_sandbox_key_demo";

async function json(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const res = await fetch(`${S}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch(() => {
    throw new Error(`the sandbox is not running on ${S} — start everything with: npm start`);
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const FourDeal = z.object({
  id: z.string(),
  name: z.string(),
  stage_id: z.string(),
  pipeline_id: z.string().optional(),
  status: z.string(),
  value: z.object({ amount_minor: z.number() }).nullable().optional(),
  archived_at: z.string().nullable().optional(),
});
const FourPipelines = z.object({
  data: z.array(
    z.object({
      id: z.string(),
      stages: z.array(z.object({ id: z.string(), name: z.string(), kind: z.string().optional() })),
    }),
  ),
});
const PassReasons = z.object({ data: z.array(z.object({ id: z.string(), name: z.string() })) });
const HlOpp = z.object({
  id: z.string(),
  name: z.string(),
  pipelineStageId: z.string().nullable().optional(),
  status: z.string(),
  monetaryValue: z.number().nullable().optional(),
});
const HlState = z
  .object({ demo: z.object({ locationId: z.string(), pit: z.string(), userIds: z.array(z.string()) }).passthrough() })
  .passthrough();
const HlPipelines = z.object({
  pipelines: z.array(z.object({ stages: z.array(z.object({ id: z.string(), name: z.string() })) })),
});

async function fourDeals() {
  return z
    .object({ deals: z.array(FourDeal) })
    .parse(await json("GET", "/_sandbox/4degrees/deals"))
    .deals.filter((d) => !d.archived_at);
}
async function fourStages() {
  const p = FourPipelines.parse(
    await json("GET", "/4degrees/v1/pipelines", undefined, { authorization: `Bearer ${FOUR_KEY}` }),
  );
  return new Map(p.data.flatMap((pl) => pl.stages.map((s) => [s.id, s.name] as const)));
}
async function hlState() {
  return HlState.parse(await json("GET", "/_sandbox/highlevel"));
}
async function hlOpps(locationId: string) {
  return z
    .object({ opportunities: z.array(HlOpp) })
    .parse(await json("GET", `/_sandbox/highlevel/opportunities?locationId=${encodeURIComponent(locationId)}`))
    .opportunities;
}
async function hlStages(state: z.infer<typeof HlState>) {
  const p = HlPipelines.parse(
    await json("GET", `/highlevel/opportunities/pipelines?locationId=${state.demo.locationId}`, undefined, {
      authorization: `Bearer ${state.demo.pit}`,
      version: "2021-07-28",
    }),
  );
  return new Map(p.pipelines.flatMap((pl) => pl.stages.map((s) => [s.id, s.name] as const)));
}

function findOne<T extends { name: string }>(items: T[], query: string, where: string): T {
  const q = query.toLowerCase();
  const hits = items.filter((i) => i.name.toLowerCase().includes(q));
  if (hits.length === 1) return hits[0]!;
  const exact = hits.filter((i) => i.name.toLowerCase() === q);
  if (exact.length === 1) return exact[0]!;
  throw new Error(
    hits.length === 0
      ? `no deal matching "${query}" in ${where} (npm run demo -- list)`
      : `"${query}" matches ${hits.length} deals in ${where}: ${hits.map((h) => h.name).join(" · ")}`,
  );
}

/** Types the 4Degrees sandbox accepts, by file extension (docs/fourdegrees.md#attachments). */
const CONTENT_TYPES: Record<string, string> = {
  ".pdf": "application/pdf",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  ".zip": "application/zip",
  ".txt": "text/plain",
  ".csv": "text/csv",
  ".md": "text/markdown",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
};

const money = (n: number | null | undefined) =>
  n == null ? "—" : n.toLocaleString("en-US", { maximumFractionDigits: 2 });

async function list() {
  const state = await hlState();
  const [deals, stages4, opps, stagesHl] = await Promise.all([
    fourDeals(),
    fourStages(),
    hlOpps(state.demo.locationId),
    hlStages(state),
  ]);
  const names = [...new Set([...deals.map((d) => d.name), ...opps.map((o) => o.name)])].sort();
  const rows = names.map((name) => {
    const d = deals.find((x) => x.name === name);
    const o = opps.find((x) => x.name === name);
    return {
      deal: name.slice(0, 38),
      "4Degrees stage": d ? (stages4.get(d.stage_id) ?? d.stage_id) : "—",
      "4Degrees value": d ? money((d.value?.amount_minor ?? 0) / 100) : "—",
      "HighLevel stage": o
        ? `${stagesHl.get(o.pipelineStageId ?? "") ?? "?"}${o.status === "open" ? "" : ` (${o.status})`}`
        : "—",
      "HighLevel value": o ? money(o.monetaryValue) : "—",
    };
  });
  console.table(rows);
}

const [command, ...args] = process.argv.slice(2);
try {
  switch (command) {
    case "list":
    case undefined:
      await list();
      break;
    case "stage": {
      const [query, stageName] = args;
      if (!query || !stageName) throw new Error('usage: npm run demo -- stage "<deal>" "<stage>"');
      const deal = findOne(await fourDeals(), query, "4Degrees");
      const stages = await fourStages();
      const stage = [...stages].find(([, n]) => n.toLowerCase() === stageName.toLowerCase());
      if (!stage)
        throw new Error(`no 4Degrees stage "${stageName}"; stages: ${[...new Set(stages.values())].join(", ")}`);
      await json("PATCH", `/_sandbox/4degrees/deals/${deal.id}`, { stage_id: stage[0] });
      console.log(`4Degrees: "${deal.name}" → ${stage[1]}. Watch HighLevel follow: npm run demo -- list`);
      break;
    }
    case "value": {
      const [query, amount] = args;
      const n = Number(amount);
      if (!query || !Number.isFinite(n) || n < 0) throw new Error('usage: npm run demo -- value "<deal>" <amount>');
      const state = await hlState();
      const opp = findOne(await hlOpps(state.demo.locationId), query, "HighLevel");
      await json("PATCH", `/_sandbox/highlevel/opportunities/${opp.id}`, { monetaryValue: n });
      console.log(`HighLevel: "${opp.name}" value → ${money(n)}. Watch 4Degrees follow: npm run demo -- list`);
      break;
    }
    case "won": {
      const [query] = args;
      if (!query) throw new Error('usage: npm run demo -- won "<deal>"');
      const state = await hlState();
      const opp = findOne(await hlOpps(state.demo.locationId), query, "HighLevel");
      await json("POST", `/_sandbox/highlevel/opportunities/${opp.id}/status`, { status: "won" });
      console.log(`HighLevel: "${opp.name}" marked won. Watch 4Degrees follow: npm run demo -- list`);
      break;
    }
    case "lost": {
      const [query, reason] = args;
      if (!query || !reason) throw new Error('usage: npm run demo -- lost "<deal>" "<reason>"');
      const deal = findOne(await fourDeals(), query, "4Degrees");
      const auth = { authorization: `Bearer ${FOUR_KEY}` };
      const pipelines = FourPipelines.parse(await json("GET", "/4degrees/v1/pipelines", undefined, auth)).data;
      const pipeline = pipelines.find((p) => p.id === deal.pipeline_id) ?? pipelines[0];
      const lostStage = pipeline?.stages.find((st) => st.kind === "lost");
      if (!lostStage) throw new Error(`the deal's 4Degrees pipeline has no lost stage`);
      const reasons = PassReasons.parse(await json("GET", "/4degrees/v1/pass-reasons", undefined, auth)).data;
      const known = reasons.find((r) => r.name.toLowerCase() === reason.toLowerCase());
      await json("PATCH", `/_sandbox/4degrees/deals/${deal.id}`, {
        stage_id: lostStage.id,
        ...(known ? { pass_reason_id: known.id } : { pass_reason_text: reason }),
      });
      console.log(
        `4Degrees: "${deal.name}" → ${lostStage.name}, ${known ? `pass reason "${known.name}"` : `reason "${reason}" (free text)`}.` +
          " Watch HighLevel follow (lost, with the mapped lost reason if there is one): npm run demo -- list",
      );
      break;
    }
    case "note": {
      const [query, text] = args;
      if (!query || !text) throw new Error('usage: npm run demo -- note "<deal>" "<text>"');
      const deal = findOne(await fourDeals(), query, "4Degrees");
      await json("POST", `/_sandbox/4degrees/deals/${deal.id}/notes`, { body: text });
      console.log(`4Degrees: note added to "${deal.name}". It appears on the HighLevel contact's notes.`);
      break;
    }
    case "create": {
      const [name] = args;
      if (!name) throw new Error('usage: npm run demo -- create "<name>"');
      const state = z
        .object({ demo: z.object({ pipelineId: z.string() }).passthrough() })
        .passthrough()
        .parse(await json("GET", "/_sandbox/4degrees"));
      await json("POST", "/_sandbox/4degrees/deals", { name, pipeline_id: state.demo.pipelineId });
      console.log(`4Degrees: created "${name}". Watch it appear in HighLevel: npm run demo -- list`);
      break;
    }
    case "attach": {
      const [query, path] = args;
      if (!query || !path) throw new Error('usage: npm run demo -- attach "<deal>" <file>');
      const deal = findOne(await fourDeals(), query, "4Degrees");
      const type = CONTENT_TYPES[extname(path).toLowerCase()];
      if (!type)
        throw new Error(`attach: say what the file is by its extension (${Object.keys(CONTENT_TYPES).join(", ")})`);
      // openAsBlob reads the file lazily: the upload streams it from disk.
      const file = await openAsBlob(path, { type }).catch(() => {
        throw new Error(`attach: cannot read ${path}`);
      });
      const form = new FormData();
      form.set("file", file, basename(path));
      const res = await fetch(`${S}/_sandbox/4degrees/deals/${deal.id}/attachments`, { method: "POST", body: form });
      const text = await res.text();
      if (!res.ok) throw new Error(`attach → ${res.status}: ${text.slice(0, 300)}`);
      console.log(
        `4Degrees: "${basename(path)}" (${file.size} bytes) attached to "${deal.name}". ` +
          "It appears in the HighLevel opportunity's Documents field (files over ATTACHMENT_MAX_BYTES as a note).",
      );
      break;
    }
    default:
      throw new Error(`unknown command "${command}"; commands: list, stage, value, won, lost, note, create, attach`);
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
