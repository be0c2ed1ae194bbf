/**
 * The 4Degrees sandbox (the ASSUMED partner contract, ../shared/reference/fourdegrees.md):
 * `createFourDegreesSandbox(ctx)` for the sandbox host, plus the types tests use.
 */
export {
  createFourDegreesSandbox,
  FourDegreesSandbox,
  apiKeyId,
  DEFAULT_API_KEY,
  DEFAULT_WEBHOOK_SECRET,
  DEFAULT_RATE_LIMIT,
  type ApiKeyRecord,
  type RequestRecord,
  type Scope,
} from "./sandbox.ts";
export { API_BASE } from "./api.ts";
export { DEMO_PASS_REASONS, DEMO_STAGES, DEMO_USERS, type DemoSummary } from "./demo.ts";
export {
  ALLOWED_CONTENT_TYPES,
  DEFAULT_ATTACHMENT_MAX_BYTES,
  DEFAULT_DOWNLOAD_URL_TTL_SECONDS,
  FILES_BASE,
} from "./attachments.ts";
export { importCsv, type ImportReport } from "./csv-import.ts";
export { signOne, standardWebhookHeaders, DEFAULT_RETRY_SCHEDULE_MS } from "./signing.ts";
export { FourDegreesError } from "./errors.ts";
export type * from "./model.ts";
