/**
 * The live structure of an account (4Degrees pipelines + each location's HighLevel pipelines and
 * custom fields), read through the connectors: what a mapping is validated against, and what the
 * default mapping is built from.
 */
import type { Account } from "../store/accounts.ts";
import type { AccountConnectors } from "./connectors.ts";
import { defaultMapping, type LiveStructure, type MappingInput } from "../domain/mapping-config.ts";

/** Reads the live structure for the account's locations. */
export async function loadLiveStructure(
  connectors: AccountConnectors,
  locations: readonly string[],
): Promise<
  LiveStructure & { highlevelFields: Record<string, Array<{ id: string; name: string; dataType?: string | null }>> }
> {
  const fourdegrees = await connectors.fourdegrees.listPipelines();
  const highlevel: LiveStructure["highlevel"] = {};
  const highlevelFields: Record<string, Array<{ id: string; name: string; dataType?: string | null }>> = {};
  for (const loc of locations) {
    const port = connectors.highlevel(loc);
    highlevel[loc] = await port.listPipelines();
    highlevelFields[loc] = await port.listCustomFields();
  }
  return {
    fourdegrees,
    highlevel,
    highlevelFields,
    highlevelFieldIds: Object.fromEntries(Object.entries(highlevelFields).map(([k, v]) => [k, v.map((f) => f.id)])),
  };
}

const CLOSE_DATE = /close\s*date/i;
const EXTERNAL_ID = /4\s*degrees.*\bid\b/i;
const ATTACHMENTS = /document|attachment|file/i;

/**
 * The default mapping of an account's first location: pipelines and open stages paired by name,
 * the close date in a HighLevel field whose name says "close date", the 4Degrees id in one named
 * like "4Degrees Deal ID", and with `attachments` the files in a FILE_UPLOAD field named like
 * "Documents" (when the location has them).
 */
export function suggestedMapping(
  account: Account,
  live: Awaited<ReturnType<typeof loadLiveStructure>>,
  options: { attachments?: boolean } = {},
): MappingInput {
  const loc = account.locations[0] ?? "";
  const fields = live.highlevelFields[loc] ?? [];
  return defaultMapping(live, loc, {
    closeDateFieldId: fields.find((f) => CLOSE_DATE.test(f.name))?.id ?? null,
    externalIdFieldId: fields.find((f) => EXTERNAL_ID.test(f.name))?.id ?? null,
    // Attachments (opt-in: each HighLevel change then costs a read) go to a FILE_UPLOAD field named like "Documents".
    attachmentsFieldId: options.attachments
      ? (fields.find((f) => f.dataType === "FILE_UPLOAD" && ATTACHMENTS.test(f.name))?.id ?? null)
      : null,
  });
}
