/**
 * Names for the console's labels: records, HighLevel locations, 4Degrees pipelines, stages and
 * users. A label shows the name and keeps the id in its `title` (hover) and in `data-id`, so every
 * page speaks in names while ids stay findable; an unknown name says what the thing is instead.
 */
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import { highLevelPort } from "../../highlevel/adapter.ts";
import type { RecordNames } from "../../store/console-views.ts";
import { fourDegreesConnectorFor, gateKey } from "../../fourdegrees/wiring.ts";
import { CachedStructureCrm } from "../../fourdegrees/cached-crm.ts";
import type { DealCrm, Pipeline, User } from "../../domain/port.ts";

/** HighLevel location names by id (a location whose name cannot be read is absent). */
export async function locationNames(c: Context<AppEnv>, ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    [...new Set(ids)].map(async (id) => {
      try {
        const name = await highLevelPort(c.env, c.var.config, id, "live").locationName();
        if (name) out.set(id, name);
      } catch {
        // No connection or no scope: the label falls back to "HighLevel location" with the id on hover.
      }
    }),
  );
  return out;
}

/** A name with its id on hover. */
export const Named = ({ name, id, fallback }: { name: string | null | undefined; id: string; fallback: string }) => (
  <span title={id} data-id={id}>
    {name || fallback}
  </span>
);

/** A HighLevel location by name. */
export const LocationLabel = ({ id, names }: { id: string; names: Map<string, string> }) => (
  <Named name={names.get(id)} id={id} fallback="HighLevel location (name unavailable)" />
);

/** The label of a record (or a linked pair): its name, both ids on hover. */
export function recordLabel(
  names: RecordNames,
  fdId: string | null | undefined,
  hlId: string | null | undefined,
): { text: string; title: string } {
  const name = (fdId && names.fourdegrees.get(fdId)) || (hlId && names.highlevel.get(hlId)) || null;
  const title = [fdId && `4Degrees deal ${fdId}`, hlId && `HighLevel opportunity ${hlId}`].filter(Boolean).join(" ↔ ");
  const kind = fdId && hlId ? "linked pair" : fdId ? "4Degrees deal" : "HighLevel opportunity";
  return { text: name ?? `unnamed ${kind}`, title };
}

/** Whether a record matches a search (part of its name or one of its ids, case-insensitive). */
export function matchesSearch(q: string, name: string | null, ...ids: Array<string | null | undefined>): boolean {
  const needle = q.trim().toLowerCase();
  if (!needle) return true;
  return (name ?? "").toLowerCase().includes(needle) || ids.some((id) => id && id.toLowerCase() === needle);
}

/** The 4Degrees pipelines and users of an account. */
export interface FourDegreesStructure {
  pipelines: Pipeline[];
  users: User[];
}

/** The account's 4Degrees connector behind the structure cache the engine shares (pipelines, users, fields). */
export async function cachedFourDegrees(c: Context<AppEnv>, accountId: string): Promise<DealCrm> {
  const { connector, credentials } = await fourDegreesConnectorFor(c.env, c.var.config, accountId, "live");
  return new CachedStructureCrm(connector, c.env.CACHE, gateKey(credentials));
}

/** The 4Degrees pipelines and users (for names in the snapshot), empty when they cannot be read. */
export async function fourDegreesStructure(c: Context<AppEnv>, accountId: string): Promise<FourDegreesStructure> {
  try {
    const fd = await cachedFourDegrees(c, accountId);
    return { pipelines: await fd.listPipelines(), users: await fd.listUsers() };
  } catch {
    return { pipelines: [], users: [] };
  }
}

/** A merge-base value for people: pipeline, stage and owner by name (their ids stay in the title). */
export function baseValue(key: string, v: unknown, s: FourDegreesStructure): string {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") return JSON.stringify(v);
  const text = String(v);
  if (key === "pipeline") return s.pipelines.find((p) => p.id === text)?.name ?? text;
  if (key === "stage") return s.pipelines.flatMap((p) => p.stages).find((st) => st.id === text)?.name ?? text;
  if (key === "owner" && text.startsWith("4d:")) {
    const u = s.users.find((x) => x.id === text.slice(3));
    return u?.name ?? u?.email ?? "a user not found";
  }
  if (key === "owner") {
    const u = s.users.find((x) => x.email?.toLowerCase() === text.toLowerCase());
    return u?.name ? `${u.name} (${text})` : text;
  }
  return text;
}
