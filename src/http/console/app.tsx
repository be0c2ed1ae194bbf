/**
 * The operator console (mounted at `/console`): server-rendered pages (Hono JSX), no client
 * script. Protection: `consoleAuth` (Cloudflare Access, or the ADMIN_TOKEN login's signed
 * session cookie), Hono's `csrf` on every state-changing form (Origin / Sec-Fetch-Site must be
 * this site; the cookie is also SameSite=Strict), and `secureHeaders` with a CSP that allows
 * nothing but this origin's stylesheet and forms (no script at all).
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import { secureHeaders } from "hono/secure-headers";
import { accessSettings } from "../access.ts";
import { isSiteOrigin } from "../api-guard.ts";
import type { AppEnv } from "../context.ts";
import { requestScope } from "../scope.ts";
import { AppError } from "../../lib/errors.ts";
import { timingSafeEqualStrings } from "../../lib/crypto.ts";
import { clearLoginAttempts, countLoginAttempt } from "../../store/console-auth.ts";
import { consoleAuth, loginClient, safeNext } from "./auth.ts";
import { activityPage } from "./pages/activity.tsx";
import { backfillPage } from "./pages/backfill.tsx";
import { duplicatesPage } from "./pages/duplicates.tsx";
import { filtersPage } from "./pages/filters.tsx";
import { connectionsPage } from "./pages/connections.tsx";
import { mappingPage } from "./pages/mapping.tsx";
import { notificationsPage } from "./pages/notifications.tsx";
import { automationsPage } from "./pages/automations.tsx";
import { problemsPage } from "./pages/problems.tsx";
import { reportPage } from "./pages/report.tsx";
import { setupPage } from "./pages/setup.tsx";
import { usagePage } from "./pages/usage.tsx";
import { endSession, startSession } from "./session.ts";
import { CSS, Layout } from "./ui.tsx";

/** Largest console form body (the mapping form is the biggest). */
const MAX_FORM_BYTES = 64 * 1024;

export const consoleApp = new Hono<AppEnv>();

consoleApp.use(
  secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      formAction: ["'self'"],
      baseUri: ["'none'"],
      frameAncestors: ["'none'"],
    },
    referrerPolicy: "same-origin",
  }),
);
// Every POST under /console must come from this site (login and logout included): Origin is
// PUBLIC_URL's or the request's own, or Sec-Fetch-Site is same-origin.
consoleApp.use(
  csrf({ origin: (origin, c: Context<AppEnv>) => isSiteOrigin(origin, c.req.url, c.var.config.PUBLIC_URL) }),
);
consoleApp.use(
  bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => {
      throw new AppError("payload_too_large", `console forms are limited to ${MAX_FORM_BYTES} bytes`);
    },
  }),
);

consoleApp.get("/app.css", (c) =>
  c.body(CSS, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "max-age=300" }),
);

const LoginPage = (p: { next: string; error?: string; access: boolean }) => (
  <Layout title="Sign in" page="login" flash={p.error ? { kind: "error", text: p.error } : null}>
    {p.access ? (
      <p>This deployment is protected by Cloudflare Access: open the console through your Access login.</p>
    ) : (
      <form method="post" action="/console/login" id="login-form">
        <input type="hidden" name="next" value={p.next} />
        <label class="block">
          Admin token{" "}
          <input type="password" name="token" autocomplete="current-password" required minlength={16} autofocus />
        </label>
        <button type="submit">Sign in</button>
      </form>
    )}
  </Layout>
);

consoleApp.get("/login", (c) =>
  c.html(<LoginPage next={safeNext(c.req.query("next"))} access={accessSettings(c.var.config) !== null} />),
);

consoleApp.post("/login", async (c) => {
  if (accessSettings(c.var.config)) return c.html(<LoginPage next="/console" access={true} />, 400);
  const form = await c.req.parseBody();
  const token = typeof form["token"] === "string" ? form["token"] : "";
  const next = safeNext(typeof form["next"] === "string" ? form["next"] : null);
  // Counted before the comparison: a client past the limit learns nothing, right token or not.
  const client = loginClient(c.req.header("cf-connecting-ip"));
  const attempt = await countLoginAttempt(c.env.DB, client);
  if (!attempt.allowed) {
    const wait = attempt.retryAfterSeconds;
    c.var.log.warn({ event: "console.login", outcome: "rejected", reason: "throttled", retry_after_s: wait });
    const minutes = Math.ceil(wait / 60);
    const error = `Too many sign-in attempts from this network. Try again in ${minutes} min.`;
    return c.html(<LoginPage next={next} error={error} access={false} />, 429, { "Retry-After": String(wait) });
  }
  if (!timingSafeEqualStrings(token, c.var.config.ADMIN_TOKEN)) {
    c.var.log.warn({ event: "console.login", outcome: "rejected" });
    return c.html(<LoginPage next={next} error="That token is not the admin token." access={false} />, 401);
  }
  await clearLoginAttempts(c.env.DB, client);
  await startSession(c, c.env.DB, c.var.config.ADMIN_TOKEN);
  c.var.log.info({ event: "console.login", outcome: "ok" });
  return c.redirect(next, 303);
});

// Revokes the session server-side: a copy of the cookie is dead too, not only the browser's.
consoleApp.post("/logout", async (c) => {
  await endSession(c, c.env.DB, c.var.config.ADMIN_TOKEN);
  return c.redirect("/console/login", 303);
});

// Everything below needs credentials.
consoleApp.use("*", consoleAuth());
// A HighLevel (scoped) session lands on its own home: Connections is the operator's page.
consoleApp.get("/", (c) =>
  c.redirect(requestScope(c).kind === "operator" ? "/console/connections" : "/embed/home", 303),
);
consoleApp.route("/", setupPage);
consoleApp.route("/", connectionsPage);
consoleApp.route("/", mappingPage);
consoleApp.route("/", activityPage);
consoleApp.route("/", problemsPage);
consoleApp.route("/", backfillPage);
consoleApp.route("/", filtersPage);
consoleApp.route("/", duplicatesPage);
consoleApp.route("/", usagePage);
consoleApp.route("/", reportPage);
consoleApp.route("/", notificationsPage);
consoleApp.route("/", automationsPage);
