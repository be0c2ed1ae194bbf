/**
 * The Mapping page's custom fields and owners, picked from the live lists: a 4Degrees field ↔ a
 * HighLevel field of a compatible type with a direction and, for picklists, an option ↔ option
 * value map (options without a partner are listed, never dropped in silence); a user map
 * (4Degrees user ↔ HighLevel user, prefilled by email) with a default owner for the unmatched.
 */
import type { Context } from "hono";
import type { AppEnv } from "../../context.ts";
import { highLevelPort } from "../../../highlevel/adapter.ts";
import type { FieldDef, User } from "../../../domain/port.ts";
import type { HlFieldDef, HlUser } from "../../../highlevel/port.ts";
import type { Account } from "../../../store/accounts.ts";
import { cachedFourDegrees, locationNames } from "../names.tsx";
import { DirectionSchema, type MappingInput, type MappingIssue } from "../../../domain/mapping-config.ts";

type Form = Record<string, string | File | (string | File)[]>;
type ExtraInput = NonNullable<MappingInput["fields"]>[number];

/** The live field and user lists of both sides. */
export interface FieldLists {
  fd: FieldDef[];
  hl: HlFieldDef[];
  fdUsers: User[];
  hlUsers: HlUser[];
  /** HighLevel location names by id. */
  locations: Map<string, string>;
  error: string | null;
}

/** What a field holds, for matching types across the two systems (null: not mappable). */
type Kind = "text" | "number" | "date" | "single" | "multi";
const FD_KINDS: Record<string, Kind> = {
  text: "text",
  number: "number",
  currency: "number",
  percentage: "number",
  date: "date",
  single_select: "single",
  multi_select: "multi",
};
const HL_KINDS: Record<string, Kind> = {
  TEXT: "text",
  LARGE_TEXT: "text",
  EMAIL: "text",
  PHONE: "text",
  NUMERICAL: "number",
  MONETORY: "number",
  FLOAT: "number",
  DATE: "date",
  SINGLE_OPTIONS: "single",
  RADIO: "single",
  DROPDOWN: "single",
  MULTIPLE_OPTIONS: "multi",
  CHECKBOX: "multi",
};
const KIND_LABEL: Record<Kind, string> = {
  text: "text",
  number: "number",
  date: "date",
  single: "single choice",
  multi: "multiple choice",
};
const fdKind = (f: FieldDef | undefined): Kind | null => (f && !f.readOnly ? (FD_KINDS[f.type] ?? null) : null);
const hlKind = (f: HlFieldDef | undefined): Kind | null => (f ? (HL_KINDS[f.dataType ?? ""] ?? null) : null);
const isChoice = (k: Kind | null) => k === "single" || k === "multi";
const norm = (s: string | null | undefined) => (s ?? "").trim().toLowerCase();
const userLabel = (u: { name?: string | null; email?: string | null; id: string }) =>
  u.name ? `${u.name}${u.email ? ` (${u.email})` : ""}` : (u.email ?? "unnamed user");

/** Reads the live lists (4Degrees fields of every 4Degrees pipeline, HighLevel fields of every location, users). */
export async function loadFieldLists(c: Context<AppEnv>, account: Account, fdPipelineIds: string[]) {
  const lists: FieldLists = {
    fd: [],
    hl: [],
    fdUsers: [],
    hlUsers: [],
    locations: await locationNames(c, account.locations),
    error: null,
  };
  const errors: string[] = [];
  try {
    const fd = await cachedFourDegrees(c, account.id);
    lists.fdUsers = await fd.listUsers();
    for (const id of fdPipelineIds)
      for (const f of await fd.listFields(id)) if (!lists.fd.some((x) => x.id === f.id)) lists.fd.push(f);
  } catch (err) {
    errors.push(`4Degrees: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const loc of account.locations) {
    try {
      const hl = highLevelPort(c.env, c.var.config, loc, "live");
      for (const f of await hl.listCustomFields()) if (!lists.hl.some((x) => x.id === f.id)) lists.hl.push(f);
      for (const u of await hl.listUsers()) if (!lists.hlUsers.some((x) => x.id === u.id)) lists.hlUsers.push(u);
    } catch (err) {
      errors.push(`HighLevel: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  lists.error = errors.length ? errors.join("; ") : null;
  return lists;
}

const slug = (name: string) =>
  (
    "f_" +
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_|_$/g, "")
  ).slice(0, 40);

/** The extra fields, users and default owner of the posted form. */
export function fieldsFromForm(form: Form, lists: FieldLists): Pick<MappingInput, "fields" | "users" | "defaultOwner"> {
  const str = (k: string) => (typeof form[k] === "string" ? form[k].trim() : "");
  const fields: ExtraInput[] = [];
  for (let i = 0; i < 100 && (str(`f.${i}.fd`) || str(`f.${i}.hl`) || str(`f.${i}.present`)); i++) {
    const fdId = str(`f.${i}.fd`);
    const hlId = str(`f.${i}.hl`);
    if (!fdId && !hlId) continue; // both emptied: the row is removed
    const valueMap: Array<{ fourdegrees: string; highlevel: string }> = [];
    for (let j = 0; j < 200 && str(`f.${i}.vm.${j}.fd`); j++) {
      const hl = str(`f.${i}.vm.${j}.hl`);
      if (hl) valueMap.push({ fourdegrees: str(`f.${i}.vm.${j}.fd`), highlevel: hl });
    }
    const named = lists.fd.find((f) => f.id === fdId)?.name;
    const direction = DirectionSchema.safeParse(str(`f.${i}.dir`) || "both");
    fields.push({
      key: str(`f.${i}.key`) || (named ? slug(named) : `field_${i + 1}`),
      fourdegreesFieldId: fdId,
      highlevelFieldId: hlId,
      direction: direction.success ? direction.data : "both",
      valueMap,
    });
  }
  const users: Array<{ fourdegreesUserId: string; highlevelUserId: string }> = [];
  for (const [k, v] of Object.entries(form))
    if (k.startsWith("u.") && typeof v === "string" && v.trim())
      users.push({ fourdegreesUserId: k.slice(2), highlevelUserId: v.trim() });
  const defaultOwner: { fourdegrees?: string; highlevel?: string } = {};
  if (str("defaultOwner.fd")) defaultOwner.fourdegrees = str("defaultOwner.fd");
  if (str("defaultOwner.hl")) defaultOwner.highlevel = str("defaultOwner.hl");
  return { fields, users, defaultOwner };
}

/** Problems of the extra fields and owners against the live lists, each naming the field or user. */
export function validateFieldsLive(m: MappingInput, lists: FieldLists): MappingIssue[] {
  if (lists.error) return [];
  const issues: MappingIssue[] = [];
  (m.fields ?? []).forEach((f, i) => {
    const fd = lists.fd.find((x) => x.id === f.fourdegreesFieldId);
    const hl = lists.hl.find((x) => x.id === f.highlevelFieldId);
    if (!fd) issues.push({ field: `fields.${i}.fourdegreesFieldId`, message: "choose a 4Degrees field" });
    else if (!fdKind(fd))
      issues.push({
        field: `fields.${i}.fourdegreesFieldId`,
        message: `4Degrees field “${fd.name}” (${fd.type}) cannot be synced`,
      });
    if (!hl) issues.push({ field: `fields.${i}.highlevelFieldId`, message: "choose a HighLevel field" });
    if (!fd || !hl) return;
    const [a, b] = [fdKind(fd), hlKind(hl)];
    if (a && a !== b)
      issues.push({
        field: `fields.${i}.highlevelFieldId`,
        message: `4Degrees field “${fd.name}” (${KIND_LABEL[a]}) cannot map to HighLevel field “${hl.name}” (${b ? KIND_LABEL[b] : (hl.dataType ?? "unknown type")})`,
      });
    (f.valueMap ?? []).forEach((v, j) => {
      if (!fd.options.includes(v.fourdegrees))
        issues.push({
          field: `fields.${i}.valueMap.${j}`,
          message: `“${v.fourdegrees}” is not an option of 4Degrees field “${fd.name}”`,
        });
      if (!hl.options.includes(v.highlevel))
        issues.push({
          field: `fields.${i}.valueMap.${j}`,
          message: `“${v.highlevel}” is not an option of HighLevel field “${hl.name}”`,
        });
    });
  });
  (m.users ?? []).forEach((u, i) => {
    if (!lists.fdUsers.some((x) => x.id === u.fourdegreesUserId))
      issues.push({ field: `users.${i}`, message: "a 4Degrees user in the owner map no longer exists" });
    const hl = lists.hlUsers.find((x) => x.id === u.highlevelUserId);
    if (!hl || hl.deleted) {
      const fd = lists.fdUsers.find((x) => x.id === u.fourdegreesUserId);
      issues.push({
        field: `users.${i}`,
        message: `the HighLevel user chosen for ${fd ? userLabel(fd) : "a 4Degrees user"} does not exist`,
      });
    }
  });
  const d = m.defaultOwner ?? {};
  if (d.fourdegrees && !lists.fdUsers.some((x) => x.id === d.fourdegrees))
    issues.push({ field: "defaultOwner.fourdegrees", message: "the default 4Degrees owner does not exist" });
  if (d.highlevel && !lists.hlUsers.some((x) => x.id === d.highlevel && !x.deleted))
    issues.push({ field: "defaultOwner.highlevel", message: "the default HighLevel owner does not exist" });
  return issues;
}

const Err = ({ errors, k }: { errors: Map<string, string[]>; k: string }) => (
  <>
    {(errors.get(k) ?? []).map((m) => (
      <span class="fielderror" data-field={k}>
        {m}
      </span>
    ))}
  </>
);

const DIRECTIONS: Record<string, string> = {
  both: "both ways",
  to_highlevel: "4Degrees → HighLevel",
  to_fourdegrees: "HighLevel → 4Degrees",
  off: "off",
};

/** The HighLevel field choices for a 4Degrees field: only compatible types once the 4Degrees field is known. */
function HlFieldOptions({ lists, fd, chosen }: { lists: FieldLists; fd: FieldDef | undefined; chosen: string }) {
  const kind = fdKind(fd);
  const fitting = lists.hl.filter((h) => hlKind(h) !== null && (kind === null || hlKind(h) === kind));
  const groups = kind ? [kind] : (["text", "number", "date", "single", "multi"] as const);
  return (
    <>
      {groups.map((g) => (
        <optgroup label={KIND_LABEL[g]}>
          {fitting
            .filter((h) => hlKind(h) === g)
            .map((h) => (
              <option value={h.id} selected={h.id === chosen} title={h.id}>
                {h.name}
              </option>
            ))}
        </optgroup>
      ))}
      {chosen && !fitting.some((h) => h.id === chosen) && (
        <option value={chosen} selected>
          {lists.hl.find((h) => h.id === chosen)?.name ?? "a field that no longer exists"} (incompatible or missing)
        </option>
      )}
    </>
  );
}

/** The value map of one field row: every 4Degrees option with a HighLevel option to pick, and what stays unmapped. */
function ValueMap({ i, f, fd, hl }: { i: number; f: ExtraInput; fd: FieldDef; hl: HlFieldDef }) {
  const map = f.valueMap ?? [];
  // A new pair starts from same-named options; the operator changes or clears any of them.
  const pre = (o: string) =>
    map.length ? map.find((v) => v.fourdegrees === o)?.highlevel : hl.options.find((h) => norm(h) === norm(o));
  const mappedHl = new Set(fd.options.map(pre).filter(Boolean));
  const fdUnmapped = fd.options.filter((o) => !pre(o));
  const hlUnmapped = hl.options.filter((o) => !mappedHl.has(o));
  return (
    <tr class="valuemap">
      <td colspan={4}>
        <table data-valuemap={f.key}>
          <thead>
            <tr>
              <th>4Degrees option</th>
              <th>HighLevel option</th>
            </tr>
          </thead>
          <tbody>
            {fd.options.map((o, j) => (
              <tr>
                <td>
                  {o}
                  <input type="hidden" name={`f.${i}.vm.${j}.fd`} value={o} />
                </td>
                <td>
                  <select name={`f.${i}.vm.${j}.hl`}>
                    <option value="">— not mapped —</option>
                    {hl.options.map((h) => (
                      <option value={h} selected={h === pre(o)}>
                        {h}
                      </option>
                    ))}
                  </select>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {map.length === 0 && (
          <p class="hint">
            No value map saved yet: values are copied as they are. The choices above are suggestions by name; save to
            apply them.
          </p>
        )}
        {(fdUnmapped.length > 0 || hlUnmapped.length > 0) && (
          <p class="unmapped" data-unmapped={f.key}>
            Not synced (no partner option):{" "}
            {[
              fdUnmapped.length ? `4Degrees ${fdUnmapped.map((o) => `“${o}”`).join(", ")}` : "",
              hlUnmapped.length ? `HighLevel ${hlUnmapped.map((o) => `“${o}”`).join(", ")}` : "",
            ]
              .filter(Boolean)
              .join("; ")}
            . A record holding one of these keeps its value on its own side; the sync reports it as skipped.
          </p>
        )}
      </td>
    </tr>
  );
}

/** The extra custom fields table (one row per pair plus an empty row to add one). */
export function FieldsSection({
  m,
  lists,
  errors,
}: {
  m: MappingInput;
  lists: FieldLists;
  errors: Map<string, string[]>;
}) {
  const rows: ExtraInput[] = [...(m.fields ?? []), { key: "", fourdegreesFieldId: "", highlevelFieldId: "" }];
  return (
    <>
      <h2>Custom fields</h2>
      {lists.error && <p class="flash error">Could not read the field or user lists ({lists.error}).</p>}
      <table id="custom-fields">
        <thead>
          <tr>
            <th>4Degrees field</th>
            <th>HighLevel field</th>
            <th>Direction</th>
            <th>Key</th>
          </tr>
        </thead>
        <tbody>
          {rows.flatMap((f, i) => {
            const fd = lists.fd.find((x) => x.id === f.fourdegreesFieldId);
            const hl = lists.hl.find((x) => x.id === f.highlevelFieldId);
            const isNew = i === rows.length - 1;
            const row = (
              <tr data-field-row={i}>
                <td>
                  <input type="hidden" name={`f.${i}.present`} value="1" />
                  <select name={`f.${i}.fd`}>
                    <option value="">{isNew ? "— add a field —" : "— remove —"}</option>
                    {lists.fd
                      .filter((x) => fdKind(x) !== null)
                      .map((x) => (
                        <option value={x.id} selected={x.id === f.fourdegreesFieldId} title={x.id}>
                          {x.name} ({KIND_LABEL[fdKind(x) ?? "text"]})
                        </option>
                      ))}
                  </select>
                  <Err errors={errors} k={`f.${i}.fd`} />
                </td>
                <td>
                  <select name={`f.${i}.hl`}>
                    <option value="">— choose —</option>
                    <HlFieldOptions lists={lists} fd={fd} chosen={f.highlevelFieldId} />
                  </select>
                  <Err errors={errors} k={`f.${i}.hl`} />
                </td>
                <td>
                  <select name={`f.${i}.dir`}>
                    {DirectionSchema.options.map((d) => (
                      <option value={d} selected={d === (f.direction ?? "both")}>
                        {DIRECTIONS[d]}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input name={`f.${i}.key`} value={f.key} size={12} placeholder="from the name" />
                  <Err errors={errors} k={`f.${i}.key`} />
                </td>
              </tr>
            );
            const choice = fd && hl && isChoice(fdKind(fd)) && isChoice(hlKind(hl));
            return choice
              ? [row, <ValueMap i={i} f={f} fd={fd} hl={hl} />, <Err errors={errors} k={`f.${i}.vm`} />]
              : [row];
          })}
        </tbody>
      </table>
      <p class="hint">
        Pick the 4Degrees field first: after saving, the HighLevel list shows only fields of a matching type and choice
        fields get a value map.
      </p>
    </>
  );
}

/** The owner map: one row per 4Degrees user, prefilled by email, and the default owners. */
export function OwnersSection({
  m,
  lists,
  errors,
}: {
  m: MappingInput;
  lists: FieldLists;
  errors: Map<string, string[]>;
}) {
  const map = m.users ?? [];
  const hlAlive = lists.hlUsers.filter((u) => !u.deleted);
  const chosenFor = (u: User) =>
    map.find((p) => p.fourdegreesUserId === u.id)?.highlevelUserId ??
    (map.length === 0 && u.email ? hlAlive.find((h) => norm(h.email) === norm(u.email))?.id : undefined) ??
    "";
  const d = m.defaultOwner ?? {};
  return (
    <>
      <h2>Owners</h2>
      <table id="owners">
        <thead>
          <tr>
            <th>4Degrees user</th>
            <th>HighLevel user</th>
          </tr>
        </thead>
        <tbody>
          {lists.fdUsers.map((u) => (
            <tr data-user={u.id}>
              <td title={u.id}>{userLabel(u)}</td>
              <td>
                <select name={`u.${u.id}`}>
                  <option value="">— match by email, else the default —</option>
                  {hlAlive.map((h) => (
                    <option value={h.id} selected={h.id === chosenFor(u)} title={h.id}>
                      {userLabel(h)}
                    </option>
                  ))}
                </select>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Err errors={errors} k="users" />
      <label class="block">
        Default HighLevel owner for 4Degrees owners with no match{" "}
        <select name="defaultOwner.hl">
          <option value="">— none (leave the owner unset) —</option>
          {hlAlive.map((h) => (
            <option value={h.id} selected={h.id === d.highlevel}>
              {userLabel(h)}
            </option>
          ))}
        </select>
        <Err errors={errors} k="defaultOwner.highlevel" />
      </label>
      <label class="block">
        Default 4Degrees owner for HighLevel owners with no match{" "}
        <select name="defaultOwner.fd">
          <option value="">— none (leave the owner unset) —</option>
          {lists.fdUsers.map((u) => (
            <option value={u.id} selected={u.id === d.fourdegrees}>
              {userLabel(u)}
            </option>
          ))}
        </select>
        <Err errors={errors} k="defaultOwner.fourdegrees" />
      </label>
      <p class="hint">
        A default owner stands in for someone the other side does not have; while it does, that side's owner is not
        synced back (map the default owner above to sync it like anyone else).
      </p>
    </>
  );
}

/** The problems with every known field and user id in their message replaced by its name. */
export function withNames(issues: MappingIssue[], lists: FieldLists): MappingIssue[] {
  const names = new Map<string, string>();
  for (const f of lists.fd) names.set(f.id, `“${f.name}”`);
  for (const f of lists.hl) names.set(f.id, `“${f.name}”`);
  for (const u of lists.fdUsers) names.set(u.id, userLabel(u));
  for (const u of lists.hlUsers) names.set(u.id, userLabel(u));
  for (const [id, name] of lists.locations) names.set(id, `“${name}”`);
  if (names.size === 0) return issues;
  const ids = [...names.keys()]
    .sort((a, b) => b.length - a.length)
    .map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(ids.join("|"), "g");
  return issues.map((i) => ({ ...i, message: i.message.replace(pattern, (id) => names.get(id) ?? id) }));
}

/** The form key an extra-field or owner problem is shown next to (null: not one of these). */
export function fieldsErrorKey(path: string): string | null {
  const f = /^fields\.(\d+)(?:\.(\w+))?/.exec(path);
  if (f) {
    const [, i, key] = f;
    if (key === "fourdegreesFieldId") return `f.${i}.fd`;
    if (key === "highlevelFieldId") return `f.${i}.hl`;
    if (key === "valueMap") return `f.${i}.vm`;
    return `f.${i}.key`;
  }
  if (path.startsWith("users")) return "users";
  if (path.startsWith("defaultOwner.")) return path;
  return null;
}
