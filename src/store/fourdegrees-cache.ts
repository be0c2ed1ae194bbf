/**
 * The KV entries of a 4Degrees workspace's structure (`v1:4d:*`, keys and TTLs in kv-keys.ts), read
 * and filled by src/fourdegrees/cached-crm.ts. KV is eventually consistent and has no
 * compare-and-set: fine for structure, which is only a hint. Values are parsed with zod on read, so
 * a malformed or old-shaped entry reads as a miss.
 */
import * as z from "zod";
import { FieldDefSchema, PipelineSchema, UserSchema, type FieldDef, type Pipeline, type User } from "../domain/port.ts";
import { cached, writeCache } from "./highlevel-cache.ts";
import { kvKeys, kvTtl } from "./kv-keys.ts";

const Pipelines = z.array(PipelineSchema);
const Users = z.array(UserSchema);
const Fields = z.array(FieldDefSchema);

/** The workspace's pipelines (with stages) from KV, or from `load` on a miss (then cached). */
export function cachedPipelines(
  kv: KVNamespace,
  workspace: string,
  load: () => Promise<Pipeline[]>,
): Promise<Pipeline[]> {
  return cached(kv, kvKeys.fdPipelines(workspace), kvTtl.fdPipelines, Pipelines, load);
}

/** The workspace's users from KV, or from `load` on a miss (then cached). */
export function cachedUsers(kv: KVNamespace, workspace: string, load: () => Promise<User[]>): Promise<User[]> {
  return cached(kv, kvKeys.fdUsers(workspace), kvTtl.fdUsers, Users, load);
}

/** A pipeline's custom fields from KV, or from `load` on a miss (then cached). */
export function cachedFields(
  kv: KVNamespace,
  workspace: string,
  pipelineId: string,
  load: () => Promise<FieldDef[]>,
): Promise<FieldDef[]> {
  return cached(kv, kvKeys.fdFields(workspace, pipelineId), kvTtl.fdFields, Fields, load);
}

/** Replaces the cached pipelines and users with freshly read ones. */
export async function replaceStructure(
  kv: KVNamespace,
  workspace: string,
  pipelines: Pipeline[],
  users: User[],
): Promise<void> {
  await Promise.all([
    writeCache(kv, kvKeys.fdPipelines(workspace), pipelines, kvTtl.fdPipelines),
    writeCache(kv, kvKeys.fdUsers(workspace), users, kvTtl.fdUsers),
  ]);
}
