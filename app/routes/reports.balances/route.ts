import type { LoaderFunctionArgs } from "@remix-run/node";
import { exportFileName } from "~/domain/csv";
import { requireStaff } from "~/lib/auth.server";
import { getDb } from "~/lib/db.server";
import { jsonError } from "~/lib/http.server";
import { rollForward, rollForwardCsv } from "~/features/money/roll-forward.server";
import { describeErrors, parseReportParams } from "../reports/params";

/** GET /reports/balances.csv?month=&tz=: the balance roll-forward per owner and TOTAL (README). */
export async function loader({ request }: LoaderFunctionArgs) {
  const staff = await requireStaff(request, "reports:read");
  const parsed = parseReportParams(new URL(request.url).searchParams, staff.timezone);
  if (!parsed.ok) return jsonError(400, describeErrors(parsed.errors), { errors: parsed.errors });
  const { period } = parsed;
  const csv = rollForwardCsv(await rollForward(getDb(), period));
  return new Response(csv, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="${exportFileName("balances", period.month, period.tz)}"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
