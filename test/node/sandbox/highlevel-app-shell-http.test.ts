/**
 * The app shell over real HTTP (`npm run sandbox`): its payload decrypts with Node's OpenSSL
 * (EVP_BytesToKey with MD5, then AES-256-CBC: what `CryptoJS.AES.decrypt(payload, secret)` does),
 * a check independent of both TypeScript implementations, and with the Worker's decryptUserContext.
 */
import { createDecipheriv, createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decryptUserContext } from "../../../src/highlevel/sso.ts";
import { startTestSandbox, type RunningSandbox } from "./helpers.ts";

const SECRET = "node-test-shared-secret";

/** OpenSSL `enc -d -aes-256-cbc -md md5 -pass pass:<secret> -base64`, written out with node:crypto. */
function opensslDecrypt(payload: string, secret: string): string {
  const bytes = Buffer.from(payload, "base64");
  expect(bytes.subarray(0, 8).toString("latin1")).toBe("Salted__");
  const salt = bytes.subarray(8, 16);
  let material = Buffer.alloc(0);
  let block = Buffer.alloc(0);
  while (material.length < 48) {
    block = createHash("md5")
      .update(Buffer.concat([block, Buffer.from(secret, "utf8"), salt]))
      .digest();
    material = Buffer.concat([material, block]);
  }
  const decipher = createDecipheriv("aes-256-cbc", material.subarray(0, 32), material.subarray(32, 48));
  return Buffer.concat([decipher.update(bytes.subarray(16)), decipher.final()]).toString("utf8");
}

let sb: RunningSandbox;
beforeAll(async () => {
  sb = await startTestSandbox({ HIGHLEVEL_SSO_KEY: SECRET });
});
afterAll(async () => {
  await sb?.close();
});

describe("HighLevel sandbox app shell over HTTP", () => {
  it("serves the shell whose embedded payload OpenSSL and the Worker both decrypt to the chosen user", async () => {
    const userId = sb.demo.userIds[2]!;
    const app = "http://127.0.0.1:8787/highlevel/app";
    const query = new URLSearchParams({ app, locationId: sb.demo.locationId, userId });
    const res = await fetch(`${sb.url}/_sandbox/highlevel/app-shell?${query}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const data = JSON.parse(/id="sso-data">([^<]*)</.exec(html)![1]!) as { payload: string; targetOrigin: string };
    expect(data.targetOrigin).toBe("http://127.0.0.1:8787");
    const expected = {
      userId,
      companyId: sb.demo.companyId,
      role: "user",
      type: "location",
      activeLocation: sb.demo.locationId,
      userName: "Jordan Lee",
      email: "jordan.lee@acmecapital.example",
      isAgencyOwner: false,
    };
    expect(JSON.parse(opensslDecrypt(data.payload, SECRET))).toEqual(expected);
    expect(await decryptUserContext(data.payload, SECRET)).toEqual(expected);
  });

  it("cannot be decrypted with another secret", async () => {
    const res = await fetch(`${sb.url}/_sandbox/highlevel/app-shell/context?locationId=${sb.demo.locationId}`);
    const { payload } = (await res.json()) as { payload: string };
    const refused = decryptUserContext(payload, "sandbox-sso-key");
    await expect(refused).rejects.toMatchObject({ name: expect.stringMatching(/^Sso/) });
    expect(() => JSON.parse(opensslDecrypt(payload, "sandbox-sso-key"))).toThrow();
  });
});
