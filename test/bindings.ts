/**
 * Secrets and vars the test Worker runs with (never real credentials). The sandbox hosts are
 * routed in-process by test/worker/helpers/network.ts.
 */
export const TEST_BINDINGS = {
  HIGHLEVEL_API_BASE: "http://sandbox.test/highlevel",
  HIGHLEVEL_MARKETPLACE_BASE: "http://sandbox.test/marketplace",
  FOURDEGREES_API_BASE: "http://sandbox.test/4degrees/v1",
  PUBLIC_URL: "http://worker.test",
  SYNC_MODE: "two-way",
  LOG_LEVEL: "error",
  HIGHLEVEL_CLIENT_ID: "sandbox-client-id",
  HIGHLEVEL_CLIENT_SECRET: "sandbox-client-secret",
  // kid:base64(32 bytes) — a fixed test key.
  TOKEN_ENCRYPTION_KEY: "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
  ADMIN_TOKEN: "test-admin-token-0123456789",
  FOURDEGREES_WEBHOOK_SECRET: "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA==",
} as const;
