/**
 * The 4Degrees sandbox's demo workspace: what a newcomer sees after `npm start`. It mirrors the
 * HighLevel sandbox's demo so the two sides map naturally: a "Deal Flow" pipeline whose stage names
 * match HighLevel's, and the same people (same emails) on both sides, so owners map by email.
 */
import type { FieldType, Pipeline, StageKind, User } from "./model.ts";
import type { FourDegreesSandbox } from "./sandbox.ts";

/** What `seedDemo` made (or found, when already seeded). */
export interface DemoSummary {
  workspace_id: string;
  pipeline_id: string;
  users: Array<{ id: string; email: string }>;
  deals: number;
  notes: number;
}

/** Demo users: the same names and emails as the HighLevel sandbox's demo location users. */
export const DEMO_USERS: ReadonlyArray<{ name: string; email: string; role: "admin" | "member" }> = [
  { name: "Alex Morgan", email: "alex.morgan@example.com", role: "admin" },
  { name: "Jordan Lee", email: "jordan.lee@example.com", role: "member" },
  { name: "Sam Patel", email: "sam.patel@example.com", role: "member" },
];

/** The "Deal Flow" list: open stages in order, then won and lost. */
export const DEMO_STAGES: ReadonlyArray<{ name: string; kind: StageKind }> = [
  { name: "Sourced", kind: "open" },
  { name: "Qualified", kind: "open" },
  { name: "Due Diligence", kind: "open" },
  { name: "Term Sheet", kind: "open" },
  { name: "Closed Won", kind: "won" },
  { name: "Closed Lost", kind: "lost" },
];

const DEMO_FIELDS: ReadonlyArray<{ name: string; type: FieldType; options?: string[] }> = [
  { name: "Sector", type: "single_select", options: ["Fintech", "Healthcare", "SaaS", "Climate", "Consumer"] },
  { name: "Round", type: "single_select", options: ["Pre-seed", "Seed", "Series A", "Series B", "Growth"] },
  { name: "Ownership %", type: "percentage" },
  { name: "Source", type: "text" },
  { name: "Value (k)", type: "formula" },
  { name: "Related deals", type: "linked_deals" },
];

const DEMO_COMPANIES = [
  { name: "Northwind Analytics", domain: "northwind.example" },
  { name: "Bluebird Health", domain: "bluebird.example" },
  { name: "Helio Grid", domain: "heliogrid.example" },
  { name: "Ledgerline", domain: "ledgerline.example" },
  { name: "Quill & Co", domain: "quill.example" },
];

const DEMO_CONTACTS = [
  { name: "Priya Raman", email: "priya@northwind.example", company: "Northwind Analytics" },
  { name: "Marcus Bell", email: "marcus@bluebird.example", company: "Bluebird Health" },
  { name: "Elena Voss", email: "elena@heliogrid.example", company: "Helio Grid" },
  { name: "Tom Okafor", email: "tom@ledgerline.example", company: "Ledgerline" },
  { name: "Grace Kim", email: "grace@quill.example", company: "Quill & Co" },
];

const DEMO_DEALS = [
  { name: "Northwind Analytics — Series A", company: "Northwind Analytics", stage: "Due Diligence", owner: 0, usd: 2_500_000, close: "2027-02-15", sector: "SaaS", round: "Series A", ownership: 12.5, tags: ["b2b", "ai"], note: "Strong net revenue retention (128%). Waiting on the customer reference calls." },
  { name: "Bluebird Health — Seed", company: "Bluebird Health", stage: "Qualified", owner: 1, usd: 750_000, close: "2027-01-31", sector: "Healthcare", round: "Seed", ownership: 8, tags: ["digital-health"], note: "Intro via the founder's previous investor; clinical pilot with two hospitals." },
  { name: "Helio Grid — Series B", company: "Helio Grid", stage: "Term Sheet", owner: 0, usd: 6_000_000, close: "2026-12-20", sector: "Climate", round: "Series B", ownership: 9.5, tags: ["climate", "hardware"], note: null },
  { name: "Ledgerline — Seed extension", company: "Ledgerline", stage: "Closed Won", owner: 2, usd: 400_000, close: "2026-11-01", sector: "Fintech", round: "Seed", ownership: 4, tags: ["fintech"], note: "Wired. Board observer seat agreed." },
  { name: "Quill & Co — Pre-seed", company: "Quill & Co", stage: "Sourced", owner: 1, usd: 250_000, close: null, sector: "Consumer", round: "Pre-seed", ownership: null, tags: [], note: null },
];

/** Seeds the demo workspace unless a "Deal Flow" pipeline already exists. */
export function seedDemo(sb: FourDegreesSandbox): DemoSummary {
  const store = sb.store;
  const existing = [...store.pipelines.values()].find((p) => p.name === "Deal Flow");
  if (existing) return summary(sb, existing);

  const users: User[] = DEMO_USERS.map((u) => [...store.users.values()].find((x) => x.email === u.email) ?? store.addUser(u));
  const pipeline = store.addPipeline({ name: "Deal Flow", stages: [...DEMO_STAGES] });
  const fieldIds = new Map<string, string>();
  for (const f of DEMO_FIELDS) fieldIds.set(f.name, store.addField({ pipelineId: pipeline.id, name: f.name, type: f.type, ...(f.options ? { options: f.options } : {}) }).id);
  const companyIds = new Map<string, string>();
  for (const c of DEMO_COMPANIES) companyIds.set(c.name, store.addCompany(c).id);
  const contactIds = new Map<string, string>();
  for (const c of DEMO_CONTACTS) contactIds.set(c.company, store.addContact({ name: c.name, email: c.email, company_id: companyIds.get(c.company)! }).id);

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
        value: { amount_minor: d.usd * 100, currency: "USD" },
        expected_close_date: d.close,
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
  return {
    workspace_id: sb.store.workspace.id,
    pipeline_id: pipeline.id,
    users: [...sb.store.users.values()].map((u) => ({ id: u.id, email: u.email })),
    deals: [...sb.store.deals.values()].filter((d) => d.pipeline_id === pipeline.id).length,
    notes: sb.store.notes.size,
  };
}
