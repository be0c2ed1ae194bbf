/**
 * Webhook delivery as the providers do it: one delivery per subscriber per event, signed, sent
 * over HTTP, retried by the provider's policy (HighLevel: only after a 429; 4Degrees: after any
 * non-2xx, with backoff), with seeded drop / duplicate / reorder faults and a readable log.
 *
 * Two modes:
 * - `auto`: deliveries go out at once in the background and retries fire on timers (npm run sandbox).
 * - `manual`: deliveries wait until `flush()` (tests decide when, and in which sandbox time).
 */
import type { Clock } from "./clock.ts";
import type { FaultInjector } from "./faults.ts";

export type DeliveryState = "pending" | "delivered" | "retrying" | "failed" | "dropped";

export interface DeliveryAttempt {
  at: number;
  status: number | null;
  error?: string;
  durationMs: number;
}

export interface WebhookDelivery {
  /** Delivery id (not the event's id: a duplicate has its own delivery id and the same body). */
  id: string;
  subscriber: string;
  eventType: string;
  body: string;
  state: DeliveryState;
  dueAt: number;
  attempts: DeliveryAttempt[];
  /** Set on a fault-injected copy: the delivery it duplicates. */
  duplicateOf?: string;
  reordered?: boolean;
}

export interface DispatcherOptions {
  clock: Clock;
  faults: FaultInjector;
  /** Signs the raw body; returns the headers to send with it. */
  sign: (body: string) => Promise<Record<string, string>>;
  /** The provider's retry policy: delay before the next attempt, or null for "give up". */
  retryDelayMs: (status: number | null, attemptsSoFar: number) => number | null;
  /** How deliveries reach subscribers (tests route this to the Worker in-process). */
  fetch?: (request: Request) => Promise<Response>;
  mode?: "auto" | "manual";
  /** Real-time scale for auto-mode retry timers (0.001 turns 10 minutes into 0.6 s). */
  retryTimeScale?: number;
  /** Abort a delivery attempt after this many ms (counts as a timeout: status null). */
  deliveryTimeoutMs?: number;
  /** Keep at most this many deliveries in the log. */
  logLimit?: number;
}

export class WebhookDispatcher {
  readonly subscribers = new Set<string>();
  mode: "auto" | "manual";
  #log: WebhookDelivery[] = [];
  #inFlight = new Set<Promise<void>>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #seq = 0;
  readonly #o: DispatcherOptions;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.mode = options.mode ?? "auto";
  }

  /** Replaces the fetch used for deliveries (tests: route to the Worker in-process). */
  setFetch(fetchImpl: (request: Request) => Promise<Response>): void {
    this.#o.fetch = fetchImpl;
  }

  /**
   * Queues one event for every subscriber (after faults) — or, with `accepts`, for the subscribers
   * it accepts (a provider's per-subscriber scoping). `body` is the exact JSON to sign and send.
   */
  emit(eventType: string, body: unknown, accepts?: (subscriber: string) => boolean): WebhookDelivery[] {
    const raw = JSON.stringify(body);
    const created: WebhookDelivery[] = [];
    for (const subscriber of this.subscribers) {
      if (accepts && !accepts(subscriber)) continue;
      const fault = this.#o.faults.forDelivery();
      const now = this.#o.clock.now();
      const delivery: WebhookDelivery = {
        id: `dlv_${++this.#seq}`,
        subscriber,
        eventType,
        body: raw,
        state: fault.drop ? "dropped" : "pending",
        dueAt: now + (fault.reorder ? this.#o.faults.settings.webhookReorderDelayMs : 0),
        attempts: [],
        ...(fault.reorder ? { reordered: true } : {}),
      };
      this.#push(delivery);
      created.push(delivery);
      if (fault.duplicate) {
        // Due at the same moment as its original (a reordered original's copy is late too): a
        // flush() right after the change delivers both, even on a clock that has not moved (workerd
        // does not advance time during synchronous code). The copy still goes second: flush() breaks
        // dueAt ties by delivery id, and auto mode sends in creation order.
        const copy: WebhookDelivery = {
          ...delivery,
          id: `dlv_${++this.#seq}`,
          attempts: [],
          duplicateOf: delivery.id,
          dueAt: delivery.dueAt,
        };
        this.#push(copy);
        created.push(copy);
      }
    }
    if (this.mode === "auto")
      for (const d of created) if (d.state === "pending") this.#schedule(d, d.dueAt - this.#o.clock.now());
    return created;
  }

  /**
   * Manual mode: delivers every pending delivery that is due in sandbox time, oldest `dueAt`
   * first (so reordered ones go last), one after another. Returns how many were attempted.
   */
  async flush(): Promise<number> {
    const now = this.#o.clock.now();
    const due = this.#log
      .filter((d) => (d.state === "pending" || d.state === "retrying") && d.dueAt <= now)
      .sort((a, b) => a.dueAt - b.dueAt || a.id.localeCompare(b.id, "en", { numeric: true }));
    for (const d of due) await this.#attempt(d);
    return due.length;
  }

  /** Waits until no delivery is in flight (auto mode). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight);
  }

  /** The delivery log, newest last. */
  log(): readonly WebhookDelivery[] {
    return this.#log;
  }

  /** Pending deliveries (manual mode, or not yet due). */
  pending(): WebhookDelivery[] {
    return this.#log.filter((d) => d.state === "pending" || d.state === "retrying");
  }

  reset(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#log = [];
    this.subscribers.clear();
  }

  #push(d: WebhookDelivery): void {
    this.#log.push(d);
    const limit = this.#o.logLimit ?? 20_000;
    if (this.#log.length > limit) this.#log.splice(0, this.#log.length - limit);
  }

  #schedule(d: WebhookDelivery, sandboxDelayMs: number): void {
    const realDelay = Math.max(0, sandboxDelayMs) * (d.attempts.length > 0 ? (this.#o.retryTimeScale ?? 1) : 1);
    if (realDelay <= 0) {
      this.#track(this.#attempt(d));
      return;
    }
    // A timer only fires for the attempt it was set for: a manual flush() in between may have
    // delivered the delivery already (or failed it again and set a later timer).
    const attemptsAtSchedule = d.attempts.length;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if ((d.state === "pending" || d.state === "retrying") && d.attempts.length === attemptsAtSchedule)
        this.#track(this.#attempt(d));
    }, realDelay);
    this.#timers.add(timer);
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async #attempt(d: WebhookDelivery): Promise<void> {
    const started = this.#o.clock.now();
    const realStart = Date.now();
    let status: number | null = null;
    let error: string | undefined;
    try {
      const headers = await this.#o.sign(d.body);
      const request = new Request(d.subscriber, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "sandbox-webhooks/1", ...headers },
        body: d.body,
        signal: AbortSignal.timeout(this.#o.deliveryTimeoutMs ?? 10_000),
      });
      const res = await (this.#o.fetch ?? fetch)(request);
      status = res.status;
      await res.body?.cancel();
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    d.attempts.push({ at: started, status, durationMs: Date.now() - realStart, ...(error ? { error } : {}) });
    if (status !== null && status >= 200 && status < 300) {
      d.state = "delivered";
      return;
    }
    const delay = this.#o.retryDelayMs(status, d.attempts.length);
    if (delay === null) {
      d.state = "failed";
      return;
    }
    d.state = "retrying";
    d.dueAt = this.#o.clock.now() + delay;
    if (this.mode === "auto") this.#schedule(d, delay);
  }
}
