/**
 * Demo data: an agency with two sub-accounts. The main one, "Acme Capital Partners", has a
 * six-stage deal-flow pipeline (UUID stage ids), three users with emails, opportunity custom fields
 * (a DATE field "Expected Close Date" for the close date HighLevel v2 lacks, a round picklist, a
 * TEXT field "4Degrees Deal ID" the Worker's default mapping keeps the 4Degrees id in),
 * lost reasons, contacts, opportunities spread over the stages and a note. Ids come from their own
 * fixed stream, so they are the same on every run (docs and newcomers can rely on them).
 */
import type { Clock } from "../core/clock.ts";
import { IdSource } from "./store.ts";
import type { Contact, CustomField, HighLevelStore, Opportunity, OpportunityStatus, Pipeline } from "./store.ts";

/** The fixed seed of the demo id stream. */
export const DEMO_ID_SEED = 20_210_728;

/** What the demo seed created (also the control API's `POST /seed` answer). */
export interface DemoData {
  companyId: string;
  locationId: string;
  /** The second sub-account (cross-location access tests). */
  otherLocationId: string;
  pipelineId: string;
  stageIds: string[];
  userIds: string[];
  contactIds: string[];
  opportunityIds: string[];
  closeDateFieldId: string;
  /**
   * The opportunity TEXT field "4Degrees Deal ID" (`opportunity.4degrees_deal_id`): where the
   * Worker's default mapping keeps a deal's 4Degrees id (it finds the field by its name).
   */
  externalIdFieldId: string;
  lostReasonIds: string[];
  /** A Location Private Integration Token for the main location (all sandbox scopes). */
  pit: string;
}

const DAY = 86_400_000;

/** Loads the demo data into an empty store; `createPit` makes the demo PIT. */
export function seedDemo(
  store: HighLevelStore,
  clock: Clock,
  createPit: (locationId: string, token: string) => void,
): DemoData {
  const ids = new IdSource(DEMO_ID_SEED);
  const now = clock.now();
  const iso = (ms: number) => new Date(ms).toISOString();

  const companyId = ids.id();
  store.companies.set(companyId, { id: companyId, name: "Acme Capital Agency" });
  const locationId = ids.id();
  const otherLocationId = ids.id();
  store.locations.set(locationId, {
    id: locationId,
    companyId,
    name: "Acme Capital Partners",
    address: "100 Market St, San Francisco, CA 94105, USA",
    timezone: "America/Los_Angeles",
    active: true,
  });
  store.locations.set(otherLocationId, {
    id: otherLocationId,
    companyId,
    name: "Acme Capital Europe",
    address: "1 Finsbury Ave, London EC2M 2PF, UK",
    timezone: "Europe/London",
    active: true,
  });

  const people = [
    { firstName: "Alex", lastName: "Morgan", email: "alex.morgan@acmecapital.example", role: "admin" as const },
    { firstName: "Priya", lastName: "Shah", email: "priya.shah@acmecapital.example", role: "user" as const },
    { firstName: "Jordan", lastName: "Lee", email: "jordan.lee@acmecapital.example", role: "user" as const },
  ];
  const userIds = people.map((p, i) => {
    const id = ids.id();
    store.users.set(id, {
      id,
      companyId,
      ...p,
      phone: `+1415555010${i}`,
      locationIds: i === 0 ? [locationId, otherLocationId] : [locationId],
    });
    return id;
  });

  const stageNames = ["Sourced", "First Meeting", "Due Diligence", "Partner Review", "Term Sheet", "Closed"];
  const pipeline: Pipeline = {
    id: ids.id(),
    locationId,
    name: "Deal Flow",
    stages: stageNames.map((name, position) => ({
      id: ids.uuid(),
      name,
      position,
      showInFunnel: true,
      showInPieChart: position < 5,
    })),
    showInFunnel: true,
    showInPieChart: true,
  };
  store.pipelines.set(pipeline.id, pipeline);
  const otherPipeline: Pipeline = {
    id: ids.id(),
    locationId: otherLocationId,
    name: "EU Pipeline",
    stages: ["New", "Qualified", "Won"].map((name, position) => ({
      id: ids.uuid(),
      name,
      position,
      showInFunnel: true,
      showInPieChart: true,
    })),
    showInFunnel: true,
    showInPieChart: true,
  };
  store.pipelines.set(otherPipeline.id, otherPipeline);

  const fields: CustomField[] = [
    {
      id: ids.id(),
      locationId,
      name: "Expected Close Date",
      fieldKey: "opportunity.expected_close_date",
      dataType: "DATE",
      model: "opportunity",
      position: 0,
      placeholder: "",
    },
    {
      id: ids.id(),
      locationId,
      name: "Round",
      fieldKey: "opportunity.round",
      dataType: "SINGLE_OPTIONS",
      model: "opportunity",
      position: 50,
      placeholder: "",
      picklistOptions: ["Pre-seed", "Seed", "Series A", "Series B", "Growth"],
    },
    {
      id: ids.id(),
      locationId,
      name: "LinkedIn URL",
      fieldKey: "contact.linkedin_url",
      dataType: "TEXT",
      model: "contact",
      position: 0,
      placeholder: "https://www.linkedin.com/in/…",
    },
  ];
  for (const f of fields) store.customFields.set(f.id, f);
  const [closeDate, round] = fields as [CustomField, CustomField, CustomField];

  const lostReasonIds = ["Passed: team", "Passed: market size", "Lost to another investor"].map((name) => {
    const id = ids.id();
    store.lostReasons.set(id, {
      id,
      locationId,
      name,
      createdAt: iso(now - 400 * DAY),
      updatedAt: iso(now - 400 * DAY),
    });
    return id;
  });

  const contactSeeds = [
    ["Maya", "Chen", "maya@lumenrobotics.example", "Lumen Robotics", "+14155550111"],
    ["Daniel", "Okafor", "daniel@gridlayer.example", "GridLayer", "+14155550112"],
    ["Sofia", "Rossi", "sofia@verdantbio.example", "Verdant Bio", "+14155550113"],
    ["Liam", "Novak", "liam@quillpay.example", "QuillPay", "+14155550114"],
    ["Hannah", "Berg", "hannah@northstack.example", "Northstack", "+14155550115"],
    ["Omar", "Haddad", "omar@tidalsecurity.example", "Tidal Security", "+14155550116"],
  ] as const;
  const contactIds = contactSeeds.map(([firstName, lastName, email, companyName, phone], i) => {
    const id = ids.id();
    const at = iso(now - (90 - i) * DAY);
    const contact: Contact = {
      id,
      locationId,
      firstName,
      lastName,
      email,
      phone,
      companyName,
      website: `https://${email.split("@")[1]}`,
      address1: null,
      city: null,
      state: null,
      postalCode: null,
      country: "US",
      timezone: "America/Los_Angeles",
      source: "sandbox seed",
      assignedTo: userIds[i % userIds.length]!,
      tags: ["founder"],
      dnd: false,
      customFields: [],
      dateAdded: at,
      dateUpdated: at,
    };
    store.contacts.set(id, contact);
    return id;
  });

  const deals: Array<[string, number, number, OpportunityStatus, string]> = [
    ["Lumen Robotics — Seed", 0, 1_500_000, "open", "Seed"],
    ["GridLayer — Series A", 2, 8_000_000, "open", "Series A"],
    ["Verdant Bio — Seed", 3, 2_000_000, "open", "Seed"],
    ["QuillPay — Series A", 4, 6_500_000, "open", "Series A"],
    ["Northstack — Pre-seed", 1, 750_000, "lost", "Pre-seed"],
    ["Tidal Security — Series B", 5, 20_000_000, "won", "Series B"],
  ];
  const opportunityIds = deals.map(([name, stage, value, status, roundName], i) => {
    const id = ids.id();
    const created = iso(now - (60 - i * 7) * DAY);
    const opp: Opportunity = {
      id,
      locationId,
      name,
      monetaryValue: value,
      pipelineId: pipeline.id,
      pipelineStageId: pipeline.stages[stage]!.id,
      assignedTo: userIds[i % userIds.length]!,
      status,
      source: "sandbox seed",
      lostReasonId: status === "lost" ? lostReasonIds[1]! : null,
      contactId: contactIds[i]!,
      customFields: [
        { id: closeDate.id, value: new Date(now + (30 + i * 15) * DAY).toISOString().slice(0, 10) },
        { id: round.id, value: roundName },
      ],
      followers: [],
      createdAt: created,
      updatedAt: created,
      lastStatusChangeAt: created,
      lastStageChangeAt: created,
      lastActionDate: created,
    };
    store.opportunities.set(id, opp);
    return id;
  });

  const noteId = ids.id();
  store.notes.set(noteId, {
    id: noteId,
    contactId: contactIds[1]!,
    locationId,
    body: "Intro call went well; data room access requested.",
    userId: userIds[1]!,
    title: "First meeting",
    color: "",
    pinned: false,
    dateAdded: iso(now - 20 * DAY),
  });

  const pit = `pit-${ids.uuid()}`;
  createPit(locationId, pit);

  // Records added after the first release come last, so every earlier id stays what it was.
  const externalId: CustomField = {
    id: ids.id(),
    locationId,
    name: "4Degrees Deal ID",
    fieldKey: "opportunity.4degrees_deal_id",
    dataType: "TEXT",
    model: "opportunity",
    position: 100,
    placeholder: "",
  };
  store.customFields.set(externalId.id, externalId);

  return {
    companyId,
    locationId,
    otherLocationId,
    pipelineId: pipeline.id,
    stageIds: pipeline.stages.map((s) => s.id),
    userIds,
    contactIds,
    opportunityIds,
    closeDateFieldId: closeDate.id,
    externalIdFieldId: externalId.id,
    lostReasonIds,
    pit,
  };
}
