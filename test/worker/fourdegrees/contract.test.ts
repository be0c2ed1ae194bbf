/**
 * Contract test: every call of the 4Degrees client/connector against the 4Degrees sandbox (the
 * assumed contract's faithful fake, in-process), so the client and the sandbox cannot drift apart.
 * The client's waits (429 Retry-After) advance the sandbox clock, so its rate limit is really met.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { FourDegreesClient, passThroughGate } from "../../../src/fourdegrees/client.ts";
import { FourDegreesConnector } from "../../../src/fourdegrees/connector.ts";
import { TEST_BINDINGS } from "../../bindings.ts";
import { useNetwork } from "../helpers/network.ts";

const sandbox = createSandbox({
  webhookMode: "manual",
  settings: {
    FOURDEGREES_API_KEY: TEST_BINDINGS.FOURDEGREES_API_KEY,
    FOURDEGREES_WEBHOOK_SECRET: TEST_BINDINGS.FOURDEGREES_WEBHOOK_SECRET,
  },
});
const connector = new FourDegreesConnector(
  new FourDegreesClient({
    baseUrl: TEST_BINDINGS.FOURDEGREES_API_BASE,
    apiKey: TEST_BINDINGS.FOURDEGREES_API_KEY,
    gate: passThroughGate,
    sleep: async (ms) => sandbox.clock.advance(ms),
  }),
);

describe("4Degrees client ↔ sandbox contract", () => {
  useNetwork({ "sandbox.test": (r) => sandbox.fetch(r) });
  beforeAll(async () => {
    await sandbox.seedDemo();
  });

  it("happy: whoAmI, pipelines, users, fields", async () => {
    const me = await connector.whoAmI();
    expect(me.actor.type).toBe("integration");
    expect(me.scopeId).toMatch(/\S/);
    const pipelines = await connector.listPipelines();
    expect(pipelines.length).toBeGreaterThan(0);
    expect(pipelines[0]!.stages.length).toBeGreaterThan(0);
    expect((await connector.listUsers()).length).toBeGreaterThan(0);
    expect(Array.isArray(await connector.listFields(pipelines[0]!.id))).toBe(true);
  });

  it("happy: pages every deal with cursors, and reads one", async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await connector.pageDeals({ updatedSince: "2000-01-01T00:00:00Z", cursor, limit: 2 });
      ids.push(...page.items.map((d) => d.id ?? ""));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 500);
    expect(ids.length).toBeGreaterThan(2);
    expect(new Set(ids).size).toBe(ids.length);
    const one = await connector.getDeal(ids[0]!);
    expect(one?.id).toBe(ids[0]);
    expect(await connector.getDeal("deal_does_not_exist")).toBeNull();
  });

  it("happy: create (idempotent replay), update with a stale version (409 → re-apply), notes, archive", async () => {
    const [pipeline] = await connector.listPipelines();
    const stages = pipeline!.stages;
    const content = {
      name: "Contract Deal",
      pipeline: { id: pipeline!.id, name: null },
      stage: { id: stages[0]!.id, name: null },
      status: null,
      owner: null,
      value: { amountMinor: 123_45, currency: "USD" },
      expectedCloseDate: "2027-01-31",
      companyId: null,
      contacts: [],
      tags: ["contract"],
      fields: {},
      externalRefs: [{ system: "highlevel", id: "opp_contract" }],
    };
    const created = await connector.createDeal(content, { idempotencyKey: "contract-create-1" });
    const replay = await connector.createDeal(content, { idempotencyKey: "contract-create-1" });
    expect(replay.id).toBe(created.id);
    expect(created).toMatchObject({
      name: "Contract Deal",
      value: { amountMinor: 12_345 },
      externalRefs: [{ system: "highlevel", id: "opp_contract" }],
    });

    const renamed = await connector.updateDeal(created.id!, { name: "Renamed" }, { expectedVersion: created.version! });
    const moved = await connector.updateDeal(
      created.id!,
      { stage: { id: stages[stages.length - 1]!.id, name: null } },
      { expectedVersion: created.version! },
    );
    expect(moved).toMatchObject({ name: "Renamed", stage: { id: stages[stages.length - 1]!.id } });
    expect(Number(moved.version)).toBeGreaterThan(Number(renamed.version));

    const note = await connector.createNote(created.id!, "first");
    expect((await connector.listNotes(created.id!)).map((n) => n.id)).toContain(note.id);
    expect((await connector.updateNote(note.id, "edited")).body).toBe("edited");
    expect(await connector.deleteNote(note.id)).toBe(true);

    expect(await connector.archiveDeal(created.id!)).toBe(true);
    expect((await connector.getDeal(created.id!))?.archivedAt ?? "gone").toBeTruthy();
  });

  it("error: the sandbox's validation envelope maps to a permanent error", async () => {
    const [pipeline] = await connector.listPipelines();
    const err = await connector
      .createDeal({
        name: "Bad",
        pipeline: { id: pipeline!.id, name: null },
        stage: { id: "st_nope", name: null },
        status: null,
        owner: null,
        value: null,
        expectedCloseDate: null,
        companyId: null,
        contacts: [],
        tags: [],
        fields: {},
        externalRefs: [],
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ retryable: false });
    expect([400, 404, 422]).toContain((err as { upstreamStatus: number }).upstreamStatus);
  });
});
