/** `GET /opportunities/pipelines` (ghl/apps/opportunities.json; the same in v3): a location's pipelines and stages. */
import type { Hono } from "hono";
import { unprocessable } from "../errors.ts";
import { renderPipeline } from "../render.ts";
import { checkQuery, OPP_READ_V3, send } from "./shared.ts";
import type { RouteDeps, Vars } from "./shared.ts";

/** Registers the pipelines route (before the opportunity routes, whose `/opportunities/:id` would match it). */
export function registerPipelineRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { store, guard, assertLocation } = d;

  app.get("/opportunities/pipelines", guard(OPP_READ_V3), (c) => {
    const q = checkQuery(c, ["locationId"]);
    if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
    assertLocation(c, q.locationId);
    return send(c, { pipelines: store.pipelinesOf(q.locationId).map(renderPipeline) });
  });
}
