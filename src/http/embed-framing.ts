/**
 * Who may frame the embedded pages. HighLevel shows a Custom Page in an iframe of its app
 * (docs/highlevel-sso.md); every other response keeps `X-Frame-Options` and `frame-ancestors 'none'`.
 * A response is framable only when the request set `c.var.embedded` (the `/embed` routes, and any
 * request authenticated by an embedded session): then `X-Frame-Options` goes and the CSP's
 * `frame-ancestors` names HighLevel's app origins plus `HIGHLEVEL_FRAME_ANCESTORS` (white-label
 * domains; plain-http origins only count when PUBLIC_URL is local, for the sandbox's app shell).
 */
import type { MiddlewareHandler } from "hono";
import { isLocalPublicUrl, type Config } from "../config.ts";
import type { AppEnv } from "./context.ts";

/** HighLevel's app origins (app.gohighlevel.com, and its LeadConnector twin) and their subdomains. */
export const HIGHLEVEL_FRAME_ORIGINS = [
  "https://app.gohighlevel.com",
  "https://*.gohighlevel.com",
  "https://app.leadconnectorhq.com",
  "https://*.leadconnectorhq.com",
] as const;

/** The `frame-ancestors` sources for this deployment. */
export function frameAncestors(config: Pick<Config, "HIGHLEVEL_FRAME_ANCESTORS" | "PUBLIC_URL">): string[] {
  const local = isLocalPublicUrl(config.PUBLIC_URL);
  const extra = config.HIGHLEVEL_FRAME_ANCESTORS.filter((o) => local || o.startsWith("https://"));
  return [...new Set([...HIGHLEVEL_FRAME_ORIGINS, ...extra])];
}

/** True when `origin` (a postMessage sender's) matches one of `sources` (`*.` matches one or more labels). */
export function originAllowed(origin: string, sources: readonly string[]): boolean {
  return sources.some((source) => {
    const wild = /^(https?:\/\/)\*\.(.+)$/.exec(source);
    if (!wild) return origin === source;
    return origin.startsWith(wild[1] ?? "") && origin.endsWith(`.${wild[2] ?? ""}`);
  });
}

/**
 * Outermost middleware (mount before `secureHeaders`, whose headers it adjusts after they are set):
 * lets HighLevel frame the responses of embedded requests.
 */
export function embedFraming(): MiddlewareHandler<AppEnv> {
  return async function embedFramingMiddleware(c, next) {
    await next();
    if (!c.var.embedded || !c.var.config) return;
    const directive = `frame-ancestors ${frameAncestors(c.var.config).join(" ")}`;
    const csp = c.res.headers.get("Content-Security-Policy");
    const value = !csp
      ? directive
      : /frame-ancestors[^;]*/.test(csp)
        ? csp.replace(/frame-ancestors[^;]*/, directive)
        : `${csp}; ${directive}`;
    c.res.headers.set("Content-Security-Policy", value);
    c.res.headers.delete("X-Frame-Options");
    c.res.headers.append("Vary", "Cookie");
  };
}
