-- A Standard Webhooks signing secret per 4Degrees workspace, so one workspace's secret cannot
-- sign another's deliveries. NULL: the workspace's deliveries are verified with the global
-- FOURDEGREES_WEBHOOK_SECRET. AES-256-GCM ciphertext (`v1.<kid>.<iv>.<data>`, src/lib/crypto.ts)
-- under additional data `fourdegrees_webhook_secret:{account_id}`.
ALTER TABLE fourdegrees_accounts ADD COLUMN webhook_secret_enc TEXT;
