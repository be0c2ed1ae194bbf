/** What every console page starts from: the accounts, the chosen one, and a flash message. */
import type { Context } from "hono";
import type { AppEnv } from "../context.ts";
import { listAccounts, type Account } from "../../store/accounts.ts";

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
  const ok = c.req.query("ok");
  const error = c.req.query("error");
  return {
    accounts,
    account,
    flash: error ? { kind: "error", text: error.slice(0, 500) } : ok ? { kind: "ok", text: ok.slice(0, 500) } : null,
  };
}

/** A 303 back to a console page with a flash message (post/redirect/get). */
export function redirectWith(
  c: Context<AppEnv>,
  page: string,
  account: string | null,
  flash: { ok?: string; error?: string },
  extra: Record<string, string> = {},
): Response {
  const q = new URLSearchParams();
  if (account) q.set("account", account);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  if (flash.ok) q.set("ok", flash.ok);
  if (flash.error) q.set("error", flash.error);
  return c.redirect(`/console/${page}?${q.toString()}`, 303);
}

/** The form's `account` field, which must name an existing account. */
export async function formAccount(c: Context<AppEnv>, form: Record<string, unknown>): Promise<Account | null> {
  const id = typeof form["account"] === "string" ? form["account"] : "";
  return (await listAccounts(c.env.DB)).find((a) => a.id === id) ?? null;
}
