/**
 * The engine's HighLevel adapter: an `OpportunityCrm` (src/highlevel/port.ts) over the HighLevel
 * client of one location, gated in the job's lane. Assembled with the 4Degrees side by
 * src/sync/connectors.ts.
 */
import type { Config } from "../config.ts";
import type { Lane } from "../gate/client.ts";
import { createHighLevelClient, HighLevelError, type HighLevelClient, type HighLevelClientOptions } from "./client.ts";
import { followersApi } from "./followers.ts";
import { HighLevelTransport } from "./http.ts";
import { ensureStageKnown, type StageCheck } from "./stages.ts";
import { ContactSchema } from "./schemas.ts";
import type { Task, TaskInput } from "./tasks.ts";
import { hasNativeForecast } from "./version.ts";
import * as z from "zod";
import type { Contact, Opportunity, OpportunityCrm } from "./port.ts";
import type { FileDownload, FileUpload } from "../domain/attachments.ts";
import { downloadFieldFile, uploadFieldFile } from "./files.ts";
import { cachedConnectionScopes } from "../store/account-config.ts";

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
  /** A contact's tasks (the automations' find-before-create) and a new one. */
  listTasks(contactId: string): Promise<Task[]>;
  createTask(contactId: string, input: TaskInput): Promise<Task>;
  addTags(contactId: string, tags: string[]): Promise<string[]>;
  removeTags(contactId: string, tags: string[]): Promise<string[]>;
  /** Streams a file to the location's custom-field storage for an opportunity (src/highlevel/files.ts); its URL. */
  uploadFieldFile(opportunityId: string, key: string, file: FileUpload): Promise<string>;
  /** Replaces the value of a FILE_UPLOAD field of an opportunity (`null` clears it). */
  setFileField(opportunityId: string, fieldId: string, value: Record<string, unknown> | null): Promise<Opportunity>;
  /** Starts the download of a file at a field value's URL. */
  downloadFile(url: string): Promise<FileDownload>;
}

/**
 * "Gone": a 404, or the 400 "Opportunity not found" HighLevel answers for a deleted opportunity
 * (as the sandbox reproduces). Both confirm a delete; any other error is not a confirmation.
 */
const notFound = (err: unknown) =>
  err instanceof HighLevelError &&
  (err.category === "not_found" ||
    (err.upstreamStatus === 400 && /not found/i.test(`${err.upstreamMessage} ${err.message}`)));

const DuplicateContact = z.object({ contact: ContactSchema.nullish().transform((v) => v ?? null) }).loose();
const CreatedContact = z.object({ contact: ContactSchema }).loose();

/**
 * `OpportunityCrm` over the HighLevel client of one location. Contact lookup/creation is not part
 * of that client yet, so it is made here through the same gated transport.
 */
export function highLevelPort(
  env: Env,
  config: Config,
  locationId: string,
  lane: Lane,
  options: HighLevelClientOptions = {},
): HighLevelAdapter {
  const client: HighLevelClient = createHighLevelClient(env, config, locationId, { ...options, lane });
  const transport = new HighLevelTransport(env, config, locationId, { ...options, lane });
  const followers = followersApi(transport, env.CACHE, client.opportunities);
  /** Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/get-duplicate-contact */
  const findContact = async ({ email, phone }: { email: string | null; phone: string | null }) => {
    for (const query of [email ? { email } : null, phone ? { number: phone } : null]) {
      if (!query) continue;
      const found = await transport.call({
        method: "GET",
        path: "/contacts/search/duplicate",
        query: { locationId, ...query },
        schema: DuplicateContact,
      });
      if (found.contact) return found.contact;
    }
    return null;
  };
  return {
    locationId,
    nativeCloseDate: hasNativeForecast(config.HIGHLEVEL_API_VERSION),
    async canWrite() {
      if (config.SYNC_MODE === "read-only") return false;
      const scopes = await cachedConnectionScopes(env.DB, locationId);
      // A PIT or agency-minted token has no recorded scopes: trust the deployment's mode.
      return !scopes || scopes.length === 0 || scopes.includes("opportunities.write");
    },
    listPipelines: () => client.pipelines.list(),
    ensureStageKnown: (pipelineId, stageId) => ensureStageKnown(client, pipelineId, stageId),
    listUsers: () => client.users.list(),
    async refreshStructure() {
      await client.users.refresh();
    },
    locationName: async () => (await client.location.get()).name,
    listCustomFields: async () =>
      (await client.customFields.list()).map((f) => ({
        id: f.id,
        name: f.name,
        dataType: f.dataType ?? null,
        options: f.picklistOptions,
      })),
    async getOpportunity(id) {
      try {
        return await client.opportunities.get(id);
      } catch (err) {
        if (notFound(err)) return null;
        throw err;
      }
    },
    async searchOpportunities(q) {
      const cursor = q.cursor
        ? z.object({ startAfter: z.string(), startAfterId: z.string() }).parse(JSON.parse(q.cursor))
        : null;
      const page = await client.opportunities.searchPage(
        {
          status: "all",
          ...(q.pipelineId ? { pipelineId: q.pipelineId } : {}),
          ...(q.contactId ? { contactId: q.contactId } : {}),
          ...(q.query ? { q: q.query } : {}),
          limit: q.limit ?? 100,
        },
        cursor,
      );
      return { items: page.opportunities, nextCursor: page.next ? JSON.stringify(page.next) : null, total: page.total };
    },
    createOpportunity: ({ locationId: _loc, ...body }) => client.opportunities.create(body),
    async updateOpportunity(id, body) {
      const { assignedTo, contactId: _contact, ...rest } = body;
      // The client's update omits `contactId` (HighLevel moves an opportunity's contact elsewhere);
      // `null` assignee → "" (unassign).
      return client.opportunities.update(id, {
        ...rest,
        ...(assignedTo === undefined ? {} : { assignedTo: assignedTo ?? "" }),
      });
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
        const found = await transport.call({
          method: "GET",
          path: "/contacts/search/duplicate",
          query: { locationId, email },
          schema: DuplicateContact,
        });
        if (found.contact) return found.contact;
      }
      // Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/create-contact
      const res = await transport.call({
        method: "POST",
        path: "/contacts/",
        body: { locationId, name, ...(email ? { email } : {}) },
        schema: CreatedContact,
      });
      return res.contact;
    },
    listTasks: (contactId) => client.tasks.list(contactId),
    createTask: (contactId, input) => client.tasks.create(contactId, input),
    addTags: (contactId, tags) => client.tasks.addTags(contactId, tags),
    removeTags: (contactId, tags) => client.tasks.removeTags(contactId, tags),
    uploadFieldFile: (opportunityId, key, file) => uploadFieldFile(transport, opportunityId, key, file),
    // Doc: https://marketplace.gohighlevel.com/docs/ghl/opportunities/update-opportunity
    setFileField: (opportunityId, fieldId, value) =>
      client.opportunities.update(opportunityId, { customFields: [{ id: fieldId, field_value: value ?? "" }] }),
    downloadFile: (url) => downloadFieldFile(url),
    findContact,
    async createContact({ name, email, phone }): Promise<Contact> {
      try {
        // Doc: https://marketplace.gohighlevel.com/docs/ghl/contacts/create-contact
        const res = await transport.call({
          method: "POST",
          path: "/contacts/",
          body: { locationId, ...(name ? { name } : {}), ...(email ? { email } : {}), ...(phone ? { phone } : {}) },
          schema: CreatedContact,
        });
        return res.contact;
      } catch (err) {
        // "This location does not allow duplicated contacts": the person exists (created since our search).
        if (err instanceof HighLevelError && err.upstreamStatus === 400 && (email || phone)) {
          const found = await findContact({ email, phone });
          if (found) return found;
        }
        throw err;
      }
    },
    updateStatus: (id, status, lostReasonId) => client.opportunities.updateStatus(id, status, lostReasonId),
    listLostReasons: (options) => followers.lostReasons(options?.fresh ?? false),
    addFollowers: (id, userIds) => followers.add(id, userIds),
    removeFollowers: (id, userIds) => followers.remove(id, userIds),
    listNotes: (contactId) => client.contacts.listNotes(contactId),
    createNote: (contactId, body, userId) =>
      client.contacts.createNote(contactId, { body, ...(userId ? { userId } : {}) }),
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
