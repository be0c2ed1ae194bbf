/**
 * The three-way merge (pure). Base = the canonical record as last synced (both sides agreed on it);
 * `fourdegrees` / `highlevel` = each side re-read now, translated to canonical.
 *
 * Per flat key:
 * - unchanged on both sides → nothing;
 * - changed on one side → flows to the other, if the field's direction allows it (else the base
 *   keeps its old value, so the change is seen again but never written);
 * - changed on both to the same value → converged, nothing to write;
 * - changed on both to different values → a conflict, resolved by the account's policy (`newest`:
 *   the side whose record changed last wins, ties → 4Degrees; or a fixed side) and reported.
 *
 * Why this is also the echo guard: after the engine writes side B, base = what it wrote. When B's
 * webhook for that write arrives, B re-reads equal to base → "unchanged" → no write back.
 */
import { allowsTo, directionOf } from "./mapping.ts";
import type { Flat } from "../../domain/port.ts";
import type { Mapping } from "../../domain/mapping-config.ts";

export type ConflictPolicy = "newest" | "fourdegrees" | "highlevel";
export type Side = "fourdegrees" | "highlevel";

export interface Conflict {
  field: string;
  base: unknown;
  fourdegrees: unknown;
  highlevel: unknown;
  winner: Side | "none";
}

export interface MergeInput {
  /** `null` when the pair has never been synced (backfill match): every difference is a conflict. */
  base: Flat | null;
  fourdegrees: Flat;
  highlevel: Flat;
  /** Each side's last change time (ISO), for `newest`. */
  fourdegreesUpdatedAt: string | null;
  highlevelUpdatedAt: string | null;
  policy: ConflictPolicy;
  mapping: Mapping;
  /** Sides that may not be written (read-only mode disables `highlevel`). */
  readOnly?: ReadonlySet<Side>;
}

export interface MergeResult {
  /** The agreed record after the writes (the next base). */
  merged: Flat;
  /** Keys to write to HighLevel / 4Degrees (their values are in `merged`). */
  toHighLevel: Set<string>;
  toFourDegrees: Set<string>;
  conflicts: Conflict[];
}

/** Structural equality for flat values (scalars, null, string arrays). */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((a === undefined || a === null) && (b === undefined || b === null)) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i]));
  return false;
}

function newestSide(fd: string | null, hl: string | null): Side {
  const f = fd ? Date.parse(fd) : NaN;
  const h = hl ? Date.parse(hl) : NaN;
  if (Number.isFinite(h) && (!Number.isFinite(f) || h > f)) return "highlevel";
  return "fourdegrees";
}

/** Merges the two sides against the base. Pure: same input, same output. */
export function merge(input: MergeInput): MergeResult {
  const { base, fourdegrees: fd, highlevel: hl, mapping, policy } = input;
  const merged: Flat = {};
  const toHighLevel = new Set<string>();
  const toFourDegrees = new Set<string>();
  const conflicts: Conflict[] = [];
  const canWrite = (target: Side, key: string) =>
    allowsTo(directionOf(mapping, key), target) && !input.readOnly?.has(target);

  // Only keys both sides can express are compared (a side that cannot tell a contact's email, say).
  const keys = Object.keys(fd).filter((k) => k in hl);
  for (const key of keys) {
    const f = fd[key];
    const h = hl[key];
    const b = base ? base[key] : undefined;
    const direction = directionOf(mapping, key);
    if (direction === "off") {
      merged[key] = base && key in base ? b : f;
      continue;
    }
    if (same(f, h)) {
      merged[key] = f;
      continue;
    }
    const fdChanged = base === null || !(key in base) || !same(f, b);
    const hlChanged = base === null || !(key in base) || !same(h, b);
    if (fdChanged && !hlChanged) {
      if (canWrite("highlevel", key)) {
        merged[key] = f;
        toHighLevel.add(key);
      } else merged[key] = b;
      continue;
    }
    if (hlChanged && !fdChanged) {
      if (canWrite("fourdegrees", key)) {
        merged[key] = h;
        toFourDegrees.add(key);
      } else merged[key] = b;
      continue;
    }
    // Both changed, differently: the policy picks a winner the direction allows to flow.
    const preferred: Side =
      policy === "newest" ? newestSide(input.fourdegreesUpdatedAt, input.highlevelUpdatedAt) : policy;
    const order: Side[] = preferred === "fourdegrees" ? ["fourdegrees", "highlevel"] : ["highlevel", "fourdegrees"];
    const winner = order.find((s) => canWrite(s === "fourdegrees" ? "highlevel" : "fourdegrees", key));
    conflicts.push({ field: key, base: b ?? null, fourdegrees: f, highlevel: h, winner: winner ?? "none" });
    if (winner === "fourdegrees") {
      merged[key] = f;
      toHighLevel.add(key);
    } else if (winner === "highlevel") {
      merged[key] = h;
      toFourDegrees.add(key);
    } else merged[key] = b ?? f;
  }
  // Keys one side cannot express keep their base value (so they are not forgotten).
  if (base) for (const [k, v] of Object.entries(base)) if (!(k in merged)) merged[k] = v;
  coupleStageAndStatus(merged, fd, hl, toHighLevel, toFourDegrees);
  return { merged, toHighLevel, toFourDegrees, conflicts };
}

/**
 * Stage and status are one fact on 4Degrees (the stage's kind) but two on HighLevel; after a merge
 * they must describe one consistent record. If `status` came from one side and `stage` from the
 * other (e.g. HighLevel closed the deal while 4Degrees moved its stage), the status wins and the
 * stage follows it: a closed record has no canonical stage, and reopening takes the side's stage.
 */
function coupleStageAndStatus(merged: Flat, fd: Flat, hl: Flat, toHl: Set<string>, toFd: Set<string>): void {
  if (merged["status"] !== "open") {
    if (merged["stage"] !== null && merged["stage"] !== undefined) {
      merged["stage"] = null;
      toHl.delete("stage");
      toFd.delete("stage");
    }
    return;
  }
  if (merged["stage"] === null || merged["stage"] === undefined) {
    // Reopened: take the stage from the side that reopened it.
    const source = toFd.has("status") ? hl : fd;
    merged["stage"] = source["stage"] ?? null;
    if (toFd.has("status")) toFd.add("stage");
    if (toHl.has("status")) toHl.add("stage");
  }
}

/** Two flat records hold the same values on every key either has. */
export function sameFlat(a: Flat, b: Flat): boolean {
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (!same(a[k], b[k])) return false;
  return true;
}
