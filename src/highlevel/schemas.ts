/**
 * Raw HighLevel shapes, parsed with zod at the boundary. They are deliberately tolerant: documented
 * fields are sometimes missing, custom fields come as `fieldValue` (spec) or `fieldValueString`
 * (observed in search results), unknown fields pass through (`loose`). These are provider shapes;
 * the sync engine translates them into its own `Deal` type.
 */
import * as z from "zod";

const optString = z
  .string()
  .nullish()
  .transform((v) => v ?? null);
const optNumber = z
  .number()
  .nullish()
  .transform((v) => v ?? null);

/** POST /oauth/token answer (both grants). */
export const TokenResponseSchema = z
  .object({
    access_token: z.string().min(1),
    token_type: z.string().optional(),
    expires_in: z.number().positive(),
    refresh_token: z.string().min(1),
    scope: z.string().optional().default(""),
    userType: z.enum(["Location", "Company"]),
    locationId: optString,
    companyId: optString,
    userId: optString,
    approvedLocations: z.array(z.string()).optional(),
    isBulkInstallation: z.boolean().optional(),
  })
  .loose();
export type TokenResponse = z.output<typeof TokenResponseSchema>;

/** POST /oauth/locationToken answer (no refresh token: re-mint from the agency token). */
export const LocationTokenResponseSchema = z
  .object({
    access_token: z.string().min(1),
    expires_in: z.number().positive(),
    scope: z.string().optional().default(""),
    locationId: optString,
    userId: optString,
    appId: optString,
  })
  .loose();
export type LocationTokenResponse = z.output<typeof LocationTokenResponseSchema>;

/** A custom field value: `fieldValue` (spec) or `fieldValueString` & co. (observed); normalised to `value`. */
export const CustomFieldValueSchema = z
  .object({
    id: z.string(),
    type: z.string().optional(),
    fieldValue: z.unknown().optional(),
    fieldValueString: z.string().optional(),
    fieldValueNumber: z.number().optional(),
    fieldValueArray: z.array(z.unknown()).optional(),
    fieldValueDate: z.union([z.string(), z.number()]).optional(),
  })
  .loose()
  .transform((f) => ({
    id: f.id,
    type: f.type ?? null,
    value: f.fieldValue ?? f.fieldValueString ?? f.fieldValueNumber ?? f.fieldValueArray ?? f.fieldValueDate ?? null,
  }));
export type CustomFieldValue = z.output<typeof CustomFieldValueSchema>;

/** The fields both versions return for an opportunity (search, get, create, update). */
const OpportunityFields = z
  .object({
    id: z.string(),
    name: optString,
    monetaryValue: optNumber,
    pipelineId: optString,
    pipelineStageId: optString,
    assignedTo: optString,
    status: z
      .string()
      .nullish()
      .transform((v) => v ?? "open"),
    source: optString,
    lastStatusChangeAt: optString,
    lastStageChangeAt: optString,
    createdAt: optString,
    updatedAt: optString,
    contactId: optString,
    locationId: optString,
    lostReasonId: optString,
    contact: z
      .object({
        id: z.string().optional(),
        name: optString,
        companyName: optString,
        email: optString,
        phone: optString,
        tags: z.array(z.string()).optional(),
      })
      .loose()
      .nullish()
      .transform((v) => v ?? null),
    customFields: z
      .array(CustomFieldValueSchema)
      .nullish()
      .transform((v) => v ?? []),
    followers: z
      .array(z.string())
      .nullish()
      .transform((v) => v ?? []),
  })
  .loose();

/**
 * An opportunity under `2021-07-28`, in the port shape: that version has no forecast, so
 * `forecastExpectedCloseDate` and `forecastProbability` are null whatever the answer holds.
 */
export const OpportunitySchema = OpportunityFields.transform((o) => ({
  ...o,
  forecastExpectedCloseDate: null as string | null,
  forecastProbability: null as number | null,
}));
export type Opportunity = z.output<typeof OpportunitySchema>;

/**
 * An opportunity under v3 (`SearchOpportunitiesResponseSchema`), in the same port shape: the
 * native forecast close date (`YYYY-MM-DD`) and win probability (0–100); custom fields arrive as
 * `{id, fieldValue}`, which `CustomFieldValueSchema` reads already.
 */
export const OpportunityV3Schema = OpportunityFields.extend({
  forecastExpectedCloseDate: optString,
  forecastProbability: optNumber,
}).transform((o): Opportunity => ({
  ...o,
  forecastExpectedCloseDate: o.forecastExpectedCloseDate === "" ? null : o.forecastExpectedCloseDate,
  forecastProbability: o.forecastProbability,
}));

/** GET /opportunities/search `meta`. */
export const SearchMetaSchema = z
  .object({
    total: z.number().nullish(),
    nextPageUrl: z.string().nullish(),
    startAfterId: z.string().nullish(),
    startAfter: z.union([z.number(), z.string()]).nullish(),
    currentPage: z.number().nullish(),
    nextPage: z.number().nullish(),
    prevPage: z.number().nullish(),
  })
  .loose();

/** The answers that carry opportunities, per API version (both parse into the same port shape). */
function opportunityAnswers<S extends typeof OpportunitySchema | typeof OpportunityV3Schema>(opportunity: S) {
  return {
    search: z.object({ opportunities: z.array(opportunity), meta: SearchMetaSchema.nullish() }).loose(),
    envelope: z.object({ opportunity }).loose(),
    upsert: z.object({ opportunity, new: z.boolean().optional() }).loose(),
  };
}
export const OpportunityAnswers = {
  "2021-07-28": opportunityAnswers(OpportunitySchema),
  v3: opportunityAnswers(OpportunityV3Schema),
} as const;

export const SearchResponseSchema = OpportunityAnswers["2021-07-28"].search;
export const OpportunityEnvelopeSchema = OpportunityAnswers["2021-07-28"].envelope;
export const UpsertResponseSchema = OpportunityAnswers["2021-07-28"].upsert;
/** `{succeded: true}` (sic) — also accept the correct spelling, and v3's `success`. */
export const SucceededSchema = z
  .object({ succeded: z.boolean().optional(), succeeded: z.boolean().optional(), success: z.boolean().optional() })
  .loose();

export const StageSchema = z
  .object({
    id: z.string(),
    name: z
      .string()
      .nullish()
      .transform((v) => v ?? ""),
    position: z
      .number()
      .nullish()
      .transform((v) => v ?? 0),
  })
  .loose();
export const PipelineSchema = z
  .object({
    id: z.string(),
    name: z
      .string()
      .nullish()
      .transform((v) => v ?? ""),
    stages: z
      .array(StageSchema)
      .nullish()
      .transform((v) => v ?? []),
    locationId: optString,
  })
  .loose();
export type Pipeline = z.output<typeof PipelineSchema>;
export const PipelinesResponseSchema = z.object({ pipelines: z.array(PipelineSchema) }).loose();

export const LostReasonSchema = z
  .object({
    id: z.string(),
    name: z
      .string()
      .nullish()
      .transform((v) => v ?? ""),
  })
  .loose();
export const LostReasonsResponseSchema = z
  .object({
    lostReasons: z
      .array(LostReasonSchema)
      .nullish()
      .transform((v) => v ?? []),
  })
  .loose();

/** A contact note. */
export const NoteSchema = z
  .object({
    id: z.string(),
    body: z
      .string()
      .nullish()
      .transform((v) => v ?? ""),
    userId: optString,
    dateAdded: optString,
    contactId: optString,
    title: optString,
  })
  .loose();
export type Note = z.output<typeof NoteSchema>;
export const NotesResponseSchema = z
  .object({
    notes: z
      .array(NoteSchema)
      .nullish()
      .transform((v) => v ?? []),
  })
  .loose();
export const NoteEnvelopeSchema = z.object({ note: NoteSchema }).loose();

/** A contact (only the fields the sync needs; the rest passes through). */
export const ContactSchema = z
  .object({
    id: z.string(),
    name: optString,
    firstName: optString,
    lastName: optString,
    companyName: optString,
    email: optString,
    phone: optString,
    locationId: optString,
    tags: z
      .array(z.string())
      .nullish()
      .transform((v) => v ?? []),
  })
  .loose();
export type Contact = z.output<typeof ContactSchema>;
export const ContactEnvelopeSchema = z.object({ contact: ContactSchema }).loose();

/** A location user (assignee). */
export const UserSchema = z
  .object({
    id: z.string(),
    name: optString,
    firstName: optString,
    lastName: optString,
    email: optString,
    deleted: z.boolean().optional(),
  })
  .loose();
export type User = z.output<typeof UserSchema>;
export const UsersResponseSchema = z.object({ users: z.array(UserSchema) }).loose();

/** A custom field definition. */
export const CustomFieldDefinitionSchema = z
  .object({
    id: z.string(),
    name: z
      .string()
      .nullish()
      .transform((v) => v ?? ""),
    fieldKey: optString,
    dataType: optString,
    model: optString,
    picklistOptions: z
      .array(z.string())
      .nullish()
      .transform((v) => v ?? []),
  })
  .loose();
export type CustomFieldDefinition = z.output<typeof CustomFieldDefinitionSchema>;
export const CustomFieldsResponseSchema = z.object({ customFields: z.array(CustomFieldDefinitionSchema) }).loose();
