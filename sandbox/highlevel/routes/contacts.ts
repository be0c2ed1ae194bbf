/**
 * `/contacts/*` (ghl/apps/contacts.json): duplicate lookup, list, create, the advanced search, and
 * read / update / delete. A contact's notes are in notes.ts.
 */
import type { Hono } from "hono";
import { z } from "zod";
import {
  enumOf,
  nullableString,
  optBoolean,
  optString,
  parseBody,
  reqString,
  stringArray,
  unprocessable,
} from "../errors.ts";
import { renderContact, renderContactListItem, renderCreatedContact } from "../render.ts";
import type { Contact } from "../store.ts";
import {
  checkQuery,
  CONTACT_READ,
  CONTACT_WRITE,
  customFieldInput,
  intParam,
  pathParam,
  readJson,
  send,
} from "./shared.ts";
import type { Ctx, RouteDeps, Vars } from "./shared.ts";

/** `CreateContactDto` (ghl/apps/contacts.json): `locationId` required, the rest optional. */
const CreateContactBody = z
  .object({
    firstName: nullableString("firstName"),
    lastName: nullableString("lastName"),
    name: nullableString("name"),
    email: z.email({ error: "email must be an email" }).nullable().optional(),
    locationId: reqString("locationId"),
    gender: optString("gender"),
    phone: nullableString("phone"),
    address1: nullableString("address1"),
    city: nullableString("city"),
    state: nullableString("state"),
    postalCode: optString("postalCode"),
    website: nullableString("website"),
    timezone: nullableString("timezone"),
    dnd: optBoolean("dnd"),
    dndSettings: z.record(z.string(), z.unknown(), { error: "dndSettings must be an object" }).optional(),
    inboundDndSettings: z.record(z.string(), z.unknown(), { error: "inboundDndSettings must be an object" }).optional(),
    tags: stringArray("tags").optional(),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
    source: optString("source"),
    dateOfBirth: z.unknown().optional(),
    country: optString("country"),
    companyName: nullableString("companyName"),
    assignedTo: optString("assignedTo"),
  })
  .strict();

/** `UpdateContactDto` (ghl/apps/contacts.json): all optional, no `locationId` / `companyName` / `gender`. */
const UpdateContactBody = z
  .object({
    firstName: nullableString("firstName"),
    lastName: nullableString("lastName"),
    name: nullableString("name"),
    email: z.email({ error: "email must be an email" }).nullable().optional(),
    phone: nullableString("phone"),
    address1: nullableString("address1"),
    city: nullableString("city"),
    state: nullableString("state"),
    postalCode: optString("postalCode"),
    website: nullableString("website"),
    timezone: nullableString("timezone"),
    dnd: optBoolean("dnd"),
    dndSettings: z.record(z.string(), z.unknown(), { error: "dndSettings must be an object" }).optional(),
    inboundDndSettings: z.record(z.string(), z.unknown(), { error: "inboundDndSettings must be an object" }).optional(),
    tags: stringArray("tags").optional(),
    customFields: z.array(customFieldInput, { error: "customFields must be an array" }).optional(),
    source: nullableString("source"),
    dateOfBirth: z.unknown().optional(),
    country: optString("country"),
    assignedTo: nullableString("assignedTo"),
  })
  .strict();

/** Contact fields `POST /contacts/search` filters and sorts on (HighLevel's search field names). */
const CONTACT_SEARCH_FIELDS = [
  "id",
  "firstNameLowerCase",
  "lastNameLowerCase",
  "fullNameLowerCase",
  "email",
  "phone",
  "companyName",
  "tags",
  "assignedTo",
  "source",
  "country",
  "dnd",
  "dateAdded",
  "dateUpdated",
] as const;
const CONTACT_SORT_FIELDS = ["dateAdded", "dateUpdated", "firstNameLowerCase", "lastNameLowerCase", "email"] as const;
const CONTACT_SEARCH_OPERATORS = ["eq", "not_eq", "contains", "not_contains", "exists", "not_exists"] as const;
/** The deepest result `page` × `pageLimit` reaches; past it, page with `searchAfter` (unconfirmed limit). */
const CONTACT_SEARCH_WINDOW = 10_000;

type ContactFilter =
  | {
      field: (typeof CONTACT_SEARCH_FIELDS)[number];
      operator: (typeof CONTACT_SEARCH_OPERATORS)[number];
      value?: unknown;
    }
  | { group: "AND" | "OR"; filters: ContactFilter[] };

/** One filter, `{field, operator, value}`, or a group `{group: "AND" | "OR", filters}` (nestable). */
const ContactFilterSchema: z.ZodType<ContactFilter, unknown> = z.lazy(() =>
  z
    .object(
      {
        field: enumOf("filters.field", CONTACT_SEARCH_FIELDS).optional(),
        operator: enumOf("filters.operator", CONTACT_SEARCH_OPERATORS).optional(),
        value: z.unknown().optional(),
        group: enumOf("filters.group", ["AND", "OR"] as const).optional(),
        filters: z.array(ContactFilterSchema, { error: "filters.filters must be an array" }).optional(),
      },
      { error: "each value in filters must be an object" },
    )
    .strict()
    .superRefine((f, ctx) => {
      const isGroup = f.group !== undefined || f.filters !== undefined;
      if (
        isGroup &&
        (f.group === undefined ||
          f.filters === undefined ||
          f.field !== undefined ||
          f.operator !== undefined ||
          f.value !== undefined)
      ) {
        ctx.addIssue({ code: "custom", message: "a filter group takes group and filters only" });
      }
      if (!isGroup && f.field === undefined)
        ctx.addIssue({ code: "custom", message: "filters.field should not be empty" });
      if (!isGroup && f.operator === undefined)
        ctx.addIssue({ code: "custom", message: "filters.operator should not be empty" });
    })
    .transform((f) => f as ContactFilter),
);

/** How deep filter groups may nest (the sandbox's limit, so a hostile body cannot exhaust the stack). */
const MAX_FILTER_DEPTH = 5;

/** The nesting depth of `filters` in a search body (iterative: safe on any input). */
function filterDepth(body: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[body, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (!node || typeof node !== "object" || !("filters" in node) || !Array.isArray(node.filters)) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_FILTER_DEPTH) return deepest;
    for (const child of node.filters as unknown[]) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * `POST /contacts/search`. The spec's `SearchBodyV2DTO` lists no properties and its 200 documents no
 * body; this is the shape of HighLevel's "Search Contacts" guide (linked from the spec): `locationId`,
 * `page` + `pageLimit` or `searchAfter`, `query`, `filters` (`{field, operator, value}` or nested
 * `{group, filters}`), `sort` — answered as `{contacts, total}`. Unconfirmed where the guide is silent.
 */
const ContactSearchBody = z
  .object({
    locationId: reqString("locationId"),
    page: z
      .number({ error: "page must be a number conforming to the specified constraints" })
      .int({ error: "page must be an integer number" })
      .min(1, { error: "page must not be less than 1" })
      .optional(),
    pageLimit: z
      .number({ error: "pageLimit must be a number conforming to the specified constraints" })
      .int({ error: "pageLimit must be an integer number" })
      .min(1, { error: "pageLimit must not be less than 1" })
      .max(500, { error: "pageLimit must not be greater than 500" })
      .optional(),
    searchAfter: z.array(z.union([z.string(), z.number()]), { error: "searchAfter must be an array" }).optional(),
    query: z.string({ error: "query must be a string" }).optional(),
    filters: z.array(ContactFilterSchema, { error: "filters must be an array" }).optional(),
    sort: z
      .array(
        z
          .object({
            field: enumOf("sort.field", CONTACT_SORT_FIELDS),
            direction: enumOf("sort.direction", ["asc", "desc"] as const),
          })
          .strict(),
        { error: "sort must be an array" },
      )
      .max(2, { error: "sort must contain no more than 2 elements" })
      .optional(),
  })
  .strict();

/** The contact named by the `:contactId` path parameter; 403 when the token may not see its location. */
export function pathContact(d: RouteDeps, c: Ctx): Contact {
  const contact = d.service.contact(pathParam(c, "contactId"));
  d.assertLocation(c, contact.locationId);
  return contact;
}

/** Registers the contact routes (`/contacts/search/duplicate` and `/contacts/search` before `/contacts/:contactId`). */
export function registerContactRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { service, store, guard, assertLocation } = d;
  const contactFor = (c: Ctx) => pathContact(d, c);

  app.get("/contacts/search/duplicate", guard(CONTACT_READ), (c) => {
    const q = checkQuery(c, ["locationId", "number", "email"]);
    if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
    assertLocation(c, q.locationId);
    const found = service.findDuplicateContact(q.locationId, q.email, q.number);
    return send(
      c,
      found ? { contact: renderContact(store, found.contact), matchingField: found.matchingField } : { contact: null },
    );
  });

  for (const path of ["/contacts/", "/contacts"]) {
    app.get(path, guard(CONTACT_READ), (c) => {
      const q = checkQuery(c, ["locationId", "startAfterId", "startAfter", "query", "limit"]);
      if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
      assertLocation(c, q.locationId);
      const limit = intParam(q, "limit", 20, 1, 100);
      const needle = (q.query ?? "").toLowerCase();
      const all = store
        .contactsOf(q.locationId)
        .filter(
          (x) =>
            !needle ||
            [store.contactName(x), x.email, x.phone, x.companyName]
              .filter(Boolean)
              .join(" ")
              .toLowerCase()
              .includes(needle),
        )
        .sort((a, b) => a.dateAdded.localeCompare(b.dateAdded) || a.id.localeCompare(b.id));
      let rest = all;
      if (q.startAfterId) {
        const at = all.findIndex((x) => x.id === q.startAfterId);
        rest = at >= 0 ? all.slice(at + 1) : [];
      }
      const items = rest.slice(0, limit);
      const last = items[items.length - 1];
      return send(c, {
        contacts: items.map((x) => renderContactListItem(store, x)),
        count: all.length,
        meta: {
          total: all.length,
          startAfterId: last?.id ?? null,
          startAfter: last ? Date.parse(last.dateAdded) : null,
        },
      });
    });
    app.post(path, guard(CONTACT_WRITE), async (c) => {
      const body = parseBody(CreateContactBody, await readJson(c));
      assertLocation(c, body.locationId);
      const { gender: _g, dndSettings: _d, inboundDndSettings: _i, dateOfBirth: _b, ...input } = body;
      return send(c, { contact: renderCreatedContact(store, service.createContact(input)) }, 201);
    });
  }

  /** A contact's value of a search field (strings compared lower-case, as HighLevel's search index does). */
  const searchValue = (
    x: Contact,
    field: (typeof CONTACT_SEARCH_FIELDS)[number],
  ): string | string[] | boolean | null => {
    const name = store.contactName(x);
    switch (field) {
      case "firstNameLowerCase":
        return x.firstName?.toLowerCase() ?? null;
      case "lastNameLowerCase":
        return x.lastName?.toLowerCase() ?? null;
      case "fullNameLowerCase":
        return name ? name.toLowerCase() : null;
      case "tags":
        return x.tags.map((t) => t.toLowerCase());
      case "dnd":
        return x.dnd;
      case "email":
        return x.email?.toLowerCase() ?? null;
      default: {
        const v = x[field];
        return v === null || v === undefined ? null : String(v);
      }
    }
  };

  const matchesFilter = (x: Contact, f: ContactFilter, path: string): boolean => {
    if ("group" in f)
      return f.group === "AND"
        ? f.filters.every((g, i) => matchesFilter(x, g, `${path}.filters.${i}`))
        : f.filters.some((g, i) => matchesFilter(x, g, `${path}.filters.${i}`));
    const have = searchValue(x, f.field);
    const present = have !== null && have !== "" && !(Array.isArray(have) && have.length === 0);
    if (f.operator === "exists") return present;
    if (f.operator === "not_exists") return !present;
    const wanted = f.value;
    if (f.field === "dnd") {
      if (typeof wanted !== "boolean") throw unprocessable([`${path}.value must be a boolean value`]);
      return f.operator === "eq" || f.operator === "contains" ? have === wanted : have !== wanted;
    }
    const list = Array.isArray(wanted) ? wanted : [wanted];
    if (list.length === 0 || list.some((v) => typeof v !== "string" && typeof v !== "number"))
      throw unprocessable([`${path}.value must be a string or a list of strings`]);
    const needles = list.map((v) => String(v).toLowerCase());
    const values = Array.isArray(have) ? have : have === null ? [] : [String(have).toLowerCase()];
    const hit =
      f.operator === "eq" || f.operator === "not_eq"
        ? needles.some((n) => values.includes(n))
        : needles.some((n) => values.some((v) => v.includes(n)));
    return f.operator === "eq" || f.operator === "contains" ? hit : !hit;
  };

  // https://highlevel.stoplight.io/docs/integrations/ (search-contacts-advanced)
  app.post("/contacts/search", guard(CONTACT_READ), async (c) => {
    const raw = await readJson(c);
    if (filterDepth(raw) > MAX_FILTER_DEPTH)
      throw unprocessable([`filters can be nested at most ${MAX_FILTER_DEPTH} levels deep`]);
    const body = parseBody(ContactSearchBody, raw);
    assertLocation(c, body.locationId);
    const pageLimit = body.pageLimit ?? 20;
    const page = body.page ?? 1;
    if (body.searchAfter === undefined && page * pageLimit > CONTACT_SEARCH_WINDOW)
      throw unprocessable([
        `page * pageLimit must not be greater than ${CONTACT_SEARCH_WINDOW}; use searchAfter to go further`,
      ]);
    if (body.searchAfter !== undefined && body.page !== undefined && body.page > 1)
      throw unprocessable(["page and searchAfter can not be used together"]);
    const needle = (body.query ?? "").trim().toLowerCase();
    const sort =
      body.sort && body.sort.length > 0 ? body.sort : [{ field: "dateAdded" as const, direction: "desc" as const }];
    const key = (x: Contact, field: (typeof CONTACT_SORT_FIELDS)[number]): string | number => {
      if (field === "dateAdded" || field === "dateUpdated") return Date.parse(x[field]);
      return (searchValue(x, field) as string | null) ?? "";
    };
    const compare = (a: Contact, b: Contact): number => {
      for (const s of sort) {
        const ka = key(a, s.field);
        const kb = key(b, s.field);
        const d = typeof ka === "number" && typeof kb === "number" ? ka - kb : String(ka).localeCompare(String(kb));
        if (d !== 0) return s.direction === "asc" ? d : -d;
      }
      return a.id.localeCompare(b.id);
    };
    const matches = store
      .contactsOf(body.locationId)
      .filter(
        (x) =>
          !needle ||
          [store.contactName(x), x.email, x.phone, x.companyName]
            .filter(Boolean)
            .join(" ")
            .toLowerCase()
            .includes(needle),
      )
      .filter((x) => (body.filters ?? []).every((f, i) => matchesFilter(x, f, `filters.${i}`)))
      .sort(compare);
    const cursor = (x: Contact) => [...sort.map((s) => key(x, s.field)), x.id];
    let rest = matches;
    if (body.searchAfter !== undefined) {
      const after = body.searchAfter;
      const afterId = after.at(-1);
      const bad =
        after.length !== sort.length + 1 ||
        typeof afterId !== "string" ||
        sort.some(
          (s, i) => (s.field === "dateAdded" || s.field === "dateUpdated") && !Number.isFinite(Number(after[i])),
        );
      if (bad) throw unprocessable([`searchAfter must be the searchAfter of a result (${sort.length + 1} values)`]);
      // Strictly after the cursor in the sort order (works even if that contact is gone since).
      rest = matches.filter((x) => {
        for (const [i, s] of sort.entries()) {
          const k = key(x, s.field);
          const d = typeof k === "number" ? k - Number(after[i]) : k.localeCompare(String(after[i]));
          if (d !== 0) return s.direction === "asc" ? d > 0 : d < 0;
        }
        return x.id.localeCompare(afterId as string) > 0;
      });
    } else {
      rest = matches.slice((page - 1) * pageLimit);
    }
    return send(c, {
      contacts: rest.slice(0, pageLimit).map((x) => ({ ...renderContact(store, x), searchAfter: cursor(x) })),
      total: matches.length,
    });
  });

  app.put("/contacts/:contactId", guard(CONTACT_WRITE), async (c) => {
    const body = parseBody(UpdateContactBody, await readJson(c));
    const contact = contactFor(c);
    const { dndSettings: _d, inboundDndSettings: _i, dateOfBirth: _b, ...patch } = body;
    return send(c, { succeded: true, contact: renderContact(store, service.updateContact(contact.id, patch)) });
  });

  app.delete("/contacts/:contactId", guard(CONTACT_WRITE), (c) => {
    service.deleteContact(contactFor(c).id);
    return send(c, { succeded: true });
  });

  app.get("/contacts/:contactId", guard(CONTACT_READ), (c) =>
    send(c, { contact: renderContact(store, contactFor(c)) }),
  );
}
