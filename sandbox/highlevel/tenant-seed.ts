/**
 * Tenant locations for many-account runs (`POST /_sandbox/tenants`, sandbox/tenants.ts): sub-accounts
 * of one agency "Bench Tenants Agency", each with one user, the demo's six-stage "Deal Flow"
 * pipeline, the "4Degrees Deal ID" field the Worker's default mapping keeps a deal's id in, two lost
 * reasons and a Private Integration Token — what a location needs to be connected and synced, and
 * nothing more (no contacts or opportunities: the run makes its own). Ids come from a stream seeded
 * by the tenant's number, so tenant 7 has the same ids on every run and never collides with the demo.
 */
import type { Clock } from "../core/clock.ts";
import { IdSource } from "./store.ts";
import type { HighLevelStore, Pipeline } from "./store.ts";

/** The seed of tenant n's id stream is this plus n (far from the demo's 20,210,728). */
export const TENANT_ID_SEED = 7_300_000;
/** The stage names of every tenant's pipeline (the demo's, so default mappings match by name). */
export const TENANT_STAGES = ["Sourced", "First Meeting", "Due Diligence", "Partner Review", "Term Sheet", "Closed"];

/** What seeding one tenant location made. */
export interface TenantLocation {
  companyId: string;
  locationId: string;
  userId: string;
  pipelineId: string;
  stageIds: string[];
  externalIdFieldId: string;
  lostReasonIds: string[];
  pit: string;
}

/** Seeds tenant `n` (≥ 1) into `store`, or answers what an earlier call made; `createPit` registers its token. */
export function seedTenantLocation(
  store: HighLevelStore,
  clock: Clock,
  n: number,
  createPit: (locationId: string, token: string) => void,
): TenantLocation {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`tenant number must be a positive integer, not ${n}`);
  const company = new IdSource(TENANT_ID_SEED);
  const companyId = company.id();
  if (!store.companies.has(companyId)) store.companies.set(companyId, { id: companyId, name: "Bench Tenants Agency" });
  const ids = new IdSource(TENANT_ID_SEED + n);
  const locationId = ids.id();
  const userId = ids.id();
  const pipelineId = ids.id();
  const stageIds = TENANT_STAGES.map(() => ids.uuid());
  const externalIdFieldId = ids.id();
  const lostReasonIds = [ids.id(), ids.id()];
  const pit = `pit-${ids.uuid()}`;
  const made = { companyId, locationId, userId, pipelineId, stageIds, externalIdFieldId, lostReasonIds, pit };
  if (store.locations.has(locationId)) return made;

  const label = String(n).padStart(4, "0");
  store.locations.set(locationId, {
    id: locationId,
    companyId,
    name: `Tenant ${label}`,
    address: `${n} Bench Way, Austin, TX 78701, USA`,
    timezone: "America/Chicago",
    active: true,
  });
  store.users.set(userId, {
    id: userId,
    companyId,
    firstName: "Tenant",
    lastName: label,
    email: `owner@tenant-${label}.example`,
    phone: `+1512555${label}`,
    role: "admin",
    locationIds: [locationId],
  });
  const pipeline: Pipeline = {
    id: pipelineId,
    locationId,
    name: "Deal Flow",
    stages: TENANT_STAGES.map((name, position) => ({
      id: stageIds[position]!,
      name,
      position,
      showInFunnel: true,
      showInPieChart: position < 5,
    })),
    showInFunnel: true,
    showInPieChart: true,
  };
  store.pipelines.set(pipelineId, pipeline);
  store.customFields.set(externalIdFieldId, {
    id: externalIdFieldId,
    locationId,
    name: "4Degrees Deal ID",
    fieldKey: "opportunity.4degrees_deal_id",
    dataType: "TEXT",
    model: "opportunity",
    position: 100,
    placeholder: "",
  });
  const at = new Date(clock.now()).toISOString();
  ["Passed: team", "Lost to another investor"].forEach((name, i) =>
    store.lostReasons.set(lostReasonIds[i]!, {
      id: lostReasonIds[i]!,
      locationId,
      name,
      deleted: false,
      createdAt: at,
      updatedAt: at,
    }),
  );
  createPit(locationId, pit);
  return made;
}
