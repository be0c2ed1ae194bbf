/**
 * A refused console page (403 outside the session's scope, 404, 400) answered to a browser as a
 * page rather than JSON: a person who followed a link, inside HighLevel's frame or not, reads why.
 */
import type { Context } from "hono";
import { html } from "hono/html";
import type { AppError } from "../lib/errors.ts";
import type { AppEnv } from "./context.ts";

const TITLES: Partial<Record<number, string>> = {
  400: "That request is not valid",
  401: "Sign in first",
  403: "Not yours to open",
  404: "Not found",
  409: "Not possible right now",
};

/** True for a browser asking for a console page (an HTML navigation, not a script or the API). */
export function wantsConsolePage(c: Context<AppEnv>): boolean {
  const path = new URL(c.req.url).pathname;
  return (path === "/console" || path.startsWith("/console/")) && (c.req.header("accept") ?? "").includes("text/html");
}

/** The page for a 4xx `AppError` on a console route: the reason, the request id, a way back. */
export function consoleErrorPage(c: Context<AppEnv>, err: AppError, requestId: string): Response | Promise<Response> {
  const title = TITLES[err.status] ?? "Refused";
  return c.html(
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} · 4Degrees ↔ HighLevel sync</title><link rel="stylesheet" href="/console/app.css"></head><body><main><h1>${title}</h1><p class="flash error" id="error-reason" data-code="${err.code}">${err.message}</p><p><a href="/console">Back to the console</a></p><p class="muted"><small>Request id: ${requestId}</small></p></main></body></html>`,
    err.status,
    err.headers,
  );
}
