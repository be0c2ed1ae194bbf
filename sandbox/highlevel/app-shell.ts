/**
 * The app shell: the sandbox's stand-in for HighLevel's own UI around a Marketplace **Custom Page**.
 * `GET /_sandbox/highlevel/app-shell?app=<custom page URL>&locationId=…&userId=…&userType=…` frames
 * the page in an iframe as a chosen user sees it, and answers the page's
 * `window.parent.postMessage({message: "REQUEST_USER_DATA"}, "*")` with
 * `{message: "REQUEST_USER_DATA_RESPONSE", payload}`: the user context encrypted the HighLevel way
 * (sso.ts) with the app's Shared Secret (`HIGHLEVEL_SSO_KEY`). The encryption runs here, server-side,
 * and the page only carries the ciphertext, as HighLevel's does. `GET …/app-shell/context` answers
 * the same as JSON `{context, payload}` for tests. Parameters and rules: docs/sandbox.md.
 * https://marketplace.gohighlevel.com/docs/marketplace-modules/CustomPages
 * https://marketplace.gohighlevel.com/docs/other/user-context-marketplace-apps
 */
import type { Context, Hono } from "hono";
import { html, raw } from "hono/html";
import { z } from "zod";
import { ControlError, controlIssues } from "../core/control.ts";
import type { HighLevelSandbox } from "./index.ts";
import { encryptUserContext } from "./sso.ts";
import type { SsoUserContext } from "./sso.ts";
import type { Location, User } from "./store.ts";

const ShellQuery = z
  .object({
    /** The Custom Page URL; HighLevel's `{{user.*}}` / `{{location.*}}` placeholders are filled in. */
    app: z.string().min(1).optional(),
    /** The sub-account the page is opened in; absent: at agency level. */
    locationId: z.string().min(1).optional(),
    /** Default: the first user of the location (at agency level: the first admin). */
    userId: z.string().min(1).optional(),
    /** `location` (a sub-account user; the default inside a location) or `agency` (an agency user). */
    userType: z.enum(["location", "agency"]).optional(),
  })
  .strict();

type ShellQuery = z.output<typeof ShellQuery>;

/** Who opens the page, where, and the context HighLevel would give the page. */
interface ShellView {
  user: User;
  location: Location | null;
  context: SsoUserContext;
}

/** The users and locations of the sandbox, checked against the query (ControlError 400/404). */
function resolveView(sb: HighLevelSandbox, q: ShellQuery): ShellView {
  const { store } = sb;
  if (store.users.size === 0) {
    throw new ControlError(400, "the sandbox has no users yet: seed it (POST /_sandbox/highlevel/seed)");
  }
  const location = q.locationId === undefined ? null : (store.locations.get(q.locationId) ?? null);
  if (q.locationId !== undefined && !location) throw new ControlError(404, `no location ${q.locationId}`);
  const type = q.userType ?? (location ? "location" : "agency");
  if (type === "location" && !location) {
    throw new ControlError(400, "userType location needs a locationId (a sub-account user is always in a sub-account)");
  }

  const candidates = [...store.users.values()].filter((u) =>
    type === "location"
      ? u.locationIds.includes(location!.id)
      : u.role === "admin" && (!location || u.companyId === location.companyId),
  );
  let user: User | undefined;
  if (q.userId !== undefined) {
    user = store.users.get(q.userId);
    if (!user) throw new ControlError(404, `no user ${q.userId}`);
    if (type === "location" && !user.locationIds.includes(location!.id)) {
      throw new ControlError(400, `user ${user.id} has no access to location ${location!.id}`);
    }
    if (type === "agency" && user.role !== "admin") {
      throw new ControlError(400, `user ${user.id} is not an admin: only an admin stands in for an agency user`);
    }
    if (location && user.companyId !== location.companyId) {
      throw new ControlError(400, `user ${user.id} is not in the agency of location ${location.id}`);
    }
  } else {
    user = candidates[0];
    if (!user) {
      const why = type === "location" ? `location ${location!.id} has no users` : "no admin to act as an agency user";
      throw new ControlError(400, why);
    }
  }

  const context: SsoUserContext = {
    userId: user.id,
    companyId: user.companyId,
    role: user.role,
    type,
    ...(location ? { activeLocation: location.id } : {}),
    userName: `${user.firstName} ${user.lastName}`,
    email: user.email,
    // The sandbox's agency users are its admins, each standing in for the agency owner.
    isAgencyOwner: type === "agency",
  };
  return { user, location, context };
}

/**
 * The Custom Page URL with HighLevel's supported placeholders filled in (unknown ones become empty,
 * values URL-encoded); 400 unless the result is an absolute http(s) URL.
 */
function customPageUrl(template: string, user: User, location: Location | null): URL {
  const values: Record<string, string> = {
    "user.first_name": user.firstName,
    "user.last_name": user.lastName,
    "user.name": `${user.firstName} ${user.lastName}`,
    "user.phone": user.phone,
    "user.email": user.email,
    "location.id": location?.id ?? "",
    "location.name": location?.name ?? "",
    "location.address": location?.address ?? "",
    "location.full_address": location?.address ?? "",
  };
  const placeholder = /\{\{\s*([\w.]+)\s*\}\}/g;
  const filled = template.replace(placeholder, (_m, name: string) => encodeURIComponent(values[name] ?? ""));
  let url: URL;
  try {
    url = new URL(filled);
  } catch {
    throw new ControlError(400, "app must be an absolute URL (the Custom Page URL)");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new ControlError(400, "app must be an http(s) URL");
  return url;
}

function parseQuery(c: Context): ShellQuery {
  const parsed = ShellQuery.safeParse(c.req.query());
  if (!parsed.success) throw new ControlError(400, "invalid query", controlIssues(parsed.error));
  return parsed.data;
}

const STYLE = raw(`<style>
  body{margin:0;font-family:system-ui,sans-serif;background:#f4f6fa;color:#1f2937}
  body{display:flex;flex-direction:column;height:100vh}
  header{background:#0f172a;color:#e2e8f0;padding:10px 16px;font-size:14px}
  header{display:flex;flex-wrap:wrap;gap:10px;align-items:center}
  header strong{color:#fff;margin-right:8px} header form{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
  header select,header input{padding:4px 6px;border-radius:4px;border:0;font-size:13px}
  header input[name=app]{width:340px}
  header button{padding:5px 12px;border-radius:4px;border:0;background:#155eef;color:#fff;cursor:pointer}
  .who{font-size:12px;color:#94a3b8} main{flex:1;display:flex} iframe{flex:1;border:0;background:#fff}
  .empty,.error{margin:40px auto;max-width:560px;background:#fff;border-radius:8px;padding:24px}
  .error h1{color:#b42318;font-size:18px}
  #sso-log{font-size:12px;color:#94a3b8}
</style>`);

const HEAD = html`<meta charset="utf-8" /><title>HighLevel sandbox — app shell</title>${STYLE}`;

/** Embeds a value in a `<script type="application/json">` without letting it close the element. */
function scriptJson(value: unknown): ReturnType<typeof raw> {
  return raw(JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026"));
}

/** Answers REQUEST_USER_DATA from the framed page only, and posts only to the page's origin. */
const SHELL_SCRIPT = raw(`<script>
(() => {
  const sso = JSON.parse(document.getElementById("sso-data").textContent);
  const frame = document.getElementById("custom-page");
  const log = document.getElementById("sso-log");
  let answered = 0;
  window.addEventListener("message", (event) => {
    if (!frame || event.source !== frame.contentWindow) return;
    if (!event.data || event.data.message !== "REQUEST_USER_DATA") return;
    frame.contentWindow.postMessage({ message: "REQUEST_USER_DATA_RESPONSE", payload: sso.payload }, sso.targetOrigin);
    answered += 1;
    log.textContent = "REQUEST_USER_DATA answered " + answered + "×";
  });
})();
</script>`);

/** Registers the app shell page and its JSON twin on the HighLevel control app. */
export function registerAppShell(app: Hono, get: () => HighLevelSandbox): void {
  app.get("/app-shell/context", async (c) => {
    const view = resolveView(get(), parseQuery(c));
    return c.json({ context: view.context, payload: await encryptUserContext(view.context, get().ssoKey) });
  });

  app.get("/app-shell", async (c) => {
    const sb = get();
    let q: ShellQuery;
    let view: ShellView;
    let target: URL | null;
    try {
      q = parseQuery(c);
      view = resolveView(sb, q);
      target = q.app === undefined ? null : customPageUrl(q.app, view.user, view.location);
    } catch (err) {
      if (!(err instanceof ControlError)) throw err;
      const detail = err.issues ? `${err.message}: ${err.issues.join("; ")}` : err.message;
      return c.html(
        html`<!doctype html>
          <html lang="en">
            <head>
              ${HEAD}
            </head>
            <body>
              <div class="error">
                <h1>Cannot open the app shell</h1>
                <p>${detail}</p>
                <p class="who">docs/sandbox.md, "App shell"</p>
              </div>
            </body>
          </html>`,
        err.status,
      );
    }
    const payload = await encryptUserContext(view.context, sb.ssoKey);
    const locations = [...sb.store.locations.values()];
    const users = [...sb.store.users.values()];
    const selected = (yes: boolean) => (yes ? "selected" : "");
    const who = `${view.context.userName} · ${view.context.type} user · ${view.location?.name ?? "agency level"}`;
    return c.html(
      html`<!doctype html>
        <html lang="en">
          <head>
            ${HEAD}
          </head>
          <body>
            <header>
              <strong>HighLevel sandbox</strong>
              <form method="get" action="app-shell">
                <select name="locationId" aria-label="Sub-account">
                  <option value="" ${selected(!view.location)}>Agency level</option>
                  ${locations.map((l) => html`<option value="${l.id}" ${selected(view.location?.id === l.id)}>${l.name}</option>`)}
                </select>
                <select name="userId" aria-label="User">
                  ${users.map((u) => {
                    const label = `${u.firstName} ${u.lastName} (${u.role})`;
                    return html`<option value="${u.id}" ${selected(view.user.id === u.id)}>${label}</option>`;
                  })}
                </select>
                <select name="userType" aria-label="User type">
                  <option value="location" ${selected(view.context.type === "location")}>Sub-account user</option>
                  <option value="agency" ${selected(view.context.type === "agency")}>Agency user</option>
                </select>
                <input
                  name="app"
                  aria-label="Custom Page URL"
                  placeholder="Custom Page URL (https://…)"
                  value="${q.app ?? ""}"
                />
                <button type="submit">Open</button>
              </form>
              <span class="who">${who}</span>
              <output id="sso-log"></output>
            </header>
            <main>
              ${
                target
                  ? html`<iframe
                      id="custom-page"
                      title="Custom Page"
                      src="${target.toString()}"
                      allow="camera; microphone"
                    ></iframe>`
                  : html`<div class="empty">
                      <p>
                        Give the Custom Page URL (<code>app</code>) to frame it here. The page gets this user's context
                        when it posts <code>REQUEST_USER_DATA</code>.
                      </p>
                    </div>`
              }
            </main>
            <script type="application/json" id="sso-data">
              ${scriptJson({ payload, targetOrigin: target?.origin ?? null })}
            </script>
            ${SHELL_SCRIPT}
          </body>
        </html>`,
    );
  });
}
