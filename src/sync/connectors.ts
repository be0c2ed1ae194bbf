/**
 * Wiring of the real connectors into the engine: the 4Degrees connector (src/fourdegrees/wiring.ts,
 * behind its structure cache) and the HighLevel adapter (src/highlevel/adapter.ts), both gated in
 * the job's lane. Tests hand the engine their own factory instead.
 */
import type { Config } from "../config.ts";
import type { DealAttachments } from "../domain/attachments.ts";
import type { Actor, DealCrm } from "../domain/port.ts";
import { CachedStructureCrm } from "../fourdegrees/cached-crm.ts";
import { fourDegreesConnectorFor, gateKey } from "../fourdegrees/wiring.ts";
import type { Lane } from "../gate/client.ts";
import { highLevelPort, type HighLevelAdapter } from "../highlevel/adapter.ts";
import { AppError } from "../lib/errors.ts";
import type { Account } from "../store/accounts.ts";
import type { FourDegreesCredentials } from "../store/fourdegrees-accounts.ts";

/** The connectors of one account for one job (or batch). */
export interface AccountConnectors {
  fourdegrees: DealCrm;
  /** The 4Degrees deal attachments (null without a 4Degrees API key). */
  fourdegreesAttachments?: DealAttachments | null;
  highlevel: (locationId: string) => HighLevelAdapter;
  ourActor: Actor | null;
}

/** Builds an account's connectors in a lane (live jobs, reconcile, backfill). */
export type ConnectorFactory = (account: Account, lane: Lane) => Promise<AccountConnectors>;

/** The production factory: real connectors for an account, in `lane`. */
export function liveConnectors(env: Env, config: Config): ConnectorFactory {
  return async (account, lane) => {
    // An account without a 4Degrees API key still syncs what needs only HighLevel (the CSV bridge
    // works with no 4Degrees API at all): its 4Degrees side answers every call with the reason.
    let fourdegreesAttachments: DealAttachments | null = null;
    // The key row read for the credentials also names our actor (no second read of it).
    let stored: FourDegreesCredentials | null = null;
    const fourdegrees = await fourDegreesConnectorFor(env, config, account.id, lane).then(
      ({ connector, credentials }) => {
        fourdegreesAttachments = connector;
        stored = credentials;
        return new CachedStructureCrm(connector, env.CACHE, gateKey(credentials)) satisfies DealCrm;
      },
      (err: unknown) => {
        if (err instanceof AppError && err.code === "not_found") return unavailableDealCrm(err);
        throw err;
      },
    );
    const actor = (stored as FourDegreesCredentials | null)?.actor ?? null;
    const actorType = actor?.type;
    const ourActor: Actor | null =
      actor &&
      (actorType === "user" || actorType === "integration" || actorType === "automation" || actorType === "import")
        ? { type: actorType, id: actor.id }
        : null;
    const ports = new Map<string, HighLevelAdapter>();
    return {
      // Pipelines, users and fields from KV (shared per workspace), like HighLevel's structure.
      fourdegrees,
      fourdegreesAttachments,
      ourActor,
      highlevel(locationId) {
        let port = ports.get(locationId);
        if (!port) {
          port = highLevelPort(env, config, locationId, lane);
          ports.set(locationId, port);
        }
        return port;
      },
    };
  };
}

/**
 * The 4Degrees side of an account that has no API key: every call fails with `reason` (a
 * permanent `not_found` naming how to add a key), so record jobs fail clearly while jobs that
 * need only HighLevel — CSV import rows — run.
 */
export function unavailableDealCrm(reason: AppError): DealCrm {
  const fail = () => Promise.reject(reason);
  return {
    whoAmI: fail,
    listPipelines: fail,
    listUsers: fail,
    listFields: fail,
    pageDeals: fail,
    getDeal: fail,
    createDeal: fail,
    updateDeal: fail,
    archiveDeal: fail,
    listNotes: fail,
    createNote: fail,
    updateNote: fail,
    deleteNote: fail,
    createReminder: fail,
    listLostReasons: fail,
    getContact: fail,
    findContact: fail,
    createContact: fail,
    parseWebhook() {
      throw reason;
    },
  };
}
