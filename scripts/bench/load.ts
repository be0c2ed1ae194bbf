/**
 * Load generation with autocannon against the local Worker: a fixed-duration run (ingress
 * throughput and p99) and a fixed-amount burst of signed HighLevel webhooks (every answer's status
 * kept, so the burst can prove each one was acknowledged).
 */
import autocannon from "autocannon";
import { z } from "zod";
import { signedHighLevelWebhook } from "./stack.ts";

const Result = z.object({
  requests: z.object({ average: z.number(), total: z.number() }),
  latency: z.object({ p50: z.number(), p99: z.number(), max: z.number() }),
  duration: z.number(),
  non2xx: z.number(),
  errors: z.number(),
  timeouts: z.number(),
});

export interface LoadResult {
  /** Requests per second (autocannon's per-second average). */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  total: number;
  non2xx: number;
  errors: number;
  durationS: number;
}

function toLoad(raw: unknown): LoadResult {
  const r = Result.parse(raw);
  return { rps: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, total: r.requests.total, non2xx: r.non2xx, errors: r.errors + r.timeouts, durationS: r.duration };
}

/** `GET /ping` (the trivial route) for `seconds` with `connections` concurrent connections. */
export async function loadTrivial(workerUrl: string, seconds: number, connections: number): Promise<LoadResult> {
  return toLoad(await autocannon({ url: `${workerUrl}/ping`, connections, duration: seconds }));
}

/**
 * Makes signed webhooks with unique ids over `opportunityIds` (round robin); `type` defaults to
 * `OpportunityUpdate` (a type the sync engine ignores makes its consumer ack at once).
 */
export function webhookFactory(locationId: string, opportunityIds: readonly string[], prefix: string, type?: string): () => { body: string; headers: Record<string, string> } {
  let n = 0;
  return () => {
    const i = n++;
    return signedHighLevelWebhook({ locationId, opportunityId: opportunityIds[i % opportunityIds.length] ?? "missing", webhookId: `${prefix}-${i}`, ...(type === undefined ? {} : { type }) });
  };
}

/**
 * Deliveries whose signature is a real Ed25519 signature of another body: the Worker runs the whole
 * verification and answers 401 (the ingress breakdown's "signature only" variant).
 */
export function forgedWebhookFactory(locationId: string, prefix: string): () => { body: string; headers: Record<string, string> } {
  let n = 0;
  return () => {
    const real = signedHighLevelWebhook({ locationId, opportunityId: "forged", webhookId: `${prefix}-${n++}` });
    const other = signedHighLevelWebhook({ locationId, opportunityId: "forged-other", webhookId: `${prefix}-${n++}` });
    return { body: real.body, headers: other.headers };
  };
}

/** Valid deliveries that all carry the same `webhookId` (after the first: signature + one D1 insert, answered "duplicate"). */
export function duplicateWebhookFactory(locationId: string, opportunityId: string, webhookId: string): () => { body: string; headers: Record<string, string> } {
  return () => signedHighLevelWebhook({ locationId, opportunityId, webhookId });
}

/** Deliveries signed beforehand per second of load: above what this machine's Worker answers (~1,000 req/s). */
const PRESIGNED_PER_SECOND = 2_000;

/**
 * Signs `count` deliveries of `next` before the load starts, then hands them out in order (and signs
 * on the fly past the end). The load generator shares the machine with the Worker: signing each
 * request inside autocannon's loop (an Ed25519 signature, two for the forged variant) took CPU from
 * the Worker under test and capped the webhook variants, not the route. Timestamps stay fresh: the
 * whole run is seconds, far inside the Worker's 5-minute window.
 */
export function presigned(next: () => { body: string; headers: Record<string, string> }, count: number): () => { body: string; headers: Record<string, string> } {
  const ready = Array.from({ length: count }, next);
  let i = 0;
  return () => ready[i++] ?? next();
}

/** `POST /webhooks/highlevel` with real signed bodies (unique webhookIds, fresh timestamps), signed before the load. */
export async function loadWebhooks(workerUrl: string, seconds: number, connections: number, make: () => { body: string; headers: Record<string, string> }): Promise<LoadResult> {
  const next = presigned(make, Math.ceil(seconds * PRESIGNED_PER_SECOND));
  return toLoad(
    await autocannon({
      url: workerUrl,
      connections,
      duration: seconds,
      requests: [
        {
          method: "POST",
          path: "/webhooks/highlevel",
          setupRequest: (req) => ({ ...req, ...next() }),
        },
      ],
    }),
  );
}

/** Sends exactly `amount` signed webhooks as fast as autocannon can; counts answers by status and body status. */
export async function burstWebhooks(workerUrl: string, amount: number, connections: number, make: () => { body: string; headers: Record<string, string> }): Promise<LoadResult & { byStatus: Record<string, number> }> {
  const next = presigned(make, amount);
  const byStatus: Record<string, number> = {};
  const raw = await autocannon({
    url: workerUrl,
    connections,
    amount,
    requests: [
      {
        method: "POST",
        path: "/webhooks/highlevel",
        setupRequest: (req) => ({ ...req, ...next() }),
        onResponse: (status, body) => {
          const inner = /"status":"([a-z]+)"/.exec(body)?.[1] ?? "";
          const key = `${status}${inner ? ` ${inner}` : ""}`;
          byStatus[key] = (byStatus[key] ?? 0) + 1;
        },
      },
    ],
  });
  return { ...toLoad(raw), byStatus };
}
