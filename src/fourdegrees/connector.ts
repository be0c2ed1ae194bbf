/**
 * The 4Degrees connector: implements the engine's `DealCrm` port (src/domain/port.ts) on top of the
 * raw client, translating every answer. Version conflicts (409 on `If-Match`) are handled here:
 * re-read the deal, ask the caller's resolver (default: re-apply the same patch), try again.
 */
import { AppError } from "../lib/errors.ts";
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
import type { Attachment, DealAttachments, FileDownload, FileUpload } from "../domain/attachments.ts";
import type { FourDegreesClient } from "./client.ts";
import { FourDegreesError } from "./errors.ts";
import {
  actorFromRaw,
  attachmentFromRaw,
  changeEventFromRaw,
  contactFromRaw,
  dealCreateToRaw,
  dealFromRaw,
  dealPatchToRaw,
  fieldFromRaw,
  noteFromRaw,
  pipelineFromRaw,
  userFromRaw,
} from "./translate.ts";

/** How many times an update re-reads and re-applies after a 409 before giving up. */
export const MAX_CONFLICT_RETRIES = 3;

/**
 * The connector's webhook parsing, which needs no account or key: the webhook triage turns a raw
 * body into a `ChangeEvent` through it before it knows whose connector to build.
 */
export const fourDegreesWebhooks: Pick<DealCrm, "parseWebhook"> = {
  parseWebhook: (body) => changeEventFromRaw(body),
};

/** How many pages of 100 contacts a phone match reads before giving up (the contract has no phone filter). */
export const MAX_PHONE_SCAN_PAGES = 20;

/** A phone's digits (the leading `+` kept), or null for none. */
export function phoneDigits(phone: string | null): string | null {
  const d = (phone ?? "").replace(/[^\d+]/g, "");
  return d.replace(/\D/g, "").length >= 5 ? d : null;
}

/** `DealCrm` for one 4Degrees workspace. */
export class FourDegreesConnector implements DealCrm, DealAttachments {
  readonly #client: FourDegreesClient;

  constructor(client: FourDegreesClient) {
    this.#client = client;
  }

  async whoAmI(): Promise<Identity> {
    const me = await this.#client.me();
    const actor = actorFromRaw(me.actor);
    if (!actor) throw new AppError("internal", "4Degrees /me did not name an actor");
    return { scopeId: me.workspace.id, actor };
  }

  async listPipelines(): Promise<Pipeline[]> {
    return (await this.#client.listPipelines()).map(pipelineFromRaw);
  }

  async listUsers(): Promise<User[]> {
    return (await this.#client.listUsers()).map(userFromRaw);
  }

  async listFields(pipelineId: string): Promise<FieldDef[]> {
    return (await this.#client.listFields(pipelineId)).map(fieldFromRaw);
  }

  async pageDeals(query: {
    updatedSince?: string;
    pipelineId?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<Page<Deal>> {
    const page = await this.#client.listDeals(query);
    return { items: page.data.map(dealFromRaw), nextCursor: page.next_cursor };
  }

  async getDeal(id: string): Promise<Deal | null> {
    const raw = await this.#client.getDeal(id);
    return raw ? dealFromRaw(raw) : null;
  }

  async createDeal(content: DealContent, options: WriteOptions = {}): Promise<Deal> {
    return dealFromRaw(
      await this.#client.createDeal(
        dealCreateToRaw(content),
        options.idempotencyKey ?? this.#client.newIdempotencyKey(),
      ),
    );
  }

  /**
   * PATCH with `If-Match`. On 409 the deal is re-read and `onConflict(current, patch)` decides what
   * to re-apply (default: the same patch); each attempt has its own idempotency key, derived from
   * the caller's, because 4Degrees replays a reused key's first answer — the 409 itself.
   */
  async updateDeal(id: string, patch: DealPatch, options: UpdateDealOptions = {}): Promise<Deal> {
    const baseKey = options.idempotencyKey ?? this.#client.newIdempotencyKey();
    const resolve = options.onConflict ?? ((_current: Deal, p: DealPatch) => p);
    let version = options.expectedVersion;
    let current: Deal | null = null;
    if (version === undefined) {
      current = await this.#mustGet(id);
      version = current.version ?? "0";
    }
    let todo: DealPatch = patch;
    for (let attempt = 0; ; attempt++) {
      try {
        const key = attempt === 0 ? baseKey : `${baseKey}:retry-${attempt}`;
        return dealFromRaw(await this.#client.updateDeal(id, dealPatchToRaw(todo), Number(version), key));
      } catch (err) {
        if (!(err instanceof FourDegreesError && err.isVersionConflict) || attempt >= MAX_CONFLICT_RETRIES) throw err;
        current = await this.#mustGet(id);
        const next = resolve(current, todo);
        if (next === null) return current;
        todo = next;
        version = current.version ?? "0";
      }
    }
  }

  async archiveDeal(id: string, options: WriteOptions = {}): Promise<boolean> {
    return this.#client.archiveDeal(id, options.idempotencyKey ?? this.#client.newIdempotencyKey());
  }

  async listNotes(dealId: string): Promise<Note[]> {
    return (await this.#client.listNotes(dealId)).map(noteFromRaw);
  }

  async createNote(dealId: string, body: string, options: NoteCreateOptions = {}): Promise<Note> {
    const history = {
      ...(options.authorId ? { author_id: options.authorId } : {}),
      ...(options.createdAt ? { created_at: options.createdAt } : {}),
    };
    return noteFromRaw(
      await this.#client.createNote(dealId, body, options.idempotencyKey ?? this.#client.newIdempotencyKey(), history),
    );
  }

  async listLostReasons(): Promise<Reason[]> {
    return (await this.#client.listPassReasons()).map((r) => ({ id: r.id, name: r.name }));
  }

  async getContact(id: string): Promise<CrmContact | null> {
    const raw = await this.#client.getContact(id);
    return raw ? contactFromRaw(raw) : null;
  }

  /**
   * By email through the contract's exact filter; by phone (which the contract cannot filter on)
   * by scanning at most `MAX_PHONE_SCAN_PAGES` pages of the contact list, comparing digits.
   */
  async findContact(query: { email: string | null; phone: string | null }): Promise<CrmContact | null> {
    if (query.email) {
      const page = await this.#client.pageContacts({ email: query.email, limit: 1 });
      if (page.data[0]) return contactFromRaw(page.data[0]);
    }
    const digits = phoneDigits(query.phone);
    if (!digits) return null;
    let cursor: string | undefined;
    for (let pages = 0; pages < MAX_PHONE_SCAN_PAGES; pages++) {
      const page = await this.#client.pageContacts({ limit: 100, ...(cursor ? { cursor } : {}) });
      const hit = page.data.find((c) => phoneDigits(c.phone ?? null) === digits);
      if (hit) return contactFromRaw(hit);
      if (!page.next_cursor) return null;
      cursor = page.next_cursor;
    }
    return null;
  }

  async createContact(input: CrmContactInput, options: WriteOptions = {}): Promise<CrmContact> {
    const body = {
      ...(input.name ? { name: input.name } : {}),
      ...(input.email ? { email: input.email } : {}),
      ...(input.phone ? { phone: input.phone } : {}),
    };
    try {
      return contactFromRaw(
        await this.#client.createContact(body, options.idempotencyKey ?? this.#client.newIdempotencyKey()),
      );
    } catch (err) {
      // Someone created the same person since our search: that contact is the match.
      if (err instanceof FourDegreesError && err.upstreamStatus === 409 && input.email) {
        const found = await this.findContact({ email: input.email, phone: null });
        if (found) return found;
      }
      throw err;
    }
  }

  async updateNote(noteId: string, body: string, options: WriteOptions = {}): Promise<Note> {
    return noteFromRaw(
      await this.#client.updateNote(noteId, body, options.idempotencyKey ?? this.#client.newIdempotencyKey()),
    );
  }

  async deleteNote(noteId: string, options: WriteOptions = {}): Promise<boolean> {
    return this.#client.deleteNote(noteId, options.idempotencyKey ?? this.#client.newIdempotencyKey());
  }

  async createReminder(dealId: string, input: ReminderInput, options: WriteOptions = {}): Promise<Reminder> {
    const raw = await this.#client.createReminder(
      dealId,
      { title: input.title, body: input.body, due_at: input.dueAt, assignee_id: input.assigneeId },
      options.idempotencyKey ?? this.#client.newIdempotencyKey(),
    );
    return {
      id: raw.id,
      dealId: raw.deal_id,
      title: raw.title,
      body: raw.body ?? "",
      dueAt: raw.due_at,
      assigneeId: raw.assignee_id ?? null,
    };
  }

  async listAttachments(dealId: string): Promise<Attachment[]> {
    return (await this.#client.listAttachments(dealId)).map(attachmentFromRaw);
  }

  async uploadAttachment(dealId: string, file: FileUpload, options: WriteOptions = {}): Promise<Attachment> {
    return attachmentFromRaw(
      await this.#client.uploadAttachment(dealId, file, options.idempotencyKey ?? this.#client.newIdempotencyKey()),
    );
  }

  async deleteAttachment(id: string, options: WriteOptions = {}): Promise<boolean> {
    return this.#client.deleteAttachment(id, options.idempotencyKey ?? this.#client.newIdempotencyKey());
  }

  async download(attachment: Attachment): Promise<FileDownload> {
    if (!attachment.downloadUrl)
      throw new FourDegreesError("not_found", `4Degrees attachment ${attachment.id} has no download_url`, {
        retryable: false,
        upstreamStatus: 404,
      });
    return this.#client.download(attachment.downloadUrl);
  }

  parseWebhook(body: unknown): ChangeEvent {
    return fourDegreesWebhooks.parseWebhook(body);
  }

  async #mustGet(id: string): Promise<Deal> {
    const deal = await this.getDeal(id);
    if (!deal)
      throw new FourDegreesError("not_found", `4Degrees deal ${id} does not exist`, {
        retryable: false,
        upstreamStatus: 404,
      });
    return deal;
  }
}
