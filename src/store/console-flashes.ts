/**
 * One-time console messages (`console_flashes`, migrations/0012): written by a form handler, read
 * and deleted by the next page view of the same session. D1 rather than KV because "shown once"
 * needs an atomic read-and-delete: `DELETE … RETURNING` hands a row to exactly one reader.
 * Callers pass hashes and ciphertext only; the id, the session and the text stay with them.
 */
import * as z from "zod";

/** How long a flash waits for its page view. */
export const CONSOLE_FLASH_TTL_MS = 5 * 60 * 1000;

const RowSchema = z.object({ session_hash: z.string(), body_enc: z.string(), expires_at: z.number() });

/** Stores a flash; expired ones are dropped on the way (the table holds minutes of rows at most). */
export async function putConsoleFlash(
  db: D1Database,
  flash: { idHash: string; sessionHash: string; bodyEnc: string },
  now: number = Date.now(),
): Promise<void> {
  await db.batch([
    db.prepare("DELETE FROM console_flashes WHERE expires_at < ?").bind(now),
    db
      .prepare("INSERT INTO console_flashes (id_hash, session_hash, body_enc, expires_at) VALUES (?, ?, ?, ?)")
      .bind(flash.idHash, flash.sessionHash, flash.bodyEnc, now + CONSOLE_FLASH_TTL_MS),
  ]);
}

/**
 * Deletes the flash `idHash` and returns its ciphertext if it was made for `sessionHash` and has
 * not expired; null otherwise. Whatever the answer, the row is gone: a flash is never read twice.
 */
export async function takeConsoleFlash(
  db: D1Database,
  idHash: string,
  sessionHash: string,
  now: number = Date.now(),
): Promise<string | null> {
  const raw = await db
    .prepare("DELETE FROM console_flashes WHERE id_hash = ? RETURNING session_hash, body_enc, expires_at")
    .bind(idHash)
    .first();
  if (raw === null) return null;
  const row = RowSchema.parse(raw);
  return row.session_hash === sessionHash && row.expires_at >= now ? row.body_enc : null;
}
