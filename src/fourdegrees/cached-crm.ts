/**
 * KV cache of a 4Degrees workspace's structure — pipelines (with stages), users, each pipeline's
 * custom fields — in front of any `DealCrm`, like HighLevel's (src/store/highlevel-cache.ts).
 * Without it every record job re-read pipelines and users: two 4Degrees reads per change on top
 * of the changed deal itself.
 *
 * Keys and TTLs come from src/store/kv-keys.ts (`v1:4d:*`). KV is eventually consistent and has
 * no compare-and-set: fine for structure, which is a hint that saves calls and is reloaded when a
 * record names something the cache does not know (`refreshStructure`, called by the engine's
 * lookups on an unknown stage or owner id); never for anything that must be exact. Cached values
 * are parsed with zod on read: a malformed or old-shaped entry reads as a miss.
 */
import { z } from "zod";
import { cached, writeCache } from "../store/highlevel-cache.ts";
import { kvKeys, kvTtl } from "../store/kv-keys.ts";
import {
  FieldDefSchema,
  PipelineSchema,
  UserSchema,
  type ChangeEvent,
  type Deal,
  type DealContent,
  type DealCrm,
  type DealPatch,
  type FieldDef,
  type Identity,
  type Note,
  type Page,
  type Pipeline,
  type UpdateDealOptions,
  type User,
  type WriteOptions,
} from "../domain/port.ts";

const Pipelines = z.array(PipelineSchema);
const Users = z.array(UserSchema);
const Fields = z.array(FieldDefSchema);

/**
 * A `DealCrm` whose structure reads (`listPipelines`, `listUsers`, `listFields`) come from KV,
 * filled from the wrapped connector on a miss; every other call passes through unchanged.
 */
export class CachedStructureCrm implements DealCrm {
  readonly #inner: DealCrm;
  readonly #kv: KVNamespace;
  readonly #workspace: string;

  /** `workspace`: the key the cache is shared under (the 4Degrees gate key: workspace id or `account:{id}`). */
  constructor(inner: DealCrm, kv: KVNamespace, workspace: string) {
    this.#inner = inner;
    this.#kv = kv;
    this.#workspace = workspace;
  }

  listPipelines(): Promise<Pipeline[]> {
    return cached(this.#kv, kvKeys.fdPipelines(this.#workspace), kvTtl.fdPipelines, Pipelines, () => this.#inner.listPipelines());
  }

  listUsers(): Promise<User[]> {
    return cached(this.#kv, kvKeys.fdUsers(this.#workspace), kvTtl.fdUsers, Users, () => this.#inner.listUsers());
  }

  listFields(pipelineId: string): Promise<FieldDef[]> {
    return cached(this.#kv, kvKeys.fdFields(this.#workspace, pipelineId), kvTtl.fdFields, Fields, () => this.#inner.listFields(pipelineId));
  }

  /**
   * Reloads pipelines and users from 4Degrees and replaces the cached copies: a record named a
   * stage or user the cache did not know (added since it was filled). Two calls; callers do this
   * at most once per job.
   */
  async refreshStructure(): Promise<void> {
    const [pipelines, users] = await Promise.all([this.#inner.listPipelines(), this.#inner.listUsers()]);
    await Promise.all([writeCache(this.#kv, kvKeys.fdPipelines(this.#workspace), pipelines, kvTtl.fdPipelines), writeCache(this.#kv, kvKeys.fdUsers(this.#workspace), users, kvTtl.fdUsers)]);
  }

  whoAmI(): Promise<Identity> {
    return this.#inner.whoAmI();
  }
  pageDeals(query: { updatedSince?: string; pipelineId?: string; cursor?: string | null; limit?: number }): Promise<Page<Deal>> {
    return this.#inner.pageDeals(query);
  }
  getDeal(id: string): Promise<Deal | null> {
    return this.#inner.getDeal(id);
  }
  createDeal(content: DealContent, options?: WriteOptions): Promise<Deal> {
    return this.#inner.createDeal(content, options);
  }
  updateDeal(id: string, patch: DealPatch, options?: UpdateDealOptions): Promise<Deal> {
    return this.#inner.updateDeal(id, patch, options);
  }
  archiveDeal(id: string, options?: WriteOptions): Promise<boolean> {
    return this.#inner.archiveDeal(id, options);
  }
  listNotes(dealId: string): Promise<Note[]> {
    return this.#inner.listNotes(dealId);
  }
  createNote(dealId: string, body: string, options?: WriteOptions): Promise<Note> {
    return this.#inner.createNote(dealId, body, options);
  }
  updateNote(noteId: string, body: string, options?: WriteOptions): Promise<Note> {
    return this.#inner.updateNote(noteId, body, options);
  }
  deleteNote(noteId: string, options?: WriteOptions): Promise<boolean> {
    return this.#inner.deleteNote(noteId, options);
  }
  parseWebhook(body: unknown): ChangeEvent {
    return this.#inner.parseWebhook(body);
  }
}
