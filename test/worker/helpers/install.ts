/** Starting an OAuth install as an operator does (signed in), for tests that go through the callback. */
import { exports } from "cloudflare:workers";
import { TEST_BINDINGS } from "../../bindings.ts";

/** What `/oauth/install` hands a signed-in browser: the chooselocation URL and the cookie binding its state. */
export interface StartedInstall {
  authorize: string;
  /** `name=value`, to send back as the `cookie` header of the callback. */
  cookie: string;
}

/** `GET /oauth/install` with the admin bearer token; throws unless it redirects and sets the state cookie. */
export async function beginInstall(base = "http://worker.test"): Promise<StartedInstall> {
  const res = await exports.default.fetch(`${base}/oauth/install`, {
    redirect: "manual",
    headers: { authorization: `Bearer ${TEST_BINDINGS.ADMIN_TOKEN}` },
  });
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  if (res.status !== 302 || !cookie)
    throw new Error(`/oauth/install answered ${res.status} without a redirect and state cookie`);
  return { authorize: res.headers.get("location") ?? "", cookie };
}
