/**
 * `npm run deploy` prints the scopes to enter in the HighLevel Marketplace app
 * (scripts/lib/deploy.ts); they must be the ones the Worker's install link asks for.
 */
import { describe, expect, it } from "vitest";
import { HIGHLEVEL_SCOPES } from "../../../scripts/lib/deploy.ts";
import { scopesFor } from "../../../src/highlevel/oauth.ts";

describe("scopes printed by npm run deploy", () => {
  it("equal the scopes the Worker requests, in both sync modes", () => {
    expect([...HIGHLEVEL_SCOPES["two-way"]]).toEqual(scopesFor("two-way"));
    expect([...HIGHLEVEL_SCOPES["read-only"]]).toEqual(scopesFor("read-only"));
  });
});
