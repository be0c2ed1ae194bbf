/** A small keyed concurrency pool (no dependencies). */

/**
 * Runs `work` over `items`, at most `limit` at a time, in order of start; resolves with the
 * results in item order. Items with the same `keyOf` never run at the same time (they run one
 * after another, in their order). Used by the backfill (a page's records, keyed by the name they
 * are matched on: two same-named records in flight together could both claim one match) and by the
 * queue consumer (a batch's record jobs, keyed by record).
 * Stops starting new items once `stop()` says so or one throws; every started item is awaited
 * before resolving or rethrowing the first error, so a retried page never runs beside the remains
 * of its failed attempt (two creates of one record at once).
 */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  keyOf: (item: T) => string,
  work: (item: T) => Promise<R>,
  stop: (r: R) => boolean,
): Promise<R[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  });
  const queue = [...groups.values()];
  const results: R[] = [];
  let next = 0;
  let halted = false;
  const errors: unknown[] = [];
  const worker = async () => {
    while (!halted && next < queue.length) {
      const group = queue[next++] ?? [];
      for (const i of group) {
        if (halted) break;
        const item = items[i];
        if (item === undefined) continue;
        try {
          const r = await work(item);
          results[i] = r;
          if (stop(r)) halted = true;
        } catch (err) {
          errors.push(err);
          halted = true;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
  if (errors.length > 0) throw errors[0];
  return results;
}
