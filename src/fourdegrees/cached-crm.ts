/**
 * A `DealCrm` with a KV cache of the workspace's structure — pipelines (with stages), users, each
 * pipeline's custom fields — in front, like HighLevel's (src/store/highlevel-cache.ts): without it
 * every record job would re-read pipelines and users. The KV entries themselves (keys, TTLs, the
 * shapes read back) are src/store/fourdegrees-cache.ts. Structure is a hint that saves calls and is
 * reloaded when a record names something the cache does not know (`refreshStructure`); never
 * anything that must be exact.
 */
import { cachedFields, cachedPipelines, cachedUsers, replaceStructure } from "../store/fourdegrees-cache.ts";
import type {
  ChangeEvent,
  CrmContact,
  CrmContactInput,
  Deal,
  DealContent,
  DealCrm,
  DealPatch,
  FieldDef,
  Identity,
  Note,
  NoteCreateOptions,
  Page,
  Pipeline,
  Reminder,
  ReminderInput,
  Reason,
  UpdateDealOptions,
  User,
  WriteOptions,
} from "../domain/port.ts";

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
    return cachedPipelines(this.#kv, this.#workspace, () => this.#inner.listPipelines());
  }

  listUsers(): Promise<User[]> {
    return cachedUsers(this.#kv, this.#workspace, () => this.#inner.listUsers());
  }

  listFields(pipelineId: string): Promise<FieldDef[]> {
    return cachedFields(this.#kv, this.#workspace, pipelineId, () => this.#inner.listFields(pipelineId));
  }

  /**
   * Reloads pipelines and users from 4Degrees and replaces the cached copies: a record named a
   * stage or user the cache did not know (added since it was filled). Two calls; callers do this
   * at most once per job.
   */
  async refreshStructure(): Promise<void> {
    const [pipelines, users] = await Promise.all([this.#inner.listPipelines(), this.#inner.listUsers()]);
    await replaceStructure(this.#kv, this.#workspace, pipelines, users);
  }

  whoAmI(): Promise<Identity> {
    return this.#inner.whoAmI();
  }
  pageDeals(query: {
    updatedSince?: string;
    pipelineId?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<Page<Deal>> {
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
  createNote(dealId: string, body: string, options?: NoteCreateOptions): Promise<Note> {
    return this.#inner.createNote(dealId, body, options);
  }
  listLostReasons(): Promise<Reason[]> {
    return this.#inner.listLostReasons();
  }
  getContact(id: string): Promise<CrmContact | null> {
    return this.#inner.getContact(id);
  }
  findContact(query: { email: string | null; phone: string | null }): Promise<CrmContact | null> {
    return this.#inner.findContact(query);
  }
  createContact(input: CrmContactInput, options?: WriteOptions): Promise<CrmContact> {
    return this.#inner.createContact(input, options);
  }
  updateNote(noteId: string, body: string, options?: WriteOptions): Promise<Note> {
    return this.#inner.updateNote(noteId, body, options);
  }
  deleteNote(noteId: string, options?: WriteOptions): Promise<boolean> {
    return this.#inner.deleteNote(noteId, options);
  }

  createReminder(dealId: string, input: ReminderInput, options?: WriteOptions): Promise<Reminder> {
    return this.#inner.createReminder(dealId, input, options);
  }
  parseWebhook(body: unknown): ChangeEvent {
    return this.#inner.parseWebhook(body);
  }
}
