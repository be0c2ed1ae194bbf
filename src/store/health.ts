/** Binding probes for `GET /api/health`: each answers ok or the reason it cannot be reached. */
export interface ProbeResult {
  ok: boolean;
  detail?: string;
}

async function probe(fn: () => Promise<string | undefined>): Promise<ProbeResult> {
  try {
    const detail = await fn();
    return detail === undefined ? { ok: true } : { ok: true, detail };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

/** D1: reachable and migrated (the `d1_migrations` table lists what is applied). */
export function probeDatabase(db: D1Database): Promise<ProbeResult> {
  return probe(async () => {
    const row = await db.prepare("SELECT COUNT(*) AS n FROM d1_migrations").first<{ n: number }>();
    return `${row?.n ?? 0} migrations applied`;
  });
}

/** KV: a read of a key that never exists. */
export function probeCache(kv: KVNamespace): Promise<ProbeResult> {
  return probe(async () => {
    await kv.get("v1:health:probe");
    return undefined;
  });
}
