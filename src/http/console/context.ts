/** What every console page starts from: the accounts, the chosen one, and a flash message. */
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import { timingSafeEqualStrings } from "../../lib/crypto.ts";
import { listAccounts, type Account } from "../../store/accounts.ts";
import { flashMac } from "./session.ts";

/** Longest flash text a URL carries (longer messages are cut before they are signed). */
const FLASH_MAX = 500;

export interface PageContext {
  accounts: Account[];
  account: Account | null;
  flash: { kind: "ok" | "error"; text: string } | null;
}

/** Loads the accounts and picks `?account=` (or the first one). */
export async function pageContext(c: Context<AppEnv>): Promise<PageContext> {
  const accounts = await listAccounts(c.env.DB);
  const wanted = c.req.query("account");
  const account = accounts.find((a) => a.id === wanted) ?? accounts[0] ?? null;
  return { accounts, account, flash: await signedFlash(c) };
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

/** The form's `account` field, which must name an existing account. */
export async function formAccount(c: Context<AppEnv>, form: Record<string, unknown>): Promise<Account | null> {
  const id = typeof form["account"] === "string" ? form["account"] : "";
  return (await listAccounts(c.env.DB)).find((a) => a.id === id) ?? null;
}
