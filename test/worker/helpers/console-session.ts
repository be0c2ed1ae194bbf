/** Signing in to the console as an operator does, for tests that read console pages. */
import { exports } from "cloudflare:workers";
import { TEST_BINDINGS } from "../../bindings.ts";

/** `POST /console/login` with the admin token; answers the `cookie` header value of the new session. */
export async function consoleCookie(base = "http://worker.test"): Promise<string> {
  const res = await exports.default.fetch(`${base}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { origin: base, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: TEST_BINDINGS.ADMIN_TOKEN }),
  });
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  if (res.status !== 303 && res.status !== 302) throw new Error(`/console/login answered ${res.status}`);
  if (!cookie) throw new Error("/console/login set no session cookie");
  return cookie;
}
