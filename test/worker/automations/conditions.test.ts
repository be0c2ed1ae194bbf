/**
 * Conditions, through the sandboxes: one change, one rule per condition kind (each fires or not by
 * its condition alone), plus the field-set trigger's `equals` and `crosses` forms.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MappingSchema } from "../../../src/domain/mapping-config.ts";
import type { Condition } from "../../../src/domain/automation-rule.ts";
import { saveMapping } from "../../../src/store/accounts.ts";
import { useNetwork, type RouteHandler } from "../helpers/network.ts";
import { newDeal } from "../sync/checks.ts";
import { ACCOUNT, createWorld } from "../sync/world.ts";
import { addRule, hlIdOf, tasksOf } from "./helpers.ts";

const routes: Record<string, RouteHandler> = {};
useNetwork(routes);

describe("conditions", () => {
  it("pipeline, stage, owner, value range, side and field equals/contains each decide alone", async () => {
    const w = await createWorld(routes);
    const hlRound =
      [...w.sb.highlevel.store.customFields.values()].find((f) => f.name === "Round" && f.locationId === w.locationId)
        ?.id ?? "";
    const fdRound = w.sb.fourdegrees.store.fieldsOf(w.fdPipelineId).find((f) => f.name === "Round")?.id ?? "";
    const mapping = MappingSchema.parse({
      ...w.mapping,
      fields: [{ key: "round", fourdegreesFieldId: fdRound, highlevelFieldId: hlRound, direction: "both" }],
    });
    await saveMapping(env.DB, ACCOUNT, mapping);
    const fdPipelineName = w.sb.fourdegrees.store.pipelines.get(w.fdPipelineId)?.name ?? "";
    const hlPipelineName = w.sb.highlevel.store.pipelines.get(w.hlPipelineId)?.name ?? "";
    const owner = [...w.sb.fourdegrees.store.users.values()].find((u) => u.email === "priya.shah@acmecapital.example");
    const cases: Array<[string, Condition]> = [
      ["pipeline (4D name) yes", { kind: "pipeline", name: fdPipelineName }],
      ["pipeline (HL name) yes", { kind: "pipeline", name: hlPipelineName }],
      ["pipeline no", { kind: "pipeline", name: "Other pipeline" }],
      ["stage yes", { kind: "stage", name: "Due Diligence" }],
      ["stage no", { kind: "stage", name: "Sourced" }],
      ["owner yes", { kind: "owner", email: "Priya.Shah@acmecapital.example" }],
      ["owner no", { kind: "owner", email: "jordan.lee@acmecapital.example" }],
      ["value yes", { kind: "value", min: 1_000_00, max: 2_000_000_00 }],
      ["value no", { kind: "value", min: 3_000_000_00, max: null }],
      ["side yes", { kind: "side", side: "highlevel" }],
      ["side no", { kind: "side", side: "fourdegrees" }],
      ["field equals yes", { kind: "field", field: "round", op: "equals", value: "series a" }],
      ["field contains yes", { kind: "field", field: "round", op: "contains", value: "ries" }],
      ["field equals no", { kind: "field", field: "round", op: "equals", value: "Seed" }],
    ];
    for (const [title, condition] of cases)
      await addRule({
        name: title,
        trigger: { kind: "stage_entered", stage: "Due Diligence" },
        conditions: [condition],
        actions: [{ kind: "hl_task", title }],
      });
    await addRule({
      name: "round is Series A",
      trigger: { kind: "field_set", field: "round", equals: "Series A" },
      actions: [{ kind: "hl_task", title: "equals" }],
    });
    await addRule({
      name: "round is Seed",
      trigger: { kind: "field_set", field: "round", equals: "Seed" },
      actions: [{ kind: "hl_task", title: "never" }],
    });

    const deal = newDeal(w, { name: "Cond", stage: "Sourced", amountMinor: 1_500_000_00, ownerId: owner?.id ?? null });
    w.sb.fourdegrees.updateDealAsUser(deal.id, { fields: { [fdRound]: "Series A" } });
    await w.settle();
    expect((await tasksOf(w)).map((t) => t.title)).toEqual(["equals"]);
    const hlId = await hlIdOf(w, deal.id);
    w.sb.highlevel.service.updateOpportunity(hlId, { pipelineStageId: w.hlStage("Due Diligence") });
    await w.settle();
    const fired = (await tasksOf(w))
      .map((t) => t.title)
      .filter((t) => t !== "equals")
      .sort();
    expect(fired).toEqual(
      cases
        .map(([t]) => t)
        .filter((t) => t.endsWith("yes"))
        .sort(),
    );
  });
});
