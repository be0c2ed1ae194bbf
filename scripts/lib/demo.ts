/**
 * Connects the demo account after `npm start` has both processes up, so a newcomer sees deals
 * sync in the first minute:
 *   1. both sandboxes' webhooks point at the Worker,
 *   2. the HighLevel demo location (and its Private Integration Token) comes from the sandbox seed,
 *   3. `POST /api/bootstrap` stores the HighLevel connection and the 4Degrees key, creates account
 *      `demo` with the default mapping (stages matched by name) and starts a backfill.
 * Every step is idempotent, so restarting `npm start` on the same local state is safe.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { readDotVars } from "../../sandbox/server.ts";
import { ROOT } from "./processes.ts";

export interface DemoConnection {
  accountId: string;
  locationId: string;
  summary: string;
}

async function call(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${new URL(url).pathname} → ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const HighLevelSeed = z.object({ demo: z.object({ locationId: z.string().min(1), pit: z.string().min(1) }) });
const BootstrapAnswer = z.object({
  created: z.boolean(),
  account: z.object({ id: z.string() }),
  backfill: z.object({ status: z.string().optional() }).passthrough().nullable(),
});

/** The admin token `wrangler dev` runs with (.dev.vars, created from .dev.vars.example). */
export function localAdminToken(): string {
  const path = resolve(ROOT, existsSync(resolve(ROOT, ".dev.vars")) ? ".dev.vars" : ".dev.vars.example");
  const token = readDotVars(path)["ADMIN_TOKEN"];
  if (!token) throw new Error(`ADMIN_TOKEN is not set in ${path}`);
  return token;
}

/** Subscribes the Worker's webhook URLs in both sandboxes and bootstraps account `demo`. */
export async function connectDemo(options: {
  sandboxUrl: string;
  workerUrl: string;
  backfill?: boolean;
}): Promise<DemoConnection> {
  const { sandboxUrl, workerUrl } = options;
  await call("POST", `${sandboxUrl}/_sandbox/highlevel/webhooks/subscribers`, {
    url: `${workerUrl}/webhooks/highlevel`,
  });
  await call("POST", `${sandboxUrl}/_sandbox/4degrees/webhooks/subscribers`, { url: `${workerUrl}/webhooks/4degrees` });

  const seed = HighLevelSeed.parse(await call("POST", `${sandboxUrl}/_sandbox/highlevel/seed`));
  const token = localAdminToken();
  const answer = BootstrapAnswer.parse(
    await call(
      "POST",
      `${workerUrl}/api/bootstrap`,
      {
        accountId: "demo",
        name: "Demo (sandboxes)",
        highlevel: { locationId: seed.demo.locationId, privateIntegrationToken: seed.demo.pit },
        fourdegrees: {},
        backfill: options.backfill ?? true,
        attachments: true,
      },
      { authorization: `Bearer ${token}` },
    ),
  );
  return {
    accountId: answer.account.id,
    locationId: seed.demo.locationId,
    summary: [
      `Demo account "${answer.account.id}" ${answer.created ? "connected" : "already connected"}: HighLevel location ${seed.demo.locationId} ↔ the 4Degrees sandbox workspace;`,
      `a backfill ${answer.backfill ? "is linking and creating the demo deals on both sides" : "was not started"}.`,
      `Webhooks: HighLevel sandbox → ${workerUrl}/webhooks/highlevel · 4Degrees sandbox → ${workerUrl}/webhooks/4degrees`,
      `Try it: npm run demo -- list   ·   npm run demo -- stage "<deal name>" "Term Sheet"   (README: "Your first sync")`,
    ].join("\n"),
  };
}
