/**
 * One HighLevel update as HighLevel wants it: the status (with its lost reason) through
 * `PUT /opportunities/{id}/status`, the other fields through `PUT /opportunities/{id}`, followers
 * through their own endpoints. The answer is the opportunity after the last call (re-read when
 * the last call answers no opportunity).
 */
import type { Opportunity, OpportunityCrm, OpportunityUpdate } from "../../highlevel/port.ts";
import type { HlExtrasPlan } from "./extras.ts";

/** Whether a merged update makes no call at all. */
export function nothingToWrite(input: { body: OpportunityUpdate; plan: HlExtrasPlan }): boolean {
  const { plan } = input;
  return (
    Object.keys(input.body).length === 0 &&
    !plan.reasonOnly &&
    plan.followersAdd.length + plan.followersRemove.length === 0
  );
}

/** Makes the calls of one merged update; `calls` counts the write calls made. */
export async function writeOpportunity(
  hl: OpportunityCrm,
  opp: Opportunity,
  input: { body: OpportunityUpdate; plan: HlExtrasPlan },
): Promise<{ answer: Opportunity; calls: number }> {
  const { status, ...rest } = input.body;
  const { plan } = input;
  let calls = 0;
  let answer: Opportunity | null = null;
  if (status !== undefined || plan.reasonOnly) {
    const next = status ?? "lost";
    await hl.updateStatus(opp.id, next, next === "lost" ? plan.lostReasonId : undefined);
    calls++;
  }
  if (Object.keys(rest).length > 0) {
    answer = await hl.updateOpportunity(opp.id, rest);
    calls++;
  }
  if (plan.followersAdd.length > 0) {
    await hl.addFollowers(opp.id, plan.followersAdd);
    answer = null;
    calls++;
  }
  if (plan.followersRemove.length > 0) {
    await hl.removeFollowers(opp.id, plan.followersRemove);
    answer = null;
    calls++;
  }
  answer ??= await hl.getOpportunity(opp.id);
  // Gone between our writes and the re-read: the next event (a delete) settles it; keep our read.
  return { answer: answer ?? opp, calls };
}
