/** The live pipelines of both systems for an account (what the Mapping page validates against). */
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import type { LiveStructure } from "../../domain/mapping-config.ts";
import type { Account } from "../../store/accounts.ts";
import { fourDegreesConnectorFor } from "../../fourdegrees/wiring.ts";
import { highLevelPort } from "../../highlevel/adapter.ts";

/** Reads both sides' pipelines; what could not be read is named in `error`, the rest is still returned. */
export async function loadLive(
  c: Context<AppEnv>,
  account: Account,
): Promise<{ live: LiveStructure; error: string | null }> {
  const live: LiveStructure = { fourdegrees: [], highlevel: {} };
  const errors: string[] = [];
  try {
    live.fourdegrees = await (
      await fourDegreesConnectorFor(c.env, c.var.config, account.id, "live")
    ).connector.listPipelines();
  } catch (err) {
    errors.push(`4Degrees: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const loc of account.locations) {
    try {
      live.highlevel[loc] = await highLevelPort(c.env, c.var.config, loc, "live").listPipelines();
    } catch (err) {
      errors.push(`HighLevel ${loc}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { live, error: errors.length ? errors.join("; ") : null };
}
