/**
 * The CSV bridge's HTTP side (mounted under `/api`, behind `adminAuth`):
 *
 * - `POST /api/import/4degrees?account=<id>` — a 4Degrees deal-list CSV export, as the raw body
 *   (`Content-Type: text/csv`) or a multipart upload (field `file`). Options as query parameters or
 *   multipart fields: `map` (JSON `{"name": "<header>", "value": "<header>", …}`; `null` ignores a
 *   column), `currency` (default USD), `dateOrder` (`MDY` default, or `DMY`), `pipeline` (list
 *   name for files without a pipeline column), `delimiter` (else detected). At most 10 MiB
 *   (`MAX_CSV_BYTES`, streamed in; 413 naming the cap past it). Answers the report:
 *   rows queued to create / update / link in HighLevel, unchanged rows, and every skipped row with
 *   its line and reason. The HighLevel writes happen in the sync engine that consumes the queue.
 * - `GET /api/export/highlevel.csv?location=<id>[&pipeline=<id>][&currency=USD][&wonStage=<name>]
 *   [&lostStage=<name>][&closeDateField=<id>]` — streams the location's opportunities as a CSV
 *   4Degrees' deal import accepts. One 4Degrees list per import: export one `pipeline` per file.
 *   `wonStage` / `lostStage` name the list's won and lost stages (4Degrees has no status);
 *   the close date comes from `closeDateField`, else the account's mapping, else (API v3) the
 *   native forecast close date, else the opportunity date field named "Expected Close Date" (or "Close Date").
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as z from "zod";
import { importDealCsv } from "../fourdegrees/csv/import.ts";
import { exportCsvStream, highLevelSource, resolveCloseDateField } from "../fourdegrees/csv/export.ts";
import { csvTooLarge, MAX_CSV_BYTES, readCsvText } from "../fourdegrees/csv/parse.ts";
import { HeaderMapSchema, type HeaderMap } from "../fourdegrees/csv/rows.ts";
import { createHighLevelClient } from "../highlevel/client.ts";
import { AppError, zodIssues } from "../lib/errors.ts";
import { accountIdForLocation, getAccount } from "../store/accounts.ts";
import { accountExists } from "../store/fourdegrees-accounts.ts";
import { AccountIdSchema } from "./accounts.ts";
import type { AppEnv } from "./context.ts";

/** Room for a multipart body's boundaries, headers and option fields around the file. */
const MULTIPART_SLACK_BYTES = 64 * 1024;

const CSV_TYPES = new Set([
  "text/csv",
  "application/csv",
  "text/plain",
  "application/vnd.ms-excel",
  "text/comma-separated-values",
]);

const ImportOptions = z.object({
  account: AccountIdSchema,
  map: z.string().optional(),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, "currency must be an ISO 4217 code like USD")
    .transform((c) => c.toUpperCase())
    .default("USD"),
  dateOrder: z.enum(["MDY", "DMY"]).default("MDY"),
  pipeline: z.string().trim().min(1).max(200).optional(),
  delimiter: z.enum([",", ";", "\t", "|"]).optional(),
});

function parseMap(raw: string | undefined): HeaderMap {
  if (raw === undefined || raw.trim() === "") return {};
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new AppError("bad_request", 'map must be JSON, e.g. {"name":"Company Deal","value":"Check Size"}');
  }
  const parsed = HeaderMapSchema.safeParse(json);
  if (!parsed.success)
    throw new AppError("bad_request", "map names fields the importer does not know", {
      details: zodIssues(parsed.error),
    });
  return parsed.data;
}

export const csv = new Hono<AppEnv>()
  .post(
    "/import/4degrees",
    // The request as a whole (a multipart body carries the file plus its framing and fields); the
    // file itself is capped again while it is streamed in (readCsvText).
    bodyLimit({
      maxSize: MAX_CSV_BYTES + MULTIPART_SLACK_BYTES,
      onError: () => {
        throw csvTooLarge();
      },
    }),
    async (c) => {
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      const fields: Record<string, string> = { ...c.req.query() };
      let text: string;
      let filename: string | null = null;
      if (type === "multipart/form-data") {
        const form = await c.req.formData().catch(() => {
          throw new AppError("bad_request", "the multipart body cannot be read");
        });
        const file = form.get("file");
        if (file === null || typeof file === "string")
          throw new AppError("bad_request", 'the multipart upload needs the CSV in a field named "file"');
        if (file.size > MAX_CSV_BYTES) throw csvTooLarge();
        text = await readCsvText(file.stream());
        filename = file.name || null;
        for (const [k, v] of form.entries()) if (k !== "file" && typeof v === "string") fields[k] = v;
      } else if (CSV_TYPES.has(type)) {
        text = await readCsvText(c.req.raw.body);
        filename = c.req.query("filename") ?? null;
      } else {
        throw new AppError(
          "unsupported_media_type",
          "upload the CSV as text/csv or as multipart/form-data with a file field",
        );
      }
      const options = ImportOptions.safeParse(fields);
      if (!options.success)
        throw new AppError("bad_request", "invalid import options", { details: zodIssues(options.error) });
      const o = options.data;
      if (!(await accountExists(c.env.DB, o.account)))
        throw new AppError("not_found", `account ${o.account} does not exist`);
      const result = await importDealCsv(c.env.DB, c.env.BULK_QUEUE, {
        accountId: o.account,
        filename,
        text,
        map: parseMap(o.map),
        options: { defaultCurrency: o.currency, dateOrder: o.dateOrder, defaultPipeline: o.pipeline ?? null },
        ...(o.delimiter === undefined ? {} : { delimiter: o.delimiter }),
      });
      c.var.log.info({
        event: "csv.import",
        account: o.account,
        outcome: "ok",
        rows: result.rows,
        queued: result.queued,
        unchanged: result.unchanged,
        skipped: result.skipped.length,
        import_id: result.importId,
      });
      return c.json({
        ...result,
        note: "created / updated / linked count rows queued for the sync engine, which makes the HighLevel writes; unchanged rows were imported before with the same content and were not queued again.",
      });
    },
  )
  .get("/export/highlevel.csv", async (c) => {
    const q = z
      .object({
        location: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "location must be a HighLevel location id"),
        pipeline: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/)
          .optional(),
        currency: z
          .string()
          .regex(/^[A-Za-z]{3}$/)
          .transform((s) => s.toUpperCase())
          .default("USD"),
        wonStage: z.string().trim().min(1).max(200).optional(),
        lostStage: z.string().trim().min(1).max(200).optional(),
        closeDateField: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/, "closeDateField must be a HighLevel custom field id")
          .optional(),
      })
      .safeParse(c.req.query());
    if (!q.success) {
      const issues = zodIssues(q.error);
      const named = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
      throw new AppError("bad_request", `invalid export query (needs ?location=<HighLevel location id>): ${named}`, {
        details: issues,
      });
    }
    const { location, pipeline, currency, wonStage, lostStage, closeDateField } = q.data;
    // Backfill lane: an export is bulk work and must not starve live sync of the location's budget.
    const hl = createHighLevelClient(c.env, c.var.config, location, { lane: "backfill" });
    const preferred = closeDateField ?? (await mappedCloseDateField(c.env.DB, location));
    // Under API v3 an export with no field named reads the native forecast close date, as the sync does.
    const closeDateFieldId =
      preferred === null && c.var.config.HIGHLEVEL_API_VERSION === "v3"
        ? null
        : await resolveCloseDateField(hl, preferred);
    const stream = await exportCsvStream(
      highLevelSource(hl, { ...(pipeline ? { pipelineId: pipeline } : {}), closeDateFieldId }),
      { currency, wonStage: wonStage ?? null, lostStage: lostStage ?? null },
    );
    c.var.log.info({ event: "csv.export", location, outcome: "ok", close_date_field: closeDateFieldId });
    return new Response(stream, {
      headers: {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="highlevel-${q.data.location}.csv"`,
        "cache-control": "no-store",
      },
    });
  });

/** The close-date custom field of the account the location belongs to (its sync mapping), if any. */
async function mappedCloseDateField(db: D1Database, locationId: string): Promise<string | null> {
  const accountId = await accountIdForLocation(db, locationId);
  const account = accountId === null ? null : await getAccount(db, accountId);
  return account?.mapping?.closeDateFieldId ?? null;
}
