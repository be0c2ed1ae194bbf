/** `/users/*`: a location's users, and one user by id. */
import type { Hono } from "hono";
import { GhlError, unprocessable } from "../errors.ts";
import { renderUser } from "../render.ts";
import { checkQuery, pathParam, send, tokenOf } from "./shared.ts";
import type { Guard, RouteDeps, Vars } from "./shared.ts";

const USERS_READ: Guard = { auth: "any", scope: "users.readonly" };

/** Registers the user routes. */
export function registerUserRoutes(app: Hono<Vars>, d: RouteDeps): void {
  const { store, guard, assertLocation } = d;

  for (const path of ["/users/", "/users"]) {
    app.get(path, guard(USERS_READ), (c) => {
      const q = checkQuery(c, ["locationId"]);
      if (!q.locationId) throw unprocessable(["locationId should not be empty"]);
      assertLocation(c, q.locationId);
      return send(c, { users: store.usersOf(q.locationId).map(renderUser) });
    });
  }

  app.get("/users/:userId", guard(USERS_READ), (c) => {
    const u = store.users.get(pathParam(c, "userId"));
    const t = tokenOf(c);
    if (!u || (t.userType === "Location" ? !u.locationIds.includes(t.locationId!) : u.companyId !== t.companyId))
      throw new GhlError(400, "User not found");
    return send(c, renderUser(u));
  });
}
