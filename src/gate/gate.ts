/**
 * `AccountGate`: one Durable Object per HighLevel location (`hl:{locationId}`) and per 4Degrees
 * workspace (`4d:{workspaceId}`). A single-threaded home for the per-account rate budget and the
 * single-flight OAuth refresh (see issue "HighLevel connector"). SQLite-backed, typed RPC.
 */
import { DurableObject } from "cloudflare:workers";

export class AccountGate extends DurableObject<Env> {
  /** Liveness probe for `/healthz`: answers the object's clock. */
  async ping(): Promise<number> {
    return Date.now();
  }
}
