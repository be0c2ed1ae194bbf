/** `/locations/*`: a location, and its custom fields (a location sub-resource in HighLevel's API, hence here). */
import type { Hono } from "hono";
import { unprocessable } from "../errors.ts";
import { renderCustomField } from "../render.ts";
import { checkQuery, pathParam, send } from "./shared.ts";
import type { RouteDeps, Vars } from "./shared.ts";

/** Registers the location routes. */
export function registerLocationRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { service, store, guard, assertLocation } = d;

  app.get(
    "/locations/:locationId/customFields",
    guard({ auth: "Location", scope: "locations/customFields.readonly" }),
    (c) => {
      const q = checkQuery(c, ["model"]);
      const locationId = pathParam(c, "locationId");
      assertLocation(c, locationId);
      // Unless asked for, HighLevel lists contact fields only: pass model=opportunity (or all).
      const model = q.model ?? "contact";
      if (!["contact", "opportunity", "all"].includes(model))
        throw unprocessable(["model must be one of the following values: contact, opportunity, all"]);
      return send(c, {
        customFields: store
          .customFieldsOf(locationId, model === "all" ? undefined : (model as "contact" | "opportunity"))
          .map(renderCustomField),
      });
    },
  );

  app.get("/locations/:locationId", guard({ auth: "any", scope: "locations.readonly" }), (c) => {
    const l = service.location(pathParam(c, "locationId"));
    assertLocation(c, l.id);
    return send(c, {
      location: { id: l.id, companyId: l.companyId, name: l.name, address: l.address, timezone: l.timezone },
    });
  });
}
