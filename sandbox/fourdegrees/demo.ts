/**
 * The 4Degrees sandbox's demo workspace: what a newcomer sees after `npm start`. It mirrors the
 * HighLevel sandbox's demo so the two sides map naturally: a "Deal Flow" pipeline whose stage names
 * match HighLevel's, and the same people (same emails) on both sides, so owners map by email.
 */
import { SeededRandom } from "../core/random.ts";
import type { FieldType, Pipeline, StageKind, User } from "./model.ts";
import type { FourDegreesSandbox } from "./sandbox.ts";

/** What `seedDemo` made (or found, when already seeded); also the control API's `POST /seed` answer. */
export interface DemoSummary {
  workspaceId: string;
  pipelineId: string;
  /** In stage order (DEMO_STAGES). */
  stageIds: string[];
  /** In DEMO_USERS order. */
  userIds: string[];
  /** Custom field ids by name. */
  fieldIds: Record<string, string>;
  dealIds: string[];
  contactIds: string[];
  noteIds: string[];
  /** In DEMO_PASS_REASONS order. */
  passReasonIds: string[];
}

/**
 * Pass reasons: the HighLevel demo location's three lost reasons (same names, so they map by name)
 * and one of 4Degrees' own that has no HighLevel twin (an unmapped reason crosses as text).
 */
export const DEMO_PASS_REASONS: readonly string[] = [
  "Passed: team",
  "Passed: market size",
  "Lost to another investor",
  "Outside our thesis",
];

/** The fixed seed of the demo id stream: demo ids are the same on every run, whatever SANDBOX_SEED is. */
export const DEMO_ID_SEED = 0x4d_2026;

/** Demo users: the same people and emails as the HighLevel sandbox's demo location users (owners map by email). */
export const DEMO_USERS: ReadonlyArray<{ name: string; email: string; role: "admin" | "member" }> = [
  { name: "Alex Morgan", email: "alex.morgan@acmecapital.example", role: "admin" },
  { name: "Priya Shah", email: "priya.shah@acmecapital.example", role: "member" },
  { name: "Jordan Lee", email: "jordan.lee@acmecapital.example", role: "member" },
];

/**
 * The "Deal Flow" list. The open stages carry the HighLevel demo pipeline's names; HighLevel's
 * "Closed" stage holds won deals here, and lost deals (any HighLevel stage with status lost) go to
 * "Passed". So every HighLevel stage name is also a stage name here, and a HighLevel export
 * re-imports without stage errors.
 */
export const DEMO_STAGES: ReadonlyArray<{ name: string; kind: StageKind }> = [
  { name: "Sourced", kind: "open" },
  { name: "First Meeting", kind: "open" },
  { name: "Due Diligence", kind: "open" },
  { name: "Partner Review", kind: "open" },
  { name: "Term Sheet", kind: "open" },
  { name: "Closed", kind: "won" },
  { name: "Passed", kind: "lost" },
];

const DEMO_FIELDS: ReadonlyArray<{ name: string; type: FieldType; options?: string[] }> = [
  { name: "Round", type: "single_select", options: ["Pre-seed", "Seed", "Series A", "Series B", "Growth"] },
  {
    name: "Sector",
    type: "single_select",
    options: ["Fintech", "Healthcare", "SaaS", "Climate", "Consumer", "Logistics"],
  },
  { name: "Ownership %", type: "percentage" },
  { name: "Source", type: "text" },
  { name: "Value (k)", type: "formula" },
  { name: "Related deals", type: "linked_deals" },
];

/** Companies and founders of the 4Degrees-side deals (different from HighLevel's, so a sync visibly adds them there). */
const DEMO_CONTACTS = [
  {
    first: "Nora",
    last: "Lindqvist",
    email: "nora@northwind.example",
    phone: "+1 415 555 0101",
    company: "Northwind Analytics",
    domain: "northwind.example",
  },
  {
    first: "Marcus",
    last: "Bell",
    email: "marcus@bluebirdhealth.example",
    phone: "+1 617 555 0102",
    company: "Bluebird Health",
    domain: "bluebirdhealth.example",
  },
  {
    first: "Elena",
    last: "Voss",
    email: "elena@heliogrid.example",
    phone: "+49 30 5550 0103",
    company: "Helio Grid",
    domain: "heliogrid.example",
  },
  {
    first: "Tom",
    last: "Achebe",
    email: "tom@ledgerline.example",
    phone: "+44 20 5550 0104",
    company: "Ledgerline",
    domain: "ledgerline.example",
  },
  {
    first: "Grace",
    last: "Kim",
    email: "grace@marlowfinch.example",
    phone: null,
    company: "Marlow & Finch",
    domain: "marlowfinch.example",
  },
  {
    first: "Ravi",
    last: "Menon",
    email: "ravi@orbitfreight.example",
    phone: "+1 212 555 0106",
    company: "Orbit Freight",
    domain: "orbitfreight.example",
  },
];

const DEMO_DEALS = [
  {
    name: "Northwind Analytics — Series A",
    company: "Northwind Analytics",
    stage: "Due Diligence",
    owner: 0,
    team: [1],
    usd: 2_500_000,
    closeInDays: 75,
    sector: "SaaS",
    round: "Series A",
    ownership: 12.5,
    tags: ["b2b", "ai"],
    note: "Strong net revenue retention (128%). Waiting on the customer reference calls.",
  },
  {
    name: "Bluebird Health — Seed",
    company: "Bluebird Health",
    stage: "First Meeting",
    owner: 1,
    usd: 750_000,
    closeInDays: 60,
    sector: "Healthcare",
    round: "Seed",
    ownership: 8,
    tags: ["digital-health"],
    note: "Intro via the founder's previous investor; clinical pilot with two hospitals.",
  },
  {
    name: "Helio Grid — Series B",
    company: "Helio Grid",
    stage: "Term Sheet",
    owner: 0,
    team: [1, 2],
    usd: 6_000_000,
    closeInDays: 21,
    sector: "Climate",
    round: "Series B",
    ownership: 9.5,
    tags: ["climate", "hardware"],
    note: null,
  },
  {
    name: "Ledgerline — Seed extension",
    company: "Ledgerline",
    stage: "Closed",
    owner: 2,
    usd: 400_000,
    closeInDays: -14,
    sector: "Fintech",
    round: "Seed",
    ownership: 4,
    tags: ["fintech"],
    note: "Wired. Board observer seat agreed.",
  },
  {
    name: "Marlow & Finch — Pre-seed",
    company: "Marlow & Finch",
    stage: "Sourced",
    owner: 1,
    usd: 250_000,
    closeInDays: null,
    sector: "Consumer",
    round: "Pre-seed",
    ownership: null,
    tags: [],
    note: null,
  },
  {
    name: "Orbit Freight — Seed",
    company: "Orbit Freight",
    stage: "Passed",
    owner: 2,
    usd: 1_000_000,
    closeInDays: -30,
    sector: "Logistics",
    round: "Seed",
    ownership: null,
    tags: ["passed"],
    note: null,
    passReason: "Passed: market size",
    passText: "Freight volumes too cyclical for the fund's horizon.",
  },
];

const DAY_MS = 86_400_000;

/** Seeds the demo workspace unless a "Deal Flow" pipeline already exists. */
export function seedDemo(sb: FourDegreesSandbox): DemoSummary {
  const store = sb.store;
  const existing = [...store.pipelines.values()].find((p) => p.name === "Deal Flow");
  if (existing) return summary(sb, existing);
  const previous = store.swapRandom(new SeededRandom(DEMO_ID_SEED));
  try {
    return seedInto(sb);
  } finally {
    store.swapRandom(previous);
  }
}

function seedInto(sb: FourDegreesSandbox): DemoSummary {
  const store = sb.store;
  const users: User[] = DEMO_USERS.map(
    (u) => [...store.users.values()].find((x) => x.email === u.email) ?? store.addUser(u),
  );
  const pipeline = store.addPipeline({ name: "Deal Flow", stages: [...DEMO_STAGES] });
  const fieldIds = new Map<string, string>();
  for (const f of DEMO_FIELDS)
    fieldIds.set(
      f.name,
      store.addField({
        pipelineId: pipeline.id,
        name: f.name,
        type: f.type,
        ...(f.options ? { options: f.options } : {}),
      }).id,
    );
  const companyIds = new Map<string, string>();
  const contactIds = new Map<string, string>();
  for (const c of DEMO_CONTACTS) {
    const companyId = store.addCompany({ name: c.company, domain: c.domain }).id;
    companyIds.set(c.company, companyId);
    const contact =
      store.findContactByEmail(c.email) ??
      store.addContact({
        first_name: c.first,
        last_name: c.last,
        email: c.email,
        phone: c.phone,
        company_id: companyId,
      });
    contactIds.set(c.company, contact.id);
  }
  const passReasonIds = new Map(DEMO_PASS_REASONS.map((name) => [name, store.addPassReason({ name }).id]));

  const today = sb.clock.now();
  const stageId = (name: string) => pipeline.stages.find((s) => s.name === name)!.id;
  for (const d of DEMO_DEALS) {
    const owner = users[d.owner]!;
    const actor = { type: "user" as const, id: owner.id };
    const deal = store.createDeal(
      {
        name: d.name,
        pipeline_id: pipeline.id,
        stage_id: stageId(d.stage),
        owner_id: owner.id,
        team_ids: (d.team ?? []).map((i) => users[i]!.id),
        ...(d.passReason
          ? { pass_reason_id: passReasonIds.get(d.passReason)!, pass_reason_text: d.passText ?? null }
          : {}),
        value: { amount_minor: d.usd * 100, currency: "USD" },
        expected_close_date:
          d.closeInDays === null ? null : new Date(today + d.closeInDays * DAY_MS).toISOString().slice(0, 10),
        company_id: companyIds.get(d.company)!,
        contact_ids: [contactIds.get(d.company)!],
        tags: d.tags,
        fields: {
          [fieldIds.get("Sector")!]: d.sector,
          [fieldIds.get("Round")!]: d.round,
          [fieldIds.get("Source")!]: "Demo data",
          ...(d.ownership !== null ? { [fieldIds.get("Ownership %")!]: d.ownership } : {}),
        },
      },
      actor,
    );
    if (d.note) store.createNote(deal.id, { body: d.note }, actor);
  }
  return summary(sb, pipeline);
}

function summary(sb: FourDegreesSandbox, pipeline: Pipeline): DemoSummary {
  const store = sb.store;
  const dealIds = [...store.deals.values()].filter((d) => d.pipeline_id === pipeline.id).map((d) => d.id);
  return {
    workspaceId: store.workspace.id,
    pipelineId: pipeline.id,
    stageIds: [...pipeline.stages].sort((a, b) => a.position - b.position).map((s) => s.id),
    userIds: DEMO_USERS.map((u) => [...store.users.values()].find((x) => x.email === u.email)?.id).filter(
      (id): id is string => id !== undefined,
    ),
    fieldIds: Object.fromEntries(store.fieldsOf(pipeline.id).map((f) => [f.name, f.id])),
    dealIds,
    contactIds: [...store.contacts.keys()],
    noteIds: dealIds.flatMap((id) => store.notesOf(id).map((n) => n.id)),
    passReasonIds: DEMO_PASS_REASONS.map(
      (name) => [...store.passReasons.values()].find((r) => r.name === name)?.id,
    ).filter((id): id is string => id !== undefined),
  };
}
