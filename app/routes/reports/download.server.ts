import { exportFileName } from "~/domain/csv";
import type { Staff } from "~/lib/auth.server";
import { getPool } from "~/lib/db.server";
import { getEnv } from "~/lib/env.server";
import { stallGuardedStream, takeExportSlot } from "~/lib/export-guard.server";
import { jsonError } from "~/lib/http.server";
import { openCsvExport, ReportInputError, type CsvExportKind } from "~/models/reports.server";
import { describeErrors, parseReportParams } from "./params";

const RETRY_AFTER_SECONDS = 10;

/**
 * GET /reports/export.csv and /reports/raw.csv: the download begins as soon as PostgreSQL
 * accepted the query; rows stream from COPY to the browser. A client that goes away aborts
 * the request signal, which closes the database connection and with it the query. A staff
 * member runs at most TOKENBOARD_EXPORTS_PER_STAFF at once, and a reader that stops reading for
 * TOKENBOARD_EXPORT_STALL_SECONDS is cut the same way.
 */
export async function csvDownload(request: Request, staff: Staff, kind: CsvExportKind): Promise<Response> {
  const parsed = parseReportParams(new URL(request.url).searchParams, staff.timezone);
  if (!parsed.ok) return jsonError(400, describeErrors(parsed.errors), { errors: parsed.errors });
  const { period } = parsed;
  const env = getEnv();
  const release = takeExportSlot(staff.id, env.TOKENBOARD_EXPORTS_PER_STAFF);
  if (!release) {
    const message = `You can run at most ${env.TOKENBOARD_EXPORTS_PER_STAFF} exports at once; wait for one to finish.`;
    return jsonError(429, message, {}, { "retry-after": String(RETRY_AFTER_SECONDS) });
  }
  try {
    const stream = await openCsvExport(getPool(), kind, period, request.signal);
    return new Response(stallGuardedStream(stream, env.TOKENBOARD_EXPORT_STALL_SECONDS * 1000, release), {
      headers: {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="${exportFileName(kind, period.month, period.tz)}"`,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  } catch (error) {
    release();
    if (error instanceof ReportInputError) return jsonError(400, `${error.field}: ${error.message}`, { errors: { [error.field]: error.message } });
    throw error;
  }
}
