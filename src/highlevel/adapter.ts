/**
 * Wiring of the real connectors into the engine: the 4Degrees connector (src/fourdegrees/wiring.ts)
 * and an `OpportunityCrm` adapter over the HighLevel client (src/highlevel/client.ts), both gated
 * in the job's lane. Tests hand the engine their own factory instead.
 */
import type { Config } from "../config.ts";
import { AppError } from "../lib/errors.ts";
import type { Lane } from "../gate/client.ts";
import { createHighLevelClient, HighLevelError, type HighLevelClient, type HighLevelClientOptions } from "./client.ts";
import { HighLevelTransport } from "./http.ts";
import { ensureStageKnown, type StageCheck } from "./stages.ts";
import { ContactSchema } from "./schemas.ts";
import { fourDegreesConnectorFor, gateKey } from "../fourdegrees/wiring.ts";
import { CachedStructureCrm } from "../fourdegrees/cached-crm.ts";
import { getFourDegreesAccount } from "../store/fourdegrees-accounts.ts";
import { getConnection, locationConnectionId } from "../store/connections.ts";
import type { Account } from "../store/accounts.ts";
import { z } from "zod";
import type { Contact, OpportunityCrm } from "./port.ts";
import type { Actor, DealCrm } from "../domain/port.ts";

/** The engine's HighLevel adapter of one location: the port, plus the pipelines-cache check webhooks use. */
export interface HighLevelAdapter extends OpportunityCrm {
  /**
   * Makes sure the location's pipelines cache knows a stage a webhook named (src/highlevel/stages.ts):
   * `cached` (no call), `refreshed` (HighLevel gained the stage; the cache was reloaded once) or `unknown`.
   */
  ensureStageKnown(pipelineId: string | null, stageId: string): Promise<StageCheck>;
  /**
   * Reloads the location's users into their KV cache: an opportunity named an assignee the cache
   * did not know (the engine's lookups call this at most once per job). Pipelines are kept honest
   * by `ensureStageKnown` where webhooks are handled.
   */
  refreshStructure(): Promise<void>;
}

/** The connectors of one account for one job (or batch). */
export interface AccountConnectors {
  fourdegrees: DealCrm;
  highlevel(locationId: string): HighLevelAdapter;
  ourActor: Actor | null;
}

/** Builds an account's connectors in a lane (live jobs, reconcile, backfill). */
export type ConnectorFactory = (account: Account, lane: Lane) => Promise<AccountConnectors>;

/**
 * "Gone": a 404, or the 400 "Opportunity not found" HighLevel answers for a deleted opportunity
 * (as the sandbox reproduces). Both confirm a delete; any other error is not a confirmation.
 */
const notFound = (err: unknown) =>
  err instanceof HighLevelError && (err.category === "not_found" || (err.upstreamStatus === 400 && /not found/i.test(`${err.upstreamMessage} ${err.message}`)));

const DuplicateContact = z.object({ contact: ContactSchema.nullish().transform((v) => v ?? null) }).loose();
const CreatedContact = z.object({ contact: ContactSchema }).loose();

/**
 * `OpportunityCrm` over the HighLevel client of one location. Contact lookup/creation is not part
 * of that client yet, so it is made here through the same gated transport.
 */
export function highLevelPort(env: Env, config: Config, locationId: string, lane: Lane, options: HighLevelClientOptions = {}): HighLevelAdapter {
  const client: HighLevelClient = createHighLevelClient(env, config, locationId, { ...options, lane });
  const transport = new HighLevelTransport(env, config, locationId, { ...options, lane });
  return {
    locationId,
    async canWrite() {
      if (config.SYNC_MODE === "read-only") return false;
      const connection = await getConnection(env.DB, locationConnectionId(locationId));
      // A PIT or agency-minted token has no recorded scopes: trust the deployment's mode.
      return !connection || connection.scopes.length === 0 || connection.scopes.includes("opportunities.write");
    },
    listPipelines: () => client.pipelines.list(),
    ensureStageKnown: (pipelineId, stageId) => ensureStageKnown(client, pipelineId, stageId),
    listUsers: () => client.users.list(),
    async refreshStructure() {
      await client.users.refresh();
    },
    listCustomFields: async () => (await client.customFields.list()).map((f) => ({ id: f.id, name: f.name })),
    async getOpportunity(id) {
      try {
        return await client.opportunities.get(id);
      } catch (err) {
        if (notFound(err)) return null;
        throw err;
      }
    },
    async searchOpportunities(q) {
      const cursor = q.cursor ? z.object({ startAfter: z.string(), startAfterId: z.string() }).parse(JSON.parse(q.cursor)) : null;
      const page = await client.opportunities.searchPage(
        { status: "all", ...(q.pipelineId ? { pipelineId: q.pipelineId } : {}), ...(q.contactId ? { contactId: q.contactId } : {}), ...(q.query ? { q: q.query } : {}), limit: q.limit ?? 100 },
        cursor,
      );
      return { items: page.opportunities, nextCursor: page.next ? JSON.stringify(page.next) : null, total: page.total };
    },
    createOpportunity: ({ locationId: _loc, ...body }) => client.opportunities.create(body),
    async updateOpportunity(id, body) {
      const { assignedTo, contactId: _contact, ...rest } = body;
      // The client's update omits `contactId` (HighLevel moves an opportunity's contact elsewhere);
      // `null` assignee → "" (unassign).
      return client.opportunities.update(id, { ...rest, ...(assignedTo === undefined ? {} : { assignedTo: assignedTo ?? "" }) });
    },
    async deleteOpportunity(id) {
      try {
        await client.opportunities.delete(id);
        return true;
      } catch (err) {
        if (notFound(err)) return false;
        throw err;
      }
    },
    async ensureContact({ email, name }): Promise<Contact> {
      if (email) {
        // Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/get-duplicate-contact
        const found = await transport.call({ method: "GET", path: "/contacts/search/duplicate", query: { locationId, email }, schema: DuplicateContact });
        if (found.contact) return found.contact;
      }
      // Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/create-contact
      const res = await transport.call({ method: "POST", path: "/contacts/", body: { locationId, name, ...(email ? { email } : {}) }, schema: CreatedContact });
      return res.contact;
    },
    listNotes: (contactId) => client.contacts.listNotes(contactId),
    createNote: (contactId, body) => client.contacts.createNote(contactId, { body }),
    updateNote: (contactId, noteId, body) => client.contacts.updateNote(contactId, noteId, { body }),
    async deleteNote(contactId, noteId) {
      try {
        await client.contacts.deleteNote(contactId, noteId);
        return true;
      } catch (err) {
        if (notFound(err)) return false;
        throw err;
      }
    },
  };
}

/** The production factory: real connectors for an account, in `lane`. */
export function liveConnectors(env: Env, config: Config): ConnectorFactory {
  return async (account, lane) => {
    // An account without a 4Degrees API key still syncs what needs only HighLevel (the CSV bridge
    // works with no 4Degrees API at all): its 4Degrees side answers every call with the reason.
    const fourdegrees = await fourDegreesConnectorFor(env, config, account.id, lane).then(
      ({ connector, credentials }) => new CachedStructureCrm(connector, env.CACHE, gateKey(credentials)) satisfies DealCrm,
      (err: unknown) => {
        if (err instanceof AppError && err.code === "not_found") return unavailableDealCrm(err);
        throw err;
      },
    );
    const stored = await getFourDegreesAccount(env.DB, account.id);
    const actorType = stored?.actor?.type;
    const ourActor: Actor | null =
      stored?.actor && (actorType === "user" || actorType === "integration" || actorType === "automation" || actorType === "import") ? { type: actorType, id: stored.actor.id } : null;
    const ports = new Map<string, HighLevelAdapter>();
    return {
      // Pipelines, users and fields from KV (shared per workspace), like HighLevel's structure.
      fourdegrees,
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
    parseWebhook() {
      throw reason;
    },
  };
}
