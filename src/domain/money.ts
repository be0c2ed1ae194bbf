/**
 * Money without floats: amounts travel as integer minor units with their ISO 4217 currency; only
 * HighLevel's API and the people-facing texts see decimal numbers.
 */
import * as z from "zod";

/** Money without floats: `amountMinor` in the currency's minor unit (cents for USD). */
export const MoneySchema = z.object({
  amountMinor: z.number().int(),
  currency: z.string().regex(/^[A-Z]{3}$/, "ISO 4217 code, e.g. USD"),
});
export type Money = z.infer<typeof MoneySchema>;

/** Decimal places of a currency's minor unit (USD 2, JPY 0, BHD 3). */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** HighLevel's number → integer minor units (rounded: 19.99 is 1999, never 1998.9999). */
export function toMinor(amount: number, currency: string): number {
  return Math.round(amount * 10 ** minorDigits(currency));
}

/** Integer minor units → HighLevel's number. */
export function fromMinor(minor: number, currency: string): number {
  return minor / 10 ** minorDigits(currency);
}
