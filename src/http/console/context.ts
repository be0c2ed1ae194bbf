/** What every console page starts from: the accounts, the chosen one, and a flash message. */
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import { AppError } from "../../lib/errors.ts";
import { timingSafeEqualStrings } from "../../lib/crypto.ts";
import type { Account } from "../../store/accounts.ts";
import { requestScope, visibleAccounts, type SessionScope } from "../scope.ts";
import { flashMac } from "./session.ts";

/** Longest flash text a URL carries (longer messages are cut before they are signed). */
const FLASH_MAX = 500;

export interface PageContext {
  /** Who is looking (src/http/scope.ts); `accounts` holds only what this scope may see. */
  scope: SessionScope;
  accounts: Account[];
  account: Account | null;
  flash: { kind: "ok" | "error"; text: string } | null;
}

/**
 * Loads the accounts the session may see and picks `?account=` (or the first one). A scoped session
 * naming an account outside its scope gets 403, not a silent switch to another account.
 */
export async function pageContext(c: Context<AppEnv>): Promise<PageContext> {
  const scope = requestScope(c);
  const accounts = await visibleAccounts(c.env.DB, scope);
  const wanted = c.req.query("account");
  const picked = accounts.find((a) => a.id === wanted);
  if (wanted && !picked && scope.kind !== "operator")
    throw new AppError("forbidden", `account ${wanted.slice(0, 100)} is outside this session's scope`);
  const account = picked ?? accounts[0] ?? null;
  return { scope, accounts, account, flash: await signedFlash(c) };
}

/** The `?ok=` / `?error=` message, shown only when its `fm` MAC says the console wrote it. */
async function signedFlash(c: Context<AppEnv>): Promise<PageContext["flash"]> {
  const error = c.req.query("error");
  const ok = c.req.query("ok");
  const flash = error ? { kind: "error" as const, text: error } : ok ? { kind: "ok" as const, text: ok } : null;
  const given = c.req.query("fm");
  if (!flash || !given || flash.text.length > FLASH_MAX) return null;
  const expected = await flashMac(c.var.config.ADMIN_TOKEN, flash.kind, flash.text);
  return timingSafeEqualStrings(given, expected) ? flash : null;
}

/** A 303 back to a console page with a signed flash message (post/redirect/get). */
export async function redirectWith(
  c: Context<AppEnv>,
  page: string,
  account: string | null,
  flash: { ok?: string; error?: string },
  extra: Record<string, string> = {},
): Promise<Response> {
  const q = new URLSearchParams();
  if (account) q.set("account", account);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const kind = flash.error ? "error" : flash.ok ? "ok" : null;
  if (kind) {
    const text = (flash[kind] ?? "").slice(0, FLASH_MAX);
    q.set(kind, text);
    q.set("fm", await flashMac(c.var.config.ADMIN_TOKEN, kind, text));
  }
  return c.redirect(`/console/${page}?${q.toString()}`, 303);
}

/**
 * The form's `account` field, which must name an existing account the session may see (a scoped
 * session naming another account gets 403).
 */
export async function formAccount(c: Context<AppEnv>, form: Record<string, unknown>): Promise<Account | null> {
  const scope = requestScope(c);
  const id = typeof form["account"] === "string" ? form["account"] : "";
  const found = (await visibleAccounts(c.env.DB, scope)).find((a) => a.id === id) ?? null;
  if (!found && id && scope.kind !== "operator")
    throw new AppError("forbidden", `account ${id.slice(0, 100)} is outside this session's scope`);
  return found;
}
