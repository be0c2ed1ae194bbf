/** End to end against the HighLevel sandbox (sandbox/), in-process: install → callback → encrypted row. */
import { exports, env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createSandbox } from "../../../sandbox/index.ts";
import { getConnection, locationConnectionId } from "../../../src/store/connections.ts";
import { beginInstall } from "../helpers/install.ts";
import { useNetwork } from "../helpers/network.ts";

const sb = createSandbox({ webhookMode: "manual" });
const net = useNetwork({ "sandbox.test": (r) => sb.fetch(r) });

describe("against the sandbox", () => {
  it("happy: install → chooselocation → callback stores an encrypted, active connection", async () => {
    await sb.seedDemo();
    const { authorize, cookie } = await beginInstall();
    const page = await (await sb.fetch(new Request(authorize))).text();
    const requestId = /name="request_id" value="([^"]+)"/.exec(page)?.[1] ?? "";
    const location = /name="location" value="(location:[^"]+)"/.exec(page)?.[1] ?? "";
    expect(requestId).not.toBe("");
    expect(location).not.toBe("");
    const chosen = await sb.fetch(
      new Request(new URL("chooselocation", authorize).toString(), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ request_id: requestId, location, decision: "approve" }).toString(),
        redirect: "manual",
      }),
    );
    expect(chosen.status).toBe(302);
    const callback = chosen.headers.get("location") ?? "";
    const done = await exports.default.fetch(callback, { headers: { cookie } });
    expect(done.status).toBe(200);
    const locationId = location.slice("location:".length);
    const row = await getConnection(env.DB, locationConnectionId(locationId));
    expect(row?.status).toBe("active");
    expect(row?.accessTokenEnc).toMatch(/^v1\./);
    expect(net.count(/\/oauth\/token$/, "POST")).toBe(1);
  });
});
