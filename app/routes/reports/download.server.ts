import { exportFileName } from "~/domain/csv";
import type { Staff } from "~/lib/auth.server";
import { getPool } from "~/lib/db.server";
import { jsonError } from "~/lib/http.server";
import { openCsvExport, ReportInputError, toWebStream, type CsvExportKind } from "~/models/reports.server";
import { describeErrors, parseReportParams } from "./params";

/**
 * GET /reports/export.csv and /reports/raw.csv: the download begins as soon as PostgreSQL
 * accepted the query; rows stream from COPY to the browser. A client that goes away aborts
 * the request signal, which closes the database connection and with it the query.
 */
export async function csvDownload(request: Request, staff: Staff, kind: CsvExportKind): Promise<Response> {
  const parsed = parseReportParams(new URL(request.url).searchParams, staff.timezone);
  if (!parsed.ok) return jsonError(400, describeErrors(parsed.errors), { errors: parsed.errors });
  const { period } = parsed;
  try {
    const stream = await openCsvExport(getPool(), kind, period, request.signal);
    return new Response(toWebStream(stream), {
      headers: {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="${exportFileName(kind, period.month, period.tz)}"`,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  } catch (error) {
    if (error instanceof ReportInputError) return jsonError(400, `${error.field}: ${error.message}`, { errors: { [error.field]: error.message } });
    throw error;
  }
}
