/** The only module that touches the `GATE` namespace: names and stubs of per-account gates. */
export type GateKind = "hl" | "4d" | "health";

/** The gate for one account: `hl` + HighLevel locationId, or `4d` + 4Degrees workspace id. */
export function gateStub(env: Env, kind: GateKind, id: string): DurableObjectStub<import("./gate.ts").AccountGate> {
  return env.GATE.get(env.GATE.idFromName(`${kind}:${id}`));
}
