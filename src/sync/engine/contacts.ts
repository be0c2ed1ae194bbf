/**
 * The primary contact of a pair, crossing with its name, email and phone: on either side the
 * person is matched first (by email, then by phone) and created only when nobody matches, so the
 * same person never gets a second contact. Creates are ledger-guarded like every write: a retry
 * after a crash finds the first create in the ledger (or by the same search), never makes another.
 */
import * as z from "zod";
import type { CrmContact, Deal } from "../../domain/port.ts";
import type { Contact, Opportunity, OpportunityCrm } from "../../highlevel/port.ts";
import { ContactSchema } from "../../highlevel/schemas.ts";
import type { Account } from "../../store/accounts.ts";
import { beginWrite, completeWrite, ledgerIdempotencyKey, type LedgerKey } from "../../store/ledger.ts";
import type { EngineDeps } from "./types.ts";

/** What the contact crossing needs of the engine. */
export interface ContactHost {
  readonly deps: EngineDeps;
  readonly account: Account;
  readonly db: D1Database;
}

/** A person as both sides can match and create it (also the ledger row's request). */
const PersonSchema = z.object({
  name: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
});
type Person = z.infer<typeof PersonSchema>;

const clean = (s: string | null | undefined): string | null => (s && s.trim() !== "" ? s.trim() : null);

/** The deal's primary contact with its email and phone (read from 4Degrees when the deal names it by id). */
async function primaryOfDeal(engine: ContactHost, deal: Deal): Promise<(Person & { id: string | null }) | null> {
  const ref = deal.contacts[0];
  if (!ref) return null;
  let record: CrmContact | null = null;
  if (ref.id && !ref.email) record = await engine.deps.fourdegrees.getContact(ref.id);
  const person = {
    id: ref.id,
    name: clean(record?.name ?? ref.name),
    email: clean(record?.email ?? ref.email)?.toLowerCase() ?? null,
    phone: clean(record?.phone),
  };
  return person.email || person.phone || person.name ? person : null;
}

/**
 * The HighLevel contact for a 4Degrees deal's primary contact: matched by email, then phone, else
 * created with its name, email and phone. A deal without a contact gets one named after the deal
 * (HighLevel needs a contact on every opportunity), as before.
 */
export async function highLevelContactFor(
  engine: ContactHost,
  deal: Deal,
  hl: OpportunityCrm,
  fallback: { email: string | null; name: string },
): Promise<Contact> {
  const person = await primaryOfDeal(engine, deal);
  if (!person) return hl.ensureContact(fallback);
  const found = await hl.findContact({ email: person.email, phone: person.phone });
  if (found) return found;
  const key: LedgerKey = {
    accountId: engine.account.id,
    targetSide: "highlevel",
    sourceRecord: `fourdegrees:contact:${person.id ?? person.email ?? person.phone ?? ""}`,
    changeHash: `create:${hl.locationId}`,
  };
  const begun = await beginWrite(engine.db, key, "create_contact", engine.deps.now(), person);
  // Done before a crash but not found by the search (an index lagging behind): that contact it is.
  if (begun.entry.state === "done" && begun.entry.targetId) return ContactSchema.parse({ id: begun.entry.targetId });
  const created = await hl.createContact({
    name: person.name ?? fallback.name,
    email: person.email,
    phone: person.phone,
  });
  await completeWrite(engine.db, key, created.id, engine.deps.now());
  return created;
}

/**
 * The 4Degrees contact id for an opportunity's contact: matched by email, then phone, else created
 * (with the ledger key as `Idempotency-Key`, so a retry replays the first create). Null when the
 * opportunity's contact has nothing to match or create by.
 */
export async function fourDegreesContactFor(engine: ContactHost, opp: Opportunity): Promise<string | null> {
  let person: Person = {
    name: clean(opp.contact?.name),
    email: clean(opp.contact?.email)?.toLowerCase() ?? null,
    phone: clean(opp.contact?.phone),
  };
  if (!person.email && !person.phone) return null;
  const fd = engine.deps.fourdegrees;
  const found = await fd.findContact({ email: person.email, phone: person.phone });
  if (found) return found.id;
  const key: LedgerKey = {
    accountId: engine.account.id,
    targetSide: "fourdegrees",
    sourceRecord: `highlevel:contact:${opp.contactId ?? person.email ?? person.phone ?? ""}`,
    changeHash: "create",
  };
  const begun = await beginWrite(engine.db, key, "create_contact", engine.deps.now(), person);
  if (begun.entry.state === "done" && begun.entry.targetId) return begun.entry.targetId;
  // A replay must send the first request unchanged (4Degrees refuses a reused key with another body).
  const first = begun.fresh ? null : PersonSchema.safeParse(begun.entry.request);
  if (first?.success) person = first.data;
  const created = await fd.createContact(
    { name: person.name ?? person.email ?? person.phone, email: person.email, phone: person.phone },
    { idempotencyKey: ledgerIdempotencyKey(key) },
  );
  await completeWrite(engine.db, key, created.id, engine.deps.now());
  return created.id;
}
