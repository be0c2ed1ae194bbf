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
  // The sync path's configuration cache stays off: tests edit D1 directly between steps.
  CONFIG_CACHE_SECONDS: "0",
  HIGHLEVEL_CLIENT_ID: "sandbox-client-id",
  HIGHLEVEL_CLIENT_SECRET: "sandbox-client-secret",
  // The sandbox's app id for this client id (sandbox/highlevel/index.ts, sandboxAppId).
  HIGHLEVEL_APP_ID: "6650f1e2a3b4c5d6e7f80912",
  // kid:base64(32 bytes) — a fixed test key.
  TOKEN_ENCRYPTION_KEY: "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
  ADMIN_TOKEN: "test-admin-token-0123456789",
  FOURDEGREES_WEBHOOK_SECRET: "whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0xMjM0NTY3OA==",
  // The sandbox signing keys (sandbox/keys), as .dev.vars gives them: PEM with \n escapes.
  HIGHLEVEL_WEBHOOK_PUBLIC_KEY:
    "-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAUS1WyjeFCJE8D/6gMllmTCU393CQrxPqDytyTtMQn/o=\\n-----END PUBLIC KEY-----",
  HIGHLEVEL_WEBHOOK_RSA_PUBLIC_KEY:
    "-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAquHKNNcDeixWlyFZ4LWp\\nb4PB12dRvc3LUEaJDP0aWfo7fLWE61xasvfeX9jyHnZ1fiPIbHd9mdOFtvKm3ggJ\\nSzj7lpIxmB0q9CQ36MklNY9kucXKAI4/naaiYQlQZN/5dB6U57GVtAAswZJHvOSD\\nZoQQC7qFGPe8Oi8yqWIXDON6hnB250iSA6oYbA/az7SUNirzai4WCSiE3nt3wL2K\\n7jEfyzmwoxu2L3cv6I7rxexGlTcTuj8X11EMukRXQyluB7GySk1916WbvNbF10OS\\nr/YC3tsJODNFO/ZyMpyP0y29zLJ8POeUjIQL4BEync5mGnaAsay9ovtudH2Wt91m\\nAQIDAQAB\\n-----END PUBLIC KEY-----",
  FOURDEGREES_API_KEY: "4d_sandbox_key_demo",
  // The sandbox's default Shared Secret for Custom Page user contexts (sandbox/highlevel/sso.ts).
  HIGHLEVEL_SSO_KEY: "sandbox-sso-key",
} as const;
